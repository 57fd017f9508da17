// Our wasm kernels (engine/tensor/wasm-kernels.ts, kernels/kernels.c) against the stock ops on the cpu backend:
// every replaced kernel (BatchMatMul, Transpose, Identity, GatherV2, Slice, SplitV, Sum) and every fused op with its gradient,
// at shapes that reach the kernels' edge cases (sizes that are not multiples of the 4 × 8 block, products larger
// than one cache block, the few-rows path, broadcast batches, grouped heads, padding masks). The fused ops'
// gradients are also checked against central finite differences on wasm.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  initBackend,
  tf,
  adamWUpdate,
  attention,
  gather,
  geluTanh,
  labelLogProb,
  labelLogProbGrad,
  layerNorm,
  rmsNorm,
  rotary,
  swiglu,
} from '../../engine/tensor/index.ts';
import { adjacentSwap, kernelBuild } from '../../engine/tensor/wasm-kernels.ts';
import { readFileSync } from 'node:fs';
import { attentionBias, defaultPositions } from '../../engine/model/attention.ts';
import { ropeCosSin, ropeInvFreq } from '../../engine/model/rope.ts';
import { Rng } from '../../engine/random.ts';

type Backend = 'cpu' | 'wasm';
interface Input {
  data: number[];
  shape: number[];
  dtype?: 'float32' | 'int32';
}

const rng = new Rng(17);
const random = (shape: number[], scale = 1, draw = rng): Input => ({
  data: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => draw.normal() * scale),
  shape,
});
/** The weights r of the checked sum(f · r): the same on both backends. */
const weightsFor = (shape: number[]) => random(shape, 1, new Rng(99));
const ints = (data: number[], shape: number[]): Input => ({ data, shape, dtype: 'int32' });
const toTensor = (x: Input) => tf.tensor(x.data, x.shape, x.dtype ?? 'float32');

/** Values of f, and the gradients of sum(f · r) wrt the float inputs listed in `wrt`, on one backend. */
async function evaluate(backend: Backend, f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: Input[], wrt: number[] = []) {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const xs = inputs.map(toTensor);
    const value = f(...xs);
    const r = toTensor(weightsFor(value.shape));
    const grads = wrt.length
      ? tf.grads((...ys: tf.Tensor[]) => tf.sum(tf.mul(f(...xs.map((x, i) => (wrt.includes(i) ? ys[wrt.indexOf(i)] : x))), r)))(
          wrt.map((i) => xs[i]),
        )
      : [];
    return { shape: value.shape, value: [...value.dataSync()], grads: grads.map((g) => [...g.dataSync()]) };
  });
}

function maxRelDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  const scale = b.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-6);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0) / scale;
}

/** f on wasm (our kernels) equals f on cpu (stock ops), values and gradients, within `tol` relative to the largest entry. */
async function expectParity(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: Input[], wrt: number[] = [], tol = 1e-5) {
  const cpu = await evaluate('cpu', f, inputs, wrt);
  const wasm = await evaluate('wasm', f, inputs, wrt);
  expect(wasm.shape).toEqual(cpu.shape);
  expect(maxRelDiff(wasm.value, cpu.value)).toBeLessThan(tol);
  cpu.grads.forEach((g, i) => expect(maxRelDiff(wasm.grads[i], g)).toBeLessThan(tol));
}

/** The wasm gradient of sum(f · r) wrt input `index` against central differences at a few entries (float32: loose). */
async function expectFiniteDifferences(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: Input[], index: number) {
  await tf.setBackend('wasm');
  const out = tf.tidy(() => f(...inputs.map(toTensor)));
  const r = weightsFor(out.shape);
  out.dispose();
  const loss = (xs: Input[]) => tf.tidy(() => tf.sum(tf.mul(f(...xs.map(toTensor)), tf.tensor(r.data, r.shape))).dataSync()[0]);
  const grad = tf.tidy(() => {
    const xs = inputs.map(toTensor);
    const g = tf.grad((y: tf.Tensor) => tf.sum(tf.mul(f(...xs.map((x, i) => (i === index ? y : x))), tf.tensor(r.data, r.shape))))(
      xs[index],
    );
    return [...g.dataSync()];
  });
  const h = 1e-2;
  const scale = grad.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  for (const at of [0, 3, Math.floor(grad.length / 2), grad.length - 1]) {
    const shifted = (d: number) => inputs.map((x, i) => (i === index ? { ...x, data: x.data.map((v, j) => (j === at ? v + d : v)) } : x));
    const numeric = (loss(shifted(h)) - loss(shifted(-h))) / (2 * h);
    expect(Math.abs(numeric - grad[at]) / scale).toBeLessThan(2e-2);
  }
}

beforeAll(async () => {
  await initBackend('wasm');
});

afterAll(async () => {
  await tf.setBackend('wasm');
});

describe('replaced wasm kernels equal the stock ones on cpu', () => {
  // [label, a's shape, b's shape, transposeA, transposeB, gradients checked] (tfjs's matMul gradient does not
  // reduce a broadcast batch, on any backend: values only there).
  const products: [string, number[], number[], boolean, boolean, boolean?][] = [
    ['odd sizes', [5, 7], [7, 9], false, false],
    ['transposed A', [7, 5], [7, 9], true, false],
    ['transposed B', [5, 7], [9, 7], false, true],
    ['both transposed', [7, 5], [9, 7], true, true],
    ['batched, odd sizes', [3, 6, 11], [3, 11, 13], false, false],
    ['batched, transposed B', [3, 6, 11], [3, 13, 11], false, true],
    ['batched, transposed A', [3, 11, 6], [3, 11, 13], true, false],
    ['a single B broadcast over the batch', [3, 6, 11], [1, 11, 13], false, false, false],
    ['a single A broadcast over the batch', [1, 6, 11], [3, 11, 13], false, false, false],
    ['several cache blocks (k 300, n 530, m 70)', [70, 300], [300, 530], false, false],
    ['few rows by dot products (m 3, k 130)', [3, 130], [37, 130], false, true],
    ['few rows, k not a multiple of 4', [16, 7], [10, 7], false, true],
  ];
  for (const [label, sa, sb, ta, tb, withGrads = true] of products) {
    it(`BatchMatMul, ${label}: values${withGrads ? ' and gradients' : ''}`, async () => {
      await expectParity(
        (a, b) => tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, ta, tb),
        [random(sa), random(sb)],
        withGrads ? [0, 1] : [],
      );
    });
  }

  it('BatchMatMul with a zero-sized shared dimension gives zeros', async () => {
    await tf.setBackend('wasm');
    const out = tf.tidy(() => [...tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4])).dataSync()]);
    expect(out).toEqual(new Array(12).fill(0));
  });

  const perms: [number[], number[]][] = [
    [
      [5, 7],
      [1, 0],
    ],
    [
      [2, 5, 7],
      [0, 2, 1],
    ],
    [
      [3, 5, 2, 6],
      [0, 2, 1, 3],
    ],
    [
      [3, 1, 2, 6],
      [0, 2, 1, 3],
    ], // only a size-1 axis moves: a shared buffer
    [
      [2, 3, 4],
      [2, 0, 1],
    ], // a rotation: the stock kernel
    [
      [2, 3, 4, 5],
      [0, 3, 1, 2],
    ],
    [
      [33, 37],
      [1, 0],
    ], // larger than one 32 × 32 tile
  ];
  for (const [shape, perm] of perms) {
    it(`Transpose [${shape}] by [${perm}]: values and gradient`, async () => {
      await expectParity((x) => tf.transpose(x, perm), [random(shape)], [0]);
    });
  }

  it('Transpose of int32 values', async () => {
    const x = ints(
      Array.from({ length: 24 }, (_, i) => i),
      [2, 3, 4],
    );
    await expectParity((t) => tf.transpose(t, [0, 2, 1]), [x]);
  });

  it('adjacentSwap finds swaps of adjacent runs of axes and nothing else', () => {
    expect(adjacentSwap([5, 7], [1, 0])).toEqual([1, 5, 7, 1]);
    expect(adjacentSwap([2, 3, 4, 5], [0, 2, 1, 3])).toEqual([2, 3, 4, 5]);
    expect(adjacentSwap([2, 3, 4, 5], [0, 2, 3, 1])).toEqual([2, 3, 20, 1]);
    expect(adjacentSwap([2, 3, 4, 5], [2, 3, 0, 1])).toEqual([1, 6, 20, 1]);
    expect(adjacentSwap([2, 1, 4, 5], [0, 2, 1, 3])).toBeUndefined(); // identity once the size-1 axis is dropped
    expect(adjacentSwap([2, 3, 4], [2, 0, 1])).toEqual([1, 6, 4, 1]);
    expect(adjacentSwap([2, 3, 4], [1, 2, 0])).toEqual([1, 2, 12, 1]);
    expect(adjacentSwap([2, 3, 4, 5], [1, 0, 3, 2])).toBeUndefined(); // two swaps
  });

  const slices: [number[], number[], number[]][] = [
    [
      [2, 3, 4, 5],
      [0, 0, 0, 0],
      [-1, -1, -1, -1],
    ],
    [
      [2, 3, 4, 5],
      [1, 0, 0, 0],
      [1, -1, -1, -1],
    ],
    [
      [2, 3, 4, 5],
      [0, 1, 2, 0],
      [2, 2, 2, 5],
    ],
    [
      [2, 3, 4, 5],
      [0, 0, 0, 4],
      [2, 3, 4, 1],
    ],
    [
      [2, 3, 4, 5],
      [1, 2, 3, 1],
      [1, 1, 1, 3],
    ],
    [
      [6, 9],
      [2, 3],
      [3, 4],
    ],
  ];
  for (const [shape, begin, size] of slices) {
    it(`Slice of [${shape}] at [${begin}] size [${size}]: values and gradient`, async () => {
      await expectParity((x) => tf.slice(x, begin, size), [random(shape)], [0]);
    });
  }

  it('SplitV into unequal parts along the middle and last axes: values and gradient', async () => {
    await expectParity((x) => tf.concat(tf.split(x, [2, 5, 1], 1), 1), [random([3, 8, 5])], [0]);
    await expectParity((x) => tf.split(x, [6, 3, 3], 2)[1], [random([2, 4, 12])], [0]);
  });

  // [shape, axes, keepDims]: leading axes take our column sums; the others fall back to the stock kernel.
  const sums: [number[], number[], boolean][] = [
    [[37, 11], [0], false],
    [[4, 9, 6], [0, 1], false],
    [[4, 9, 6], [1, 0], true],
    [[4, 9, 6], [1], false],
    [[4, 9, 6], [2], true],
    [[5, 7], [0, 1], false],
    [[0, 3], [0], false],
  ];
  for (const [shape, axes, keepDims] of sums) {
    it(`Sum of [${shape}] over [${axes}]${keepDims ? ', dims kept' : ''}: values and gradient`, async () => {
      await expectParity((x) => tf.sum(x, axes, keepDims), [random(shape)], [0]);
    });
  }

  it('Sum of int32 over a leading axis stays exact (the stock kernel)', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor2d(
      [
        [2147483, 1],
        [2147483, 2],
      ],
      undefined,
      'int32',
    );
    const y = tf.sum(x, 0);
    expect(y.dtype).toBe('int32');
    expect([...(await y.data())]).toEqual([4294966, 3]);
    tf.dispose([x, y]);
  });

  it('Identity shares the buffer and a clone stays valid after the original is disposed', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor([1, 2, 3]);
    const y = tf.clone(x);
    x.dispose();
    expect([...y.dataSync()]).toEqual([1, 2, 3]);
    y.dispose();
  });

  it('gather of rows with repeated indices, and its gradient (the scatter-add)', async () => {
    const table = random([6, 5]);
    const idx = ints([3, 0, 3, 5, 3], [5]);
    await expectParity((t, i) => gather(t as tf.Tensor2D, i), [table, idx], [0]);
    await expectParity((t, i) => tf.gather(t, i), [table, idx]);
  });

  it('gather refuses an index outside the table', async () => {
    await tf.setBackend('wasm');
    expect(() => tf.tidy(() => tf.gather(tf.zeros([4, 2]), tf.tensor1d([1, 4], 'int32')))).toThrow(
      /index 4 at position 1 is outside \[0, 3\]/,
    );
  });
});

describe('fused ops equal their stock-op definitions on cpu, with gradients', () => {
  it('rotary embedding', async () => {
    const angles = (t: tf.Tensor) =>
      tf.tidy(() => ropeCosSin(ropeInvFreq({ headDim: 6, ropeTheta: 10000, ropeScaling: undefined }), t as tf.Tensor2D));
    const f = (x: tf.Tensor, pos: tf.Tensor) => {
      const { cos, sin } = angles(pos);
      return rotary(x as tf.Tensor4D, cos, sin);
    };
    await expectParity(f, [random([2, 3, 5, 6]), ints([0, 1, 2, 3, 4, 7, 8, 9, 1000, 70000], [2, 5])], [0]);
  });

  it('RMSNorm (x and weight), with a width that is not a multiple of 4', async () => {
    await expectParity((x, w) => rmsNorm(x, w, 1e-5), [random([2, 3, 10]), random([10])], [0, 1]);
  });

  it('SwiGLU', async () => {
    await expectParity((g, u) => swiglu(g, u), [random([3, 7], 3), random([3, 7])], [0, 1]);
  });

  it('LayerNorm (x, weight and bias), with a width that is not a multiple of 4', async () => {
    await expectParity((x, w, b) => layerNorm(x, w, b, 1e-5), [random([2, 3, 10], 3), random([10]), random([10])], [0, 1, 2]);
  });

  it('GELU (tanh), out to where tanh saturates', async () => {
    const x = random([5, 7], 4);
    x.data.splice(0, 6, 0, 1e-4, -1e-4, 12, -12, 40);
    await expectParity((t) => geluTanh(t), [x], [0]);
  });

  for (const [label, q, kv, bias] of [
    ['grouped heads, one bias for every row', [2, 4, 5, 6], [2, 2, 5, 6], [1, 1, 5, 5]],
    ['cached keys (3 queries over 7 keys), a bias per row', [2, 2, 3, 8], [2, 2, 7, 8], [2, 1, 3, 7]],
  ] as const) {
    it(`attention: ${label}`, async () => {
      const mask = random([...bias]).data.map((v) => (v > 1.2 ? -1e9 : 0)); // some keys masked
      await expectParity(
        (a, b, c, m) => attention(a as tf.Tensor4D, b as tf.Tensor4D, c as tf.Tensor4D, m as tf.Tensor4D, 0.3),
        [random([...q]), random([...kv]), random([...kv]), { data: mask, shape: [...bias] }],
        [0, 1, 2],
      );
    });
  }

  it('attention over blocks of query rows that see only their first keys (causal, packed STAR rows, padding)', async () => {
    // 37 queries = two full blocks of 16 rows and a partial one. Batch 0: causal. Batch 1: a packed STAR row, 30
    // causal tokens, then 5 one-token segments that each see the first 10 + i tokens and themselves, then 2
    // padding rows that see nothing (uniform softmax over every key).
    const t = 37;
    const data: number[] = [];
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < t; i++)
        for (let j = 0; j < t; j++) {
          const sees = b === 0 ? j <= i : i < 30 ? j <= i : i < 35 ? j < 10 + i - 30 || j === i : false;
          data.push(sees ? 0 : -1e9);
        }
    await expectParity(
      (a, k, v, m) => attention(a as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, m as tf.Tensor4D, 0.3),
      [random([2, 4, t, 8]), random([2, 2, t, 8]), random([2, 2, t, 8]), { data, shape: [2, 1, t, t] }],
      [0, 1, 2],
    );
  });

  it('label log-probs and their gradient', async () => {
    const labels = ints([0, 6, 3], [3]);
    await expectParity((z, l) => labelLogProb(z as tf.Tensor2D, l as tf.Tensor1D), [random([3, 7], 4), labels], [0]);
    await expectParity(
      (z, l, dy) => labelLogProbGrad(z as tf.Tensor2D, l as tf.Tensor1D, dy as tf.Tensor1D),
      [random([3, 7], 4), labels, random([3])],
    );
  });

  it('AdamW update', async () => {
    const step = { gradScale: 0.5, lr: 1e-2, beta1: 0.9, beta2: 0.95, correction1: 0.19, correction2: 0.0975, eps: 1e-8, decay: 0.1 };
    for (const output of [0, 1, 2]) {
      await expectParity(
        (p, m, v, g) => adamWUpdate(p, m, v, g, step)[output],
        [random([5, 3]), random([5, 3]), { ...random([5, 3]), data: random([5, 3]).data.map((x) => x * x) }, random([5, 3])],
      );
    }
  });

  it('attention bias, position ids and rotary angles from a mask', async () => {
    const mask = [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1];
    for (const dtype of ['int32', 'float32'] as const) {
      const m: Input = { data: mask, shape: [2, 6], dtype };
      await expectParity((t) => attentionBias(t as tf.Tensor2D, 2, 4, 2), [m]);
      await expectParity((t) => attentionBias(t as tf.Tensor2D, 2, 4, 2, 3), [m]); // a sliding window of 3
      await expectParity((t) => defaultPositions(t as tf.Tensor2D, 2, 4, 2), [m]);
    }
    await expectParity(() => attentionBias(undefined, 2, 3, 0), []);
    const inv = ropeInvFreq({ headDim: 8, ropeTheta: 500000, ropeScaling: undefined });
    for (const part of ['cos', 'sin'] as const)
      await expectParity((p) => ropeCosSin(inv, p as tf.Tensor2D)[part], [ints([0, 1, 5, 127, 4095, 131071], [2, 3])], [], 1e-6);
  });
});

describe('fused ops: gradients against central finite differences on wasm', () => {
  it('attention (q, k, v)', async () => {
    const inputs = [random([1, 2, 4, 4]), random([1, 1, 4, 4]), random([1, 1, 4, 4]), { data: new Array(16).fill(0), shape: [1, 1, 4, 4] }];
    const f = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, b: tf.Tensor) =>
      attention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, b as tf.Tensor4D, 0.5);
    for (const i of [0, 1, 2]) await expectFiniteDifferences(f, inputs, i);
  });

  it('RMSNorm, SwiGLU, LayerNorm, GELU, label log-probs', async () => {
    const x = random([3, 8]);
    const w = random([8]);
    await expectFiniteDifferences((a, b) => rmsNorm(a, b, 1e-5), [x, w], 0);
    await expectFiniteDifferences((a, b) => rmsNorm(a, b, 1e-5), [x, w], 1);
    await expectFiniteDifferences((g, u) => swiglu(g, u), [random([3, 8]), random([3, 8])], 0);
    await expectFiniteDifferences((g, u) => swiglu(g, u), [random([3, 8]), random([3, 8])], 1);
    await expectFiniteDifferences((a, b, c) => layerNorm(a, b, c, 1e-5), [x, w, random([8])], 0);
    await expectFiniteDifferences((a, b, c) => layerNorm(a, b, c, 1e-5), [x, w, random([8])], 1);
    await expectFiniteDifferences((a, b, c) => layerNorm(a, b, c, 1e-5), [x, w, random([8])], 2);
    await expectFiniteDifferences((a) => geluTanh(a), [random([3, 8], 2)], 0);
    await expectFiniteDifferences((z, l) => labelLogProb(z as tf.Tensor2D, l as tf.Tensor1D), [random([3, 9], 2), ints([1, 8, 0], [3])], 0);
  });
});

describe('fused ops free what they allocate', () => {
  it('keeps the tensor count across forward and backward passes', async () => {
    await tf.setBackend('wasm');
    const q = tf.randomNormal([2, 4, 5, 8]) as tf.Tensor4D;
    const kv = tf.randomNormal([2, 2, 5, 8]) as tf.Tensor4D;
    const bias = tf.zeros([1, 1, 5, 5]) as tf.Tensor4D;
    const w = tf.ones([32]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      tf.tidy(() => {
        const grads = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(
            swiglu(rmsNorm(attention(a as tf.Tensor4D, b as tf.Tensor4D, b as tf.Tensor4D, bias, 0.35), w, 1e-5), a.reshape([2, 5, 32])),
          ),
        )([q, kv]);
        grads.forEach((g) => g.dataSync());
      });
    }
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([q, kv, bias, w]);
  });
});

describe('the two builds of the kernels', () => {
  /** C = A · B through a build's own matmul export, on a memory of its own. */
  function product(build: string, a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
    const bytes = readFileSync(new URL(`../../engine/tensor/kernels/${build}`, import.meta.url));
    const memory = new WebAssembly.Memory({ initial: 64 });
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports as Record<
      string,
      CallableFunction
    >;
    const heap = new Float32Array(memory.buffer);
    const [ao, bo, co] = [0, m * k, m * k + k * n];
    const scratch = co + m * n;
    expect(scratch + (exports.matmul_scratch() as number)).toBeLessThan(heap.length);
    heap.set(a, ao);
    heap.set(b, bo);
    exports.matmul(4 * ao, 4 * bo, 4 * co, 1, m, k, n, 0, 0, 0, 0, 4 * scratch);
    return heap.slice(co, co + m * n);
  }

  it('runs the relaxed-SIMD build where V8 validates it (Node 20 with its flag), the plain one on request', () => {
    expect(kernelBuild()).toBe('kernels-relaxed.wasm');
    const saved = process.env.STAR_DSS_RELAXED_SIMD;
    process.env.STAR_DSS_RELAXED_SIMD = '0';
    try {
      expect(kernelBuild()).toBe('kernels.wasm');
    } finally {
      if (saved === undefined) delete process.env.STAR_DSS_RELAXED_SIMD;
      else process.env.STAR_DSS_RELAXED_SIMD = saved;
    }
  });

  it('their products agree with a double-precision product (k 300: several multiply-adds per output)', () => {
    const [m, k, n] = [37, 300, 45];
    const rng = new Rng('builds');
    const a = Float32Array.from({ length: m * k }, () => rng.normal());
    const b = Float32Array.from({ length: k * n }, () => rng.normal());
    const exact = Array.from({ length: m * n }, (_, i) => {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[Math.floor(i / n) * k + p] * b[p * n + (i % n)];
      return sum;
    });
    for (const build of ['kernels.wasm', 'kernels-relaxed.wasm']) {
      const c = product(build, a, b, m, k, n);
      const worst = Math.max(...exact.map((e, i) => Math.abs(c[i] - e)));
      expect(worst, build).toBeLessThan(1e-4);
      expect(worst, build).toBeGreaterThan(0); // float32 arithmetic: not the double product itself
    }
  });
});
