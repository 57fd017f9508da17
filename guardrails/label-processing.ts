// How a guardrail's two label scores become P(safe) (docs/method.md §3, guardrails/README.md "Label processing").
//
// paper (the default): P(safe) = σ(ℓ_safe − ℓ_unsafe) from the raw logits, the softmax restricted to the two
//   labels, as the paper writes it.
// official: what the authors' code reads. Their guardrail call inherits the generation settings temperature 0.2,
//   top-k 50, top-p 0.9 and reads the *processed* scores, so P(safe) = p_safe / (p_safe + p_unsafe) of the
//   distribution after, in Hugging Face's logits-processor order, temperature, then top-k, then top-p, then
//   renormalisation. While both labels survive that is σ((ℓ_safe − ℓ_unsafe) / T); when top-k or top-p removes
//   one label it is exactly 0 or 1.
// Any temperature / top-k / top-p can be set; temperature 1, top-k 0 (off) and top-p 1 (off) is the paper formula.
//
// When BOTH labels are removed (the guardrail would generate some third token), the processed distribution says
// nothing about them: we then return the tempered two-label ratio σ((ℓ_safe − ℓ_unsafe) / T), the value the
// filters cut off, rather than 0/0.
import { z } from 'zod';
import { pSafe } from './presets.ts';

export interface LabelProcessing {
  /** Divides the logits before anything else; > 0. */
  temperature: number;
  /** Keep the tokens whose logit is at least the k-th largest; 0 = off. */
  topK: number;
  /** Keep the smallest set of most likely tokens whose probability reaches topP; 1 = off. */
  topP: number;
}

export const labelSettings = {
  paper: { temperature: 1, topK: 0, topP: 1 },
  official: { temperature: 0.2, topK: 50, topP: 0.9 },
} as const satisfies Record<string, LabelProcessing>;

export type LabelSettingName = keyof typeof labelSettings;
export const labelSettingNames = Object.keys(labelSettings) as LabelSettingName[];

/**
 * The user-facing settings, shared by sweep configs (fields of a guardrail entry) and `star-dss star`'s
 * --label-* flags: a named setting, and numbers that override its fields.
 */
export const labelProcessingSettings = z.strictObject({
  /** paper (raw logits, the default) or official (temperature 0.2, top-k 50, top-p 0.9). */
  labelSetting: z.enum(labelSettingNames as [LabelSettingName, ...LabelSettingName[]]).optional(),
  labelTemperature: z.number().positive().optional(),
  labelTopK: z.number().int().min(0).optional(),
  labelTopP: z.number().gt(0).max(1).optional(),
});
export type LabelProcessingSettings = z.output<typeof labelProcessingSettings>;

/** The processing of a named setting with any explicit numbers laid over it. */
export function resolveLabelProcessing(settings: LabelProcessingSettings = {}): LabelProcessing {
  const base = labelSettings[settings.labelSetting ?? 'paper'];
  return {
    temperature: settings.labelTemperature ?? base.temperature,
    topK: settings.labelTopK ?? base.topK,
    topP: settings.labelTopP ?? base.topP,
  };
}

export function isPaperFormula(p: LabelProcessing): boolean {
  return p.temperature === 1 && p.topK === 0 && p.topP === 1;
}

/** `paper`, `official`, or the numbers (`T0.5-k10-p0.8`), for labels in results and reports. */
export function labelSettingName(p: LabelProcessing): string {
  const named = labelSettingNames.find((name) => {
    const s = labelSettings[name];
    return s.temperature === p.temperature && s.topK === p.topK && s.topP === p.topP;
  });
  return named ?? `T${p.temperature}-k${p.topK}-p${p.topP}`;
}

/** What a guardrail adds to its content id: nothing for the paper formula (ids from before stay valid). */
export function labelProcessingId(p: LabelProcessing | undefined): { labelProcessing?: LabelProcessing } {
  return p === undefined || isPaperFormula(p) ? {} : { labelProcessing: { temperature: p.temperature, topK: p.topK, topP: p.topP } };
}

/** A one-line error for processing numbers out of range (library callers bypass the zod settings). */
export function checkLabelProcessing(p: LabelProcessing, where: string): LabelProcessing {
  const problem = !(p.temperature > 0)
    ? `temperature must be > 0, got ${p.temperature}`
    : !(Number.isInteger(p.topK) && p.topK >= 0)
      ? `topK must be a whole number ≥ 0, got ${p.topK}`
      : !(p.topP > 0 && p.topP <= 1)
        ? `topP must be in (0, 1], got ${p.topP}`
        : undefined;
  if (problem) throw new RangeError(`${where}: label processing ${problem}`);
  return p;
}

/** The k-th largest of `values` (k ≥ 1, k ≤ length). */
function kthLargest(values: ArrayLike<number>, k: number): number {
  const sorted = Float64Array.from(values).sort(); // ascending; NaN sorts last
  return sorted[sorted.length - k];
}

/**
 * P(safe) from one position's scores over a candidate set: the whole vocabulary's logits (LM guardrail), or the
 * top logprobs a server returned (HTTP guardrail; logprobs differ from logits by a constant, which cancels).
 * `safe` and `unsafe` index `values`; -1 means the label is not among the candidates, i.e. logit −∞.
 */
export function processedPSafe(values: ArrayLike<number>, safe: number, unsafe: number, p: LabelProcessing): number {
  const at = (i: number) => (i >= 0 ? values[i] : Number.NEGATIVE_INFINITY);
  const [ls, lu] = [at(safe), at(unsafe)];
  if (isPaperFormula(p)) return pSafe(ls, lu);
  const n = values.length;
  const t = p.temperature;
  // 1. Top-k (temperature > 0 keeps the order, so it can be applied to the raw values).
  const kth = p.topK > 0 && p.topK < n ? kthLargest(values, p.topK) : Number.NEGATIVE_INFINITY;
  const survivesK = (i: number) => i >= 0 && values[i] >= kth;
  let keepSafe = survivesK(safe);
  let keepUnsafe = survivesK(unsafe);
  // 2. Top-p over the survivors of top-k, on the tempered values: sorted ascending (ties by index), a token is
  //    removed when the probability of it and everything below it is ≤ 1 − topP; the most likely token stays.
  if (p.topP < 1 && (keepSafe || keepUnsafe)) {
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < n; j++) if (values[j] >= kth && values[j] > max) max = values[j];
    let total = 0;
    for (let j = 0; j < n; j++) if (values[j] >= kth) total += Math.exp((values[j] - max) / t);
    // The last token in that order has everything at or below it (ratio 1 > 1 − topP), so one token always stays.
    const removedByP = (i: number): boolean => {
      const v = values[i];
      let below = 0;
      for (let j = 0; j < n; j++) {
        const w = values[j];
        if (w >= kth && (w < v || (w === v && j <= i))) below += Math.exp((w - max) / t);
      }
      return below / total <= 1 - p.topP;
    };
    if (keepSafe) keepSafe = !removedByP(safe);
    if (keepUnsafe) keepUnsafe = !removedByP(unsafe);
  }
  // 3. Renormalise and compare the two labels.
  if (keepSafe && !keepUnsafe) return 1;
  if (keepUnsafe && !keepSafe) return 0;
  return pSafe(ls / t, lu / t);
}
