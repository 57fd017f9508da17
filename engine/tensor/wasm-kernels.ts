// Kernels of our own for the wasm backend (docs/architecture.md §6, docs/performance.md), compiled from
// kernels/kernels.c to WebAssembly SIMD (kernels/build.sh; the built kernels.wasm is committed). The module
// imports tfjs-backend-wasm's memory, so a kernel reads and writes tensors where they lie in that heap.
// installWasmKernels() replaces seven stock wasm kernels:
// - BatchMatMul: tfjs's is fast (XNNPACK) only for one untransposed 2-D product and runs every batched or
//   transposed product in a scalar loop at 1 to 2 GFLOP/s; ours runs every float32 product, transposed or
//   batched, through one packed SIMD kernel, so the matMul gradient needs no transposed copies.
// - Transpose: a swap of two adjacent groups of axes (2-D transposes, [b, t, h, d] → [b, h, t, d]) in 4 × 4
//   register blocks, and no copy at all when only axes of size 1 move (one decoding step's [b, 1, h, d]); any
//   other permutation goes to the stock kernel.
// - Identity: shares the input's buffer (as the cpu backend does) instead of copying it; tfjs clones every
//   tensor a gradient saves through Identity, so the stock kernel copied each saved activation.
// - GatherV2 of rows (axis 0): a row copy per index, with the indices checked.
// - Slice: copies runs in place (the stock kernel first copied the whole input out of the heap).
// - SplitV: our Slice for each part.
// - Sum over leading axes (a bias's gradient): column sums in one pass (the stock kernel transposes first).
// and adds fused kernels (names in FUSED) that ops.ts uses on wasm, each with its gradient, in place of a chain
// of stock ops: the rotary embedding, RMSNorm, SwiGLU, LayerNorm, GELU (tanh), the label log-prob of a row of
// logits, the embedding gradient (a scatter-add of rows), one AdamW step of a parameter, a layer's attention
// (scores, softmax and the weighted values per head, with its gradient recomputing the probabilities), and what
// a forward pass derives from its mask (the attention bias, position ids, rotary angles).
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

/** Kernel names of the fused ops (registered for wasm only; ops.ts falls back to stock ops elsewhere). */
export const FUSED = {
  rotary: 'StarDssRotary',
  rmsNorm: 'StarDssRmsNorm',
  rmsNormGrad: 'StarDssRmsNormGrad',
  swiglu: 'StarDssSwiGLU',
  swigluGrad: 'StarDssSwiGLUGrad',
  layerNorm: 'StarDssLayerNorm',
  layerNormGrad: 'StarDssLayerNormGrad',
  geluTanh: 'StarDssGeluTanh',
  geluTanhGrad: 'StarDssGeluTanhGrad',
  labelLogProb: 'StarDssLabelLogProb',
  labelLogProbGrad: 'StarDssLabelLogProbGrad',
  scatterAddRows: 'StarDssScatterAddRows',
  adamW: 'StarDssAdamW',
  attention: 'StarDssAttention',
  attentionGrad: 'StarDssAttentionGrad',
  attentionBias: 'StarDssAttentionBias',
  maskPositions: 'StarDssMaskPositions',
  ropeAngles: 'StarDssRopeAngles',
} as const;

interface Exports {
  matmul(
    a: number,
    b: number,
    c: number,
    batch: number,
    m: number,
    k: number,
    n: number,
    ta: number,
    tb: number,
    sa: number,
    sb: number,
    scratch: number,
  ): void;
  matmul_scratch(): number;
  swap_axes(x: number, y: number, na: number, nb: number, nc: number, nd: number): void;
  rope(x: number, cos: number, sin: number, y: number, na: number, nh: number, nt: number, nd: number, sign: number): void;
  rms_norm(x: number, w: number, y: number, rows: number, d: number, eps: number): void;
  rms_norm_grad(dy: number, x: number, w: number, dx: number, dw: number, rows: number, d: number, eps: number): void;
  swiglu(g: number, u: number, y: number, n: number): void;
  swiglu_grad(dy: number, g: number, u: number, dg: number, du: number, n: number): void;
  layer_norm(x: number, w: number, b: number, y: number, rows: number, d: number, eps: number): void;
  layer_norm_grad(dy: number, x: number, w: number, dx: number, dw: number, db: number, rows: number, d: number, eps: number): void;
  gelu_tanh(x: number, y: number, n: number): void;
  gelu_tanh_grad(dy: number, x: number, dx: number, n: number): void;
  sum_rows(x: number, y: number, rows: number, cols: number): void;
  label_logprob(z: number, labels: number, out: number, rows: number, vocab: number): void;
  label_logprob_grad(z: number, labels: number, dy: number, dz: number, rows: number, vocab: number): void;
  adamw(
    p: number,
    m: number,
    v: number,
    g: number,
    p2: number,
    m2: number,
    v2: number,
    n: number,
    gscale: number,
    lr: number,
    b1: number,
    b2: number,
    c1: number,
    c2: number,
    eps: number,
    decay: number,
  ): void;
  gather_rows(table: number, idx: number, out: number, n: number, d: number): void;
  attention_scratch(nt: number, ns: number): number;
  attention_bias(mask: number, isInt: number, bias: number, nrows: number, time: number, past: number, window: number): void;
  mask_positions(mask: number, isInt: number, pos: number, nb: number, total: number, time: number): void;
  rope_angles(pos: number, inv: number, cos: number, sin: number, n: number, half: number): void;
  attention(q: number, k: number, v: number, bias: number, out: number, ...sizes: number[]): void;
  attention_grad(dout: number, q: number, k: number, v: number, bias: number, dq: number, dk: number, dv: number, ...sizes: number[]): void;
  scatter_add_rows(dy: number, idx: number, out: number, n: number, rows: number, d: number): void;
}

/** The parts of tfjs-backend-wasm's BackendWasm the kernels use (it exports no type for them). */
interface WasmBackend {
  wasm: { asm: { memory: WebAssembly.Memory }; HEAPU8: Uint8Array; _malloc(bytes: number): number; _free(offset: number): void };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  incRef(dataId: object): void;
}

interface Instance {
  exports: Exports;
  backend: WasmBackend;
  /** Scratch floats in tfjs's heap (packed blocks of a product, attention's probabilities), grown on demand. */
  scratch: { offset: number; floats: number };
}

let instance: Instance | undefined;
let compiled: WebAssembly.Module | undefined;

function readKernels(name: string): Uint8Array<ArrayBuffer> {
  const file = new URL(`./kernels/${name}`, import.meta.url);
  try {
    return new Uint8Array(readFileSync(file));
  } catch (error) {
    throw new Error(
      `wasm kernels: cannot read ${file.pathname} (${(error as NodeJS.ErrnoException).code}): it is built by engine/tensor/kernels/build.sh and must sit beside wasm-kernels.ts (a bundle must ship it)`,
    );
  }
}

/**
 * Which build runs: kernels-relaxed.wasm (the matrix products' multiply-adds fused, about 10% faster where the
 * CPU has FMA) when V8 validates relaxed SIMD, which Node 20 does only with its flag set before compiling;
 * kernels.wasm otherwise, or with STAR_DSS_RELAXED_SIMD=0 (products rounded as two operations, the same on
 * every CPU).
 */
export function kernelBuild(): 'kernels.wasm' | 'kernels-relaxed.wasm' {
  if (process.env.STAR_DSS_RELAXED_SIMD === '0') return 'kernels.wasm';
  const relaxed = readKernels('kernels-relaxed.wasm');
  if (!WebAssembly.validate(relaxed)) v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return WebAssembly.validate(relaxed) ? 'kernels-relaxed.wasm' : 'kernels.wasm';
}

/** The module, instantiated on tfjs's heap at the first kernel call (the backend exists only by then). */
function kernels(backend: WasmBackend): Instance {
  if (instance?.backend === backend) return instance;
  compiled ??= new WebAssembly.Module(readKernels(kernelBuild()));
  const wasm = new WebAssembly.Instance(compiled, { env: { memory: backend.wasm.asm.memory } });
  instance = { exports: wasm.exports as unknown as Exports, backend, scratch: { offset: 0, floats: 0 } };
  return instance;
}

/** Scratch floats kept between calls at most (16 MiB); a kernel that needs more gets its own, freed after it. */
const KEPT_SCRATCH = 1 << 22;

function malloc(k: Instance, floats: number): number {
  const at = k.backend.wasm._malloc(4 * floats) >>> 0;
  if (at === 0)
    throw new Error(`wasm kernels: could not allocate ${((4 * floats) / 2 ** 20).toFixed(0)} MiB of scratch space (the wasm heap is full)`);
  return at;
}

/** Runs `fn` with `floats` scratch floats in tfjs's heap. */
function withScratch<T>(k: Instance, floats: number, fn: (at: number) => T): T {
  if (floats > KEPT_SCRATCH) {
    const at = malloc(k, floats);
    try {
      return fn(at);
    } finally {
      k.backend.wasm._free(at);
    }
  }
  if (k.scratch.floats < floats) {
    if (k.scratch.offset) k.backend.wasm._free(k.scratch.offset);
    k.scratch.offset = 0;
    k.scratch.offset = malloc(k, floats);
    k.scratch.floats = floats;
  }
  return fn(k.scratch.offset);
}

const offset = (backend: WasmBackend, t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).memoryOffset;
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function batchMatMul(stock: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = size(outerA);
    const batchB = size(outerB);
    const sameOuter = outerA.length === outerB.length && outerA.every((d, i) => d === outerB[i]);
    // Broadcasting other than "one side has a single matrix" is left to the stock kernel, as are other dtypes.
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || !(sameOuter || batchA === 1 || batchB === 1))
      return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const [ra, ca] = a.shape.slice(-2);
    const [rb, cb] = b.shape.slice(-2);
    const m = transposeA ? ca : ra;
    const k = transposeA ? ra : ca;
    const n = transposeB ? rb : cb;
    if ((transposeB ? cb : rb) !== k)
      throw new Error(`matMul: inner dimensions ${k} and ${transposeB ? cb : rb} of shapes [${a.shape}] and [${b.shape}] differ`);
    const outer = batchA >= batchB ? outerA : outerB;
    const batch = Math.max(batchA, batchB);
    const backend = args.backend as WasmBackend;
    const out = backend.makeOutput([...outer, m, n], 'float32');
    if (batch * m * n === 0) return out;
    const ks = kernels(backend);
    const [ta, tb] = [transposeA ? 1 : 0, transposeB ? 1 : 0];
    const [sa, sb] = [batchA === 1 ? 0 : m * k, batchB === 1 ? 0 : k * n];
    withScratch(ks, ks.exports.matmul_scratch(), (work) =>
      ks.exports.matmul(offset(backend, a), offset(backend, b), offset(backend, out), batch, m, k, n, ta, tb, sa, sb, work),
    );
    return out;
  };
}

/**
 * [na, nb, nc, nd] when `perm` swaps two adjacent runs of axes (the rest in place), after dropping axes of
 * size 1; undefined for any other permutation.
 */
export function adjacentSwap(shape: number[], perm: number[]): [number, number, number, number] | undefined {
  const kept = perm.filter((p) => shape[p] !== 1);
  const rank = new Map([...kept].sort((x, y) => x - y).map((p, i) => [p, i]));
  const p = kept.map((x) => rank.get(x) as number);
  const dims = [...kept].sort((x, y) => x - y).map((x) => shape[x]);
  let i = 0;
  while (i < p.length && p[i] === i) i++;
  if (i === p.length) return undefined; // identity
  // Output axes i.. start with the second run (input axes j..k-1), then the first (i..j-1).
  const j = p[i];
  let k = j;
  let at = i;
  while (at < p.length && p[at] === k) {
    at++;
    k++;
  }
  for (let q = i; q < j; q++, at++) if (p[at] !== q) return undefined;
  for (; at < p.length; at++) if (p[at] !== at) return undefined;
  const prod = (from: number, to: number) => size(dims.slice(from, to));
  return [prod(0, i), prod(i, j), prod(j, k), prod(k, dims.length)];
}

function transpose(stock: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { perm } = args.attrs as { perm: number[] };
    const backend = args.backend as WasmBackend;
    // Moving only axes of size 1 moves no data: share the buffer, as a reshape does.
    const moved = perm.filter((p) => x.shape[p] !== 1);
    if (x.dtype !== 'string' && moved.every((p, i) => i === 0 || p > moved[i - 1])) {
      backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: perm.map((p) => x.shape[p]), dtype: x.dtype };
    }
    // The kernel moves 4-byte elements: float32 and int32 (bool is 1 byte, string is not in the heap).
    const swap = x.dtype === 'float32' || x.dtype === 'int32' ? adjacentSwap(x.shape, perm) : undefined;
    if (!swap) return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const out = backend.makeOutput(
      perm.map((p) => x.shape[p]),
      x.dtype,
    );
    if (size(x.shape) > 0) kernels(backend).exports.swap_axes(offset(backend, x), offset(backend, out), ...swap);
    return out;
  };
}

/** SplitV as our slices (the stock SplitV calls the stock Slice, which copies its whole input first). */
function splitV(ourSlice: (args: KernelArgs) => tf.TensorInfo) {
  return (args: KernelArgs): tf.TensorInfo[] => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { numOrSizeSplits, axis } = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
    const at = tf.util.parseAxisParam(axis, x.shape)[0];
    const begin = x.shape.map(() => 0);
    return tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, at).map((part) => {
      const size = [...x.shape];
      size[at] = part;
      const out = ourSlice({ ...args, attrs: { begin: [...begin], size } });
      begin[at] += part;
      return out;
    });
  };
}

/** Sum over leading axes of float32 (a bias's gradient) by column sums; every other reduction is the stock one's. */
function sum(stock: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as { axis: number | number[]; keepDims: boolean };
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    const leading = axes.length > 0 && axes.length < x.shape.length && axes.every((a, i) => a === i);
    if (x.dtype !== 'float32' || !leading || size(x.shape) === 0) return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const backend = args.backend as WasmBackend;
    const kept = x.shape.slice(axes.length);
    const out = backend.makeOutput(keepDims ? [...axes.map(() => 1), ...kept] : kept, 'float32');
    kernels(backend).exports.sum_rows(offset(backend, x), offset(backend, out), size(x.shape.slice(0, axes.length)), size(kept));
    return out;
  };
}

function identity(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  (args.backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** The int32 values of a tensor, read in place (to check indices before a kernel trusts them). */
function int32s(backend: WasmBackend, t: tf.TensorInfo): Int32Array {
  return new Int32Array(backend.wasm.HEAPU8.buffer, offset(backend, t), size(t.shape));
}

function checkIndices(backend: WasmBackend, indices: tf.TensorInfo, rows: number, what: string): void {
  const ids = int32s(backend, indices);
  for (let i = 0; i < ids.length; i++)
    if (!(ids[i] >= 0 && ids[i] < rows)) throw new Error(`${what}: index ${ids[i]} at position ${i} is outside [0, ${rows - 1}]`);
}

function gatherV2(stock: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
    const rowsAxis = axis === 0 || axis === -x.shape.length;
    if (
      !rowsAxis ||
      batchDims !== 0 ||
      indices.dtype !== 'int32' ||
      !(x.dtype === 'float32' || x.dtype === 'int32') ||
      x.shape.length === 0
    )
      return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const backend = args.backend as WasmBackend;
    const d = size(x.shape.slice(1));
    checkIndices(backend, indices, x.shape[0], 'gather');
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    const n = size(indices.shape);
    if (n * d > 0) kernels(backend).exports.gather_rows(offset(backend, x), offset(backend, indices), offset(backend, out), n, d);
    return out;
  };
}

/**
 * Slice, copying runs of the input in place: the stock kernel first copies the whole input out of the heap
 * (readSync), so taking one row of a large tensor cost as much as copying all of it.
 */
function slice(stock: tf.KernelFunc) {
  return (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') return stock(args as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const { begin, size: extent } = args.attrs as { begin: number[]; size: number[] };
    const [start, shape] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, extent);
    const backend = args.backend as WasmBackend;
    const out = backend.makeOutput(shape, x.dtype);
    if (size(shape) === 0) return out;
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    const rank = shape.length;
    // The innermost axes the slice takes whole are copied as one run, with the first partial axis above them.
    let axis = rank - 1;
    while (axis > 0 && start[axis] === 0 && shape[axis] === x.shape[axis]) axis--;
    const run = size(shape.slice(axis));
    const strides = tf.util.computeStrides(x.shape);
    const stride = (d: number) => (d < rank - 1 ? strides[d] : 1);
    const outer = size(shape.slice(0, axis));
    const index = new Array<number>(axis).fill(0);
    for (let o = 0; o < outer; o++) {
      let from = start[axis] * stride(axis);
      for (let d = 0; d < axis; d++) from += (start[d] + index[d]) * stride(d);
      dst.set(src.subarray(from, from + run), o * run);
      for (let d = axis - 1; d >= 0 && ++index[d] === shape[d]; d--) index[d] = 0;
    }
    return out;
  };
}

/** Fused kernels, each a function of the backend, its inputs and attributes. */
type Fused = (
  backend: WasmBackend,
  k: Instance,
  inputs: Record<string, tf.TensorInfo>,
  attrs: Record<string, number>,
) => tf.TensorInfo | tf.TensorInfo[];

/** [nb, nh, nkv, nt, ns, nd, nbias] of attention inputs q [nb, nh, nt, nd], k [nb, nkv, ns, nd], bias [nbias, 1, nt, ns]. */
function attentionSizes(q: tf.TensorInfo, k: tf.TensorInfo, bias: tf.TensorInfo): number[] {
  const [nb, nh, nt, nd] = q.shape;
  const [, nkv, ns] = k.shape;
  return [nb, nh, nkv, nt, ns, nd, bias.shape[0]];
}

const at = (backend: WasmBackend, t: tf.TensorInfo) => offset(backend, t);
const lastDim = (t: tf.TensorInfo) => t.shape[t.shape.length - 1];

const fused: Record<(typeof FUSED)[keyof typeof FUSED], Fused> = {
  // x [na, nh, nt, nd], cos and sin [na, 1, nt, nd] (shared by the nh heads), { sign }
  [FUSED.rotary]: (backend, ks, { x, cos, sin }, { sign }) => {
    const [na, nh, nt, nd] = x.shape;
    const out = backend.makeOutput(x.shape, 'float32');
    ks.exports.rope(at(backend, x), at(backend, cos), at(backend, sin), at(backend, out), na, nh, nt, nd, sign);
    return out;
  },
  // x [..., d], w [d], { eps }
  [FUSED.rmsNorm]: (backend, ks, { x, w }, { eps }) => {
    const d = lastDim(x);
    const out = backend.makeOutput(x.shape, 'float32');
    ks.exports.rms_norm(at(backend, x), at(backend, w), at(backend, out), size(x.shape) / d, d, eps);
    return out;
  },
  [FUSED.rmsNormGrad]: (backend, ks, { dy, x, w }, { eps }) => {
    const d = lastDim(x);
    const dx = backend.makeOutput(x.shape, 'float32');
    const dw = backend.makeOutput(w.shape, 'float32');
    ks.exports.rms_norm_grad(at(backend, dy), at(backend, x), at(backend, w), at(backend, dx), at(backend, dw), size(x.shape) / d, d, eps);
    return [dx, dw];
  },
  [FUSED.swiglu]: (backend, ks, { g, u }) => {
    const out = backend.makeOutput(g.shape, 'float32');
    ks.exports.swiglu(at(backend, g), at(backend, u), at(backend, out), size(g.shape));
    return out;
  },
  [FUSED.swigluGrad]: (backend, ks, { dy, g, u }) => {
    const dg = backend.makeOutput(g.shape, 'float32');
    const du = backend.makeOutput(u.shape, 'float32');
    ks.exports.swiglu_grad(at(backend, dy), at(backend, g), at(backend, u), at(backend, dg), at(backend, du), size(g.shape));
    return [dg, du];
  },
  // x [..., d], w and b [d], { eps }
  [FUSED.layerNorm]: (backend, ks, { x, w, b }, { eps }) => {
    const d = lastDim(x);
    const out = backend.makeOutput(x.shape, 'float32');
    ks.exports.layer_norm(at(backend, x), at(backend, w), at(backend, b), at(backend, out), size(x.shape) / d, d, eps);
    return out;
  },
  [FUSED.layerNormGrad]: (backend, ks, { dy, x, w }, { eps }) => {
    const d = lastDim(x);
    const dx = backend.makeOutput(x.shape, 'float32');
    const dw = backend.makeOutput(w.shape, 'float32');
    const db = backend.makeOutput(w.shape, 'float32');
    ks.exports.layer_norm_grad(
      at(backend, dy),
      at(backend, x),
      at(backend, w),
      at(backend, dx),
      at(backend, dw),
      at(backend, db),
      size(x.shape) / d,
      d,
      eps,
    );
    return [dx, dw, db];
  },
  [FUSED.geluTanh]: (backend, ks, { x }) => {
    const out = backend.makeOutput(x.shape, 'float32');
    ks.exports.gelu_tanh(at(backend, x), at(backend, out), size(x.shape));
    return out;
  },
  [FUSED.geluTanhGrad]: (backend, ks, { dy, x }) => {
    const dx = backend.makeOutput(x.shape, 'float32');
    ks.exports.gelu_tanh_grad(at(backend, dy), at(backend, x), at(backend, dx), size(x.shape));
    return dx;
  },
  // logits [rows, vocab], labels int32 [rows] → [rows]
  [FUSED.labelLogProb]: (backend, ks, { logits, labels }) => {
    const [rows, vocab] = logits.shape;
    checkIndices(backend, labels, vocab, 'label log-prob');
    const out = backend.makeOutput([rows], 'float32');
    ks.exports.label_logprob(at(backend, logits), at(backend, labels), at(backend, out), rows, vocab);
    return out;
  },
  [FUSED.labelLogProbGrad]: (backend, ks, { logits, labels, dy }) => {
    const [rows, vocab] = logits.shape;
    checkIndices(backend, labels, vocab, 'label log-prob');
    const out = backend.makeOutput(logits.shape, 'float32');
    ks.exports.label_logprob_grad(at(backend, logits), at(backend, labels), at(backend, dy), at(backend, out), rows, vocab);
    return out;
  },
  // dy [n, d] added into rows idx (int32 [n]) of a zero [rows, d] table
  [FUSED.scatterAddRows]: (backend, ks, { dy, indices }, { rows }) => {
    const d = lastDim(dy);
    checkIndices(backend, indices, rows, 'embedding gradient');
    const out = backend.makeOutput([rows, d], 'float32');
    ks.exports.scatter_add_rows(at(backend, dy), at(backend, indices), at(backend, out), size(indices.shape), rows, d);
    return out;
  },
  // p, m, v, g of one shape → [p', m', v']
  [FUSED.adamW]: (backend, ks, { p, m, v, g }, a) => {
    const outs = [p, m, v].map((t) => backend.makeOutput(t.shape, 'float32'));
    const [p2, m2, v2] = outs.map((t) => at(backend, t));
    ks.exports.adamw(
      at(backend, p),
      at(backend, m),
      at(backend, v),
      at(backend, g),
      p2,
      m2,
      v2,
      size(p.shape),
      a.gscale,
      a.lr,
      a.b1,
      a.b2,
      a.c1,
      a.c2,
      a.eps,
      a.decay,
    );
    return outs;
  },
  // q [nb, nh, nt, nd], k and v [nb, nkv, ns, nd], bias [1 or nb, 1, nt, ns], { scale } → [nb, nt, nh · nd]
  [FUSED.attention]: (backend, ks, { q, k, v, bias }, { scale }) => {
    const sizes = attentionSizes(q, k, bias);
    const [nb, nh, , nt, ns, nd] = sizes;
    const out = backend.makeOutput([nb, nt, nh * nd], 'float32');
    withScratch(ks, ks.exports.attention_scratch(nt, ns), (work) =>
      ks.exports.attention(at(backend, q), at(backend, k), at(backend, v), at(backend, bias), at(backend, out), ...sizes, scale, work),
    );
    return out;
  },
  // mask [nb, past + time] (float32 or int32) or none, { time, past, window (0: none) } → [nb or 1, 1, time, past + time]
  [FUSED.attentionBias]: (backend, ks, { mask }, { time, past, window }) => {
    const rows = mask ? mask.shape[0] : 1;
    const out = backend.makeOutput([rows, 1, time, past + time], 'float32');
    ks.exports.attention_bias(mask ? at(backend, mask) : 0, mask?.dtype === 'int32' ? 1 : 0, at(backend, out), rows, time, past, window);
    return out;
  },
  // mask [nb, total] (float32 or int32), { time } → int32 positions [nb, time]
  [FUSED.maskPositions]: (backend, ks, { mask }, { time }) => {
    const [nb, total] = mask.shape;
    const out = backend.makeOutput([nb, time], 'int32');
    ks.exports.mask_positions(at(backend, mask), mask.dtype === 'int32' ? 1 : 0, at(backend, out), nb, total, time);
    return out;
  },
  // int32 positions [nb, time], invFreq [half] → [cos, sin], each [nb, 1, time, 2 · half]
  [FUSED.ropeAngles]: (backend, ks, { positions, invFreq }) => {
    const [nb, time] = positions.shape;
    const half = invFreq.shape[0];
    const [cos, sin] = [0, 1].map(() => backend.makeOutput([nb, 1, time, 2 * half], 'float32'));
    ks.exports.rope_angles(at(backend, positions), at(backend, invFreq), at(backend, cos), at(backend, sin), nb * time, half);
    return [cos, sin];
  },
  [FUSED.attentionGrad]: (backend, ks, { dy, q, k, v, bias }, { scale }) => {
    const sizes = attentionSizes(q, k, bias);
    const [dq, dk, dv] = [q, k, v].map((t) => backend.makeOutput(t.shape, 'float32'));
    const o = (t: tf.TensorInfo) => at(backend, t);
    withScratch(ks, ks.exports.attention_scratch(sizes[3], sizes[4]), (work) =>
      ks.exports.attention_grad(o(dy), o(q), o(k), o(v), o(bias), o(dq), o(dk), o(dv), ...sizes, scale, work),
    );
    return [dq, dk, dv];
  },
};

const run = (name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) => tf.engine().runKernel(name, inputs, attrs);

/** Gradients of the differentiable fused kernels (the others run inside custom gradients or need none). */
const gradients: tf.GradConfig[] = [
  {
    // The rotation is orthogonal: its gradient rotates dy back by the same angles.
    kernelName: FUSED.rotary,
    inputsToSave: ['cos', 'sin'],
    gradFunc: (dy, [cos, sin], attrs) => ({
      x: () => run(FUSED.rotary, { x: dy as tf.Tensor, cos, sin }, { sign: -(attrs as { sign: number }).sign }) as tf.Tensor,
    }),
  },
  {
    kernelName: FUSED.rmsNorm,
    inputsToSave: ['x', 'w'],
    gradFunc: (dy, [x, w], attrs) => {
      const [dx, dw] = run(FUSED.rmsNormGrad, { dy: dy as tf.Tensor, x, w }, { eps: (attrs as { eps: number }).eps }) as tf.Tensor[];
      return { x: () => dx, w: () => dw };
    },
  },
  {
    kernelName: FUSED.swiglu,
    inputsToSave: ['g', 'u'],
    gradFunc: (dy, [g, u]) => {
      const [dg, du] = run(FUSED.swigluGrad, { dy: dy as tf.Tensor, g, u }) as tf.Tensor[];
      return { g: () => dg, u: () => du };
    },
  },
  {
    kernelName: FUSED.layerNorm,
    inputsToSave: ['x', 'w'],
    gradFunc: (dy, [x, w], attrs) => {
      const [dx, dw, db] = run(FUSED.layerNormGrad, { dy: dy as tf.Tensor, x, w }, { eps: (attrs as { eps: number }).eps }) as tf.Tensor[];
      return { x: () => dx, w: () => dw, b: () => db };
    },
  },
  {
    kernelName: FUSED.geluTanh,
    inputsToSave: ['x'],
    gradFunc: (dy, [x]) => ({ x: () => run(FUSED.geluTanhGrad, { dy: dy as tf.Tensor, x }) as tf.Tensor }),
  },
  {
    // The bias is a mask (no parameter reaches it): its gradient is zero.
    kernelName: FUSED.attention,
    inputsToSave: ['q', 'k', 'v', 'bias'],
    gradFunc: (dy, [q, k, v, bias], attrs) => {
      const [dq, dk, dv] = run(
        FUSED.attentionGrad,
        { dy: dy as tf.Tensor, q, k, v, bias },
        { scale: (attrs as { scale: number }).scale },
      ) as tf.Tensor[];
      return { q: () => dq, k: () => dk, v: () => dv, bias: () => tf.zerosLike(bias) };
    },
  },
  {
    kernelName: FUSED.labelLogProb,
    inputsToSave: ['logits', 'labels'],
    gradFunc: (dy, [logits, labels]) => ({
      logits: () => run(FUSED.labelLogProbGrad, { logits, labels, dy: dy as tf.Tensor }) as tf.Tensor,
      labels: () => tf.zerosLike(labels),
    }),
  },
];

let installed = false;
/** The stock and our configs of each replaced kernel (withStockKernels swaps them). */
const replaced = new Map<string, { stock: tf.KernelConfig; ours: tf.KernelConfig }>();

/** Runs `fn` with tfjs's stock wasm kernels in place of the replaced ones (for benchmarks that compare them). */
export function withStockKernels<T>(fn: () => T): T {
  const swap = (which: 'stock' | 'ours') => {
    for (const [name, configs] of replaced) {
      tf.unregisterKernel(name, 'wasm');
      tf.registerKernel(configs[which]);
    }
  };
  swap('stock');
  try {
    return fn();
  } finally {
    swap('ours');
  }
}

/** Registers the kernels above for the wasm backend (once per process); stock kernels they defer to are kept. */
export function installWasmKernels(): void {
  if (installed) return;
  installed = true;
  const replace = (name: string, make: (stock: tf.KernelFunc) => (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[]) => {
    const stock = tf.getKernel(name, 'wasm');
    if (!stock) throw new Error(`tfjs-backend-wasm has no ${name} kernel to replace (version mismatch?)`);
    tf.unregisterKernel(name, 'wasm');
    // The stock setup (which binds its C function) still runs when the backend starts; ours may defer to it.
    const ours = { ...stock, kernelFunc: make(stock.kernelFunc) as tf.KernelFunc };
    tf.registerKernel(ours);
    replaced.set(name, { stock, ours });
    return ours.kernelFunc as (args: KernelArgs) => tf.TensorInfo;
  };
  replace('BatchMatMul', batchMatMul);
  replace('Transpose', transpose);
  replace('Identity', () => identity);
  replace('GatherV2', gatherV2);
  const ourSlice = replace('Slice', slice);
  replace('Sum', sum);
  replace('SplitV', () => splitV(ourSlice));
  for (const [name, fn] of Object.entries(fused)) {
    tf.registerKernel({
      kernelName: name,
      backendName: 'wasm',
      kernelFunc: ((args: KernelArgs) => {
        const backend = args.backend as WasmBackend;
        return fn(backend, kernels(backend), args.inputs as Record<string, tf.TensorInfo>, (args.attrs ?? {}) as Record<string, number>);
      }) as tf.KernelFunc,
    });
  }
  for (const g of gradients) tf.registerGradient(g);
}
