// KL-only: the anchoring half of STAR-DSS alone, an ablation of Peng et al. 2025 (docs/method.md §4 with
// v ≡ 0): L = Σ m·λ·D / Σ m, D the divergence to the frozen π_ref (k2 or full-vocabulary KL).
// λ defaults to 1, so STAR-DSS with v ≡ 0 and scale λ equals λ × kl-only at its defaults.
import { z } from 'zod';
import { tf } from '../engine/tensor/index.ts';
import type { Strategy } from './strategy.ts';
import { divergence, divergenceParam, maskedMean, noNeeds } from './loss-terms.ts';

const params = z.strictObject({
  lambda: z.number().min(0).default(1).describe('λ, scale of the divergence'),
  divergence: divergenceParam,
});
export type KlOnlyParams = z.output<typeof params>;

export const klOnly: Strategy<KlOnlyParams> = {
  name: 'kl-only',
  description: 'Learn nothing from the data: only stay close to π_ref on the response tokens (STAR-DSS with v ≡ 0).',
  paper: 'Peng et al. 2025, "Shape it Up!" (arXiv 2505.17196), STAR-DSS loss with v ≡ 0: L = Σ m·λ·D / Σ m.',
  params,
  needs: (p) => ({ ...noNeeds, reference: true, fullLogProbs: p.divergence === 'kl' }),
  loss: (inputs, p) => tf.tidy(() => maskedMean(tf.mul(p.lambda, divergence(inputs, p.divergence, 'kl-only')), inputs.mask)),
};
