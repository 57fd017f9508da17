// The LM guardrail (Llama Guard / Granite Guardian style): a causal LM checkpoint read through its own chat
// template. The conversation [user prompt(s), assistant response] is rendered with add_generation_prompt,
// so the rendering ends where the verdict is generated; P(safe) = σ(ℓ_safe − ℓ_unsafe) from the raw
// logits of the two label tokens at the configured generated position (docs/method.md §3), or, with label
// processing, p_safe / (p_safe + p_unsafe) after temperature, top-k and top-p over the whole vocabulary
// (label-processing.ts). For the 2nd position the 1st generated token is taken greedily and fed back.
//
// scorePrefixes is STAR's fast path: the rendering of the longest prefix is forwarded once with a KV
// cache; each prefix reuses the cache up to its longest common token prefix with that rendering and
// forwards only the rest (the template suffix, plus tokens that differ at a BPE boundary). These suffixes
// go through the model together: the cache is tiled along batch, and each row's mask hides the cached
// positions past its own common prefix, so K prefixes cost one forward (per batch of rows), not K.
import { closeSync, openSync, readSync, readdirSync, realpathSync, statSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { tf } from '../engine/tensor/index.ts';
import { contentHash } from '../engine/io.ts';
import { loadModel } from '../engine/model/checkpoint.ts';
import { disposeCache } from '../engine/model/transformer.ts';
import type { Tokenizer } from '../engine/model/tokenizer.ts';
import type { CausalLM, KVCache } from '../engine/model/types.ts';
import type { Message } from '../engine/contracts/example.ts';
import { checkLabelProcessing, labelProcessingId, labelSettings, processedPSafe, type LabelProcessing } from './label-processing.ts';
import { groupRows, packedLogits, packPrefixes } from './lm-prefix-rows.ts';
import { guardConversation, type GuardSpec } from './presets.ts';
import type { GuardItem, Guardrail } from './types.ts';

export class LmGuardrailError extends Error {
  readonly code = 'LM_GUARDRAIL';
}

/**
 * Inputs are fed in segments of at most LOGIT_BUDGET / (batch × vocab) tokens (≥ 64): this once bounded the
 * logits of every position to ~128 MB; only the last position's logits are computed now, and the same bound
 * keeps the activations of a long input bounded.
 */
const LOGIT_BUDGET = 1 << 25;
const MIN_SEGMENT = 64;
/** Floats of the tiled KV cache that scorePrefixes holds at once (~256 MB): caps the rows per forward. */
const CACHE_BUDGET = 1 << 26;
/**
 * One forward of scorePrefixGroups: at most 8192 tokens, a 64 MB bias, LOGIT_BUDGET floats of logits. A forward's
 * fixed cost is about what 40 tokens cost the micro guardrail on wasm (0.8 ms for a 4-token forward against about
 * 20 µs per token); larger models pay relatively less, so grouping errs towards fewer, wider forwards there.
 */
const PACK_BUDGET = { tokens: 8192, biasFloats: 1 << 24, logitFloats: LOGIT_BUDGET, overheadTokens: 40 };
/** Stands for the response in one rendering of the guard template (renderPrefixes); no text holds it. */
const PREFIX_MARKER = '\u0001star-prefix\u0001';

/** One model's next-token logits after `rows`, and the cache over everything forwarded so far. */
export interface LastLogits {
  /** One row of vocabulary logits per sequence. */
  logits: Float32Array[];
  cache?: KVCache;
}

export interface ForwardLastOptions {
  /** [batch, past + time] 1 for real tokens, 0 for left padding; omit when there is no padding. */
  mask?: number[][];
  /** Keys and values of earlier positions (not disposed here; the caller owns it). */
  cache?: KVCache;
  /** Return the extended cache (the caller disposes it); otherwise it is freed here. */
  keepCache?: boolean;
  /** [batch, time] explicit position ids of the rows' tokens; default: derived from the mask. */
  positions?: number[][];
}

/** Forwards equal-length rows (left-padded) after `cache` and returns the logits at their last position. */
export async function forwardLast(model: CausalLM, rows: number[][], options: ForwardLastOptions = {}): Promise<LastLogits> {
  const batch = rows.length;
  const time = rows[0]?.length ?? 0;
  if (batch === 0 || time === 0) throw new LmGuardrailError('forwardLast: needs at least one row of at least one token');
  const vocab = model.config.vocabSize;
  const segment = Math.max(MIN_SEGMENT, Math.floor(LOGIT_BUDGET / (batch * vocab)));
  const past = options.cache?.length ?? 0;
  let cache = options.cache;
  let last: tf.Tensor2D | undefined;
  try {
    for (let start = 0; start < time; start += segment) {
      const end = Math.min(time, start + segment);
      const final = end === time;
      const wantCache = !final || options.keepCache === true;
      let next: KVCache | undefined;
      const out = tf.tidy(() => {
        const ids = tf.tensor2d(
          rows.flatMap((r) => r.slice(start, end)),
          [batch, end - start],
          'int32',
        );
        const mask = options.mask
          ? tf.tensor2d(
              options.mask.flatMap((m) => m.slice(0, past + end)),
              [batch, past + end],
              'float32',
            )
          : undefined;
        const positions = options.positions
          ? tf.tensor2d(
              options.positions.flatMap((p) => p.slice(start, end)),
              [batch, end - start],
              'int32',
            )
          : undefined;
        const result = model.forward(ids, { cache, useCache: wantCache, attentionMask: mask, positions, lastOnly: true });
        next = result.cache; // kept by forward: survives this tidy
        return final ? (result.logits.reshape([batch, vocab]) as tf.Tensor2D) : undefined;
      });
      if (cache !== options.cache && cache) disposeCache(cache);
      cache = next;
      if (final) last = out;
      if (next && !wantCache) {
        disposeCache(next);
        cache = undefined;
      }
    }
    // Read asynchronously: the only read webgpu allows in Node.
    const flat = (await last!.data()) as Float32Array;
    const logits = Array.from({ length: batch }, (_, b) => flat.slice(b * vocab, (b + 1) * vocab));
    const kept = options.keepCache && cache !== options.cache ? cache : undefined;
    cache = undefined;
    return { logits, cache: kept };
  } finally {
    last?.dispose();
    if (cache && cache !== options.cache) disposeCache(cache);
  }
}

/**
 * The cache truncated to its first `length` positions, repeated `rows` times along batch (new tensors; the
 * caller disposes them). A batch-1 cache tiled this way serves `rows` sequences that share its start.
 */
export function sliceCache(cache: KVCache, length: number, rows = 1): KVCache {
  const cut = (t: tf.Tensor4D) =>
    tf.tidy(() => {
      const head = t.slice([0, 0, 0, 0], [-1, -1, length, -1]);
      // concat, not tf.tile: wasm's Tile kernel took ~40× longer than concat at these shapes.
      return rows === 1 ? head : tf.concat(new Array<tf.Tensor4D>(rows).fill(head), 0);
    });
  return { layers: cache.layers.map(({ k, v }) => ({ k: cut(k), v: cut(v) })), length };
}

/** Index of the largest value (the first one on ties), as greedy decoding picks. */
export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** The id of a label: it must encode to exactly one token (or be a vocabulary entry such as `Ġsafe`). */
export function labelTokenId(tokenizer: Tokenizer, label: string, role: 'safe' | 'unsafe'): number {
  const ids = tokenizer.encode(label, { addSpecialTokens: false });
  if (ids.length === 1) return ids[0];
  const direct = tokenizer.tokenToId(label);
  if (direct !== undefined) return direct;
  throw new LmGuardrailError(
    `guardrail ${role} label ${JSON.stringify(label)} is not a single token: it encodes to ${ids.length} tokens [${ids.join(', ')}]. Fix: choose a label that is one token of this tokenizer`,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Content ids: the bytes of the weights, config and tokenizer, hashed once per process.

const fileHashes = new Map<string, string>();

/** sha256 of a file, streamed (checkpoints can be many GB) and memoised by path, size and mtime. */
export function fileHash(file: string): string {
  const stat = statSync(file);
  const key = `${realpathSync(file)}:${stat.size}:${stat.mtimeMs}`;
  const known = fileHashes.get(key);
  if (known) return known;
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(8 << 20);
  const fd = openSync(file, 'r');
  try {
    let n: number;
    while ((n = readSync(fd, buffer, 0, buffer.length, null)) > 0) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  const digest = hash.digest('hex');
  fileHashes.set(key, digest);
  return digest;
}

/** Hashes of the files that determine a checkpoint's outputs: weights, config.json, tokenizer.json. */
export function checkpointHashes(dir: string): Record<string, string> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors') || f === 'config.json' || f === 'tokenizer.json')
    .sort();
  if (!files.some((f) => f.endsWith('.safetensors')))
    throw new LmGuardrailError(`${dir}: no .safetensors weights to identify the guardrail by`);
  return Object.fromEntries(files.map((f) => [f, fileHash(join(dir, f))]));
}

// ---------------------------------------------------------------------------------------------------------

/** A prefix scored by forwarding `tokens` after the first `reuse` positions of the shared rendering. */
interface SuffixRow {
  index: number;
  reuse: number;
  tokens: number[];
}

export interface LmGuardrailOptions {
  /** Items scored per forward (left-padded); in scorePrefixes, prefix suffixes per forward. Default 8. */
  batchSize?: number;
  /** How the label logits become P(safe); default the paper formula. Part of the id (unless the paper formula). */
  labelProcessing?: LabelProcessing;
}

export interface LmGuardrailInit extends LmGuardrailOptions {
  model: CausalLM;
  tokenizer: Tokenizer;
  spec: GuardSpec;
  /** Identifies the weights and tokenizer (e.g. checkpointHashes of the directory). */
  weights: unknown;
}

export class LmGuardrail implements Guardrail {
  readonly id: string;
  readonly model: CausalLM;
  readonly tokenizer: Tokenizer;
  readonly spec: GuardSpec;
  readonly safeId: number;
  readonly unsafeId: number;
  readonly labelProcessing: LabelProcessing;
  private readonly batchSize: number;
  private callCount = 0;
  private forwarded = 0;

  constructor(init: LmGuardrailInit) {
    this.model = init.model;
    this.tokenizer = init.tokenizer;
    this.spec = init.spec;
    this.batchSize = init.batchSize ?? 8;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
      throw new LmGuardrailError(`batchSize must be a positive integer, got ${init.batchSize}`);
    this.safeId = labelTokenId(init.tokenizer, init.spec.labels.safe, 'safe');
    this.unsafeId = labelTokenId(init.tokenizer, init.spec.labels.unsafe, 'unsafe');
    if (this.safeId === this.unsafeId)
      throw new LmGuardrailError(`guardrail labels ${JSON.stringify(init.spec.labels)} map to the same token ${this.safeId}`);
    const vocab = init.model.config.vocabSize;
    if (Math.max(this.safeId, this.unsafeId) >= vocab) {
      throw new LmGuardrailError(`guardrail label ids ${this.safeId}, ${this.unsafeId} exceed the model's vocabulary (${vocab})`);
    }
    this.labelProcessing = checkLabelProcessing(init.labelProcessing ?? labelSettings.paper, 'LM guardrail');
    const { labels, position, extra = {} } = init.spec;
    const processing = labelProcessingId(this.labelProcessing);
    this.id = `lm-${contentHash({ weights: init.weights, template: init.tokenizer.chatTemplate ?? null, labels, position, extra, ...processing })}`;
  }

  get calls(): number {
    return this.callCount;
  }

  /** Tokens fed through the model so far (for cost comparisons of the shared-prefix path). */
  get tokensForwarded(): number {
    return this.forwarded;
  }

  /** The guardrail's prompt for an item: its own template, ending where the verdict is generated. */
  render(item: GuardItem): string {
    return this.tokenizer.applyChatTemplate(guardConversation(item), { addGenerationPrompt: true, extra: this.spec.extra });
  }

  encode(item: GuardItem): number[] {
    return this.encodeRendered(this.render(item));
  }

  private encodeRendered(text: string): number[] {
    const ids = this.tokenizer.encode(text, { addSpecialTokens: false });
    if (ids.length === 0) throw new LmGuardrailError('the guardrail template rendered an empty prompt');
    return ids;
  }

  /**
   * The renderings of one conversation's response prefixes. Rendering the template is most of STAR's
   * per-prefix cost outside the model, so the template is rendered once with a marker as the response and
   * each prefix spliced in where the marker landed. That holds only for a template that copies the response
   * verbatim, which two real renderings check (the shortest and the longest prefix); otherwise each prefix is
   * rendered on its own.
   */
  renderPrefixes(messages: Message[], prefixes: string[]): string[] {
    const render = (response: string) => this.render({ messages, response });
    if (prefixes.length < 3) return prefixes.map(render);
    const marked = render(PREFIX_MARKER);
    const at = marked.indexOf(PREFIX_MARKER);
    const splice = (prefix: string) => marked.slice(0, at) + prefix + marked.slice(at + PREFIX_MARKER.length);
    const first = render(prefixes[0]);
    const last = render(prefixes[prefixes.length - 1]);
    const verbatim =
      at >= 0 &&
      marked.indexOf(PREFIX_MARKER, at + 1) < 0 &&
      splice(prefixes[0]) === first &&
      splice(prefixes[prefixes.length - 1]) === last;
    if (!verbatim) return prefixes.map(render);
    return prefixes.map((prefix, i) => (i === 0 ? first : i === prefixes.length - 1 ? last : splice(prefix)));
  }

  async scoreSafe(items: GuardItem[]): Promise<number[]> {
    const encoded = items.map((item) => this.encode(item));
    // Similar lengths share a batch, so little padding is computed.
    const order = encoded.map((_, i) => i).sort((a, b) => encoded[a].length - encoded[b].length);
    const vocab = this.model.config.vocabSize;
    const batchSize = Math.min(this.batchSize, Math.max(1, Math.floor(LOGIT_BUDGET / (MIN_SEGMENT * vocab))));
    const scores = new Array<number>(items.length);
    for (let start = 0; start < order.length; start += batchSize) {
      const group = order.slice(start, start + batchSize);
      const ps = await this.scoreBatch(group.map((i) => encoded[i]));
      group.forEach((i, j) => (scores[i] = ps[j]));
    }
    this.callCount += items.length;
    return scores;
  }

  private async scoreBatch(sequences: number[][]): Promise<number[]> {
    const width = Math.max(...sequences.map((s) => s.length));
    const pad = this.tokenizer.padTokenId ?? this.model.config.padTokenId ?? 0;
    const padded = sequences.some((s) => s.length !== width);
    const rows = sequences.map((s) => [...new Array<number>(width - s.length).fill(pad), ...s]);
    const mask = padded
      ? sequences.map((s) => [...new Array<number>(width - s.length).fill(0), ...new Array<number>(s.length).fill(1)])
      : undefined;
    this.forwarded += sequences.length * width;
    const second = this.spec.position === 2;
    const first = await forwardLast(this.model, rows, { mask, keepCache: second });
    if (!second) return first.logits.map((row) => this.readVerdict(row));
    try {
      const next = first.logits.map((row) => [argmax(row)]);
      this.forwarded += sequences.length;
      const out = await forwardLast(this.model, next, { mask: mask?.map((m) => [...m, 1]), cache: first.cache });
      return out.logits.map((row) => this.readVerdict(row));
    } finally {
      if (first.cache) disposeCache(first.cache);
    }
  }

  async scorePrefixes(messages: Message[], prefixes: string[]): Promise<number[]> {
    if (prefixes.length === 0) return [];
    const encoded = this.renderPrefixes(messages, prefixes).map((text) => this.encodeRendered(text));
    const full = encoded[encoded.length - 1];
    const second = this.spec.position === 2;
    this.forwarded += full.length;
    const base = await forwardLast(this.model, [full], { keepCache: true });
    const baseCache = base.cache!;
    try {
      const scores = new Array<number>(prefixes.length);
      const rows: SuffixRow[] = [];
      encoded.forEach((ids, index) => {
        const common = commonPrefixLength(ids, full);
        // The full rendering's own verdict at position 1 is the pass's logits; everything else forwards at
        // least its last token (at position 2 its cache row is needed for the fed-back token as well).
        if (!second && common === ids.length && common === full.length) scores[index] = this.readVerdict(base.logits[0]);
        else {
          const reuse = Math.min(common, ids.length - 1);
          rows.push({ index, reuse, tokens: ids.slice(reuse) });
        }
      });
      // Similar suffix lengths share a forward, so little padding is computed.
      rows.sort((x, y) => x.tokens.length - y.tokens.length);
      for (const group of this.suffixGroups(rows)) {
        const ps = await this.scoreSuffixes(baseCache, group);
        group.forEach((row, j) => (scores[row.index] = ps[j]));
      }
      this.callCount += prefixes.length;
      return scores;
    } finally {
      disposeCache(baseCache);
    }
  }

  /**
   * scorePrefixes for many responses in few forward passes: each response's prefixes packed into one row, rows
   * grouped within PACK_BUDGET (lm-prefix-rows.ts). A guardrail read at the 2nd generated position, or a model
   * with sliding-window layers, scores response by response instead.
   */
  async scorePrefixGroups(groups: { messages: Message[]; prefixes: string[] }[]): Promise<number[][]> {
    const c = this.model.config;
    if (this.spec.position === 2 || c.layerTypes.includes('sliding') || !this.model.forwardHidden) {
      const out: number[][] = [];
      for (const g of groups) out.push(await this.scorePrefixes(g.messages, g.prefixes));
      return out;
    }
    const rows = groups.map((g) => packPrefixes(this.renderPrefixes(g.messages, g.prefixes).map((text) => this.encodeRendered(text))));
    const scores = groups.map(() => [] as number[]);
    // Similar lengths share a forward, so little padding is computed.
    const order = groups.map((_, i) => i).filter((i) => groups[i].prefixes.length > 0);
    order.sort((a, b) => rows[a].tokens.length - rows[b].tokens.length);
    const pad = this.tokenizer.padTokenId ?? c.padTokenId ?? 0;
    for (const part of groupRows(
      order.map((i) => rows[i]),
      c.vocabSize,
      PACK_BUDGET,
    )) {
      const members = part.map((j) => order[j]);
      const logits = await packedLogits(
        this.model,
        members.map((i) => rows[i]),
        pad,
      );
      members.forEach((i, j) => (scores[i] = logits[j].map((row) => this.readVerdict(row))));
      this.forwarded += members.length * Math.max(...members.map((i) => rows[i].tokens.length)); // padding is computed too
    }
    this.callCount += groups.reduce((n, g) => n + g.prefixes.length, 0);
    return scores;
  }

  /** Consecutive runs of rows, each at most batchSize rows whose tiled cache fits CACHE_BUDGET (≥ 1 row). */
  private suffixGroups(rows: SuffixRow[]): SuffixRow[][] {
    const c = this.model.config;
    const perPosition = 2 * c.numLayers * c.numKvHeads * c.headDim; // cached floats per row and position
    const maxRows = Math.min(this.batchSize, Math.max(1, Math.floor(LOGIT_BUDGET / c.vocabSize)));
    const groups: SuffixRow[][] = [];
    let group: SuffixRow[] = [];
    let reuse = 0;
    for (const row of rows) {
      const nextReuse = Math.max(reuse, row.reuse);
      // Rows are sorted by suffix length, so this row's suffix is the group's widest.
      const floats = (group.length + 1) * perPosition * (nextReuse + row.tokens.length + 1);
      if (group.length > 0 && (group.length === maxRows || floats > CACHE_BUDGET)) {
        groups.push(group);
        group = [];
        reuse = row.reuse;
      } else reuse = nextReuse;
      group.push(row);
    }
    if (group.length > 0) groups.push(group);
    return groups;
  }

  /**
   * Verdicts of rows that continue the shared cache: one forward of all suffixes (left-padded), row r seeing
   * the cache's first reuse_r positions and its own tokens at positions reuse_r, reuse_r + 1, ...
   */
  private async scoreSuffixes(baseCache: KVCache, rows: SuffixRow[]): Promise<number[]> {
    const past = Math.max(...rows.map((r) => r.reuse));
    const width = Math.max(...rows.map((r) => r.tokens.length));
    const pad = this.tokenizer.padTokenId ?? this.model.config.padTokenId ?? 0;
    const padding = rows.map((r) => width - r.tokens.length);
    const ids = rows.map((r, i) => [...new Array<number>(padding[i]).fill(pad), ...r.tokens]);
    // [rows, past + width]: the row's common prefix and its own tokens; its padding and the cached
    // positions at and after its reuse length (which belong to the longest rendering) stay hidden.
    const mask = rows.map((r, i) => {
      const m = new Array<number>(past + width).fill(0);
      m.fill(1, 0, r.reuse);
      m.fill(1, past + padding[i]);
      return m;
    });
    // Padding slots take position 0; their outputs are never read and their keys are masked.
    const positions = rows.map((r, i) => ids[i].map((_, j) => (j < padding[i] ? 0 : r.reuse + j - padding[i])));
    const second = this.spec.position === 2;
    const tiled = past > 0 ? sliceCache(baseCache, past, rows.length) : undefined;
    try {
      this.forwarded += rows.length * width;
      const first = await forwardLast(this.model, ids, { mask, positions, cache: tiled, keepCache: second });
      if (!second) return first.logits.map((row) => this.readVerdict(row));
      try {
        this.forwarded += rows.length;
        const next = await forwardLast(
          this.model,
          first.logits.map((row) => [argmax(row)]),
          {
            mask: mask.map((m) => [...m, 1]),
            positions: rows.map((r) => [r.reuse + r.tokens.length]),
            cache: first.cache,
          },
        );
        return next.logits.map((row) => this.readVerdict(row));
      } finally {
        disposeCache(first.cache!);
      }
    } finally {
      if (tiled) disposeCache(tiled);
    }
  }

  private readVerdict(row: Float32Array): number {
    return processedPSafe(row, this.safeId, this.unsafeId, this.labelProcessing);
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Loads an LM guardrail from a model directory; its id hashes the weights, config and tokenizer bytes. */
export function loadLmGuardrail(dir: string, spec: GuardSpec, options: LmGuardrailOptions = {}): LmGuardrail {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new LmGuardrailError(`${dir}: not a model directory`);
  const weights = checkpointHashes(dir);
  const { model, tokenizer } = loadModel(dir);
  try {
    return new LmGuardrail({ model, tokenizer, spec, weights, ...options });
  } catch (error) {
    model.dispose();
    throw error;
  }
}
