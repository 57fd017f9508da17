// One contract over every registry entry (and every enum/boolean variant of its parameters), plus the
// registry's errors and listing.
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { initBackend, oneHot, tf } from '../../engine/tensor/index.ts';
import { Rng } from '../../engine/random.ts';
import type { LossInputs } from '../../engine/contracts/loss.ts';
import { StrategyError, type Strategy } from '../../strategies/strategy.ts';
import { closest, editDistance } from '../../engine/did-you-mean.ts';
import {
  configureStrategy,
  describeStrategies,
  getStrategy,
  parseStrategyParams,
  strategies,
  strategyNames,
  type ConfiguredStrategy,
} from '../../strategies/index.ts';

const B = 2;
const T = 4;
const VOCAB = 5;
const MASK = [
  [0, 1, 1, 1],
  [1, 1, 0, 0],
];
const ZERO_MASK = [
  [0, 0, 0, 0],
  [0, 0, 0, 0],
];

/** Each strategy at its defaults, then with each enum value / boolean flipped (from its own schema). */
function variants(strategy: Strategy<object>): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [{}];
  const properties = z.toJSONSchema(strategy.params, { io: 'input' }).properties ?? {};
  for (const [key, schema] of Object.entries(properties)) {
    if (typeof schema === 'boolean') continue;
    if (schema.enum) for (const v of schema.enum.slice(1)) out.push({ [key]: v });
    if (schema.type === 'boolean') out.push({ [key]: !schema.default });
  }
  return out;
}

const cases = strategyNames.flatMap((name) =>
  variants(strategies[name]).map((raw) => ({ label: `${name} ${JSON.stringify(raw)}`, name, raw })),
);

function randomGrid(rng: Rng, shape: number[], scale: number): number[] {
  return Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * scale);
}

/**
 * Inputs computed from logits the way the loop does (log-softmax rows, label log-probs through a
 * float one-hot), holding ONLY what `needs` asks for, so a strategy that under-declares fails here.
 */
function buildInputs(strategy: ConfiguredStrategy, logits: tf.Tensor3D, refLogits: tf.Tensor3D, mask: number[][], rng: Rng): LossInputs {
  const labels = tf.tensor2d(
    Array.from({ length: B }, () => Array.from({ length: T }, () => rng.int(VOCAB))),
    [B, T],
    'int32',
  );
  const pick = (rows: tf.Tensor3D) => tf.sum(tf.mul(rows, oneHot(labels, VOCAB)), -1) as tf.Tensor2D;
  const logProbs = tf.logSoftmax(logits) as tf.Tensor3D;
  const refLogProbs = tf.logSoftmax(refLogits) as tf.Tensor3D;
  const { needs } = strategy;
  return {
    logp: pick(logProbs),
    mask: tf.tensor2d(mask),
    ...(needs.reference ? { refLogp: pick(refLogProbs) } : {}),
    ...(needs.reference && needs.fullLogProbs ? { refLogProbs } : {}),
    ...(needs.fullLogProbs ? { logProbs } : {}),
    ...(needs.star
      ? {
          weights: tf.tensor2d(
            Array.from({ length: B * T }, () => rng.next()),
            [B, T],
          ),
        }
      : {}),
    ...(needs.verdict ? { verdicts: tf.tensor1d(Array.from({ length: B }, () => 0.1 + 0.8 * rng.next())) } : {}),
  };
}

/** Loss value and d loss / d logits for logits of the given scale. */
function run(strategy: ConfiguredStrategy, scale: number, mask: number[][], seed: string): { loss: number; grad: number[][][] } {
  const rng = new Rng(seed);
  return tf.tidy(() => {
    const logits = tf.tensor3d(randomGrid(rng, [B, T, VOCAB], scale), [B, T, VOCAB]);
    const refLogits = tf.tensor3d(randomGrid(rng, [B, T, VOCAB], scale), [B, T, VOCAB]);
    const inputsRng = new Rng(`${seed}:inputs`);
    const loss = strategy.loss(buildInputs(strategy, logits, refLogits, mask, inputsRng));
    const grad = tf.grad((x: tf.Tensor) =>
      strategy.loss(buildInputs(strategy, x as tf.Tensor3D, refLogits, mask, new Rng(`${seed}:inputs`))),
    )(logits);
    return { loss: loss.arraySync(), grad: grad.arraySync() as number[][][] };
  });
}

describe('strategy contract', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('every registered strategy lives in the file named by its registry key and carries that name', () => {
    expect(strategyNames).toEqual(expect.arrayContaining(['sft', 'rs', 'reweight', 'star-dss', 'deep-token', 'kl-only']));
    for (const name of strategyNames) {
      expect(existsSync(new URL(`../../strategies/${name}.ts`, import.meta.url))).toBe(true);
      const s = strategies[name];
      expect(s.name).toBe(name);
      expect(s.description.length).toBeGreaterThan(20);
      expect(s.paper).toMatch(/\d{4}/);
      expect(s.paper).toMatch(/L =|Eq\./);
    }
  });

  it.each(cases)('$label: defaults parse, needs are booleans', ({ name, raw }) => {
    const strategy = configureStrategy(name, raw);
    expect(strategy.params).toEqual({ ...parseStrategyParams(name, {}), ...raw });
    expect(parseStrategyParams(name, undefined)).toEqual(parseStrategyParams(name, {}));
    for (const flag of Object.values(strategy.needs)) expect(typeof flag).toBe('boolean');
  });

  it.each(cases)('$label: finite loss and zero gradient on masked positions', ({ name, raw }) => {
    const strategy = configureStrategy(name, raw);
    const { loss, grad } = run(strategy, 2, MASK, name);
    expect(Number.isFinite(loss)).toBe(true);
    expect(loss).toBeGreaterThan(0);
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        const row = grad[b][t];
        for (const g of row) expect(Number.isFinite(g)).toBe(true);
        const size = Math.max(...row.map(Math.abs));
        if (MASK[b][t] === 0) expect(size, `masked position b=${b} t=${t}`).toBe(0);
        else expect(size, `response position b=${b} t=${t}`).toBeGreaterThan(1e-6);
      }
    }
  });

  it.each(cases)('$label: very large logits (±1e4) keep loss and gradient finite', ({ name, raw }) => {
    const { loss, grad } = run(configureStrategy(name, raw), 1e4, MASK, `${name}:large`);
    expect(Number.isFinite(loss)).toBe(true);
    expect(grad.flat(2).every(Number.isFinite)).toBe(true);
  });

  it.each(cases)('$label: an all-zero mask gives loss 0 and gradient 0', ({ name, raw }) => {
    const { loss, grad } = run(configureStrategy(name, raw), 2, ZERO_MASK, `${name}:empty`);
    expect(loss).toBe(0);
    expect(grad.flat(2).every((g) => g === 0)).toBe(true);
  });

  it.each(cases)('$label: the loss frees its intermediates', ({ name, raw }) => {
    const strategy = configureStrategy(name, raw);
    tf.tidy(() => {
      const logits = tf.randomNormal([B, T, VOCAB]) as tf.Tensor3D;
      const inputs = buildInputs(strategy, logits, tf.randomNormal([B, T, VOCAB]), MASK, new Rng(name));
      const held = tf.memory().numTensors;
      strategy.loss(inputs).dispose();
      expect(tf.memory().numTensors).toBe(held);
    });
  });

  it.each(strategyNames)('%s: an unknown parameter is rejected with a one-line error', (name) => {
    const error = catchError(() => parseStrategyParams(name, { bogus: 1 }));
    expect(error.code).toBe('INVALID_STRATEGY_PARAMS');
    expect(error.message).toContain(`Strategy '${name}' has no parameter 'bogus'.`);
    expect(error.message).not.toContain('\n');
  });

  it('filters return one decision per example and count every example learned from nothing', () => {
    const examples = [0.9, 0.1, 0.6, 0.3].map((verdict) => ({ verdict }));
    for (const name of strategyNames) {
      const { keep, dropped } = configureStrategy(name).filter(examples);
      expect(keep).toHaveLength(4);
      // Removed examples always count; RS's default also counts the ones it keeps at weight 0.
      expect(dropped).toBeGreaterThanOrEqual(keep.filter((k) => !k).length);
    }
    expect(configureStrategy('sft').filter(examples)).toEqual({ keep: [true, true, true, true], dropped: 0 });
    expect(configureStrategy('rs', { threshold: 0.5 }).filter(examples)).toEqual({ keep: [true, true, true, true], dropped: 2 });
    expect(configureStrategy('rs', { threshold: 0.5, mode: 'drop' }).filter(examples)).toEqual({
      keep: [true, false, true, false],
      dropped: 2,
    });
  });

  it('needs follow the parameters', () => {
    expect(configureStrategy('sft').needs).toEqual({ reference: false, star: false, verdict: false, fullLogProbs: false });
    expect(configureStrategy('star-dss').needs).toEqual({ reference: true, star: true, verdict: false, fullLogProbs: false });
    expect(configureStrategy('star-dss', { divergence: 'kl' }).needs.fullLogProbs).toBe(true);
    expect(configureStrategy('reweight').needs.reference).toBe(false);
    expect(configureStrategy('reweight', { reference: true }).needs.reference).toBe(true);
  });
});

function catchError(fn: () => unknown): StrategyError {
  try {
    fn();
  } catch (error) {
    if (error instanceof StrategyError) return error;
    throw error;
  }
  throw new Error('expected a StrategyError, nothing was thrown');
}

describe('registry errors and listing', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  it('an unknown strategy name suggests the nearest one and lists the rest', () => {
    const error = catchError(() => getStrategy('star-dds'));
    expect(error.code).toBe('UNKNOWN_STRATEGY');
    expect(error.message).toBe(`Unknown strategy 'star-dds'. Did you mean 'star-dss'? Available: ${strategyNames.join(', ')}.`);
    expect(catchError(() => configureStrategy('Deep-Tokens')).message).toContain("Did you mean 'deep-token'?");
    expect(catchError(() => getStrategy('ppo')).message).toBe(`Unknown strategy 'ppo'. Available: ${strategyNames.join(', ')}.`);
    expect(catchError(() => getStrategy('toString')).code).toBe('UNKNOWN_STRATEGY');
  });

  it('bad parameter values name the strategy, the parameter and the fix, on one line', () => {
    const typo = catchError(() => parseStrategyParams('star-dss', { lamda: 0.3 })).message;
    expect(typo).toBe(
      "Strategy 'star-dss' has no parameter 'lamda'. Did you mean 'lambda'? Parameters of 'star-dss': lambda (default 0.5), divergence (default \"k2\").",
    );
    expect(catchError(() => parseStrategyParams('sft', { lambda: 1 })).message).toBe(
      "Strategy 'sft' has no parameter 'lambda'. 'sft' takes no parameters.",
    );
    expect(catchError(() => parseStrategyParams('star-dss', { lambda: 'big' })).message).toBe(
      "Strategy 'star-dss': parameter 'lambda' must be a number, got \"big\". Fix: set 'lambda' to a number or leave it out for the default 0.5.",
    );
    expect(catchError(() => parseStrategyParams('kl-only', { divergence: 'js' })).message).toContain(
      'parameter \'divergence\' must be one of "k2", "kl", got "js"',
    );
    expect(catchError(() => parseStrategyParams('rs', { threshold: 1.5 })).message).toContain(
      "parameter 'threshold' must be a number ≤ 1, got 1.5",
    );
    expect(catchError(() => parseStrategyParams('deep-token', { earlyTokens: 2.5 })).message).toContain(
      "'earlyTokens' must be a whole number",
    );
    expect(catchError(() => parseStrategyParams('rs', 'strict')).message).toContain(
      'Strategy \'rs\' parameters must be an object, got "strict".',
    );
    expect(parseStrategyParams('star-dss', { lambda: 0.2 })).toEqual({ lambda: 0.2, divergence: 'k2' });
  });

  it('a missing input or a shape mismatch is a typed error naming the strategy', () => {
    const logp = tf.zeros([2, 3]) as tf.Tensor2D;
    const mask = tf.ones([2, 3]) as tf.Tensor2D;
    const wide = tf.ones([2, 4]) as tf.Tensor2D;
    const missing = catchError(() => configureStrategy('star-dss').loss({ logp, mask, refLogp: logp }));
    const shape = catchError(() => configureStrategy('sft').loss({ logp, mask: wide }));
    tf.dispose([logp, mask, wide]);
    expect(missing.code).toBe('MISSING_LOSS_INPUT');
    expect(missing.message).toContain("Strategy 'star-dss' needs 'weights'");
    expect(shape.code).toBe('LOSS_INPUT_SHAPE');
    expect(shape.message).toContain("'logp' has shape [2, 3] but 'mask' has [2, 4]");
  });

  it('describeStrategies lists every strategy with typed parameters and defaults', () => {
    const rows = describeStrategies();
    expect(rows.map((r) => r.name)).toEqual(strategyNames);
    const star = rows.find((r) => r.name === 'star-dss');
    expect(star?.params).toEqual([
      { name: 'lambda', type: 'number ≥ 0', default: 0.5, description: expect.stringContaining('λ') },
      { name: 'divergence', type: '"k2" | "kl"', default: 'k2', description: expect.stringContaining('k2') },
    ]);
    expect(rows.find((r) => r.name === 'rs')?.params[0]).toMatchObject({ name: 'threshold', type: 'number ≥ 0 ≤ 1', default: 0.5 });
    expect(rows.find((r) => r.name === 'deep-token')?.params.map((p) => [p.name, p.default])).toEqual([
      ['betaFirst', 0.5],
      ['betaEarly', 2],
      ['earlyTokens', 5],
      ['betaLate', 0.1],
    ]);
    expect(rows.find((r) => r.name === 'sft')?.params).toEqual([]);
  });
});

describe('suggestions and docs', () => {
  it('edit distance counts insertions, deletions and substitutions', () => {
    expect(editDistance('star-dds', 'star-dss')).toBe(1);
    expect(editDistance('kitten', 'sitting')).toBe(3);
    expect(editDistance('', 'rs')).toBe(2);
    expect(closest('lamda', ['lambda', 'divergence'])).toBe('lambda');
    expect(closest('ppo', ['sft', 'rs', 'reweight'])).toBeUndefined();
  });

  it("the README's worked example is kl-only.ts verbatim", () => {
    const readme = readFileSync(new URL('../../strategies/README.md', import.meta.url), 'utf8');
    const source = readFileSync(new URL('../../strategies/kl-only.ts', import.meta.url), 'utf8');
    const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
    expect(blocks).toContain(source);
  });
});
