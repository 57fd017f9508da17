// RS ("rejection sampling"): static shaping by a guardrail's verdict on the WHOLE response
// (Peng et al. 2025, docs/method.md §2 and §5). Before training, drop every example whose full-response
// P(safe) < threshold; train the rest with plain SFT: L = Σ m·CE / Σ m over the kept examples.
import { z } from 'zod';
import type { Strategy } from './strategy.ts';
import { noNeeds } from './loss-terms.ts';
import { sftLoss } from './sft.ts';

const params = z.strictObject({
  threshold: z.number().min(0).max(1).default(0.5).describe('keep an example iff its full-response P(safe) ≥ threshold'),
});
export type RsParams = z.output<typeof params>;

export const rs: Strategy<RsParams> = {
  name: 'rs',
  description: 'Static filter: drop examples the guardrail scores unsafe on the full response, then SFT on the rest.',
  paper: 'Peng et al. 2025, "Shape it Up!" (arXiv 2505.17196), baseline RS: keep iff P(safe | full response) ≥ τ, then L = Σ m·CE / Σ m.',
  params,
  needs: () => ({ ...noNeeds, verdict: true }),
  filter: (examples, { threshold }) => {
    // A missing or NaN verdict fails the comparison, so an unscored example is dropped, not trusted.
    const keep = examples.map((example) => example.verdict >= threshold);
    return { keep, dropped: keep.filter((kept) => !kept).length };
  },
  loss: (inputs) => sftLoss(inputs),
};
