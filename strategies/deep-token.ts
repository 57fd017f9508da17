// Deep Token: token-wise constrained SFT of Qi et al. 2025, "Safety Alignment Should Be Made More Than
// Just a Few Tokens Deep" (ICLR 2025), Eq. 3, as a baseline of Peng et al. 2025 (docs/method.md §5).
// Per response token t: (2/β_t)·softplus(β_t·(log π_ref(y_t) − log π_θ(y_t))), averaged over Σ m.
// Small β behaves like CE; large β pins the token to π_ref. β_1 = 0.5, β_2..5 = 2, β_t = 0.1 after,
// where t counts response tokens from 1 within each example.
import { z } from 'zod';
import { tf } from '../engine/tensor/index.ts';
import type { Strategy } from './strategy.ts';
import { maskedMean, noNeeds, requireInput } from './loss-terms.ts';

const params = z.strictObject({
  betaFirst: z.number().positive().default(0.5).describe('β of the first response token'),
  betaEarly: z.number().positive().default(2).describe('β of response tokens 2..earlyTokens'),
  earlyTokens: z.number().int().min(1).default(5).describe('last response token that uses betaEarly'),
  betaLate: z.number().positive().default(0.1).describe('β of every later response token'),
});
export type DeepTokenParams = z.output<typeof params>;

export const deepToken: Strategy<DeepTokenParams> = {
  name: 'deep-token',
  description: 'Token-wise constrained SFT: a softplus objective that holds the first response tokens close to π_ref.',
  paper:
    'Qi et al. 2025, "Safety Alignment Should Be Made More Than Just a Few Tokens Deep" (ICLR 2025), Eq. 3: Σ_t (2/β_t)·softplus(β_t·(log π_ref − log π_θ)).',
  params,
  needs: () => ({ ...noNeeds, reference: true }),
  loss: (inputs, p) =>
    tf.tidy(() => {
      const ref = requireInput(inputs, 'refLogp', 'deep-token');
      // 1-based index among the example's response tokens (prompt and padding are masked out anyway).
      const t = tf.cumsum(tf.cast(tf.greater(inputs.mask, 0), 'float32'), 1);
      const fill = (value: number) => tf.fill(t.shape, value);
      const beta = tf.where(
        tf.lessEqual(t, 1),
        fill(p.betaFirst),
        tf.where(tf.lessEqual(t, p.earlyTokens), fill(p.betaEarly), fill(p.betaLate)),
      );
      const perToken = tf.mul(tf.div(2, beta), tf.softplus(tf.mul(beta, tf.sub(ref, inputs.logp))));
      return maskedMean(perToken, inputs.mask);
    }),
};
