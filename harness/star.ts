// STAR: Safety Trajectory Assessment of Response (docs/method.md §3). Split each response into chunks of M
// words (or M tokens of the finetuned model), ask a guardrail for P(safe) of every prefix that ends at a
// chunk, and keep those scores with the full-response verdict. The scores become per-token weights in
// harness/tokenize-example.ts (starWeights, toTrainExample), whose header documents the boundary rules.
//
// Chunk k (1-based) of a response with n units ends at unit min(k·M, n); prefix k is words[0 : k·M]
// joined by single spaces (token mode: the decoded first k·M response tokens). An empty response has no
// chunks. The verdict is the guardrail's P(safe) of the full response text; when the last prefix equals
// the response exactly (single-spaced text) its score is reused instead of asking again.
//
// Annotations are computed once, before training, and cached on disk (harness/star-cache.ts): a re-run
// makes zero guardrail calls.
import type { Example, Message } from '../engine/contracts/example.ts';
import type { GuardItem, Guardrail } from '../guardrails/types.ts';
import { parseJsonl, readText } from '../datasets/formats/read.ts';
import { parseMessagesJsonl } from '../datasets/formats/messages-jsonl.ts';
import { DatasetFormatError } from '../datasets/errors.ts';
import { contentHash, writeFileAtomic, writeJsonlAtomic } from '../engine/io.ts';
import type { Tokenizer } from '../engine/model/tokenizer.ts';
import { StarCache, defaultStarCacheRoot } from './star-cache.ts';
import { chunkEnds, wordPrefixes, wordSpans, DEFAULT_CHUNKING, type Chunking, type StarAnnotation } from './star-chunks.ts';
import { renderStarHtml } from './star-html.ts';
import { splitResponse, tokenizeExample } from './tokenize-example.ts';

export type { Chunking, StarAnnotation } from './star-chunks.ts';
export { chunkEnds, wordPrefixes } from './star-chunks.ts';
export { starBoundaries, starWeights, toTrainExample } from './tokenize-example.ts';

export class StarError extends Error {
  constructor(
    readonly code: 'BAD_OPTIONS' | 'BAD_SCORES',
    message: string,
  ) {
    super(message);
  }
}

export interface AnnotateOptions {
  /** M in words (default 5). Exclusive with chunkTokens. */
  chunkWords?: number;
  /** M in tokens of `tokenizer` (the finetuned model's). Exclusive with chunkWords. */
  chunkTokens?: number;
  /** Needed for chunkTokens. */
  tokenizer?: Tokenizer;
  /** Cache root (default $STAR_DSS_CACHE/star); false turns the cache off. */
  cacheDir?: string | false;
  /** Items per scoreSafe call when the guardrail has no scorePrefixes fast path (default 64). */
  batchSize?: number;
  /** Called as prefixes are scored: (scored, total to score in this run). */
  onProgress?: (done: number, total: number) => void;
}

export function resolveChunking(options: Pick<AnnotateOptions, 'chunkWords' | 'chunkTokens' | 'tokenizer'>): Chunking {
  const { chunkWords, chunkTokens } = options;
  if (chunkWords !== undefined && chunkTokens !== undefined) throw new StarError('BAD_OPTIONS', 'give chunkWords or chunkTokens, not both');
  const chunking: Chunking =
    chunkTokens !== undefined
      ? { unit: 'tokens', size: chunkTokens }
      : chunkWords !== undefined
        ? { unit: 'words', size: chunkWords }
        : DEFAULT_CHUNKING;
  if (!Number.isInteger(chunking.size) || chunking.size < 1) {
    throw new StarError(
      'BAD_OPTIONS',
      `chunk${chunking.unit === 'words' ? 'Words' : 'Tokens'} must be a positive integer, got ${chunking.size}`,
    );
  }
  if (chunking.unit === 'tokens' && !options.tokenizer)
    throw new StarError('BAD_OPTIONS', "chunkTokens needs the finetuned model's tokenizer");
  return chunking;
}

/** What one example needs scored. */
interface Plan {
  context: Message[];
  response: string;
  /** Hash of the messages (verdict cache key). */
  verdictKey: string;
  /** Hash of the messages, plus the response token ids in token mode (annotation cache key). */
  key: string;
  chunkEnds: number[];
  prefixes: string[];
}

function plan(example: Example, chunking: Chunking, tokenizer: Tokenizer | undefined): Plan {
  const verdictKey = contentHash({ messages: example.messages });
  if (chunking.unit === 'words') {
    const { context, response } = splitResponse(example);
    const ends = chunkEnds(wordSpans(response).length, chunking.size);
    return { context, response, verdictKey, key: verdictKey, chunkEnds: ends, prefixes: wordPrefixes(response, ends) };
  }
  const tokenized = tokenizeExample(example, tokenizer!);
  const responseIds = tokenized.ids.slice(tokenized.start, tokenized.contentEnd);
  const ends = chunkEnds(responseIds.length, chunking.size);
  return {
    context: tokenized.context,
    response: tokenized.response,
    verdictKey,
    key: contentHash({ messages: example.messages, responseIds }),
    chunkEnds: ends,
    prefixes: ends.map((end) => tokenizer!.decode(responseIds.slice(0, end))),
  };
}

function checkScores(scores: unknown, expected: number, guardrail: Guardrail): number[] {
  if (!Array.isArray(scores) || scores.length !== expected) {
    throw new StarError(
      'BAD_SCORES',
      `guardrail '${guardrail.id}' returned ${Array.isArray(scores) ? scores.length : typeof scores} scores for ${expected} items`,
    );
  }
  const bad = scores.find((s) => typeof s !== 'number' || !(s >= 0 && s <= 1));
  if (bad !== undefined) throw new StarError('BAD_SCORES', `guardrail '${guardrail.id}' returned P(safe) = ${bad}, outside [0, 1]`);
  return scores as number[];
}

/** Responses per scorePrefixGroups call (progress is reported between calls). */
const PREFIX_GROUP = 32;

/** Whether each prefix extends the one before (decoded token prefixes can end in a partial character). */
const chained = (prefixes: readonly string[]): boolean => prefixes.every((p, i) => i === 0 || p.startsWith(prefixes[i - 1]));

/** Items for scoreSafe in fixed-size batches; returns the scores in item order. */
async function scoreBatched(guardrail: Guardrail, items: GuardItem[], batchSize: number, progress: (n: number) => void): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < items.length; i += batchSize) {
    const batch = items.slice(i, i + batchSize);
    out.push(...checkScores(await guardrail.scoreSafe(batch), batch.length, guardrail));
    progress(batch.length);
  }
  return out;
}

/**
 * STAR annotations of `examples` by `guardrail`, one per example in order. Cached annotations are read
 * back; the rest are scored (scorePrefixGroups for 32 responses at a time, or scorePrefixes per response,
 * when the guardrail has them, else scoreSafe on all prefixes of all examples in batches), validated, and
 * written to the cache.
 */
export async function annotate(
  examples: readonly Example[],
  guardrail: Guardrail,
  options: AnnotateOptions = {},
): Promise<StarAnnotation[]> {
  const chunking = resolveChunking(options);
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new StarError('BAD_OPTIONS', `batchSize must be a positive integer, got ${batchSize}`);
  const cache = options.cacheDir === false ? undefined : new StarCache(options.cacheDir ?? defaultStarCacheRoot(), guardrail.id, chunking);
  const plans = examples.map((e) => plan(e, chunking, options.tokenizer));

  // 1. Cache hits; the misses, one per distinct key (duplicate examples are scored once).
  const done = new Map<string, StarAnnotation>();
  const todo = new Map<string, Plan>();
  for (const p of plans) {
    if (done.has(p.key) || todo.has(p.key)) continue;
    const hit = cache?.getAnnotation(p.key, p.chunkEnds);
    if (hit) done.set(p.key, hit);
    else todo.set(p.key, p);
  }

  // 2. Decide what to ask: chunk prefixes, and verdicts not cached nor equal to the last prefix.
  const misses = [...todo.values()];
  const verdicts = new Map<string, number>();
  const fast = misses.filter((p) => guardrail.scorePrefixes && p.prefixes.length > 0 && chained(p.prefixes));
  const fastSet = new Set(fast);
  const slow = misses.filter((p) => !fastSet.has(p));
  const needVerdict = misses.filter((p) => {
    const cached = cache?.getVerdict(p.verdictKey);
    if (cached !== undefined) verdicts.set(p.key, cached);
    return cached === undefined && p.prefixes.at(-1) !== p.response;
  });
  const total = misses.reduce((n, p) => n + p.prefixes.length, 0) + needVerdict.length;
  let scored = 0;
  const progress = (n: number) => {
    scored += n;
    options.onProgress?.(scored, total);
  };

  // 3. Score.
  const chunkScores = new Map<string, number[]>();
  if (guardrail.scorePrefixGroups) {
    // Several responses per call: the guardrail packs them into few forward passes.
    for (let i = 0; i < fast.length; i += PREFIX_GROUP) {
      const part = fast.slice(i, i + PREFIX_GROUP);
      const scores = await guardrail.scorePrefixGroups(part.map((p) => ({ messages: p.context, prefixes: p.prefixes })));
      if (!Array.isArray(scores) || scores.length !== part.length)
        throw new StarError(
          'BAD_SCORES',
          `guardrail '${guardrail.id}' returned ${scores?.length} score lists for ${part.length} responses`,
        );
      part.forEach((p, j) => chunkScores.set(p.key, checkScores(scores[j], p.prefixes.length, guardrail)));
      progress(part.reduce((n, p) => n + p.prefixes.length, 0));
    }
  } else {
    for (const p of fast) {
      chunkScores.set(p.key, checkScores(await guardrail.scorePrefixes!(p.context, p.prefixes), p.prefixes.length, guardrail));
      progress(p.prefixes.length);
    }
  }
  const items: GuardItem[] = [
    ...slow.flatMap((p) => p.prefixes.map((response) => ({ messages: p.context, response }))),
    ...needVerdict.map((p) => ({ messages: p.context, response: p.response })),
  ];
  const flat = await scoreBatched(guardrail, items, batchSize, progress);
  let at = 0;
  for (const p of slow) {
    chunkScores.set(p.key, flat.slice(at, at + p.prefixes.length));
    at += p.prefixes.length;
  }
  for (const p of needVerdict) verdicts.set(p.key, flat[at++]);

  // 4. Assemble, cache, and return in input order.
  for (const p of misses) {
    const scores = chunkScores.get(p.key)!;
    const verdict = verdicts.get(p.key) ?? scores.at(-1)!;
    const annotation: StarAnnotation = { unit: chunking.unit, chunkEnds: p.chunkEnds, scores, verdict };
    cache?.putAnnotation(p.key, annotation);
    done.set(p.key, annotation);
  }
  return plans.map((p) => {
    const a = done.get(p.key)!;
    return { ...a, chunkEnds: [...a.chunkEnds], scores: [...a.scores] };
  });
}

/** Full-response P(safe) of each example only (what RS needs), through the same verdict cache. */
export async function scoreVerdicts(
  examples: readonly Example[],
  guardrail: Guardrail,
  options: Pick<AnnotateOptions, 'cacheDir' | 'batchSize' | 'onProgress'> = {},
): Promise<number[]> {
  const cache =
    options.cacheDir === false ? undefined : new StarCache(options.cacheDir ?? defaultStarCacheRoot(), guardrail.id, DEFAULT_CHUNKING);
  const keys = examples.map((e) => contentHash({ messages: e.messages }));
  const known = new Map<string, number>();
  const todo = new Map<string, GuardItem>();
  examples.forEach((e, i) => {
    const key = keys[i];
    if (known.has(key) || todo.has(key)) return;
    const hit = cache?.getVerdict(key);
    if (hit !== undefined) known.set(key, hit);
    else {
      const { context, response } = splitResponse(e);
      todo.set(key, { messages: context, response });
    }
  });
  let scored = 0;
  const scores = await scoreBatched(guardrail, [...todo.values()], options.batchSize ?? 64, (n) =>
    options.onProgress?.((scored += n), todo.size),
  );
  [...todo.keys()].forEach((key, i) => {
    cache?.putVerdict(key, scores[i]);
    known.set(key, scores[i]);
  });
  return keys.map((k) => known.get(k)!);
}

export interface StarFileOptions extends AnnotateOptions {
  /** Input JSON Lines: {"messages": [...], ...extras} per line. */
  data: string;
  /** Output JSON Lines: each input line plus `star: {unit, chunkEnds, scores, verdict}`. */
  out: string;
  /** Optional HTML page of the annotated responses. */
  html?: string;
}

export interface StarFileSummary {
  examples: number;
  /** Guardrail evaluations this run made (0 when everything was cached). */
  calls: number;
  annotations: StarAnnotation[];
}

/** The lines of a messages JSONL file as they are (`rows`, written back with `star` added) and as examples. */
export interface StarInput {
  rows: Record<string, unknown>[];
  examples: Example[];
}

/** Reads and checks the input of annotateFile; a file without a single example is an error, not an empty output. */
export function readStarInput(file: string): StarInput {
  const text = readText(file);
  const rows = parseJsonl(text, file).map((r) => r.value);
  if (rows.length === 0)
    throw new DatasetFormatError(
      file,
      undefined,
      undefined,
      'no examples (the file is empty or holds only blank lines)',
      'pass a messages JSONL file with at least one {"messages": [...]} line',
    );
  return { rows, examples: parseMessagesJsonl(text, file) };
}

/**
 * `star-dss star`: annotate a messages JSONL file, write the annotated file and an optional HTML view.
 * `input` is the file already read by readStarInput (read here when absent).
 */
export async function annotateFile(
  guardrail: Guardrail,
  options: StarFileOptions,
  input = readStarInput(options.data),
): Promise<StarFileSummary> {
  const { rows, examples } = input;
  const callsBefore = guardrail.calls;
  const annotations = await annotate(examples, guardrail, options);
  writeJsonlAtomic(
    options.out,
    rows.map((row, i) => ({ ...row, star: annotations[i] })),
  );
  if (options.html) {
    const html = renderStarHtml(
      examples.map((example, i) => ({ example, annotation: annotations[i] })),
      { tokenizer: options.tokenizer, title: `STAR: ${options.data}`, guardrailId: guardrail.id, chunking: resolveChunking(options) },
    );
    writeFileAtomic(options.html, html);
  }
  return { examples: examples.length, calls: guardrail.calls - callsBefore, annotations };
}
