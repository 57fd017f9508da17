// The ops all model and training code uses (docs/architecture.md §6): wasm workarounds and fused ops. On wasm the
// fused ops run our kernels (wasm-kernels.ts, one pass each, with hand-written gradients); on every other
// backend they are the same arithmetic in stock ops, which is also the reference the parity tests check them
// against.
// - gather: the stock gradient needs UnsortedSegmentSum, which wasm lacks; on wasm ours adds the rows back
//   with a scatter-add kernel (exact with repeated indices).
// - oneHot: on wasm tf.oneHot ignores a float dtype and returns garbage; cast an int one-hot instead.
// - matMul: the stock wasm kernel was fast only with untransposed 2-D operands; wasm-kernels.ts replaces it with
//   one that is fast for every transposed and batched product, so matMul is the stock op (and gradient).
// - rotary, rmsNorm, swiglu, layerNorm, geluTanh, attention, labelLogProb(+Grad), adamWUpdate: fused on wasm.
import * as tf from '@tensorflow/tfjs';
import { FUSED, installWasmKernels } from './wasm-kernels.ts';

installWasmKernels();

type Rank23 = tf.Tensor2D | tf.Tensor3D;

export { FUSED };

/** Whether the active backend has fused kernel `name` (FUSED; wasm has them all). */
export const fused = (name: string) => tf.getKernel(name, tf.getBackend()) !== undefined;
/** Runs a fused kernel (check `fused(name)` first). */
export const run = <T extends tf.Tensor | tf.Tensor[]>(name: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}) =>
  tf.engine().runKernel(name, inputs, attrs) as T;

/** Matrix product of rank-2 or equal-batch rank-3 tensors (fast on wasm with any transposition). */
export function matMul<T extends Rank23>(a: T, b: T, transposeA = false, transposeB = false): T {
  return tf.matMul(a, b, transposeA, transposeB) as T;
}

/**
 * x [batch, heads, time, headDim] rotated by the angles of cos, sin [batch, 1, time, headDim] (Hugging Face's
 * q·cos + rotate_half(q)·sin with rotate_half(x) = [−x2, x1] on the two halves of the head).
 */
export function rotary(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const [batch, , time, dim] = x.shape;
  const fits = cos.shape[0] === batch && cos.shape[1] === 1 && cos.shape[2] === time && cos.shape[3] === dim && dim % 2 === 0;
  if (fits && fused(FUSED.rotary)) return run(FUSED.rotary, { x, cos, sin }, { sign: 1 });
  const half = dim / 2;
  const [x1, x2] = tf.split(x, [half, half], 3);
  const rotated = tf.concat([tf.neg(x2), x1], 3); // rotate_half
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · weight. */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  if (fused(FUSED.rmsNorm) && x.dtype === 'float32' && weight.rank === 1 && weight.shape[0] === x.shape[x.rank - 1])
    return run(FUSED.rmsNorm, { x, w: weight }, { eps });
  const meanSquare = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), weight);
}

/** SiLU gating: silu(gate) · up (Llama's MLP). */
export function swiglu(gate: tf.Tensor, up: tf.Tensor): tf.Tensor {
  if (fused(FUSED.swiglu) && gate.dtype === 'float32' && tf.util.arraysEqual(gate.shape, up.shape))
    return run(FUSED.swiglu, { g: gate, u: up });
  return tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
}

/** LayerNorm over the last axis: (x − mean) / sqrt(var + eps) · weight + bias (GPT-2's). */
export function layerNorm(x: tf.Tensor, weight: tf.Tensor, bias: tf.Tensor, eps: number): tf.Tensor {
  const d = x.shape[x.rank - 1];
  if (
    fused(FUSED.layerNorm) &&
    x.dtype === 'float32' &&
    weight.rank === 1 &&
    bias.rank === 1 &&
    weight.shape[0] === d &&
    bias.shape[0] === d
  )
    return run(FUSED.layerNorm, { x, w: weight, b: bias }, { eps });
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.mul(centred, tf.rsqrt(tf.add(variance, eps))), weight), bias);
}

/** GELU, tanh approximation (HF `gelu_new`, `gelu_pytorch_tanh`): ½ x (1 + tanh(√(2/π) (x + 0.044715 x³))). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  if (fused(FUSED.geluTanh) && x.dtype === 'float32') return run(FUSED.geluTanh, { x });
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/** log softmax(logits)[label] of each row: logits [rows, vocab], int32 labels [rows] → [rows]. */
export function labelLogProb(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Tensor1D {
  if (fused(FUSED.labelLogProb)) return run(FUSED.labelLogProb, { logits, labels });
  return tf.sub(tf.sum(tf.mul(logits, oneHot(labels, logits.shape[1])), -1), tf.logSumExp(logits, -1)) as tf.Tensor1D;
}

/** The gradient of labelLogProb wrt the logits: dy [rows] · (onehot(label) − softmax(logits)) → [rows, vocab]. */
export function labelLogProbGrad(logits: tf.Tensor2D, labels: tf.Tensor1D, dy: tf.Tensor1D): tf.Tensor2D {
  if (fused(FUSED.labelLogProbGrad)) return run(FUSED.labelLogProbGrad, { logits, labels, dy });
  return tf.mul(dy.expandDims(-1), tf.sub(oneHot(labels, logits.shape[1]), tf.softmax(logits))) as tf.Tensor2D;
}

/** One AdamW step's settings; the gradient is multiplied by `gradScale` first (averaging and clipping). */
export interface AdamWStep {
  gradScale: number;
  lr: number;
  beta1: number;
  beta2: number;
  /** Bias corrections 1 − β1^t and 1 − β2^t. */
  correction1: number;
  correction2: number;
  eps: number;
  /** Decoupled weight decay (0 for none). */
  decay: number;
}

/**
 * One AdamW update of parameter p with moments m, v and gradient g: returns [p', m', v'] (new tensors).
 * m' = β1 m + (1 − β1) g', v' = β2 v + (1 − β2) g'², p' = p − lr (m' / c1 / (sqrt(v' / c2) + eps) + decay · p).
 */
export function adamWUpdate(p: tf.Tensor, m: tf.Tensor, v: tf.Tensor, g: tf.Tensor, s: AdamWStep): [tf.Tensor, tf.Tensor, tf.Tensor] {
  if (fused(FUSED.adamW)) {
    const attrs = {
      gscale: s.gradScale,
      lr: s.lr,
      b1: s.beta1,
      b2: s.beta2,
      c1: s.correction1,
      c2: s.correction2,
      eps: s.eps,
      decay: s.decay,
    };
    return run<tf.Tensor[]>(FUSED.adamW, { p, m, v, g }, attrs) as [tf.Tensor, tf.Tensor, tf.Tensor];
  }
  return tf.tidy(() => {
    const scaled = s.gradScale === 1 ? g : tf.mul(g, s.gradScale);
    const m2 = tf.add(tf.mul(m, s.beta1), tf.mul(scaled, 1 - s.beta1));
    const v2 = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(scaled), 1 - s.beta2));
    let update = tf.div(tf.div(m2, s.correction1), tf.add(tf.sqrt(tf.div(v2, s.correction2)), s.eps));
    if (s.decay > 0) update = tf.add(update, tf.mul(p, s.decay));
    return [tf.sub(p, tf.mul(update, s.lr)), m2, v2];
  });
}

/**
 * Scaled dot-product attention: q [batch, heads, time, headDim] over k, v [batch, kvHeads, keys, headDim] with
 * an additive bias [batch or 1, 1, time, keys] → [batch, time, heads · headDim]. Query head h reads key/value
 * head ⌊h / (heads / kvHeads)⌋ (HF's repeat_kv), without copying the keys and values. Scores are q·kᵀ·scale +
 * bias, softmax over keys. One kernel on wasm (whose gradient recomputes the probabilities).
 */
export function attention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, scale: number): tf.Tensor3D {
  const [batch, heads, time, headDim] = q.shape;
  const [, kvHeads, keys] = k.shape;
  if (fused(FUSED.attention) && heads % kvHeads === 0 && (bias.shape[0] === 1 || bias.shape[0] === batch))
    return run(FUSED.attention, { q, k, v, bias }, { scale });
  const group = heads / kvHeads;
  const qg = tf.mul(q, scale).reshape([batch * kvHeads, group * time, headDim]) as tf.Tensor3D;
  const kg = k.reshape([batch * kvHeads, keys, headDim]) as tf.Tensor3D;
  const vg = v.reshape([batch * kvHeads, keys, headDim]) as tf.Tensor3D;
  const scores = matMul(qg, kg, false, true).reshape([batch, kvHeads, group, time, keys]);
  const probs = tf.softmax(tf.add(scores, bias.reshape([bias.shape[0], 1, 1, time, keys])));
  const out = matMul(probs.reshape([batch * kvHeads, group * time, keys]) as tf.Tensor3D, vg); // [b·kv, group·time, headDim]
  return out
    .reshape([batch, heads, time, headDim])
    .transpose([0, 2, 1, 3]) // [batch, time, heads, headDim]
    .reshape([batch, time, heads * headDim]) as tf.Tensor3D;
}

/**
 * A linear layer on the last axis: x [..., in] times a weight stored either as [out, in]
 * (torch nn.Linear, `weightLayout: 'out-in'`) or as [in, out] (GPT-2's Conv1D, 'in-out').
 */
export function linear(x: tf.Tensor, weight: tf.Tensor2D, bias?: tf.Tensor1D, weightLayout: 'out-in' | 'in-out' = 'out-in'): tf.Tensor {
  const inDim = x.shape[x.shape.length - 1];
  const outDim = weightLayout === 'out-in' ? weight.shape[0] : weight.shape[1];
  const flat = x.reshape([-1, inDim]) as tf.Tensor2D; // [tokens, in]
  let y: tf.Tensor = matMul(flat, weight, false, weightLayout === 'out-in'); // [tokens, out]
  if (bias) y = tf.add(y, bias);
  return y.reshape([...x.shape.slice(0, -1), outDim]);
}

const gatherRows = tf.customGrad((table, indices, save) => {
  const t = table as tf.Tensor2D;
  const idx = indices as tf.Tensor;
  (save as tf.GradSaveFunc)([idx]);
  const flat = idx.reshape([-1]);
  return {
    value: tf.gather(t, flat).reshape([...idx.shape, t.shape[1]]),
    gradFunc: (dy, saved) => {
      const [ix] = saved;
      const rows = dy.reshape([-1, t.shape[1]]);
      return [run(FUSED.scatterAddRows, { dy: rows, indices: ix.reshape([-1]) }, { rows: t.shape[0] }), tf.zerosLike(ix)];
    },
  };
}) as (table: tf.Tensor2D, indices: tf.Tensor) => tf.Tensor;

/** Rows of `table` [rows, dim] at int32 `indices` (any shape) → [...indices.shape, dim]; trainable on wasm. */
export function gather(table: tf.Tensor2D, indices: tf.Tensor): tf.Tensor {
  if (!fused(FUSED.scatterAddRows)) return tf.gather(table, indices.reshape([-1])).reshape([...indices.shape, table.shape[1]]);
  return gatherRows(table, indices);
}

/** A float32 one-hot encoding that is correct on every backend. */
export function oneHot(indices: tf.Tensor, depth: number): tf.Tensor {
  return tf.oneHot(indices as tf.Tensor1D, depth).cast('float32');
}
