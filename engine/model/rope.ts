// Rotary position embeddings as Hugging Face computes them (LlamaRotaryEmbedding): inv_freq with the
// optional llama3 or linear rescaling, cos/sin of the frequencies repeated twice ([freqs, freqs]), and
// q·cos + rotate_half(q)·sin with rotate_half(x) = [-x2, x1] on the two halves of the head.
import { tf, FUSED, fused, rotary, runFused } from '../tensor/index.ts';
import type { ModelConfig } from './types.ts';

/**
 * inv_freq[i] = 1 / theta^(2i / headDim), rescaled as `_compute_llama3_parameters` or divided by the factor
 * (`_compute_linear_scaling_rope_parameters`) when configured.
 */
export function ropeInvFreq(config: Pick<ModelConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const half = config.headDim / 2;
  const out = new Float32Array(half);
  const s = config.ropeScaling;
  for (let i = 0; i < half; i++) {
    const inv = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
    if (!s) {
      out[i] = inv;
      continue;
    }
    if (s.ropeType === 'linear') {
      out[i] = inv / s.factor;
      continue;
    }
    // Long wavelengths (low frequencies) are slowed by `factor`, short ones kept, and the band between
    // is interpolated smoothly in old_context / wavelength.
    const wavelen = (2 * Math.PI) / inv;
    const lowFreqWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highFreqWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    if (wavelen < highFreqWavelen) out[i] = inv;
    else if (wavelen > lowFreqWavelen) out[i] = inv / s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = (1 - smooth) * (inv / s.factor) + smooth * inv;
    }
  }
  return out;
}

/** cos and sin [batch, 1, time, headDim] for int32 positions [batch, time]; broadcast over heads. */
export function ropeCosSin(invFreq: Float32Array, positions: tf.Tensor2D): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  if (fused(FUSED.ropeAngles) && positions.dtype === 'int32') {
    const [cos, sin] = tf.tidy(() => runFused<tf.Tensor4D[]>(FUSED.ropeAngles, { positions, invFreq: tf.tensor1d(invFreq) }));
    return { cos, sin };
  }
  return tf.tidy(() => {
    const [batch, time] = positions.shape;
    const freqs = tf.mul(positions.cast('float32').expandDims(2), tf.tensor1d(invFreq)); // [batch, time, headDim/2]
    const emb = tf.concat([freqs, freqs], 2).reshape([batch, 1, time, 2 * invFreq.length]); // [batch, 1, time, headDim]
    return { cos: tf.cos(emb) as tf.Tensor4D, sin: tf.sin(emb) as tf.Tensor4D };
  });
}

/** x [batch, heads, time, headDim] rotated by the angles of cos/sin (one fused kernel on wasm). */
export function applyRope(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  return rotary(x, cos, sin);
}
