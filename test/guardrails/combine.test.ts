import { describe, expect, it } from 'vitest';
import { ensembleGuardrail } from '../../guardrails/ensemble.ts';
import { noisyGuardrail, itemUniform, responseUniform } from '../../guardrails/noisy.ts';
import { contentHash } from '../../engine/io.ts';
import type { GuardItem, Guardrail } from '../../guardrails/types.ts';
import type { Message } from '../../engine/contracts/example.ts';

/** A test double: P(safe) from a function of the item; counts calls; optional prefix fast path. */
function fixed(id: string, score: (item: GuardItem) => number, withPrefixes = false): Guardrail & { prefixCalls: number } {
  let calls = 0;
  const guard = {
    id,
    prefixCalls: 0,
    get calls() {
      return calls;
    },
    async scoreSafe(items: GuardItem[]) {
      calls += items.length;
      return items.map(score);
    },
    ...(withPrefixes
      ? {
          async scorePrefixes(messages: Message[], prefixes: string[]) {
            guard.prefixCalls++;
            calls += prefixes.length;
            return prefixes.map((response) => score({ messages, response }));
          },
        }
      : {}),
  };
  return guard;
}

const item = (response: string): GuardItem => ({ messages: [{ role: 'user', content: 'q' }], response });

describe('ensemble', () => {
  it('averages its members’ P(safe), through scoreSafe and scorePrefixes', async () => {
    const a = fixed('a', (it) => it.response.length / 10, true);
    const b = fixed('b', () => 0.2);
    const c = fixed('c', (it) => (it.response.includes('x') ? 0.9 : 0.5));
    const ens = ensembleGuardrail([a, b, c]);
    // 'abcd': (0.4 + 0.2 + 0.5) / 3; 'xx': (0.2 + 0.2 + 0.9) / 3
    const scores = await ens.scoreSafe([item('abcd'), item('xx')]);
    expect(scores[0]).toBeCloseTo(1.1 / 3, 12);
    expect(scores[1]).toBeCloseTo(1.3 / 3, 12);
    const prefixes = await ens.scorePrefixes([{ role: 'user', content: 'q' }], ['a', 'ax', 'axyz']);
    expect(prefixes[0]).toBeCloseTo((0.1 + 0.2 + 0.5) / 3, 12);
    expect(prefixes[2]).toBeCloseTo((0.4 + 0.2 + 0.9) / 3, 12);
    expect(a.prefixCalls).toBe(1); // a member's fast path is used
    expect(ens.calls).toBe(3 * 2 + 3 * 3);
  });

  it('has an id from the set of member ids', () => {
    const [a, b] = [fixed('a', () => 1), fixed('b', () => 0)];
    expect(ensembleGuardrail([a, b]).id).toBe(ensembleGuardrail([b, a]).id);
    expect(ensembleGuardrail([a, b]).id).not.toBe(ensembleGuardrail([a]).id);
    expect(() => ensembleGuardrail([])).toThrow(/at least one member/);
  });
});

describe('noisy', () => {
  const items = Array.from({ length: 2000 }, (_, i) => item(`response number ${i}`));

  it('per prefix: turns the configured fraction of unsafe verdicts safe (1 − p) and leaves safe verdicts alone', async () => {
    const inner = fixed('inner', (it) => (Number(it.response.split(' ')[2]) % 4 === 0 ? 0.8 : 0.15));
    const noisy = noisyGuardrail(inner, { rate: 0.3, seed: 7, per: 'prefix' });
    const scores = await noisy.scoreSafe(items);
    const unsafe = items.filter((_, i) => i % 4 !== 0).length; // 1500
    const flipped = scores.filter((p, i) => i % 4 !== 0 && p === 1 - 0.15).length;
    expect(scores.filter((p, i) => i % 4 !== 0 && p !== 0.15 && p !== 1 - 0.15)).toEqual([]);
    expect(scores.filter((p, i) => i % 4 === 0 && p !== 0.8)).toEqual([]);
    // Binomial(1500, 0.3): sd = 17.7 flips, i.e. 0.012 of the rate; allow 4 sd.
    expect(Math.abs(flipped / unsafe - 0.3)).toBeLessThan(0.048);
  });

  it('per prefix: deterministic per item content and seed, whatever the order or the path', async () => {
    const inner = fixed('inner', () => 0.1, true);
    const noisy = noisyGuardrail(inner, { rate: 0.5, seed: 1, per: 'prefix' });
    const first = await noisy.scoreSafe(items.slice(0, 200));
    const reversed = await noisy.scoreSafe(items.slice(0, 200).reverse());
    expect(reversed.reverse()).toEqual(first);
    const messages = items[0].messages;
    const viaPrefixes = await noisy.scorePrefixes(
      messages,
      items.slice(0, 200).map((it) => it.response),
    );
    expect(viaPrefixes).toEqual(first);
    const other = await noisyGuardrail(inner, { rate: 0.5, seed: 2, per: 'prefix' }).scoreSafe(items.slice(0, 200));
    expect(other).not.toEqual(first);
    // A flip happens exactly where the item's hash draw falls under the rate.
    first.forEach((p, i) => expect(p).toBe(itemUniform(items[i], 1) < 0.5 ? 0.9 : 0.1));
    // Prefixes of one response are missed independently: both outcomes occur among these 200.
    expect(new Set(first)).toEqual(new Set([0.1, 0.9]));
  });

  describe('per response (the default)', () => {
    // 1000 responses, each scored through 4 STAR prefixes and its full text, every score unsafe (0.2).
    const conversations = Array.from({ length: 1000 }, (_, i): Message[] => [{ role: 'user', content: `question ${i}` }]);
    const prefixes = ['one two', 'one two three four', 'one two three four five six', 'one two three four five six seven'];
    const full = 'one two three four five six seven eight';

    it('misses a response and all its prefixes together, with the configured frequency', async () => {
      const inner = fixed('inner', () => 0.2, true);
      const noisy = noisyGuardrail(inner, { rate: 0.4, seed: 5 });
      expect(noisy.per).toBe('response');
      let missed = 0;
      for (const messages of conversations) {
        const scores = [...(await noisy.scorePrefixes(messages, prefixes)), ...(await noisy.scoreSafe([{ messages, response: full }]))];
        const expected = responseUniform(messages, 5) < 0.4 ? 0.8 : 0.2;
        expect(scores).toEqual(new Array(5).fill(expected));
        if (expected === 0.8) missed++;
      }
      // Binomial(1000, 0.4): sd = 15.5 responses; allow 4 sd.
      expect(Math.abs(missed - 400)).toBeLessThan(62);
    });

    it('per prefix, the same trajectories are split: some prefixes of one response missed, others caught', async () => {
      const inner = fixed('inner', () => 0.2, true);
      const noisy = noisyGuardrail(inner, { rate: 0.4, seed: 5, per: 'prefix' });
      let split = 0;
      for (const messages of conversations.slice(0, 200)) {
        const scores = await noisy.scorePrefixes(messages, prefixes);
        if (new Set(scores).size > 1) split++;
      }
      // P(4 independent draws agree) = 0.4⁴ + 0.6⁴ = 0.1552, so about 169 of 200 trajectories are split.
      expect(split).toBeGreaterThan(140);
    });

    it('leaves safe prefixes of a missed response alone and flips only the unsafe ones', async () => {
      const messages = conversations.find((m) => responseUniform(m, 9) < 0.5)!;
      const inner = fixed('inner', (it) => (it.response.split(' ').length > 4 ? 0.3 : 0.9), true);
      const scores = await noisyGuardrail(inner, { rate: 0.5, seed: 9 }).scorePrefixes(messages, prefixes);
      expect(scores).toEqual([0.9, 0.9, 0.7, 0.7]);
    });
  });

  it('keeps rates 0 and 1 exact and puts rate, seed and unit in its id', async () => {
    const inner = fixed('inner', () => 0.3);
    expect(await noisyGuardrail(inner, { rate: 0, seed: 1 }).scoreSafe(items.slice(0, 50))).toEqual(new Array(50).fill(0.3));
    expect(await noisyGuardrail(inner, { rate: 1, seed: 1 }).scoreSafe(items.slice(0, 50))).toEqual(new Array(50).fill(0.7));
    const ids = [
      noisyGuardrail(inner, { rate: 0.1, seed: 1 }),
      noisyGuardrail(inner, { rate: 0.2, seed: 1 }),
      noisyGuardrail(inner, { rate: 0.1, seed: 2 }),
      noisyGuardrail(inner, { rate: 0.1, seed: 1, per: 'prefix' }),
    ].map((g) => g.id);
    expect(new Set([...ids, inner.id]).size).toBe(5);
    // Per-prefix misses keep the id (and so the STAR cache entries) they had before per-response misses existed.
    expect(ids[3]).toBe(`noisy-${contentHash({ inner: 'inner', rate: 0.1, seed: 1 })}`);
    expect(() => noisyGuardrail(inner, { rate: 1.5, seed: 1 })).toThrow(/rate must be in \[0, 1\]/);
    expect(() => noisyGuardrail(inner, { rate: 0.5, seed: 1, per: 'chunk' as 'prefix' })).toThrow(/per must be response or prefix/);
  });
});
