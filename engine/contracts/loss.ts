// What the training loop hands a shaping strategy. All tensors are aligned with next-token labels:
// position t holds the quantities for predicting token t+1 of the sequence.
import type * as tf from '@tensorflow/tfjs';

export interface LossInputs {
  /** [batch, time] log π_θ(y_t | ·) at the label token. */
  logp: tf.Tensor2D;
  /** [batch, time] log π_ref(y_t | ·) at the label token (frozen reference; no gradient). */
  refLogp?: tf.Tensor2D;
  /** [batch, time] 1 on response-label positions, 0 on prompt and padding. */
  mask: tf.Tensor2D;
  /** [batch, time] per-token STAR weights v ∈ [0, 1]. */
  weights?: tf.Tensor2D;
  /** [batch] full-response P(safe) of each example. */
  verdicts?: tf.Tensor1D;
  /** [batch, time, vocab] log-softmax rows of π_θ (for full-vocabulary divergences). */
  logProbs?: tf.Tensor3D;
  /** [batch, time, vocab] log-softmax rows of π_ref (no gradient). */
  refLogProbs?: tf.Tensor3D;
}

/** What a loss needs the loop to compute; anything not needed is not computed. */
export interface LossNeeds {
  reference: boolean;
  star: boolean;
  verdict: boolean;
  fullLogProbs: boolean;
}

export type LossFn = (inputs: LossInputs) => tf.Scalar;
