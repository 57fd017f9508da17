// STAR-DSS: dynamic safety shaping with per-token STAR weights (Peng et al. 2025, docs/method.md §4).
// Equation: L = Σ m·[v·CE + (1 − v)·λ·D] / Σ m, where v ∈ [0, 1] is the guardrail's P(safe) of the
// response prefix ending with the token's chunk, CE = −log π_θ(y_t), and D the divergence to the frozen
// π_ref (k2 by default, as in the authors' code; full-vocabulary KL as written in the paper).
// The normaliser counts ALL response tokens, including down-weighted ones.
import { z } from 'zod';
import { tf } from '../engine/tensor/index.ts';
import type { Strategy } from './strategy.ts';
import { divergence, divergenceParam, maskedMean, requireInput } from './loss-terms.ts';

const params = z.strictObject({
  lambda: z.number().min(0).default(0.5).describe('λ (kl_scale), scale of the divergence term'),
  divergence: divergenceParam,
});
export type StarDssParams = z.output<typeof params>;

export const starDss: Strategy<StarDssParams> = {
  name: 'star-dss',
  description: 'Dynamic shaping: learn tokens STAR scores safe, pull tokens it scores unsafe toward π_ref.',
  paper:
    'Peng et al. 2025, "Shape it Up! Restoring LLM Safety during Finetuning" (arXiv 2505.17196), STAR-DSS loss: L = Σ m·[v·CE + (1 − v)·λ·D] / Σ m.',
  params,
  needs: (p) => ({ reference: true, star: true, verdict: false, fullLogProbs: p.divergence === 'kl' }),
  loss: (inputs, p) =>
    tf.tidy(() => {
      const v = requireInput(inputs, 'weights', 'star-dss');
      const learn = tf.mul(v, tf.neg(inputs.logp));
      const anchor = tf.mul(tf.sub(1, v), tf.mul(p.lambda, divergence(inputs, p.divergence, 'star-dss')));
      return maskedMean(tf.add(learn, anchor), inputs.mask);
    }),
};
