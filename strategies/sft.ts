// SFT: plain supervised finetuning, the "no shaping" baseline of Peng et al. 2025 (docs/method.md §5).
// Equation: L = Σ m·(−log π_θ(y_t)) / Σ m, the mean cross-entropy over response tokens
// (the STAR-DSS loss of docs/method.md §4 with v ≡ 1).
import { z } from 'zod';
import { tf } from '../engine/tensor/index.ts';
import type { Strategy } from './strategy.ts';
import { maskedMean, noNeeds } from './loss-terms.ts';

const params = z.strictObject({});
export type SftParams = z.output<typeof params>;

export const sft: Strategy<SftParams> = {
  name: 'sft',
  description: 'Plain finetuning: mean cross-entropy over response tokens, no safety shaping.',
  paper: 'Peng et al. 2025, "Shape it Up!" (arXiv 2505.17196), baseline SFT: L = Σ m·CE / Σ m (STAR-DSS with v ≡ 1).',
  params,
  needs: () => noNeeds,
  loss: (inputs) => tf.tidy(() => maskedMean(tf.neg(inputs.logp), inputs.mask)),
};
