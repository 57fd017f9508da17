// The HTTP guardrail: a guardrail model behind an OpenAI-compatible completions endpoint with logprobs,
// as vLLM serves one (and as `star-dss serve guardrail` does). The prompt is rendered locally with the
// guardrail's own chat template; the server generates `position` tokens greedily and returns the top-K
// logprobs at each, from which P(safe) = softmax over the two label logprobs = σ(lp_safe − lp_unsafe)
// (logprobs differ from logits by a per-position constant, so this equals the LM guardrail's value).
import { contentHash } from '../engine/io.ts';
import { ChatTemplate, type TemplateSpecialTokens } from '../engine/model/chat-template.ts';
import { loadTokenizer, type Tokenizer } from '../engine/model/tokenizer.ts';
import { labelTokenId } from './lm.ts';
import { guardConversation, pSafe, type GuardSpec } from './presets.ts';
import type { GuardItem, Guardrail } from './types.ts';

export class HttpGuardrailError extends Error {
  readonly code = 'GUARDRAIL_HTTP';
}

/** Where the chat template comes from: the guardrail's tokenizer files, or the template text itself. */
export type TemplateSource = { tokenizerDir: string } | { chatTemplate: string; specialTokens?: TemplateSpecialTokens };

export interface HttpGuardrailOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted). */
  url: string;
  /** Served model name; default: the first model listed by GET /v1/models. */
  model?: string;
  spec: GuardSpec;
  template: TemplateSource;
  /** Per-attempt timeout, covering the response body. Default 60 000 ms. */
  timeoutMs?: number;
  /** Extra attempts after a network error, timeout, 429 or 5xx. Default 3. */
  retries?: number;
  /** First backoff; doubles after each failed attempt. Default 500 ms. */
  backoffMs?: number;
  /** Name of an environment variable holding an API key (sent as a Bearer token, never logged). */
  apiKeyEnv?: string;
  /** How many top logprobs to request per position. Default 20 (vLLM's default maximum). */
  topLogprobs?: number;
  /** Prompts per request. Default 32. */
  batchSize?: number;
}

interface Transport {
  endpoint: string;
  timeoutMs: number;
  retries: number;
  backoffMs: number;
  apiKeyEnv?: string;
}

/** Thrown for answers that a retry cannot fix (4xx other than 429, malformed bodies). */
class FinalError extends HttpGuardrailError {}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
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

/** One JSON request with a timeout per attempt and exponential backoff between retryable failures. */
async function requestJson(t: Transport, url: string, body?: unknown): Promise<unknown> {
  let lastProblem = '';
  const attempts = t.retries + 1;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (attempt > 0) await sleep(t.backoffMs * 2 ** (attempt - 1));
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), t.timeoutMs);
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
          return JSON.parse(text);
        } catch {
          throw new FinalError(`${url}: the response is not JSON: ${text.slice(0, 200)}`);
        }
      }
      const problem = `HTTP ${response.status}: ${serverMessage(text)}`;
      if (response.status !== 429 && response.status < 500) throw new FinalError(`${url}: ${problem}`);
      lastProblem = problem;
    } catch (error) {
      if (error instanceof HttpGuardrailError) throw error;
      lastProblem = controller.signal.aborted
        ? `no complete response within ${t.timeoutMs} ms (timeout)`
        : `network error: ${networkReason(error)}`;
    } finally {
      clearTimeout(timer);
    }
  }
  throw new HttpGuardrailError(`${url}: ${lastProblem}; gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}`);
}

function networkReason(error: unknown): string {
  const e = error as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(error);
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

/** Top-logprob maps at each generated position of one choice. */
function topLogprobsOf(choice: unknown, url: string, index: number): (Record<string, number> | null)[] {
  const logprobs = isRecord(choice) ? choice.logprobs : undefined;
  if (!isRecord(logprobs) || !Array.isArray(logprobs.top_logprobs)) {
    throw new HttpGuardrailError(
      `${url}: choices[${index}] has no logprobs.top_logprobs (does the server support logprobs on /v1/completions?)`,
    );
  }
  return logprobs.top_logprobs as (Record<string, number> | null)[];
}

export class HttpGuardrail implements Guardrail {
  readonly id: string;
  readonly endpoint: string;
  private callCount = 0;

  constructor(
    readonly model: string,
    readonly spec: GuardSpec,
    private readonly renderPrompt: (item: GuardItem) => string,
    templateText: string,
    private readonly transport: Transport,
    private readonly topLogprobs: number,
    private readonly batchSize: number,
    base: string,
  ) {
    this.endpoint = transport.endpoint;
    const { labels, position, extra = {} } = spec;
    this.id = `http-${contentHash({ url: base, model, template: templateText, labels, position, extra })}`;
  }

  get calls(): number {
    return this.callCount;
  }

  render(item: GuardItem): string {
    return this.renderPrompt(item);
  }

  async scoreSafe(items: GuardItem[]): Promise<number[]> {
    const prompts = items.map((item) => this.renderPrompt(item));
    const scores: number[] = [];
    for (let start = 0; start < prompts.length; start += this.batchSize) {
      scores.push(...(await this.scoreBatch(prompts.slice(start, start + this.batchSize), start)));
    }
    this.callCount += items.length;
    return scores;
  }

  private async scoreBatch(prompts: string[], offset: number): Promise<number[]> {
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
    const response = await requestJson(this.transport, url, body);
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
    return ordered.map((choice, i) => {
      const top = topLogprobsOf(choice, url, i)[position - 1];
      if (!isRecord(top)) {
        throw new HttpGuardrailError(
          `${url}: prompt ${offset + i} has no top_logprobs at generated position ${position} (did generation stop early?)`,
        );
      }
      const read = (role: 'safe' | 'unsafe'): number => {
        const value = top[labels[role]];
        if (typeof value === 'number' && !Number.isNaN(value)) return value;
        const returned = Object.entries(top)
          .slice(0, 8)
          .map(([token, lp]) => `${JSON.stringify(token)}: ${typeof lp === 'number' ? lp.toFixed(3) : String(lp)}`)
          .join(', ');
        throw new HttpGuardrailError(
          `${url}: the ${role} label ${JSON.stringify(labels[role])} is missing from top_logprobs at generated position ${position} (prompt ${offset + i}); returned {${returned}}. Fix: raise topLogprobs (now ${this.topLogprobs}) or check the labels and position`,
        );
      };
      return pSafe(read('safe'), read('unsafe'));
    });
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
  const transport: Transport = {
    endpoint: `${base}/v1/completions`,
    timeoutMs: positiveInt('timeoutMs', options.timeoutMs ?? 60_000, 1),
    retries: positiveInt('retries', options.retries ?? 3, 0),
    backoffMs: positiveInt('backoffMs', options.backoffMs ?? 500, 0),
    apiKeyEnv: options.apiKeyEnv,
  };
  const { render, text, tokenizer } = templateRenderer(options.template, options.spec);
  if (tokenizer) {
    // With the tokenizer at hand, a label that is not one token fails now rather than on the first reply.
    labelTokenId(tokenizer, options.spec.labels.safe, 'safe');
    labelTokenId(tokenizer, options.spec.labels.unsafe, 'unsafe');
  }
  const model = options.model ?? (await servedModel(transport, base));
  return new HttpGuardrail(
    model,
    options.spec,
    render,
    text,
    transport,
    positiveInt('topLogprobs', options.topLogprobs ?? 20, 1),
    positiveInt('batchSize', options.batchSize ?? 32, 1),
    base,
  );
}
