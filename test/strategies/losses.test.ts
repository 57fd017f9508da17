// Every strategy's loss on hand-made batches, against sums written out here with plain arithmetic.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import type { LossInputs } from '../../engine/contracts/loss.ts';
import { configureStrategy, strategies, strategyNames } from '../../strategies/index.ts';

// B = 2, T = 4. Example 0: prompt label at t=0, response at 1..3. Example 1: response at 0..2, padding at 3.
// Masked-out positions hold values that would change every loss if they leaked in.
const LOGP = [
  [-9.0, -1.2, -0.1, -2.0],
  [-0.7, -0.3, -1.5, -7.0],
];
const REF = [
  [-0.1, -2.0, -0.3, -1.0],
  [-0.2, -0.3, -2.5, -0.05],
];
const MASK = [
  [0, 1, 1, 1],
  [1, 1, 1, 0],
];
const V = [
  [0.1, 0.8, 0.2, 0.5],
  [1.0, 0.6, 0.0, 0.3],
];
const VERDICTS = [0.25, 0.75];

type Grid = number[][];

/** Σ over mask=1 positions of f(b, t), divided by the number of such positions. */
function handMean(f: (b: number, t: number) => number, mask: Grid = MASK): number {
  let sum = 0;
  let count = 0;
  for (let b = 0; b < mask.length; b++) {
    for (let t = 0; t < mask[b].length; t++) {
      if (mask[b][t] === 1) {
        sum += f(b, t);
        count += 1;
      }
    }
  }
  return sum / count;
}

const k2 = (b: number, t: number) => 0.5 * (LOGP[b][t] - REF[b][t]) ** 2;
const softplus = (x: number) => Math.log(1 + Math.exp(x));

function inputs(overrides: Partial<{ logp: Grid; ref: Grid; mask: Grid; v: Grid; verdicts: number[] }> = {}): LossInputs {
  return {
    logp: tf.tensor2d(overrides.logp ?? LOGP),
    refLogp: tf.tensor2d(overrides.ref ?? REF),
    mask: tf.tensor2d(overrides.mask ?? MASK),
    weights: tf.tensor2d(overrides.v ?? V),
    verdicts: tf.tensor1d(overrides.verdicts ?? VERDICTS),
  };
}

/** Runs a loss inside tidy and returns its value as a number. */
function value(run: () => tf.Scalar): number {
  return tf.tidy(run).arraySync();
}

describe.each(['wasm', 'cpu'])('hand-computed losses (%s)', (backend) => {
  beforeAll(async () => {
    await initBackend(backend);
  });

  it('sft: mean cross-entropy over response tokens', () => {
    const expected = (1.2 + 0.1 + 2.0 + 0.7 + 0.3 + 1.5) / 6;
    expect(value(() => strategies.sft.loss(inputs(), {}))).toBeCloseTo(expected, 5);
  });

  it('rs (mode zero, the default): flagged examples keep their place with weight 0; Σ m counts every response token', () => {
    const { filter } = strategies.rs;
    const verdicts = [{ verdict: 0.25 }, { verdict: 0.75 }, { verdict: 0.5 }, { verdict: Number.NaN }];
    // Nothing is removed; the two flagged examples (0.25, and NaN: an unscored example is not trusted) are counted.
    expect(filter?.(verdicts, { threshold: 0.5, mode: 'zero' })).toEqual({ keep: [true, true, true, true], dropped: 2 });
    // Example 0 (verdict 0.25) is flagged: its 3 response tokens add 0 to the sum but stay in the normaliser (6 tokens).
    const expected = (0.7 + 0.3 + 1.5) / 6;
    expect(value(() => strategies.rs.loss(inputs(), { threshold: 0.5, mode: 'zero' }))).toBeCloseTo(expected, 5);
    // A NaN verdict weighs 0 too; at threshold 0.2 both examples are learned and the loss is SFT's.
    expect(value(() => strategies.rs.loss(inputs({ verdicts: [Number.NaN, 0.75] }), { threshold: 0.5, mode: 'zero' }))).toBeCloseTo(
      expected,
      5,
    );
    const sft = (1.2 + 0.1 + 2.0 + 0.7 + 0.3 + 1.5) / 6;
    expect(value(() => strategies.rs.loss(inputs(), { threshold: 0.2, mode: 'zero' }))).toBeCloseTo(sft, 5);
  });

  it('rs (mode drop): flagged examples are removed, so the kept batch normalises by its own 3 tokens', () => {
    const { filter } = strategies.rs;
    const verdicts = [{ verdict: 0.25 }, { verdict: 0.75 }, { verdict: 0.5 }, { verdict: Number.NaN }];
    expect(filter?.(verdicts, { threshold: 0.5, mode: 'drop' })).toEqual({ keep: [false, true, true, false], dropped: 2 });
    expect(filter?.([{ verdict: 0.25 }, { verdict: 0.75 }], { threshold: 0.2, mode: 'drop' })).toEqual({ keep: [true, true], dropped: 0 });
    // Only example 1 reaches the loop: its response tokens 0..2 over a normaliser of 3, twice the zero-mode value.
    const kept = inputs({ logp: [LOGP[1]], ref: [REF[1]], mask: [MASK[1]], v: [V[1]], verdicts: [0.75] });
    expect(value(() => strategies.rs.loss(kept, { threshold: 0.5, mode: 'drop' }))).toBeCloseTo((0.7 + 0.3 + 1.5) / 3, 5);
  });

  it('reweight: one weight per example, no divergence term by default', () => {
    const expected = handMean((b, t) => VERDICTS[b] * -LOGP[b][t]);
    expect(expected).toBeCloseTo((0.25 * (1.2 + 0.1 + 2.0) + 0.75 * (0.7 + 0.3 + 1.5)) / 6, 12);
    expect(value(() => strategies.reweight.loss(inputs(), { reference: false, lambda: 0.5 }))).toBeCloseTo(expected, 5);
  });

  it('reweight with reference: adds (1 − w)·λ·k2', () => {
    const expected = handMean((b, t) => VERDICTS[b] * -LOGP[b][t] + (1 - VERDICTS[b]) * 0.7 * k2(b, t));
    expect(value(() => strategies.reweight.loss(inputs(), { reference: true, lambda: 0.7 }))).toBeCloseTo(expected, 5);
  });

  it('star-dss (k2): Σ m·[v·CE + (1 − v)·λ·½(logp − ref)²] / Σ m', () => {
    // Written out term by term for the six response tokens, λ = 0.5.
    const terms = [
      0.8 * 1.2 + 0.2 * 0.5 * 0.5 * 0.8 ** 2,
      0.2 * 0.1 + 0.8 * 0.5 * 0.5 * 0.2 ** 2,
      0.5 * 2.0 + 0.5 * 0.5 * 0.5 * 1.0 ** 2,
      1.0 * 0.7 + 0.0,
      0.6 * 0.3 + 0.4 * 0.5 * 0.5 * 0 ** 2,
      0.0 * 1.5 + 1.0 * 0.5 * 0.5 * 1.0 ** 2,
    ];
    const expected = terms.reduce((a, b) => a + b) / 6;
    expect(value(() => strategies['star-dss'].loss(inputs(), { lambda: 0.5, divergence: 'k2' }))).toBeCloseTo(expected, 5);
    const expected2 = handMean((b, t) => V[b][t] * -LOGP[b][t] + (1 - V[b][t]) * 2 * k2(b, t));
    expect(value(() => strategies['star-dss'].loss(inputs(), { lambda: 2, divergence: 'k2' }))).toBeCloseTo(expected2, 5);
  });

  it('deep-token: β by response-token index within each example (defaults 0.5, 2, 2, ...)', () => {
    // Example 0's response starts at position 1, example 1's at 0: both first response tokens use β = 0.5.
    const beta = [
      [NaN, 0.5, 2, 2],
      [0.5, 2, 2, NaN],
    ];
    const expected = handMean((b, t) => (2 / beta[b][t]) * softplus(beta[b][t] * (REF[b][t] - LOGP[b][t])));
    const params = { betaFirst: 0.5, betaEarly: 2, earlyTokens: 5, betaLate: 0.1 };
    expect(value(() => strategies['deep-token'].loss(inputs(), params))).toBeCloseTo(expected, 5);
  });

  it('deep-token: late β after earlyTokens, and a response with a gap in its mask', () => {
    const mask = [
      [1, 0, 1, 1],
      [0, 0, 1, 1],
    ];
    // Response-token indices: example 0 → 1, -, 2, 3; example 1 → -, -, 1, 2. earlyTokens = 2.
    const beta = [
      [1, NaN, 3, 0.1],
      [NaN, NaN, 1, 3],
    ];
    const expected = handMean((b, t) => (2 / beta[b][t]) * softplus(beta[b][t] * (REF[b][t] - LOGP[b][t])), mask);
    const params = { betaFirst: 1, betaEarly: 3, earlyTokens: 2, betaLate: 0.1 };
    expect(value(() => strategies['deep-token'].loss(inputs({ mask }), params))).toBeCloseTo(expected, 5);
  });

  it('kl-only (k2): Σ m·λ·½(logp − ref)² / Σ m', () => {
    const expected = (0.5 * (0.8 ** 2 + 0.2 ** 2 + 1.0 ** 2 + 0.5 ** 2 + 0 + 1.0 ** 2)) / 6;
    expect(value(() => strategies['kl-only'].loss(inputs(), { lambda: 1, divergence: 'k2' }))).toBeCloseTo(expected, 5);
    expect(value(() => strategies['kl-only'].loss(inputs(), { lambda: 3, divergence: 'k2' }))).toBeCloseTo(3 * expected, 5);
  });
});

// Full-vocabulary KL on hand-made 3-word rows.
const LOGITS = [
  [
    [2, 0, -1],
    [0.5, 0.5, 0],
    [1, 2, 3],
    [0, 0, 0],
  ],
  [
    [-1, 1, 0],
    [3, 0, 0],
    [0, -2, 1],
    [4, 1, 1],
  ],
];
const REF_LOGITS = [
  [
    [0, 0, 0],
    [1, 0, -1],
    [1, 2, 3],
    [2, 0, 1],
  ],
  [
    [0, 1, 2],
    [1, 1, 0],
    [2, -1, 0],
    [0, 0, 5],
  ],
];
const LABELS = [
  [0, 1, 2, 0],
  [1, 0, 2, 2],
];

const logSoftmaxRow = (row: number[]) => {
  const logZ = Math.log(row.reduce((s, x) => s + Math.exp(x), 0));
  return row.map((x) => x - logZ);
};
const LP = LOGITS.map((rows) => rows.map(logSoftmaxRow));
const REF_LP = REF_LOGITS.map((rows) => rows.map(logSoftmaxRow));
const klAt = (b: number, t: number) => LP[b][t].reduce((s, lp, v) => s + Math.exp(lp) * (lp - REF_LP[b][t][v]), 0);
const klLogp = LP.map((rows, b) => rows.map((row, t) => row[LABELS[b][t]]));
const klRef = REF_LP.map((rows, b) => rows.map((row, t) => row[LABELS[b][t]]));

function klInputs(): LossInputs {
  return {
    ...inputs({ logp: klLogp, ref: klRef }),
    logProbs: tf.tensor3d(LP),
    refLogProbs: tf.tensor3d(REF_LP),
  };
}

describe('full-vocabulary KL divergence', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('the hand rows are sane: identical rows have KL 0, different rows positive', () => {
    expect(klAt(0, 2)).toBeCloseTo(0, 12);
    expect(klAt(0, 0)).toBeGreaterThan(0.1);
  });

  it('kl-only (kl) = Σ m·λ·Σ_v p·(log p − log q) / Σ m', () => {
    const expected = handMean(klAt);
    expect(value(() => strategies['kl-only'].loss(klInputs(), { lambda: 1, divergence: 'kl' }))).toBeCloseTo(expected, 5);
    expect(value(() => strategies['kl-only'].loss(klInputs(), { lambda: 0.25, divergence: 'kl' }))).toBeCloseTo(0.25 * expected, 5);
  });

  it('star-dss (kl) mixes CE at the label with the full-row KL', () => {
    const expected = handMean((b, t) => V[b][t] * -klLogp[b][t] + (1 - V[b][t]) * 0.5 * klAt(b, t));
    expect(value(() => strategies['star-dss'].loss(klInputs(), { lambda: 0.5, divergence: 'kl' }))).toBeCloseTo(expected, 5);
  });
});

describe('special cases', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  const sftValue = () => value(() => strategies.sft.loss(inputs(), {}));
  const ones = [
    [1, 1, 1, 1],
    [1, 1, 1, 1],
  ];
  const zeros = [
    [0, 0, 0, 0],
    [0, 0, 0, 0],
  ];

  it('star-dss with v ≡ 1 equals sft (both divergences)', () => {
    for (const divergence of ['k2', 'kl'] as const) {
      const loss = value(() =>
        strategies['star-dss'].loss({ ...klInputs(), logp: tf.tensor2d(LOGP), weights: tf.tensor2d(ones) }, { lambda: 0.5, divergence }),
      );
      expect(loss).toBeCloseTo(sftValue(), 5);
    }
  });

  it('star-dss with v ≡ 0 equals λ·kl-only (kl-only at its default λ = 1)', () => {
    const klDefaults = strategies['kl-only'].params.parse({});
    expect(klDefaults.lambda).toBe(1);
    for (const divergence of ['k2', 'kl'] as const) {
      const base = divergence === 'kl' ? klInputs() : inputs();
      const star = value(() => strategies['star-dss'].loss({ ...base, weights: tf.tensor2d(zeros) }, { lambda: 0.3, divergence }));
      const kl = value(() => strategies['kl-only'].loss(base, { ...klDefaults, divergence }));
      expect(kl).toBeGreaterThan(0.05);
      expect(star).toBeCloseTo(0.3 * kl, 5);
    }
  });

  it('rs with every verdict ≥ threshold keeps everything and its loss equals sft', () => {
    const params = strategies.rs.params.parse({});
    expect(strategies.rs.filter?.([{ verdict: 0.5 }, { verdict: 0.99 }, { verdict: 1 }], params)).toEqual({
      keep: [true, true, true],
      dropped: 0,
    });
    expect(value(() => strategies.rs.loss(inputs({ verdicts: [0.5, 0.99] }), params))).toBeCloseTo(sftValue(), 6);
  });

  it('reweight with every verdict 1 equals sft; with verdict 0 and a reference it equals λ·kl-only', () => {
    expect(value(() => strategies.reweight.loss(inputs({ verdicts: [1, 1] }), { reference: true, lambda: 0.5 }))).toBeCloseTo(
      sftValue(),
      5,
    );
    const anchored = value(() => strategies.reweight.loss(inputs({ verdicts: [0, 0] }), { reference: true, lambda: 0.4 }));
    const kl = value(() => strategies['kl-only'].loss(inputs(), { lambda: 1, divergence: 'k2' }));
    expect(anchored).toBeCloseTo(0.4 * kl, 5);
  });

  it('padding that holds NaN or -Infinity does not reach any loss', () => {
    const logp = [
      [Number.NaN, -1.2, -0.1, -2.0],
      [-0.7, -0.3, -1.5, Number.NEGATIVE_INFINITY],
    ];
    for (const name of strategyNames) {
      const strategy = configureStrategy(name);
      const clean = value(() => strategy.loss(inputs()));
      expect(
        value(() => strategy.loss(inputs({ logp }))),
        name,
      ).toBeCloseTo(clean, 5);
    }
  });
});
