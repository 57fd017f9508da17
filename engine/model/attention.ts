// Causal self-attention pieces shared by every family: the additive mask (causal + padding, optionally a
// sliding window), the default position ids, and grouped-query attention on the wasm-friendly matMul with
// the family's score scale and optional tanh softcapping.
import { tf, attention, FUSED, fused, matMul, runFused } from '../tensor/index.ts';

/** Added to the scores of keys a query may not see; finite so that fully masked rows stay finite. */
export const MASKED = -1e9;

/**
 * Additive attention bias [batch, 1, time, past + time] ([1, 1, time, past + time] without a key mask: the same for
 * every row): 0 where query i (at absolute index past + i) may attend key j (j ≤ past + i, keyMask[j] = 1 and,
 * with a sliding `window`, past + i − j < window), MASKED elsewhere. The window counts absolute indices, left
 * padding included, as HF's cache positions do.
 */
export function attentionBias(keyMask: tf.Tensor2D | undefined, batch: number, time: number, past: number, window?: number): tf.Tensor4D {
  if (fused(FUSED.attentionBias) && (!keyMask || keyMask.dtype === 'float32' || keyMask.dtype === 'int32'))
    return runFused(FUSED.attentionBias, keyMask ? { mask: keyMask } : {}, { time, past, window: window ?? 0 });
  return tf.tidy(() => {
    const total = past + time;
    const causal = new Float32Array(time * total);
    for (let i = 0; i < time; i++) {
      const first = window === undefined ? 0 : Math.max(0, past + i - window + 1);
      causal.fill(1, i * total + first, i * total + past + i + 1);
    }
    let allowed: tf.Tensor = tf.tensor3d(causal, [1, time, total]); // [1, time, keys]
    if (keyMask) allowed = tf.mul(allowed, keyMask.cast('float32').expandDims(1)); // [batch, time, keys]
    const rows = keyMask ? batch : 1;
    return tf.mul(tf.sub(1, allowed), MASKED).reshape([rows, 1, time, total]) as tf.Tensor4D;
  });
}

/**
 * Position ids [batch, time] as Hugging Face derives them: without a mask past, past+1, ...; with a mask
 * [batch, past + time], cumsum(mask) − 1 with padded positions set to 1, keeping the last `time` columns.
 */
export function defaultPositions(keyMask: tf.Tensor2D | undefined, batch: number, time: number, past: number): tf.Tensor2D {
  if (keyMask && fused(FUSED.maskPositions) && (keyMask.dtype === 'float32' || keyMask.dtype === 'int32'))
    return runFused(FUSED.maskPositions, { mask: keyMask }, { time });
  return tf.tidy(() => {
    if (!keyMask) return tf.tile(tf.range(past, past + time, 1, 'int32').expandDims(0), [batch, 1]) as tf.Tensor2D;
    const mask = keyMask.cast('int32');
    const one = tf.scalar(1, 'int32'); // a plain 1 would upcast to float32
    const cum = tf.sub(tf.cumsum(mask, 1), one);
    const positions = tf.where(tf.equal(mask, 0), tf.onesLike(cum), cum);
    return tf.slice(positions, [0, past], [batch, time]) as tf.Tensor2D;
  });
}

/** How the scores q·k are turned into logits: scale, then cap · tanh(scores / cap) when `softcap` is set (gemma2). */
export interface ScoreOptions {
  scale: number;
  softcap?: number;
}

/**
 * Scaled dot-product attention of q [batch, heads, time, headDim] over k, v [batch, kvHeads, keys, headDim]
 * with an additive bias [batch or 1, 1, time, keys] → [batch, time, heads · headDim]. Query heads are grouped by
 * the key/value head they share (head h uses kv head ⌊h / (heads / kvHeads)⌋, as HF's repeat_kv), so the
 * keys and values are never copied. The scores are q·k · scale (default 1/sqrt(headDim)), softcapped when
 * asked, before the bias is added. Without a softcap this is engine/tensor's fused attention op.
 */
export function attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, bias: tf.Tensor4D, options?: ScoreOptions): tf.Tensor3D {
  const [batch, heads, time, headDim] = q.shape;
  const scale = options?.scale ?? 1 / Math.sqrt(headDim);
  const cap = options?.softcap;
  if (cap === undefined) return attention(q, k, v, bias, scale);
  const [, kvHeads, keys] = k.shape;
  const group = heads / kvHeads;
  const qg = tf.mul(q, scale).reshape([batch * kvHeads, group * time, headDim]) as tf.Tensor3D;
  const kg = k.reshape([batch * kvHeads, keys, headDim]) as tf.Tensor3D;
  const vg = v.reshape([batch * kvHeads, keys, headDim]) as tf.Tensor3D;
  let scores = matMul(qg, kg, false, true).reshape([batch, kvHeads, group, time, keys]); // [b, kv, group, time, keys]
  scores = tf.mul(tf.tanh(tf.div(scores, cap)), cap);
  const probs = tf.softmax(tf.add(scores, bias.reshape([bias.shape[0], 1, 1, time, keys])));
  const out = matMul(probs.reshape([batch * kvHeads, group * time, keys]) as tf.Tensor3D, vg); // [b·kv, group·time, headDim]
  return out
    .reshape([batch, heads, time, headDim])
    .transpose([0, 2, 1, 3]) // [batch, time, heads, headDim]
    .reshape([batch, time, heads * headDim]) as tf.Tensor3D;
}
