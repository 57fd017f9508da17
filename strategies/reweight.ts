// Static soft reweighting: each example's tokens get ONE weight, the guardrail's full-response P(safe)
// (Peng et al. 2025, docs/method.md §4: the special case of one constant v ∈ [0, 1] per example).
// Equation: L = Σ m·[w_i·CE + (1 − w_i)·λ·D] / Σ m with w_i = verdict_i and D the k2 divergence;
// with `reference: false` (default) the (1 − w_i)·λ·D term is absent: L = Σ m·w_i·CE / Σ m.
import { z } from 'zod';
import { tf } from '../engine/tensor/index.ts';
import type { Strategy } from './strategy.ts';
import { divergence, maskedMean, noNeeds, requireInput } from './loss-terms.ts';

const params = z.strictObject({
  reference: z.boolean().default(false).describe('add (1 − w)·λ·D toward π_ref on down-weighted examples'),
  lambda: z.number().min(0).default(0.5).describe('λ, scale of the divergence term (used only with reference: true)'),
});
export type ReweightParams = z.output<typeof params>;

export const reweight: Strategy<ReweightParams> = {
  name: 'reweight',
  description: 'Static soft shaping: weight each example by its full-response P(safe); optionally pull the rest toward π_ref.',
  paper:
    'Peng et al. 2025, "Shape it Up!" (arXiv 2505.17196), the special case of docs/method.md §4: L = Σ m·[w_i·CE + (1 − w_i)·λ·D] / Σ m, w_i = P(safe | response_i).',
  params,
  needs: ({ reference }) => ({ ...noNeeds, verdict: true, reference }),
  loss: (inputs, { reference, lambda }) =>
    tf.tidy(() => {
      const w = requireInput(inputs, 'verdicts', 'reweight').expandDims(1); // [batch, 1]
      let perToken = tf.mul(w, tf.neg(inputs.logp));
      if (reference) perToken = tf.add(perToken, tf.mul(tf.sub(1, w), tf.mul(lambda, divergence(inputs, 'k2', 'reweight'))));
      return maskedMean(perToken, inputs.mask);
    }),
};
