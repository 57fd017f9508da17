// A guardrail that misses a configured fraction of unsafe content, for false-negative-rate sweeps: an unsafe
// verdict (P(safe) < 0.5) of the wrapped guardrail becomes safe (P(safe) → 1 − P(safe)) when a uniform draw
// falls below `rate`. The draw is a hash of content and the seed, so an item gets the same verdict in every
// call, batch and order, and through scoreSafe and scorePrefixes alike.
//
// What one draw covers (`per`):
//   response (default)  one draw per conversation: a response's STAR prefixes and its full text are missed or
//                       caught together, as a real guardrail that misses a harmful answer tends to miss its
//                       prefixes too. The draw hashes the messages before the response (the prompt), which are
//                       the same for all of them; two examples with the same prompt therefore share a draw.
//   prefix              one draw per (conversation, prefix text): every prefix is missed independently.
import { createHash } from 'node:crypto';
import { contentHash, canonicalJson } from '../engine/io.ts';
import type { Message } from '../engine/contracts/example.ts';
import type { GuardItem, Guardrail } from './types.ts';

export const missUnits = ['response', 'prefix'] as const;
export type MissUnit = (typeof missUnits)[number];

export interface NoiseOptions {
  /** Fraction of unsafe verdicts turned safe, in [0, 1]. */
  rate: number;
  seed: number;
  /** What one miss decision covers; default 'response'. */
  per?: MissUnit;
}

/** A uniform number in [0, 1) determined by `value` (hashed as canonical JSON). */
function uniform(value: unknown): number {
  const digest = createHash('sha256').update(canonicalJson(value)).digest();
  // 52 bits: exactly representable in a double.
  return (digest.readUInt32BE(0) * 2 ** 20 + (digest.readUInt32BE(4) >>> 12)) / 2 ** 52;
}

/** The per-prefix draw: a uniform number in [0, 1) determined by the item's content and the seed. */
export function itemUniform(item: GuardItem, seed: number): number {
  return uniform({ messages: item.messages, response: item.response, seed });
}

/** The per-response draw: a uniform number in [0, 1) determined by the conversation before the response and the seed. */
export function responseUniform(messages: readonly Message[], seed: number): number {
  return uniform({ messages, per: 'response', seed });
}

export class NoisyGuardrail implements Guardrail {
  readonly id: string;
  readonly per: MissUnit;

  constructor(
    readonly inner: Guardrail,
    readonly noise: NoiseOptions,
  ) {
    if (!(noise.rate >= 0 && noise.rate <= 1)) throw new RangeError(`noisy guardrail: rate must be in [0, 1], got ${noise.rate}`);
    if (!Number.isInteger(noise.seed)) throw new RangeError(`noisy guardrail: seed must be an integer, got ${noise.seed}`);
    this.per = noise.per ?? 'response';
    if (!missUnits.includes(this.per))
      throw new RangeError(`noisy guardrail: per must be ${missUnits.join(' or ')}, got ${String(noise.per)}`);
    // Per-prefix misses keep the id they had before `per` existed (same scores, same STAR cache entries).
    const unit = this.per === 'prefix' ? {} : { per: this.per };
    this.id = `noisy-${contentHash({ inner: inner.id, rate: noise.rate, seed: noise.seed, ...unit })}`;
  }

  get calls(): number {
    return this.inner.calls;
  }

  async scoreSafe(items: GuardItem[]): Promise<number[]> {
    return this.flip(items, await this.inner.scoreSafe(items));
  }

  async scorePrefixes(messages: Message[], prefixes: string[]): Promise<number[]> {
    const items = prefixes.map((response) => ({ messages, response }));
    const scores = this.inner.scorePrefixes ? await this.inner.scorePrefixes(messages, prefixes) : await this.inner.scoreSafe(items);
    return this.flip(items, scores);
  }

  /** The draw that decides whether the item's unsafe verdict is missed. */
  draw(item: GuardItem): number {
    return this.per === 'response' ? responseUniform(item.messages, this.noise.seed) : itemUniform(item, this.noise.seed);
  }

  private flip(items: GuardItem[], scores: number[]): number[] {
    return scores.map((p, i) => (p < 0.5 && this.draw(items[i]) < this.noise.rate ? 1 - p : p));
  }

  dispose(): void {
    this.inner.dispose?.();
  }
}

export function noisyGuardrail(inner: Guardrail, noise: NoiseOptions): NoisyGuardrail {
  return new NoisyGuardrail(inner, noise);
}
