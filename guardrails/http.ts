// The HTTP guardrail: a guardrail model behind an OpenAI-compatible endpoint with logprobs, as vLLM serves
// one (and as `star-dss serve guardrail` does), in one of two modes:
//   completions  POST /v1/completions: the prompt is rendered locally with the guardrail's own chat template
//                (from its tokenizer files) and sent as text, several prompts per request;
//   chat         POST /v1/chat/completions: the conversation is sent as messages and the server applies its
//                chat template (no local tokenizer needed), one conversation per request.
// Either way the server generates `position` tokens greedily and returns the top-K logprobs at each, from
// which P(safe) = softmax over the two label logprobs = σ(lp_safe − lp_unsafe) (logprobs differ from logits
// by a per-position constant, so this equals the LM guardrail's value); with label processing (temperature,
// top-k, top-p: label-processing.ts) the K returned tokens stand for the vocabulary (README: exact when
// 0 < top-k ≤ K). Requests run concurrently up to a cap; network errors, timeouts, 429 and 5xx are retried
// with backoff (Retry-After respected).
import { z } from 'zod';
import { contentHash } from '../engine/io.ts';
import { ChatTemplate, type TemplateSpecialTokens } from '../engine/model/chat-template.ts';
import { loadTokenizer, type Tokenizer } from '../engine/model/tokenizer.ts';
import { labelTokenId } from './lm.ts';
import { checkLabelProcessing, labelProcessingId, labelSettings, processedPSafe, type LabelProcessing } from './label-processing.ts';
import { guardConversation, type GuardSpec } from './presets.ts';
import type { GuardItem, Guardrail } from './types.ts';

export class HttpGuardrailError extends Error {
  readonly code = 'GUARDRAIL_HTTP';
}

/** Where the chat template comes from: the guardrail's tokenizer files, or the template text itself. */
export type TemplateSource = { tokenizerDir: string } | { chatTemplate: string; specialTokens?: TemplateSpecialTokens };

export const httpModes = ['completions', 'chat'] as const;
export type HttpMode = (typeof httpModes)[number];

/**
 * The user-facing settings of a URL guardrail, shared by sweep configs (`guardrails: [{spec, http: {...}}]`)
 * and the `star` command's --guardrail-* flags. Defaults are filled in; unknown keys are rejected.
 */
export const httpGuardrailSettings = z.strictObject({
  /** completions: render locally, POST /v1/completions; chat: POST /v1/chat/completions, the server renders. */
  mode: z.enum(httpModes).default('completions'),
  /** Served model name; default: the first model the server lists (GET /v1/models). */
  model: z.string().min(1).optional(),
  /** A free-form revision of what the endpoint serves, kept in the guardrail's id (and so the STAR cache key). */
  revision: z.string().min(1).optional(),
  /** Directory with the guardrail's tokenizer files: its chat template (completions mode) and guardrail.json. */
  tokenizer: z.string().min(1).optional(),
  /** Name of the environment variable that holds the API key (the key itself never goes in a config). */
  apiKeyEnv: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name (letters, digits, _), not the key itself' })
    .optional(),
  /** Per-attempt timeout in ms, covering the response body. */
  timeoutMs: z.number().int().positive().default(60_000),
  /** Extra attempts after a network error, timeout, 429 or 5xx. */
  retries: z.number().int().min(0).default(3),
  /** Most requests in flight at once. */
  concurrency: z.number().int().positive().default(4),
  /** Top logprobs requested per generated position. */
  topLogprobs: z.number().int().positive().default(20),
});
export type HttpGuardrailSettings = z.output<typeof httpGuardrailSettings>;

export interface HttpGuardrailOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted). */
  url: string;
  /** Served model name; default: the first model listed by GET /v1/models. */
  model?: string;
  /** Kept in the id (and so in the STAR cache key): set it when the weights behind a model name change. */
  revision?: string;
  /** Default 'completions'. */
  mode?: HttpMode;
  spec: GuardSpec;
  /** The chat template: required in completions mode; in chat mode only used to check the labels. */
  template?: TemplateSource;
  /** Per-attempt timeout, covering the response body. Default 60 000 ms. */
  timeoutMs?: number;
  /** Extra attempts after a network error, timeout, 429 or 5xx. Default 3. */
  retries?: number;
  /** First backoff; doubles after each failed attempt. Default 500 ms. */
  backoffMs?: number;
  /** Longest wait a Retry-After header can ask for (longer ones are cut to this). Default 60 000 ms. */
  maxRetryAfterMs?: number;
  /** Name of an environment variable holding an API key (sent as a Bearer token, never logged). */
  apiKeyEnv?: string;
  /** How many top logprobs to request per position. Default 20 (vLLM's default maximum). */
  topLogprobs?: number;
  /** Prompts per request in completions mode. Default 32. */
  batchSize?: number;
  /** Most requests in flight at once (across all calls on this guardrail). Default 4. */
  concurrency?: number;
  /** How the label scores become P(safe); default the paper formula (label-processing.ts). */
  labelProcessing?: LabelProcessing;
}

/** At most `cap` tasks at once; the others wait in arrival order. */
class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly cap: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    while (this.active >= this.cap) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

interface Transport {
  endpoint: string;
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  maxRetryAfterMs: number;
  apiKeyEnv?: string;
  limiter: Limiter;
}

/** Thrown for answers that a retry cannot fix (4xx other than 429, malformed bodies). */
class FinalError extends HttpGuardrailError {}
/** A request given up because another request of the same call failed. */
class Cancelled extends HttpGuardrailError {}

/** Waits `ms`, or less when `signal` aborts first. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });
}
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function headers(t: Transport): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (t.apiKeyEnv) {
    const key = process.env[t.apiKeyEnv];
    if (!key) throw new HttpGuardrailError(`${t.endpoint}: environment variable ${t.apiKeyEnv} (named by apiKeyEnv) is not set`);
    h.authorization = `Bearer ${key}`;
  }
  return h;
}

/** The OpenAI-style error message of a failed response, or its first 200 characters. */
function serverMessage(text: string): string {
  try {
    const body: unknown = JSON.parse(text);
    if (isRecord(body) && isRecord(body.error) && typeof body.error.message === 'string') return body.error.message;
    if (isRecord(body) && typeof body.message === 'string') return body.message;
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}

/** The wait a response asks for: `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date. */
export function retryAfterMs(h: Headers, now = Date.now()): number | undefined {
  const ms = h.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = h.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * One JSON request with a timeout per attempt and backoff between retryable failures: the server's
 * Retry-After when it sends one (at most maxRetryAfterMs), else backoffMs doubling each time. Each attempt
 * holds one of the transport's concurrency slots; waiting between attempts holds none.
 */
async function requestJson(t: Transport, url: string, body?: unknown, cancel?: AbortSignal): Promise<unknown> {
  let lastProblem = '';
  let wait: number | undefined;
  const attempts = t.retries + 1;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await sleep(wait ?? t.backoffMs * 2 ** (attempt - 1), cancel);
    wait = undefined;
    const outcome = await t.limiter.run(async (): Promise<{ value: unknown } | undefined> => {
      if (cancel?.aborted) throw new Cancelled(`${url}: cancelled`);
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), t.timeoutMs);
      const onCancel = () => controller.abort();
      cancel?.addEventListener('abort', onCancel);
      try {
        const response = await fetch(url, {
          method: body === undefined ? 'GET' : 'POST',
          headers: headers(t),
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: controller.signal,
        });
        const text = await response.text();
        if (response.ok) {
          try {
            return { value: JSON.parse(text) };
          } catch {
            throw new FinalError(`${url}: the response is not JSON: ${text.slice(0, 200)}`);
          }
        }
        const problem = `HTTP ${response.status}: ${serverMessage(text)}`;
        if (response.status !== 429 && response.status < 500) throw new FinalError(`${url}: ${problem}`);
        lastProblem = problem;
        const asked = retryAfterMs(response.headers);
        if (asked !== undefined) wait = Math.min(asked, t.maxRetryAfterMs);
        return undefined;
      } catch (error) {
        if (error instanceof HttpGuardrailError) throw error;
        if (cancel?.aborted) throw new Cancelled(`${url}: cancelled`);
        lastProblem = controller.signal.aborted
          ? `no complete response within ${t.timeoutMs} ms (timeout)`
          : `network error: ${networkReason(error)}`;
        return undefined;
      } finally {
        clearTimeout(timer);
        cancel?.removeEventListener('abort', onCancel);
      }
    });
    if (outcome) return outcome.value;
  }
  throw new HttpGuardrailError(`${url}: ${lastProblem}; gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}`);
}

function networkReason(error: unknown): string {
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(error);
}

/**
 * Runs `task` on every item at once (the transport's limiter caps what is in flight); on the first failure
 * the requests not yet answered are cancelled and that failure is thrown.
 */
async function allOrCancel<T, R>(items: readonly T[], task: (item: T, index: number, cancel: AbortSignal) => Promise<R>): Promise<R[]> {
  const controller = new AbortController();
  const settled = await Promise.allSettled(
    items.map((item, i) =>
      task(item, i, controller.signal).catch((error: unknown) => {
        controller.abort();
        throw error;
      }),
    ),
  );
  const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as unknown);
  if (failures.length > 0) throw failures.find((e) => !(e instanceof Cancelled)) ?? failures[0];
  return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
}

/** `http://host:port/v1/` → `http://host:port`. */
export function normaliseBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new HttpGuardrailError(`'${url}' is not a URL. Fix: pass e.g. http://127.0.0.1:8000`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new HttpGuardrailError(`'${url}': only http(s) URLs are supported`);
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '').replace(/\/v1$/, '')}`;
}

/** Top-logprob maps at each generated position of one completions choice. */
function topLogprobsOf(choice: unknown, url: string, index: number): (Record<string, number> | null)[] {
  const logprobs = isRecord(choice) ? choice.logprobs : undefined;
  if (!isRecord(logprobs) || !Array.isArray(logprobs.top_logprobs)) {
    throw new HttpGuardrailError(
      `${url}: choices[${index}] has no logprobs.top_logprobs (does the server support logprobs on /v1/completions?)`,
    );
  }
  return logprobs.top_logprobs as (Record<string, number> | null)[];
}

/** `{"safe": -0.100, ...}`: the first entries of what a server returned, for error messages. */
function shown(entries: [string, unknown][]): string {
  return entries
    .slice(0, 8)
    .map(([token, lp]) => `${JSON.stringify(token)}: ${typeof lp === 'number' ? lp.toFixed(3) : String(lp)}`)
    .join(', ');
}

/**
 * P(safe) from one position's top logprobs (token → logprob) under the label processing, the returned tokens
 * standing for the vocabulary; a label that is not among them counts as logprob −∞.
 */
function labelScore(top: Map<string, number>, labels: GuardSpec['labels'], processing: LabelProcessing): number {
  const tokens = [...top.keys()];
  return processedPSafe([...top.values()], tokens.indexOf(labels.safe), tokens.indexOf(labels.unsafe), processing);
}

/** The top logprobs of one chat-completions position as token → logprob (the first, highest, of duplicates). */
function chatTopLogprobs(entry: unknown): Map<string, number> | undefined {
  if (!isRecord(entry) || !Array.isArray(entry.top_logprobs)) return undefined;
  const top = new Map<string, number>();
  for (const t of entry.top_logprobs) {
    if (isRecord(t) && typeof t.token === 'string' && typeof t.logprob === 'number' && !top.has(t.token)) top.set(t.token, t.logprob);
  }
  return top;
}

interface Endpoint {
  base: string;
  mode: HttpMode;
  transport: Transport;
  topLogprobs: number;
  batchSize: number;
  revision?: string;
  labelProcessing: LabelProcessing;
}

export class HttpGuardrail implements Guardrail {
  readonly id: string;
  readonly endpoint: string;
  readonly mode: HttpMode;
  readonly revision?: string;
  private readonly transport: Transport;
  private readonly topLogprobs: number;
  private readonly batchSize: number;
  readonly labelProcessing: LabelProcessing;
  private callCount = 0;

  constructor(
    readonly model: string,
    readonly spec: GuardSpec,
    private readonly renderPrompt: ((item: GuardItem) => string) | undefined,
    templateText: string | undefined,
    endpoint: Endpoint,
  ) {
    this.transport = endpoint.transport;
    this.endpoint = endpoint.transport.endpoint;
    this.mode = endpoint.mode;
    this.revision = endpoint.revision;
    this.topLogprobs = endpoint.topLogprobs;
    this.batchSize = endpoint.batchSize;
    this.labelProcessing = endpoint.labelProcessing;
    const { labels, position, extra = {} } = spec;
    const revision = endpoint.revision !== undefined ? { revision: endpoint.revision } : {};
    // Completions ids are unchanged from before chat mode, revisions and label processing existed. A chat verdict
    // can depend on K (a label outside the top K counts as −∞), so K is part of a chat id; so it is of any id with
    // label processing, which reads the K returned tokens as the vocabulary.
    const processing = labelProcessingId(this.labelProcessing);
    const k = processing.labelProcessing ? { topLogprobs: this.topLogprobs } : {};
    this.id =
      this.mode === 'chat'
        ? `http-${contentHash({ mode: 'chat', url: endpoint.base, model, labels, position, extra, topLogprobs: this.topLogprobs, ...revision, ...processing })}`
        : `http-${contentHash({ url: endpoint.base, model, template: templateText, labels, position, extra, ...revision, ...processing, ...k })}`;
  }

  get calls(): number {
    return this.callCount;
  }

  /** The prompt sent in completions mode. */
  render(item: GuardItem): string {
    if (!this.renderPrompt) throw new HttpGuardrailError(`${this.endpoint}: chat mode sends messages; the server renders them`);
    return this.renderPrompt(item);
  }

  async scoreSafe(items: GuardItem[]): Promise<number[]> {
    let scores: number[];
    if (this.mode === 'chat') scores = await allOrCancel(items, (item, i, cancel) => this.scoreChat(item, i, cancel));
    else {
      const prompts = items.map((item) => this.render(item));
      const batches: number[] = [];
      for (let start = 0; start < prompts.length; start += this.batchSize) batches.push(start);
      const scored = await allOrCancel(batches, (start, _i, cancel) =>
        this.scoreBatch(prompts.slice(start, start + this.batchSize), start, cancel),
      );
      scores = scored.flat();
    }
    this.callCount += items.length;
    return scores;
  }

  /** The response's `model`, when it names one, must be the model this guardrail (and its id) is for. */
  private checkModel(response: unknown, url: string): void {
    const reported = isRecord(response) ? response.model : undefined;
    if (typeof reported === 'string' && reported !== this.model) {
      throw new HttpGuardrailError(
        `${url}: the server reports model '${reported}' but this guardrail, and its cache key, is for model '${this.model}'. Fix: set the guardrail's model to '${reported}' (http.model or --guardrail-model)`,
      );
    }
  }

  private async scoreBatch(prompts: string[], offset: number, cancel: AbortSignal): Promise<number[]> {
    const { position, labels } = this.spec;
    const body = {
      model: this.model,
      prompt: prompts,
      max_tokens: position,
      temperature: 0,
      logprobs: this.topLogprobs,
      // The template already holds any BOS token; vLLM would add another by default.
      add_special_tokens: false,
      // Read position 2 even when the first generated token is an end-of-sequence token.
      ignore_eos: true,
    };
    const url = this.endpoint;
    const response = await requestJson(this.transport, url, body, cancel);
    this.checkModel(response, url);
    const choices = isRecord(response) ? response.choices : undefined;
    if (!Array.isArray(choices) || choices.length !== prompts.length) {
      throw new HttpGuardrailError(
        `${url}: expected ${prompts.length} choices, got ${Array.isArray(choices) ? choices.length : JSON.stringify(choices)?.slice(0, 100)}`,
      );
    }
    // Choices carry the index of their prompt; order by it when present.
    const ordered = choices.every((c) => isRecord(c) && typeof c.index === 'number')
      ? [...choices].sort((a, b) => (a as { index: number }).index - (b as { index: number }).index)
      : choices;
    // With a top-k of at most K, a label outside the returned top K is certainly removed by top-k: −∞, not an error.
    const { topK } = this.labelProcessing;
    const missingIsRemoved = topK > 0 && topK <= this.topLogprobs;
    return ordered.map((choice, i) => {
      const top = topLogprobsOf(choice, url, i)[position - 1];
      if (!isRecord(top)) {
        throw new HttpGuardrailError(
          `${url}: prompt ${offset + i} has no top_logprobs at generated position ${position} (did generation stop early?)`,
        );
      }
      const entries = new Map(Object.entries(top).filter((e): e is [string, number] => typeof e[1] === 'number' && !Number.isNaN(e[1])));
      for (const role of ['safe', 'unsafe'] as const) {
        if (entries.has(labels[role]) || missingIsRemoved) continue;
        throw new HttpGuardrailError(
          `${url}: the ${role} label ${JSON.stringify(labels[role])} is missing from top_logprobs at generated position ${position} (prompt ${offset + i}); returned {${shown(Object.entries(top))}}. Fix: raise topLogprobs (now ${this.topLogprobs}) or check the labels and position`,
        );
      }
      return labelScore(entries, labels, this.labelProcessing);
    });
  }

  /**
   * Chat mode: the conversation the guardrail judges ([user turn(s), assistant: response], as guardConversation
   * builds it for the local template) goes as messages; the verdict is read from
   * choices[0].logprobs.content[position − 1].top_logprobs. A label outside the top K counts as logprob −∞
   * (so P(safe) is 0 or 1 when only one label is there); neither label there is an error.
   */
  private async scoreChat(item: GuardItem, index: number, cancel: AbortSignal): Promise<number> {
    const { position, labels, extra } = this.spec;
    const body = {
      model: this.model,
      messages: guardConversation(item),
      max_tokens: position,
      temperature: 0,
      logprobs: true,
      top_logprobs: this.topLogprobs,
      // Template variables such as Granite Guardian's guardian_config (vLLM's chat_template_kwargs).
      ...(extra !== undefined && Object.keys(extra).length > 0 ? { chat_template_kwargs: extra } : {}),
      // Read position 2 even when the first generated token ends the turn (a vLLM extra; unneeded at position 1).
      ...(position > 1 ? { ignore_eos: true } : {}),
    };
    const url = this.endpoint;
    const response = await requestJson(this.transport, url, body, cancel);
    this.checkModel(response, url);
    const choices = isRecord(response) ? response.choices : undefined;
    const choice: unknown = Array.isArray(choices) ? choices[0] : undefined;
    const logprobs = isRecord(choice) ? choice.logprobs : undefined;
    if (!isRecord(logprobs) || !Array.isArray(logprobs.content)) {
      throw new HttpGuardrailError(
        `${url}: item ${index}: choices[0] has no logprobs.content (does the server return logprobs on /v1/chat/completions?)`,
      );
    }
    const top = chatTopLogprobs(logprobs.content[position - 1]);
    if (!top) {
      throw new HttpGuardrailError(
        `${url}: item ${index}: no top_logprobs at generated position ${position} (logprobs.content has ${logprobs.content.length} entries; did generation stop early?)`,
      );
    }
    if (!top.has(labels.safe) && !top.has(labels.unsafe)) {
      throw new HttpGuardrailError(
        `${url}: item ${index}: neither label (${JSON.stringify(labels.safe)}, ${JSON.stringify(labels.unsafe)}) is among the top ${this.topLogprobs} logprobs at generated position ${position}; returned {${shown([...top])}}. Fix: raise topLogprobs or check the labels and position`,
      );
    }
    return labelScore(top, labels, this.labelProcessing);
  }
}

/** The first model id of GET {base}/v1/models. */
async function servedModel(t: Transport, base: string): Promise<string> {
  const url = `${base}/v1/models`;
  const body = await requestJson(t, url);
  const data = isRecord(body) ? body.data : undefined;
  const first = Array.isArray(data) ? data[0] : undefined;
  if (!isRecord(first) || typeof first.id !== 'string')
    throw new HttpGuardrailError(`${url}: lists no model. Fix: pass the model name explicitly`);
  return first.id;
}

function templateRenderer(
  source: TemplateSource,
  spec: GuardSpec,
): { render: (item: GuardItem) => string; text: string; tokenizer?: Tokenizer } {
  const options = { addGenerationPrompt: true, extra: spec.extra };
  if ('tokenizerDir' in source) {
    const tokenizer = loadTokenizer(source.tokenizerDir);
    const text = tokenizer.chatTemplate ?? '';
    return { render: (item) => tokenizer.applyChatTemplate(guardConversation(item), options), text, tokenizer };
  }
  const template = new ChatTemplate(source.chatTemplate, source.specialTokens ?? {}, 'guardrail chat template');
  return { render: (item) => template.render(guardConversation(item), options), text: source.chatTemplate };
}

const positiveInt = (name: string, value: number, min: number): number => {
  if (!Number.isInteger(value) || value < min) throw new HttpGuardrailError(`${name} must be an integer ≥ ${min}, got ${value}`);
  return value;
};

/** Builds an HTTP guardrail; asks the server for its model name when none is given. */
export async function createHttpGuardrail(options: HttpGuardrailOptions): Promise<HttpGuardrail> {
  const base = normaliseBaseUrl(options.url);
  const mode = options.mode ?? 'completions';
  if (!(httpModes as readonly string[]).includes(mode))
    throw new HttpGuardrailError(`mode must be ${httpModes.join(' or ')}, got '${String(mode)}'`);
  const transport: Transport = {
    endpoint: `${base}/v1/${mode === 'chat' ? 'chat/completions' : 'completions'}`,
    timeoutMs: positiveInt('timeoutMs', options.timeoutMs ?? 60_000, 1),
    retries: positiveInt('retries', options.retries ?? 3, 0),
    backoffMs: positiveInt('backoffMs', options.backoffMs ?? 500, 0),
    maxRetryAfterMs: positiveInt('maxRetryAfterMs', options.maxRetryAfterMs ?? 60_000, 0),
    apiKeyEnv: options.apiKeyEnv,
    limiter: new Limiter(positiveInt('concurrency', options.concurrency ?? 4, 1)),
  };
  if (options.revision !== undefined && options.revision.trim() === '')
    throw new HttpGuardrailError('revision must be a non-empty string when given');
  let render: ((item: GuardItem) => string) | undefined;
  let text: string | undefined;
  let tokenizer: Tokenizer | undefined;
  if (mode === 'completions') {
    if (!options.template) {
      throw new HttpGuardrailError(
        `${transport.endpoint}: completions mode renders prompts locally and needs the guardrail's chat template. Fix: give the tokenizer directory, or use chat mode`,
      );
    }
    ({ render, text, tokenizer } = templateRenderer(options.template, options.spec));
  } else if (options.template && 'tokenizerDir' in options.template) tokenizer = loadTokenizer(options.template.tokenizerDir);
  if (tokenizer) {
    // With the tokenizer at hand, a label that is not one token fails now rather than on the first reply.
    labelTokenId(tokenizer, options.spec.labels.safe, 'safe');
    labelTokenId(tokenizer, options.spec.labels.unsafe, 'unsafe');
  }
  const topLogprobs = positiveInt('topLogprobs', options.topLogprobs ?? 20, 1);
  const labelProcessing = checkLabelProcessing(options.labelProcessing ?? labelSettings.paper, transport.endpoint);
  const batchSize = positiveInt('batchSize', options.batchSize ?? 32, 1);
  const model = options.model ?? (await servedModel(transport, base));
  return new HttpGuardrail(model, options.spec, render, text, {
    base,
    mode,
    transport,
    topLogprobs,
    batchSize,
    labelProcessing,
    ...(options.revision !== undefined ? { revision: options.revision } : {}),
  });
}
