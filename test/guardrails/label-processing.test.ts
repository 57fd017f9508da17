// Label processing: P(safe) from fixed logits under the paper formula and the authors' processed scores
// (temperature, then top-k, then top-p, then renormalise), against numbers worked out by hand.
import { describe, expect, it } from 'vitest';
import {
  checkLabelProcessing,
  labelProcessingId,
  labelSettingName,
  labelSettings,
  processedPSafe,
  resolveLabelProcessing,
  type LabelProcessing,
} from '../../guardrails/label-processing.ts';
import { Rng } from '../../engine/random.ts';

const { paper, official } = labelSettings;
const sigmoid = (d: number): number => 1 / (1 + Math.exp(-d));
const SAFE = 0;
const UNSAFE = 1;

describe('processedPSafe with fixed logits', () => {
  it('paper formula: σ(ℓ_safe − ℓ_unsafe), whatever the other tokens', () => {
    // σ(2.0 − 1.5) = 1 / (1 + e^−0.5) = 0.622459
    expect(processedPSafe([2.0, 1.5, 1.0, 0.0, -1.0], SAFE, UNSAFE, paper)).toBeCloseTo(0.6224593, 6);
    expect(processedPSafe([2.0, 1.5, 9.0], SAFE, UNSAFE, paper)).toBeCloseTo(0.6224593, 6);
  });

  it('official, exactly 1: top-p removes the unsafe label', () => {
    // Logits 2, 1.5, 1, 0, −1 over temperature 0.2 → 10, 7.5, 5, 0, −5; softmax 0.91838, 0.07539, 0.00619,
    // 0.00004, 0.0000003. Ascending cumulative mass: −5 → 0.0000003, 0 → 0.00004, 5 → 0.00623, unsafe → 0.08162,
    // safe → 1. Everything up to and including unsafe is ≤ 1 − 0.9 = 0.1 and is removed; only safe remains.
    expect(processedPSafe([2.0, 1.5, 1.0, 0.0, -1.0], SAFE, UNSAFE, official)).toBe(1);
  });

  it('official, exactly 0: top-p removes the safe label', () => {
    // Logits 0 (safe), 1 (unsafe), −1, −2 → tempered 0, 5, −5, −10: softmax 0.00669, 0.99326, 0.00005, 0.0000003.
    // Ascending cumulative mass at safe: 0.0000003 + 0.00005 + 0.00669 = 0.00674 ≤ 0.1: removed.
    expect(processedPSafe([0.0, 1.0, -1.0, -2.0], SAFE, UNSAFE, official)).toBe(0);
  });

  it('official with both labels kept: σ((ℓ_safe − ℓ_unsafe) / 0.2), the renormalised pair', () => {
    // Logits 1.0 (safe), 1.2 (unsafe), 1.1, −3 → tempered 5, 6, 5.5, −15: softmax 0.18632, 0.50648, 0.30720, ~0.
    // Ascending cumulative: −15 → 0.0000000004 (removed), safe → 0.18632, 1.1 → 0.49352, unsafe → 1: both labels
    // stay, and p_safe / (p_safe + p_unsafe) = e^5 / (e^5 + e^6) = σ(−1) = 0.268941.
    expect(processedPSafe([1.0, 1.2, 1.1, -3.0], SAFE, UNSAFE, official)).toBeCloseTo(0.2689414, 6);
    expect(processedPSafe([1.0, 1.2, 1.1, -3.0], SAFE, UNSAFE, official)).toBeCloseTo(sigmoid(-0.2 / 0.2), 12);
  });

  it('top-k alone: a label outside the k largest logits is removed; ties with the k-th are kept', () => {
    const topK = (k: number): LabelProcessing => ({ temperature: 1, topK: k, topP: 1 });
    // Logits safe 3, unsafe 2.9, 4, 0: the 2 largest are 4 and 3, so unsafe (2.9) is removed.
    expect(processedPSafe([3, 2.9, 4, 0], SAFE, UNSAFE, topK(2))).toBe(1);
    // k = 3 keeps both: σ(3 − 2.9) = σ(0.1) = 0.524979.
    expect(processedPSafe([3, 2.9, 4, 0], SAFE, UNSAFE, topK(3))).toBeCloseTo(0.5249792, 6);
    // Logits 2, 2, 3 with k = 2: the 2nd largest is 2, shared by both labels: both kept, σ(0) = 0.5.
    expect(processedPSafe([2, 2, 3], SAFE, UNSAFE, topK(2))).toBe(0.5);
  });

  it('both labels removed: the tempered two-label ratio, σ((ℓ_safe − ℓ_unsafe) / T)', () => {
    // Top-k 1 keeps only the logit 4; neither label survives. T = 1: σ(3 − 2.9) = 0.524979.
    expect(processedPSafe([3, 2.9, 4, 0], SAFE, UNSAFE, { temperature: 1, topK: 1, topP: 1 })).toBeCloseTo(0.5249792, 6);
    // Official: top-k keeps all 4; tempered 15, 14.5, 20, 0 give the safe label e^15 / (e^20 + e^15 + e^14.5) = 0.0067 of
    // the mass, so top-p removes both labels: σ((3 − 2.9) / 0.2) = σ(0.5) = 0.622459.
    expect(processedPSafe([3, 2.9, 4, 0], SAFE, UNSAFE, official)).toBeCloseTo(0.6224593, 6);
  });

  it('a label absent from the candidates (−1) counts as logit −∞', () => {
    expect(processedPSafe([-0.1, -3.0], 0, -1, paper)).toBe(1);
    expect(processedPSafe([-0.1, -3.0], -1, 0, official)).toBe(0);
  });

  it('equals a sort-and-cumsum reference (the logits-processor algorithm) on random full vocabularies', () => {
    const rng = new Rng(11);
    let exact = 0;
    for (let trial = 0; trial < 200; trial++) {
      const vocab = 60 + rng.int(200);
      const logits = Array.from({ length: vocab }, () => rng.normal() * 3);
      const [s, u] = [rng.int(vocab), rng.int(vocab)];
      if (s === u) continue;
      // Make the labels competitive now and then, so every outcome occurs.
      if (trial % 2 === 0) {
        logits[s] = Math.max(...logits) + rng.normal();
        logits[u] = logits[s] - 1.5 * rng.normal();
      }
      const got = processedPSafe(logits, s, u, official);
      const want = reference(logits, s, u, official);
      if (got === 0 || got === 1) exact++;
      expect(got).toBeCloseTo(want, 12);
    }
    expect(exact).toBeGreaterThan(0);
  });
});

/** The processors as written in the usual way: divide, sort, threshold, cumulative sums, mask, then the label ratio. */
function reference(logits: number[], s: number, u: number, p: LabelProcessing): number {
  const scaled = logits.map((l) => l / p.temperature);
  const kth = [...scaled].sort((a, b) => b - a)[Math.min(p.topK, scaled.length) - 1];
  let masked = scaled.map((x) => (x < kth ? Number.NEGATIVE_INFINITY : x));
  const order = masked.map((x, i) => ({ x, i })).sort((a, b) => a.x - b.x || a.i - b.i);
  const max = Math.max(...masked);
  const probs = order.map(({ x }) => Math.exp(x - max));
  const total = probs.reduce((a, b) => a + b, 0);
  let cumulative = 0;
  const removed = new Set<number>();
  order.forEach(({ i }, j) => {
    cumulative += probs[j] / total;
    if (cumulative <= 1 - p.topP && j < order.length - 1) removed.add(i);
  });
  masked = masked.map((x, i) => (removed.has(i) ? Number.NEGATIVE_INFINITY : x));
  const [ps, pu] = [Math.exp(masked[s] - max), Math.exp(masked[u] - max)];
  if (ps + pu === 0) return sigmoid(scaled[s] - scaled[u]);
  return ps / (ps + pu);
}

describe('label settings', () => {
  it('official is temperature 0.2, top-k 50, top-p 0.9; numbers override a named setting', () => {
    expect(resolveLabelProcessing()).toEqual({ temperature: 1, topK: 0, topP: 1 });
    expect(resolveLabelProcessing({ labelSetting: 'official' })).toEqual({ temperature: 0.2, topK: 50, topP: 0.9 });
    expect(resolveLabelProcessing({ labelSetting: 'official', labelTopK: 20 })).toEqual({ temperature: 0.2, topK: 20, topP: 0.9 });
    expect(resolveLabelProcessing({ labelTemperature: 0.5 })).toEqual({ temperature: 0.5, topK: 0, topP: 1 });
  });

  it('names settings and keeps the paper formula out of guardrail ids', () => {
    expect(labelSettingName(paper)).toBe('paper');
    expect(labelSettingName({ temperature: 0.2, topK: 50, topP: 0.9 })).toBe('official');
    expect(labelSettingName({ temperature: 0.5, topK: 10, topP: 0.8 })).toBe('T0.5-k10-p0.8');
    expect(labelProcessingId(undefined)).toEqual({});
    expect(labelProcessingId({ temperature: 1, topK: 0, topP: 1 })).toEqual({});
    expect(labelProcessingId(official)).toEqual({ labelProcessing: { temperature: 0.2, topK: 50, topP: 0.9 } });
  });

  it('rejects numbers out of range in one line', () => {
    expect(() => checkLabelProcessing({ temperature: 0, topK: 0, topP: 1 }, 'guard')).toThrow(
      'guard: label processing temperature must be > 0, got 0',
    );
    expect(() => checkLabelProcessing({ temperature: 1, topK: 1.5, topP: 1 }, 'guard')).toThrow(/topK must be a whole number/);
    expect(() => checkLabelProcessing({ temperature: 1, topK: 0, topP: 0 }, 'guard')).toThrow(/topP must be in \(0, 1\]/);
  });
});
