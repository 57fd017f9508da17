// Three workarounds for problems of TensorFlow.js's wasm backend (docs/architecture.md §6), in the one module
// all model code uses. 1 and 3 apply only while wasm is the active backend; other backends (cpu, tensorflow,
// webgpu) get the stock ops. 2 is correct on every backend and stays.
// 1. gather: the stock gradient needs UnsortedSegmentSum, which wasm lacks; ours scatters with scatterND
//    (which sums duplicate indices, so it is exact).
// 2. oneHot: on wasm tf.oneHot ignores a float dtype and returns garbage; cast an int one-hot instead.
// 3. matMul: wasm is fast only with untransposed operands (and the stock gradient transposes), so both
//    the forward and the gradient transpose explicitly and then multiply plainly.
import * as tf from '@tensorflow/tfjs';

type Rank23 = tf.Tensor2D | tf.Tensor3D;

function swapLast<T extends tf.Tensor>(x: T): T {
  const perm = x.shape.map((_, i) => i);
  const n = perm.length;
  [perm[n - 2], perm[n - 1]] = [perm[n - 1], perm[n - 2]];
  return tf.transpose(x, perm) as T;
}

const matMulVariants = new Map<string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor>();

function matMulVariant(transposeA: boolean, transposeB: boolean) {
  const key = `${transposeA}${transposeB}`;
  let fn = matMulVariants.get(key);
  if (!fn) {
    fn = tf.customGrad((a, b, save) => {
      const A = transposeA ? swapLast(a as tf.Tensor) : (a as tf.Tensor);
      const B = transposeB ? swapLast(b as tf.Tensor) : (b as tf.Tensor);
      // Save the operands as given, not their transposed copies: a transposed weight kept for the backward
      // pass (and transposed back there) would be one extra copy of every weight (the memory plan, §6).
      (save as tf.GradSaveFunc)([a as tf.Tensor, b as tf.Tensor]);
      return {
        value: tf.matMul(A as Rank23, B as Rank23),
        // In a tidy: tfjs does not free what a custom gradient makes on the way until the whole backward ends.
        gradFunc: (dy, saved) =>
          tf.tidy(() => {
            const [sa, sb] = saved as [Rank23, Rank23];
            // A weight itself as the right operand would keep XNNPACK's packed copy of it cached for as long as the
            // weight lives (tfjs-backend-wasm caches per operand); a transient copy is packed and freed per layer.
            const dA = tf.matMul(dy as Rank23, transposeB ? tf.mul(sb, 1) : swapLast(sb)); // [.., m, k]: dy · Bᵀ
            const dB = tf.matMul(transposeA ? sa : swapLast(sa), dy as Rank23); // [.., k, n]: Aᵀ · dy
            return [transposeA ? swapLast(dA) : dA, transposeB ? swapLast(dB) : dB];
          }),
      };
    }) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
    matMulVariants.set(key, fn);
  }
  return fn;
}

/** Matrix product of rank-2 or equal-batch rank-3 tensors whose gradient stays on wasm's fast path. */
export function matMul<T extends Rank23>(a: T, b: T, transposeA = false, transposeB = false): T {
  if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, transposeA, transposeB) as T;
  return matMulVariant(transposeA, transposeB)(a, b) as T;
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
      return [tf.scatterND(ix.reshape([-1, 1]), rows, t.shape), tf.zerosLike(ix)];
    },
  };
}) as (table: tf.Tensor2D, indices: tf.Tensor) => tf.Tensor;

/** Rows of `table` [rows, dim] at int32 `indices` (any shape) → [...indices.shape, dim]; trainable on wasm. */
export function gather(table: tf.Tensor2D, indices: tf.Tensor): tf.Tensor {
  if (tf.getBackend() !== 'wasm') return tf.gather(table, indices.reshape([-1])).reshape([...indices.shape, table.shape[1]]);
  return gatherRows(table, indices);
}

/** A float32 one-hot encoding that is correct on every backend. */
export function oneHot(indices: tf.Tensor, depth: number): tf.Tensor {
  return tf.oneHot(indices as tf.Tensor1D, depth).cast('float32');
}
