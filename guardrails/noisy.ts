// A guardrail that misses a configured fraction of unsafe content, for false-negative-rate sweeps: each
// unsafe verdict (P(safe) < 0.5) of the wrapped guardrail becomes safe (P(safe) → 1 − P(safe)) with
// probability `rate`. The draw is a hash of the item's content and the seed, so an item gets the same
// verdict in every call, batch and order, and through scoreSafe and scorePrefixes alike.
import { createHash } from 'node:crypto';
import { contentHash, canonicalJson } from '../engine/io.ts';
import type { Message } from '../engine/contracts/example.ts';
import type { GuardItem, Guardrail } from './types.ts';

export interface NoiseOptions {
  /** Fraction of unsafe verdicts turned safe, in [0, 1]. */
  rate: number;
  seed: number;
}

/** A uniform number in [0, 1) determined by the item's content and the seed. */
export function itemUniform(item: GuardItem, seed: number): number {
  const digest = createHash('sha256')
    .update(canonicalJson({ messages: item.messages, response: item.response, seed }))
    .digest();
  // 52 bits: exactly representable in a double.
  return (digest.readUInt32BE(0) * 2 ** 20 + (digest.readUInt32BE(4) >>> 12)) / 2 ** 52;
}

export class NoisyGuardrail implements Guardrail {
  readonly id: string;

  constructor(
    readonly inner: Guardrail,
    readonly noise: NoiseOptions,
  ) {
    if (!(noise.rate >= 0 && noise.rate <= 1)) throw new RangeError(`noisy guardrail: rate must be in [0, 1], got ${noise.rate}`);
    if (!Number.isInteger(noise.seed)) throw new RangeError(`noisy guardrail: seed must be an integer, got ${noise.seed}`);
    this.id = `noisy-${contentHash({ inner: inner.id, rate: noise.rate, seed: noise.seed })}`;
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

  private flip(items: GuardItem[], scores: number[]): number[] {
    return scores.map((p, i) => (p < 0.5 && itemUniform(items[i], this.noise.seed) < this.noise.rate ? 1 - p : p));
  }

  dispose(): void {
    this.inner.dispose?.();
  }
}

export function noisyGuardrail(inner: Guardrail, noise: NoiseOptions): NoisyGuardrail {
  return new NoisyGuardrail(inner, noise);
}
