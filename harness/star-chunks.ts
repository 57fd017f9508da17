// STAR chunking of a response's text (docs/method.md §3): pure string functions shared by the annotator
// (harness/star.ts) and the token alignment (harness/tokenize-example.ts). No imports, so both can use it.

/** What a chunk is measured in: whitespace words of the response, or tokens of the finetuned model. */
export type ChunkUnit = 'words' | 'tokens';

export interface Chunking {
  unit: ChunkUnit;
  /** M: units per chunk (a positive integer). */
  size: number;
}

/**
 * The STAR annotation of one example. chunkEnds[k] is how many units (words, or response tokens) the
 * prefix ending with chunk k+1 holds (strictly increasing; the last is the whole response); scores[k] is
 * the guardrail's P(safe) of that prefix; verdict is P(safe) of the full response (what RS filters on).
 * An empty response has no chunks: chunkEnds = scores = [].
 */
export interface StarAnnotation {
  unit: ChunkUnit;
  chunkEnds: number[];
  scores: number[];
  verdict: number;
}

export const DEFAULT_CHUNKING: Chunking = { unit: 'words', size: 5 };

/** A stable short name for cache paths and reports, e.g. `words-5`. */
export const chunkingKey = (c: Chunking): string => `${c.unit}-${c.size}`;

/** One whitespace-separated word with its character span in the response. */
export interface WordSpan {
  word: string;
  start: number;
  end: number;
}

/** The whitespace words of a text (any run of non-space characters), with their character spans. */
export function wordSpans(text: string): WordSpan[] {
  return [...text.matchAll(/\S+/g)].map((m) => ({ word: m[0], start: m.index, end: m.index + m[0].length }));
}

/** Chunk k (1-based) ends at unit min(k·M, n): [M, 2M, ..., n]; none when n = 0. */
export function chunkEnds(n: number, size: number): number[] {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`chunk size must be a positive integer, got ${size}`);
  const ends: number[] = [];
  for (let end = size; end < n + size; end += size) ends.push(Math.min(end, n));
  return ends;
}

/** The text the guardrail judges for each word chunk: words[0 : end] joined by single spaces (as the authors do). */
export function wordPrefixes(response: string, ends: readonly number[]): string[] {
  const words = wordSpans(response).map((w) => w.word);
  return ends.map((end) => words.slice(0, end).join(' '));
}

/**
 * The response text exactly as written up to the end of word `count` (original whitespace kept), used to
 * find token boundaries: it is what the training sequence actually contains. Equals the joined prefix
 * when the response is single-spaced with no leading whitespace.
 */
export function originalWordPrefix(response: string, count: number): string {
  if (count <= 0) return '';
  const spans = wordSpans(response);
  if (count > spans.length) throw new RangeError(`word prefix of ${count} words, but the response has ${spans.length}`);
  return response.slice(0, spans[count - 1].end);
}
