// The wasm-safe ops of harness/tensor against the stock tfjs ops on the stock cpu backend (values and
// gradients), and a whole tiny model's loss and gradients on wasm against cpu. Inputs are plain arrays;
// tensors and models are built fresh after every backend switch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf, gather, matMul, oneHot } from '../../../engine/tensor/index.ts';
import { Rng } from '../../../engine/random.ts';
import { makeConfig, parseConfig } from '../../../engine/model/config.ts';
import { createModel } from '../../../engine/model/transformer.ts';
import type { Family } from '../../../engine/model/types.ts';
import { randomWeights } from './reference.ts';

type Backend = 'cpu' | 'wasm';

interface Out {
  value: number[];
  grads: number[][];
}

async function on(backend: Backend, fn: () => Out): Promise<Out> {
  await tf.setBackend(backend);
  expect(tf.getBackend()).toBe(backend);
  return fn();
}

function random(rng: Rng, size: number): number[] {
  return Array.from({ length: size }, () => rng.normal());
}

/** value and gradients of sum(f(inputs) · r) with respect to every input. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: { data: number[]; shape: number[] }[], r: number[]): Out {
  return tf.tidy(() => {
    const xs = inputs.map((x) => tf.tensor(x.data, x.shape, 'float32'));
    const value = f(...xs);
    const weights = tf.tensor(r, value.shape);
    const grads = tf.grads((...ys: tf.Tensor[]) => tf.sum(tf.mul(f(...ys), weights)))(xs);
    return { value: [...value.dataSync()], grads: grads.map((g) => [...g.dataSync()]) };
  });
}

function maxAbsDiff(a: number[], b: number[]): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

function expectSame(actual: Out, expected: Out, tol: number): void {
  expect(maxAbsDiff(actual.value, expected.value)).toBeLessThan(tol);
  expect(actual.grads.length).toBe(expected.grads.length);
  actual.grads.forEach((g, i) => expect(maxAbsDiff(g, expected.grads[i])).toBeLessThan(tol));
}

beforeAll(async () => {
  await initBackend('wasm');
});

afterAll(async () => {
  await tf.setBackend('wasm');
});

describe('wasm-safe ops agree with the stock ops on cpu', () => {
  it('gather: values and the gradient with duplicate indices', async () => {
    const rng = new Rng(1);
    const table = { data: random(rng, 12 * 5), shape: [12, 5] };
    const indices = [
      [3, 7, 3],
      [0, 3, 11],
    ];
    const r = random(rng, 2 * 3 * 5);
    const ours = (t: tf.Tensor) => gather(t as tf.Tensor2D, tf.tensor2d(indices, undefined, 'int32'));
    const stock = (t: tf.Tensor) => tf.gather(t, tf.tensor2d(indices, undefined, 'int32'));
    const expected = await on('cpu', () => valueAndGrads(stock, [table], r));
    // Row 3 is used three times: its gradient is the sum of three upstream rows.
    for (let j = 0; j < 5; j++) expect(expected.grads[0][3 * 5 + j]).toBeCloseTo(r[j] + r[2 * 5 + j] + r[4 * 5 + j], 5);
    expectSame(await on('wasm', () => valueAndGrads(ours, [table], r)), expected, 1e-5);
    expectSame(await on('cpu', () => valueAndGrads(ours, [table], r)), expected, 1e-5);
  });

  it('oneHot: float one-hot values, and gradients through a product with it', async () => {
    const rng = new Rng(2);
    const idx = [0, 4, 2, 4, 5];
    const w = { data: random(rng, 6 * 3), shape: [6, 3] };
    const r = random(rng, 5 * 3);
    const use = (encode: (i: tf.Tensor) => tf.Tensor) => (x: tf.Tensor) =>
      tf.matMul(encode(tf.tensor1d(idx, 'int32')) as tf.Tensor2D, x as tf.Tensor2D);
    const expected = await on('cpu', () =>
      valueAndGrads(
        use((i) => tf.oneHot(i as tf.Tensor1D, 6).cast('float32')),
        [w],
        r,
      ),
    );
    const wasm = await on('wasm', () => {
      const enc = tf.tidy(() => {
        const t = oneHot(tf.tensor1d(idx, 'int32'), 6);
        expect(t.dtype).toBe('float32');
        return t.arraySync() as number[][];
      });
      expect(enc).toEqual(idx.map((i) => Array.from({ length: 6 }, (_, j) => (i === j ? 1 : 0))));
      return valueAndGrads(
        use((i) => oneHot(i, 6)),
        [w],
        r,
      );
    });
    expectSame(wasm, expected, 1e-5);
  });

  for (const rank of [2, 3] as const) {
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      it(`matMul rank ${rank}, transposeA=${ta}, transposeB=${tb}: values and gradients`, async () => {
        const rng = new Rng(10 * rank + (ta ? 2 : 0) + (tb ? 1 : 0));
        const [m, k, n] = [3, 4, 5];
        const batch = rank === 3 ? [2] : [];
        const tensor = (shape: number[]) => ({
          data: random(
            rng,
            shape.reduce((x, y) => x * y, 1),
          ),
          shape,
        });
        const a = tensor([...batch, ...(ta ? [k, m] : [m, k])]);
        const b = tensor([...batch, ...(tb ? [n, k] : [k, n])]);
        const r = random(rng, (rank === 3 ? 2 : 1) * m * n);
        const ours = (x: tf.Tensor, y: tf.Tensor) => matMul(x as tf.Tensor3D, y as tf.Tensor3D, ta, tb);
        const stock = (x: tf.Tensor, y: tf.Tensor) => tf.matMul(x as tf.Tensor3D, y as tf.Tensor3D, ta, tb);
        const expected = await on('cpu', () => valueAndGrads(stock, [a, b], r));
        expectSame(await on('wasm', () => valueAndGrads(ours, [a, b], r)), expected, 1e-5);
        expectSame(await on('cpu', () => valueAndGrads(ours, [a, b], r)), expected, 1e-5);
      });
    }
  }
});

const sizes = {
  llama: {
    hidden: 16,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 24,
    vocab: 50,
    maxPositions: 32,
    ropeScaling: { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 },
  },
  qwen2: { hidden: 16, layers: 2, heads: 4, kvHeads: 2, intermediate: 24, vocab: 50, maxPositions: 32, tieWordEmbeddings: true },
  gpt2: { hidden: 16, layers: 2, heads: 2, vocab: 50, maxPositions: 16 },
} as const;

describe.each(['llama', 'qwen2', 'gpt2'] as const)('%s: whole-model loss and gradients, wasm vs cpu', (family: Family) => {
  it('agree within 1e-4 relative', async () => {
    const config = parseConfig(makeConfig(family, sizes[family]));
    const weights = randomWeights(config, 5);
    const ids = [
      [4, 9, 33, 2, 17, 8],
      [0, 0, 21, 9, 9, 40],
    ];
    const mask = [
      [1, 1, 1, 1, 1, 1],
      [0, 0, 1, 1, 1, 1],
    ];
    const labels = [
      [9, 33, 2, 17, 8, 1],
      [-1, -1, 9, 9, 40, 3],
    ];
    const run = (): Out =>
      tf.tidy(() => {
        const tensors = new Map([...weights].map(([name, t]) => [name, tf.tensor(Float32Array.from(t.data), t.shape)]));
        const model = createModel(config, { weights: tensors });
        const names = [...model.params.keys()];
        const { value, grads } = tf.variableGrads(() => {
          const { logits } = model.forward(tf.tensor2d(ids, undefined, 'int32'), { attentionMask: tf.tensor2d(mask, undefined, 'int32') });
          const valid: number[] = labels.flat().map((l) => (l >= 0 ? 1 : 0));
          const picked = tf.sum(
            tf.mul(
              tf.logSoftmax(logits).reshape([-1, config.vocabSize]),
              oneHot(
                tf.tensor1d(
                  labels.flat().map((l) => Math.max(l, 0)),
                  'int32',
                ),
                config.vocabSize,
              ),
            ),
            1,
          );
          return tf.div(
            tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(valid)))),
            valid.reduce((a, b) => a + b, 0),
          ) as tf.Scalar;
        }, [...model.params.values()]);
        const out = {
          value: [value.dataSync()[0]],
          grads: names.map((n) => [...grads[(model.params.get(n) as tf.Variable).name].dataSync()]),
        };
        model.dispose();
        return out;
      });
    const cpu = await on('cpu', run);
    const wasm = await on('wasm', run);
    expect(Math.abs(wasm.value[0] - cpu.value[0]) / Math.abs(cpu.value[0])).toBeLessThan(1e-4);
    expect(cpu.grads.length).toBe(wasm.grads.length);
    cpu.grads.forEach((g, i) => {
      const scale = Math.max(...g.map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      expect(maxAbsDiff(wasm.grads[i], g) / scale).toBeLessThan(1e-4);
    });
  });
});
