// A guardrail scores (conversation, response) pairs with P(safe). Its id is stable and derived from
// content (weights hash, or endpoint + model name, template, label tokens), so scores can be cached.
import type { Message } from '../engine/contracts/example.ts';

export interface GuardItem {
  /** The conversation before the response (system and user turns; no assistant turn being scored). */
  messages: Message[];
  /** The (possibly partial) assistant response to judge. */
  response: string;
}

export interface Guardrail {
  readonly id: string;
  /** P(safe) of each item, in order. */
  scoreSafe(items: GuardItem[]): Promise<number[]>;
  /**
   * Optional fast path for STAR: P(safe) of every prefix of one response, where prefix k is the text
   * `prefixes[k]` (each a prefix of the next). Must equal scoreSafe on each prefix (within 1e-5).
   */
  scorePrefixes?(messages: Message[], prefixes: string[]): Promise<number[]>;
  /** Optional: scorePrefixes of several responses at once (fewer, larger forward passes), in order. */
  scorePrefixGroups?(groups: { messages: Message[]; prefixes: string[] }[]): Promise<number[][]>;
  /** Number of underlying guardrail evaluations made so far (prefix scorings count one each). */
  readonly calls: number;
  dispose?(): void;
}
