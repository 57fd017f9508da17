// RS ("rejection sampling"): static shaping by a guardrail's verdict on the WHOLE response
// (Peng et al. 2025, docs/method.md §2 and §5). An example is flagged when its full-response P(safe) < threshold.
// mode 'zero' (default, as the authors' code does): flagged examples stay in the batches with weight 0,
//   L = Σ m·w_i·CE / Σ m, w_i = 1[P(safe)_i ≥ threshold], and Σ m counts every response token of the batch,
//   flagged or not; the data, the number of optimiser steps and the batch composition are those of SFT.
// mode 'drop': flagged examples are removed before training, then plain SFT on the rest: fewer steps, and each
//   batch's normaliser counts only kept tokens, so a kept token weighs more than under 'zero'.
import { z } from 'zod';
import { tf } from '../engine/tensor/index.ts';
import type { Strategy } from './strategy.ts';
import { maskedMean, noNeeds, requireInput } from './loss-terms.ts';

const params = z.strictObject({
  threshold: z.number().min(0).max(1).default(0.5).describe('an example is learned iff its full-response P(safe) ≥ threshold'),
  mode: z
    .enum(['zero', 'drop'])
    .default('zero')
    .describe("flagged examples: 'zero' keeps them in the batches with weight 0 (authors' code); 'drop' removes them before training"),
});
export type RsParams = z.output<typeof params>;

/** Whether an example is learned; a missing or NaN verdict fails the comparison, so it is not trusted. */
const passes = (verdict: number, threshold: number): boolean => verdict >= threshold;

export const rs: Strategy<RsParams> = {
  name: 'rs',
  description: 'Static filter: examples the guardrail scores unsafe on the full response get weight 0 (or are dropped); SFT on the rest.',
  paper:
    'Peng et al. 2025, "Shape it Up!" (arXiv 2505.17196), baseline RS: w_i = 1[P(safe | full response) ≥ τ], L = Σ m·w_i·CE / Σ m over every response token (mode drop: remove w_i = 0 examples, then SFT).',
  params,
  needs: () => ({ ...noNeeds, verdict: true }),
  filter: (examples, { threshold, mode }) => {
    const flagged = examples.filter((e) => !passes(e.verdict, threshold)).length;
    if (mode === 'zero') return { keep: examples.map(() => true), dropped: flagged };
    return { keep: examples.map((e) => passes(e.verdict, threshold)), dropped: flagged };
  },
  // The same loss serves both modes: after 'drop' every example in a batch passes, and w_i ≡ 1 is SFT.
  loss: (inputs, { threshold }) =>
    tf.tidy(() => {
      const verdicts = requireInput(inputs, 'verdicts', 'rs');
      // NaN ≥ τ is false, so an unscored example gets weight 0.
      const w = tf.cast(tf.greaterEqual(verdicts, threshold), 'float32').expandDims(1); // [batch, 1]
      return maskedMean(tf.mul(w, tf.neg(inputs.logp)), inputs.mask);
    }),
};
