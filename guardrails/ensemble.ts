// Several guardrails combined by averaging their P(safe), as the authors' code allows (docs/method.md §3).
// The id depends on the set of members, not their order.
import { contentHash } from '../engine/io.ts';
import type { Message } from '../engine/contracts/example.ts';
import type { GuardItem, Guardrail } from './types.ts';

export class EnsembleGuardrail implements Guardrail {
  readonly id: string;

  constructor(readonly members: readonly Guardrail[]) {
    if (members.length === 0) throw new RangeError('an ensemble guardrail needs at least one member');
    this.id = `ensemble-${contentHash({ members: members.map((m) => m.id).sort() })}`;
  }

  get calls(): number {
    return this.members.reduce((sum, m) => sum + m.calls, 0);
  }

  async scoreSafe(items: GuardItem[]): Promise<number[]> {
    return mean(await Promise.all(this.members.map((m) => m.scoreSafe(items))), items.length);
  }

  /** Each member's own fast path when it has one, else its scoreSafe on the prefixes. */
  async scorePrefixes(messages: Message[], prefixes: string[]): Promise<number[]> {
    const perMember = await Promise.all(
      this.members.map((m) =>
        m.scorePrefixes ? m.scorePrefixes(messages, prefixes) : m.scoreSafe(prefixes.map((response) => ({ messages, response }))),
      ),
    );
    return mean(perMember, prefixes.length);
  }

  /** Disposes the members: an ensemble owns the guardrails it was built from. */
  dispose(): void {
    for (const m of this.members) m.dispose?.();
  }
}

function mean(rows: number[][], n: number): number[] {
  return Array.from({ length: n }, (_, i) => rows.reduce((sum, row) => sum + row[i], 0) / rows.length);
}

export function ensembleGuardrail(members: readonly Guardrail[]): EnsembleGuardrail {
  return new EnsembleGuardrail(members);
}
