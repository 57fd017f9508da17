// Batched decoding with a KV cache and left padding: greedy, or sampling with temperature, top-k, top-p
// and a repetition penalty as Hugging Face's logits processors define them, from a seeded RNG. Sampling
// takes its candidates from tf.topk on the backend; no row of the vocabulary is sorted in JavaScript.
import * as tf from '@tensorflow/tfjs';
import { Rng } from './random.ts';
import type { CausalLM, ForwardResult, KVCache } from './model/types.ts';

export interface SamplingOptions {
  /** Divide logits by this before sampling (HF TemperatureLogitsWarper). */
  temperature: number;
  /** Keep the smallest set of tokens whose probability reaches top_p (HF TopPLogitsWarper); 1 disables. */
  topP: number;
  /** Keep the k most likely tokens (HF TopKLogitsWarper); 0 disables. */
  topK: number;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** Sampling parameters; absent means greedy decoding. */
  sampling?: SamplingOptions;
  /** HF RepetitionPenaltyLogitsProcessor: divide positive / multiply negative logits of seen tokens; 1 disables. */
  repetitionPenalty?: number;
  eosTokenIds: number[];
  padTokenId: number;
  /** Stop a sequence once its decoded continuation contains one of these strings (it is cut before it). */
  stopStrings?: string[];
  /** Needed with stopStrings: turns generated ids into text. */
  decode?: (ids: number[]) => string;
  seed?: number;
  /** Recompute the whole sequence every step instead of using the KV cache (for checks and benchmarks). */
  useCache?: boolean;
}

export interface Generation {
  /** Generated token ids, without the prompt, the end token or anything after a stop. */
  tokens: number[];
  /** Decoded text (when `decode` is given), cut before any stop string. */
  text?: string;
  finish: 'eos' | 'stop' | 'length';
}

/** Applies HF's repetition penalty in place to the logits of one row. */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(seen)) logits[id] = logits[id] < 0 ? logits[id] * penalty : logits[id] / penalty;
}

/** Candidates fetched first for top-p and plain sampling; a walk that runs past them fetches 8 times more. */
const FIRST_CANDIDATES = 1024;

/** The largest logits of a row, in descending order with ties by lower id (the order of a full stable sort). */
interface Sorted {
  values: Float32Array;
  ids: Int32Array;
}

/**
 * The k largest logits of each of `count` rows (`rows` holds them one after another), from tf.topk on the
 * backend: every backend sorts by value, then by lower index, so a prefix is the same whatever k is.
 */
async function topCandidates(rows: Float32Array, count: number, k: number): Promise<Sorted[]> {
  const vocab = rows.length / count;
  const x = tf.tensor2d(rows, [count, vocab], 'float32');
  const { values, indices } = tf.topk(x, k, true);
  const [v, ids] = await readAndDispose(values, indices, x);
  return Array.from({ length: count }, (_, r) => ({ values: v.subarray(r * k, (r + 1) * k), ids: ids.subarray(r * k, (r + 1) * k) }));
}

/** Reads two tensors asynchronously (the only way on webgpu in Node), then disposes them and `extra`. */
async function readAndDispose(values: tf.Tensor, indices: tf.Tensor, ...extra: tf.Tensor[]): Promise<[Float32Array, Int32Array]> {
  try {
    return [(await values.data()) as Float32Array, (await indices.data()) as Int32Array];
  } finally {
    tf.dispose([values, indices, ...extra]);
  }
}

function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * Draws one token from a row's sorted candidates: temperature, then top-k, then top-p, then a draw from the
 * renormalised distribution, walking the candidates from the most likely. Probabilities are computed in
 * double precision from the same float32 logits, in the same order, as a full sort of the row would give
 * them, so the draw is the one a full sort makes. Without top-k the normaliser sums the whole row (in index
 * order rather than sorted order: the two differ in the last bits only).
 */
async function drawFromSorted(logits: Float32Array, first: Sorted, sampling: SamplingOptions, rng: Rng): Promise<number> {
  const vocab = logits.length;
  const t = sampling.temperature;
  let sorted = first;
  // Candidate i must be fetched before prob(i) reads it; a walk past the fetched ones fetches 8 times more.
  const reach = async (i: number) => {
    const k = Math.min(vocab, Math.max(i + 1, sorted.ids.length * 8));
    sorted = (await topCandidates(logits, 1, k))[0];
  };
  const max = sorted.values[0] / t;
  const prob = (i: number) => Math.exp(sorted.values[i] / t - max);
  const limited = sampling.topK > 0 && sampling.topK < vocab;
  let n = limited ? sampling.topK : vocab;
  let total = 0;
  if (limited) for (let i = 0; i < n; i++) total += prob(i);
  else for (let i = 0; i < vocab; i++) total += Math.exp(logits[i] / t - max);
  if (sampling.topP < 1) {
    // HF removes tokens whose cumulative probability, summed from the least likely, is <= 1 - top_p;
    // equivalently it keeps the most likely tokens up to and including the one that crosses top_p.
    let cumulative = 0;
    let keep = 0;
    while (keep < n) {
      if (keep >= sorted.ids.length) await reach(keep);
      cumulative += prob(keep) / total;
      keep++;
      if (cumulative >= sampling.topP) break;
    }
    n = keep;
    total = 0;
    for (let i = 0; i < n; i++) total += prob(i);
  }
  let r = rng.next() * total;
  for (let i = 0; i < n; i++) {
    if (i >= sorted.ids.length) await reach(i);
    r -= prob(i);
    if (r < 0) return sorted.ids[i];
  }
  return sorted.ids[n - 1];
}

/**
 * Chooses the next token of each row of logits (already repetition-penalised), drawing from the RNG in row
 * order: argmax when greedy, else temperature, then top-k, then top-p, then a draw from the renormalised
 * distribution. The candidates come from one tf.topk over all rows (k = top-k, or 1024 for top-p and plain
 * sampling, grown for a row whose nucleus or draw reaches past them): no row is sorted in JavaScript.
 */
export async function chooseTokens(rows: readonly Float32Array[], sampling: SamplingOptions | undefined, rng: Rng): Promise<number[]> {
  if (rows.length === 0) return [];
  if (!sampling) return rows.map(argmax);
  const vocab = rows[0].length;
  const k = sampling.topK > 0 ? Math.min(sampling.topK, vocab) : Math.min(vocab, FIRST_CANDIDATES);
  const flat = new Float32Array(rows.length * vocab);
  rows.forEach((row, r) => flat.set(row, r * vocab));
  const candidates = await topCandidates(flat, rows.length, k);
  const chosen: number[] = [];
  // In row order, one at a time: each draw takes the RNG's next numbers.
  for (const [r, row] of rows.entries()) chosen.push(await drawFromSorted(row, candidates[r], sampling, rng));
  return chosen;
}

/** chooseTokens for one row. */
export async function chooseToken(logits: Float32Array, sampling: SamplingOptions | undefined, rng: Rng): Promise<number> {
  return (await chooseTokens([logits], sampling, rng))[0];
}

function disposeCache(cache: KVCache | undefined): void {
  if (cache) tf.dispose(cache.layers.flatMap(({ k, v }) => [k, v]));
}

/** What decoding carries from one step to the next. */
interface Decoding {
  /** Left-padded token ids and attention masks, one column longer after each step. */
  rows: number[][];
  masks: number[][];
  results: Generation[];
  done: boolean[];
  cache?: KVCache;
  /** Tokens chosen at the previous step, not yet fed to the model. */
  pending?: number[];
}

function checkGenerateArgs(prompts: number[][], options: GenerateOptions): void {
  if (prompts.some((p) => p.length === 0)) throw new Error('generate: every prompt needs at least one token');
  if (options.stopStrings?.length && !options.decode) throw new Error('generate: stopStrings need a decode function');
  const bad = (field: string, expected: string, value: unknown) => new RangeError(`generate: ${field} must be ${expected}, got ${value}`);
  const { maxNewTokens, sampling, repetitionPenalty = 1 } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw bad('maxNewTokens', 'an integer ≥ 0', maxNewTokens);
  if (!(repetitionPenalty > 0 && Number.isFinite(repetitionPenalty))) throw bad('repetitionPenalty', 'a number > 0', repetitionPenalty);
  if (!sampling) return;
  if (!(sampling.temperature > 0 && Number.isFinite(sampling.temperature)))
    throw bad('sampling.temperature', 'a number > 0 (greedy decoding: no sampling)', sampling.temperature);
  if (!(sampling.topP > 0 && sampling.topP <= 1)) throw bad('sampling.topP', 'in (0, 1]', sampling.topP);
  if (!Number.isInteger(sampling.topK) || sampling.topK < 0) throw bad('sampling.topK', 'an integer ≥ 0', sampling.topK);
}

/** Left padding: every prompt ends at the same position, so one new column is appended per step. */
function startDecoding(prompts: number[][], padTokenId: number): Decoding {
  const width = Math.max(...prompts.map((p) => p.length));
  return {
    rows: prompts.map((p) => [...new Array<number>(width - p.length).fill(padTokenId), ...p]),
    masks: prompts.map((p) => [...new Array<number>(width - p.length).fill(0), ...new Array<number>(p.length).fill(1)]),
    results: prompts.map(() => ({ tokens: [], finish: 'length' })),
    done: new Array<boolean>(prompts.length).fill(false),
  };
}

/**
 * One forward pass: the whole sequence on the first step (or without the cache), else the tokens chosen at
 * the previous step against the cache. Moves `state.cache` on (the new one kept out of the tidy, the old one
 * disposed) and returns the last position's logits, [batch, vocab] flattened.
 */
async function lastLogits(model: CausalLM, state: Decoding, useCache: boolean): Promise<Float32Array> {
  const batch = state.rows.length;
  const vocabRows = tf.tidy(() => {
    const mask = tf.tensor2d(state.masks.flat(), [batch, state.masks[0].length], 'float32');
    let out: ForwardResult;
    if (!useCache || !state.pending) {
      const ids = tf.tensor2d(state.rows.flat(), [batch, state.rows[0].length], 'int32');
      out = model.forward(ids, { attentionMask: mask, useCache, lastOnly: true });
    } else {
      const ids = tf.tensor2d(state.pending, [batch, 1], 'int32');
      out = model.forward(ids, { attentionMask: mask, cache: state.cache, lastOnly: true });
    }
    if (out.cache) {
      const next = out.cache;
      for (const layer of next.layers) {
        tf.keep(layer.k);
        tf.keep(layer.v);
      }
      if (state.cache) disposeCache(state.cache);
      state.cache = next;
    }
    const time = out.logits.shape[1];
    return out.logits.slice([0, time - 1, 0], [batch, 1, -1]).reshape([batch, -1]);
  });
  try {
    return (await vocabRows.data()) as Float32Array;
  } finally {
    vocabRows.dispose();
  }
}

/**
 * The next token of every row, recorded in its generation (finished rows get padding); rows are drawn in
 * order, so the RNG's draws follow the batch order.
 */
async function chooseNextTokens(
  flat: Float32Array,
  prompts: number[][],
  state: Decoding,
  options: GenerateOptions,
  eos: ReadonlySet<number>,
  rng: Rng,
): Promise<number[]> {
  const batch = prompts.length;
  const vocab = flat.length / batch;
  const penalty = options.repetitionPenalty ?? 1;
  const active: number[] = [];
  const rows: Float32Array[] = [];
  for (let b = 0; b < batch; b++) {
    if (state.done[b]) continue;
    const logits = flat.slice(b * vocab, (b + 1) * vocab);
    applyRepetitionPenalty(logits, [...prompts[b], ...state.results[b].tokens], penalty);
    active.push(b);
    rows.push(logits);
  }
  const chosen = await chooseTokens(rows, options.sampling, rng);
  const tokens = new Array<number>(batch).fill(options.padTokenId);
  active.forEach((b, i) => {
    tokens[b] = chosen[i];
    if (recordToken(state.results[b], chosen[i], eos, options)) state.done[b] = true;
  });
  return tokens;
}

/**
 * Adds a token to a generation; true when it finishes it: an end token (not kept), or a stop string in the
 * decoded continuation.
 */
function recordToken(result: Generation, token: number, eos: ReadonlySet<number>, options: GenerateOptions): boolean {
  if (eos.has(token)) {
    result.finish = 'eos';
    return true;
  }
  result.tokens.push(token);
  if (options.stopStrings?.length) {
    const text = options.decode!(result.tokens);
    const hit = options.stopStrings.find((s) => text.includes(s));
    if (hit !== undefined) {
      result.finish = 'stop';
      return true;
    }
  }
  return false;
}

function appendColumn(state: Decoding, tokens: number[]): void {
  state.pending = tokens;
  state.rows.forEach((row, b) => row.push(tokens[b]));
  for (const row of state.masks) row.push(1); // finished rows keep going on padding; their outputs are ignored
}

/** Each generation's text, cut before the stop strings. */
function decodeTexts(results: Generation[], decode: (ids: number[]) => string, stopStrings: readonly string[]): void {
  for (const r of results) {
    let text = decode(r.tokens);
    for (const s of stopStrings) {
      const at = text.indexOf(s);
      if (at >= 0) text = text.slice(0, at);
    }
    r.text = text;
  }
}

/**
 * Generates continuations of `prompts` (token ids) as one left-padded batch. Asynchronous because logits are
 * read with `await data()`, the only read webgpu allows in Node.
 */
export async function generate(model: CausalLM, prompts: number[][], options: GenerateOptions): Promise<Generation[]> {
  if (prompts.length === 0) return [];
  checkGenerateArgs(prompts, options);
  const rng = new Rng(options.seed ?? 0);
  const eos = new Set(options.eosTokenIds);
  const useCache = options.useCache ?? true;
  const state = startDecoding(prompts, options.padTokenId);
  try {
    for (let step = 0; step < options.maxNewTokens && state.done.includes(false); step++) {
      const logits = await lastLogits(model, state, useCache);
      appendColumn(state, await chooseNextTokens(logits, prompts, state, options, eos, rng));
    }
  } finally {
    disposeCache(state.cache);
  }
  if (options.decode) decodeTexts(state.results, options.decode, options.stopStrings ?? []);
  return state.results;
}
