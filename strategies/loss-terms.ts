// Building blocks shared by strategy losses: the masked token mean, input checks, and the divergence D
// to the frozen reference (docs/method.md §4). Not a strategy itself, so it is not in the registry.
import { z } from 'zod';
import { tf } from '../engine/tensor/index.ts';
import type { LossInputs, LossNeeds } from '../engine/contracts/loss.ts';
import { StrategyError } from './strategy.ts';

export const noNeeds: LossNeeds = { reference: false, star: false, verdict: false, fullLogProbs: false };

/**
 * Σ m·x / Σ m over every response token of the batch; 0 (not NaN) when the mask is empty. Masked-out
 * values never reach the sum, so padding that holds inf or NaN cannot poison the loss.
 */
export function maskedMean(values: tf.Tensor, mask: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const on = tf.greater(mask, 0);
    const kept = tf.where(on, tf.mul(mask, values), tf.zerosLike(mask));
    // For a 0/1 mask the floor only matters when Σ m = 0, where the numerator is 0 too.
    return tf.div(tf.sum(kept), tf.maximum(tf.sum(mask), 1e-12));
  });
}

type OptionalInput = 'refLogp' | 'weights' | 'verdicts' | 'logProbs' | 'refLogProbs';

/** An optional input the strategy requires, checked against the mask's [batch, time]. */
export function requireInput<K extends OptionalInput>(inputs: LossInputs, key: K, strategy: string): NonNullable<LossInputs[K]> {
  const tensor = inputs[key];
  if (!tensor) {
    throw new StrategyError(
      'MISSING_LOSS_INPUT',
      `Strategy '${strategy}' needs '${key}' but the training loop did not provide it; compute every input that strategy.needs(params) asks for.`,
    );
  }
  const [batch, time] = inputs.mask.shape;
  const expected = key === 'verdicts' ? [batch] : [batch, time];
  const rank = key === 'logProbs' || key === 'refLogProbs' ? 3 : expected.length;
  if (tensor.rank !== rank || expected.some((d, i) => tensor.shape[i] !== d)) {
    throw new StrategyError(
      'LOSS_INPUT_SHAPE',
      `Strategy '${strategy}': '${key}' has shape [${tensor.shape.join(', ')}], expected [${expected.join(', ')}${rank === 3 ? ', vocab' : ''}] to match 'mask'.`,
    );
  }
  return tensor;
}

/** Checks that logp matches mask; the loop calls this once per batch before any strategy's loss. */
export function checkLossInputs(inputs: LossInputs, strategy: string): void {
  const { logp, mask } = inputs;
  if (logp.rank !== 2 || mask.rank !== 2 || logp.shape[0] !== mask.shape[0] || logp.shape[1] !== mask.shape[1]) {
    throw new StrategyError(
      'LOSS_INPUT_SHAPE',
      `Strategy '${strategy}': 'logp' has shape [${logp.shape.join(', ')}] but 'mask' has [${mask.shape.join(', ')}]; both must be [batch, time].`,
    );
  }
}

export const divergenceParam = z
  .enum(['k2', 'kl'])
  .default('k2')
  .describe("D: 'k2' = ½(logp − refLogp)² at the label token (authors' code); 'kl' = full-vocabulary KL(π_θ‖π_ref) (paper)");
export type Divergence = z.output<typeof divergenceParam>;

/**
 * Per-token divergence D [batch, time] to the frozen reference.
 * k2: ½·(log π_θ(y_t) − log π_ref(y_t))²; kl: Σ_v π_θ(v)·(log π_θ(v) − log π_ref(v)) over the vocabulary.
 */
export function divergence(inputs: LossInputs, kind: Divergence, strategy: string): tf.Tensor2D {
  return tf.tidy(() => {
    if (kind === 'k2') {
      const ref = requireInput(inputs, 'refLogp', strategy);
      return tf.mul(0.5, tf.square(tf.sub(inputs.logp, ref))) as tf.Tensor2D;
    }
    const lp = requireInput(inputs, 'logProbs', strategy);
    const refLp = requireInput(inputs, 'refLogProbs', strategy);
    return tf.sum(tf.mul(tf.exp(lp), tf.sub(lp, refLp)), -1) as tf.Tensor2D;
  });
}
