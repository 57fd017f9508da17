// An OpenAI-compatible completions server for a local causal LM (node:http, no framework), so the HTTP
// guardrail is exercised against a real server on loopback and a micro guardrail can be shared between
// processes. It implements the part of vLLM's API the HTTP guardrail uses:
//   POST /v1/completions  {model?, prompt: string | string[] | ids | ids[], max_tokens?, temperature?: 0,
//                          logprobs?: K, add_special_tokens?, ignore_eos?}  → greedy decoding, with the top-K
//                          log-probabilities over the full vocabulary at each generated position
//   POST /v1/chat/completions  {model?, messages, max_tokens? | max_completion_tokens?, temperature?: 0,
//                          logprobs?: bool, top_logprobs?: K, chat_template_kwargs?, add_generation_prompt?,
//                          continue_final_message?, add_special_tokens?, ignore_eos?}  → the messages rendered
//                          with the checkpoint's chat template (a guardrail's template variables, e.g. Granite
//                          Guardian's guardian_config, are the defaults of chat_template_kwargs), then the same
//                          decoding; logprobs as choices[0].logprobs.content[i] = {token, logprob, bytes,
//                          top_logprobs: [{token, logprob, bytes}]}
//   GET  /v1/models, GET /health (→ {status: 'ok', pending, maxPending}: requests being scored or waiting)
// Decoding is greedy only (temperature must be 0 or absent). Tokens are returned as strings (each token
// decoded on its own); errors as {error: {message, type, param, code}} with a 4xx status.
//
// Limits, so that one client cannot take the process down or starve the others: a prompt plus its generated
// tokens must fit the model's context (400), a request holds at most `maxPrompts` prompts (400), at most
// `maxPending` requests are scored or wait to be (429 with Retry-After beyond that; they are scored one at a
// time), and scoring yields to the event loop before every forward pass, so GET /health answers at once while
// a request is scored. With `apiKey`, every route but GET /health needs `Authorization: Bearer <key>` (401).
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { disposeCache } from '../engine/model/transformer.ts';
import type { Tokenizer } from '../engine/model/tokenizer.ts';
import type { CausalLM, KVCache } from '../engine/model/types.ts';
import type { ChatMessage } from '../engine/model/chat-template.ts';
import { argmax, forwardLast } from '../guardrails/lm.ts';
import type { GuardSpec } from '../guardrails/presets.ts';

export interface ServedModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** A guardrail's reading: its template variables are the chat endpoint's default chat_template_kwargs. */
  spec?: Pick<GuardSpec, 'extra'>;
}

export interface ServerLimits {
  /** Largest accepted `logprobs`. Default 100. */
  maxLogprobs: number;
  /** Largest accepted `max_tokens`. Default 512. */
  maxTokens: number;
  /** Prompts decoded together in one left-padded batch. Default 8. */
  batchSize: number;
  /** Most prompts in one request. Default 64. */
  maxPrompts: number;
  /**
   * Most tokens a prompt plus its generated tokens may take: the model's context length (config max
   * positions), or less. Default: the context length.
   */
  maxContextTokens: number;
  /** Most requests being scored or waiting to be; one more is answered 429. Default 8. */
  maxPending: number;
}

export interface GuardrailServerOptions extends Partial<ServerLimits> {
  /** The model name served (GET /v1/models, and the `model` a request may name). */
  name: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** When set, every request but GET /health must carry `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Where warnings go (listening on a non-loopback address). Default: stderr. */
  warn?: (line: string) => void;
}

export interface RunningServer {
  /** Base URL, e.g. http://127.0.0.1:8000 (the API is under /v1). */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** A request the server rejects: a 4xx status and an OpenAI-style message. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param?: string,
  ) {
    super(message);
  }
}

export interface CompletionRequest {
  prompts: (string | number[])[];
  maxTokens: number;
  /** Top logprobs per position; undefined = none returned. */
  logprobs?: number;
  addSpecialTokens: boolean;
  ignoreEos: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isIdList = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x));

function intField(
  body: Record<string, unknown>,
  field: string,
  fallback: number | undefined,
  min: number,
  max: number,
): number | undefined {
  const v = body[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RequestError(400, `'${field}' must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`, field);
  }
  return v;
}

function boolField(body: Record<string, unknown>, field: string, fallback: boolean): boolean {
  const v = body[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw new RequestError(400, `'${field}' must be true or false, got ${JSON.stringify(v)}`, field);
  return v;
}

/** The fields both endpoints check alike: the body is an object, the model is ours, greedy and one choice only. */
function checkCommon(body: unknown, name: string): Record<string, unknown> {
  if (!isRecord(body)) throw new RequestError(400, 'the request body must be a JSON object');
  if (body.model !== undefined && body.model !== null && body.model !== name) {
    throw new RequestError(404, `The model \`${String(body.model)}\` does not exist. This server serves \`${name}\`.`, 'model');
  }
  const temperature = body.temperature;
  if (temperature !== undefined && temperature !== null && temperature !== 0) {
    throw new RequestError(
      400,
      `'temperature' must be 0 (this server decodes greedily), got ${JSON.stringify(temperature)}`,
      'temperature',
    );
  }
  for (const field of ['n', 'best_of'] as const) intField(body, field, 1, 1, 1);
  if (boolField(body, 'stream', false)) throw new RequestError(400, "'stream' is not supported", 'stream');
  const stop = body.stop;
  if (stop !== undefined && stop !== null && !(Array.isArray(stop) && stop.length === 0))
    throw new RequestError(400, "'stop' is not supported", 'stop');
  return body;
}

/** Validates a completions request body against what this server implements. */
export function parseCompletionRequest(raw: unknown, name: string, limits: ServerLimits): CompletionRequest {
  const body = checkCommon(raw, name);
  const p = body.prompt;
  let prompts: (string | number[])[];
  if (typeof p === 'string') prompts = [p];
  else if (isIdList(p)) prompts = [p];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string' || isIdList(x))) prompts = p as (string | number[])[];
  else throw new RequestError(400, "'prompt' must be a string, a list of strings, a list of token ids or a list of such lists", 'prompt');
  if (prompts.length > limits.maxPrompts) {
    throw new RequestError(
      400,
      `'prompt' has ${prompts.length} prompts; this server accepts at most ${limits.maxPrompts} per request: split the request`,
      'prompt',
    );
  }
  if (boolField(body, 'echo', false)) throw new RequestError(400, "'echo' is not supported", 'echo');
  return {
    prompts,
    maxTokens: intField(body, 'max_tokens', 16, 1, limits.maxTokens)!,
    logprobs: intField(body, 'logprobs', undefined, 0, limits.maxLogprobs),
    addSpecialTokens: boolField(body, 'add_special_tokens', true),
    ignoreEos: boolField(body, 'ignore_eos', false),
  };
}

const roles = new Set<string>(['system', 'user', 'assistant']);

/** A message's content: a string, or OpenAI's list of text parts (joined). */
function messageText(content: unknown, i: number): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content) && content.every((p) => isRecord(p) && p.type === 'text' && typeof p.text === 'string'))
    return content.map((p) => (p as { text: string }).text).join('');
  throw new RequestError(400, `messages[${i}].content must be a string or a list of {type: 'text', text} parts`, 'messages');
}

/**
 * Validates a chat-completions request and renders its messages with the checkpoint's chat template into the
 * one prompt of a completions request. The served guardrail's template variables are the defaults of
 * `chat_template_kwargs`; like vLLM, the rendering is encoded without adding special tokens (the template
 * holds them) unless `add_special_tokens` says otherwise.
 */
export function parseChatRequest(raw: unknown, served: ServedModel, name: string, limits: ServerLimits): CompletionRequest {
  const body = checkCommon(raw, name);
  const list = body.messages;
  if (!Array.isArray(list) || list.length === 0) throw new RequestError(400, "'messages' must be a non-empty list", 'messages');
  const messages: ChatMessage[] = list.map((m: unknown, i) => {
    if (!isRecord(m) || typeof m.role !== 'string' || !roles.has(m.role))
      throw new RequestError(400, `messages[${i}] must be {role: 'system' | 'user' | 'assistant', content}`, 'messages');
    return { role: m.role as ChatMessage['role'], content: messageText(m.content, i) };
  });
  const logprobs = boolField(body, 'logprobs', false);
  const top = intField(body, 'top_logprobs', undefined, 0, limits.maxLogprobs);
  if (top !== undefined && !logprobs) throw new RequestError(400, "'top_logprobs' needs 'logprobs': true", 'top_logprobs');
  const maxTokens =
    intField(body, 'max_completion_tokens', undefined, 1, limits.maxTokens) ?? intField(body, 'max_tokens', 16, 1, limits.maxTokens)!;
  const addGenerationPrompt = boolField(body, 'add_generation_prompt', true);
  const continueFinalMessage = boolField(body, 'continue_final_message', false);
  if (addGenerationPrompt && continueFinalMessage && body.add_generation_prompt === true)
    throw new RequestError(400, "'add_generation_prompt' and 'continue_final_message' cannot both be true", 'continue_final_message');
  const kwargs = body.chat_template_kwargs;
  if (kwargs !== undefined && kwargs !== null && !isRecord(kwargs))
    throw new RequestError(400, "'chat_template_kwargs' must be an object", 'chat_template_kwargs');
  let prompt: string;
  try {
    prompt = served.tokenizer.applyChatTemplate(messages, {
      addGenerationPrompt: addGenerationPrompt && !continueFinalMessage,
      continueFinalMessage,
      extra: { ...served.spec?.extra, ...(kwargs ?? {}) },
    });
  } catch (error) {
    throw new RequestError(400, `the chat template cannot render these messages: ${(error as Error).message}`, 'messages');
  }
  return {
    prompts: [prompt],
    maxTokens,
    logprobs: logprobs ? (top ?? 0) : undefined,
    addSpecialTokens: boolField(body, 'add_special_tokens', false),
    ignoreEos: boolField(body, 'ignore_eos', false),
  };
}

/** log Σ exp(row), in double precision. */
function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (const x of row) if (x > max) max = x;
  let sum = 0;
  for (const x of row) sum += Math.exp(x - max);
  return max + Math.log(sum);
}

/** Indices of the k largest values, largest first (ties: lower index first). */
export function topK(row: Float32Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < row.length; i++) {
    if (best.length === k && row[i] <= row[best[k - 1]]) continue;
    let at = best.length;
    while (at > 0 && row[best[at - 1]] < row[i]) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

interface Decoded {
  ids: number[];
  logprobs: number[];
  /** The top-K ids and their logprobs at each generated position, best first (when logprobs are asked for). */
  tops: { id: number; logprob: number }[][];
  finish: 'stop' | 'length';
}

/** Lets pending I/O (a health check, a new request to refuse) run between two forward passes. */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Greedy decoding of one left-padded batch, with each position's log-probabilities. */
async function decodeBatch(served: ServedModel, prompts: number[][], request: CompletionRequest): Promise<Decoded[]> {
  const { model, tokenizer } = served;
  const eos = new Set([...tokenizer.eosTokenIds, ...model.config.eosTokenIds]);
  const pad = tokenizer.padTokenId ?? model.config.padTokenId ?? 0;
  const width = Math.max(...prompts.map((p) => p.length));
  const padded = prompts.some((p) => p.length !== width);
  const rows = prompts.map((p) => [...new Array<number>(width - p.length).fill(pad), ...p]);
  const mask = padded
    ? prompts.map((p) => [...new Array<number>(width - p.length).fill(0), ...new Array<number>(p.length).fill(1)])
    : undefined;
  const out: Decoded[] = prompts.map(() => ({ ids: [], logprobs: [], tops: [], finish: 'length' }));
  const done = prompts.map(() => false);
  await yieldToEventLoop();
  let step = await forwardLast(model, rows, { mask, keepCache: request.maxTokens > 1 });
  let cache: KVCache | undefined = step.cache;
  try {
    for (let t = 0; t < request.maxTokens; t++) {
      const next = step.logits.map((row, b) => {
        if (done[b]) return pad;
        const lse = logSumExp(row);
        const token = argmax(row);
        const o = out[b];
        o.ids.push(token);
        o.logprobs.push(row[token] - lse);
        if (request.logprobs !== undefined) o.tops.push(topK(row, request.logprobs).map((id) => ({ id, logprob: row[id] - lse })));
        if (eos.has(token) && !request.ignoreEos) {
          done[b] = true;
          o.finish = 'stop';
        }
        return token;
      });
      if (t === request.maxTokens - 1 || done.every(Boolean)) break;
      mask?.forEach((m) => m.push(1)); // finished rows continue on padding; their outputs are ignored
      await yieldToEventLoop();
      step = await forwardLast(
        model,
        next.map((id) => [id]),
        { mask, cache, keepCache: true },
      );
      if (cache) disposeCache(cache);
      cache = step.cache;
    }
  } finally {
    if (cache) disposeCache(cache);
  }
  return out;
}

/**
 * The token ids of a validated request's prompts; a 400 for an empty prompt, an id outside the vocabulary,
 * or a prompt whose tokens plus the generated ones exceed `maxContextTokens` (default: the model's context).
 */
export function encodePrompts(served: ServedModel, request: CompletionRequest, maxContextTokens?: number): number[][] {
  const { tokenizer, model } = served;
  const context = model.config.maxPositions;
  const limit = Math.min(context, maxContextTokens ?? context);
  const what =
    limit < context
      ? `this server's limit is ${limit} tokens (the model's context length is ${context})`
      : `this model's context length is ${context} tokens`;
  return request.prompts.map((p, i) => {
    if (typeof p !== 'string' && p.length > limit) throw new RequestError(400, `prompt ${i} has ${p.length} tokens; ${what}`, 'prompt');
    const ids = typeof p === 'string' ? tokenizer.encode(p, { addSpecialTokens: request.addSpecialTokens }) : p;
    if (ids.length === 0) throw new RequestError(400, `prompt ${i} encodes to no tokens`, 'prompt');
    // The last generated token is never fed back: a prompt of n tokens and max_tokens m use n + m - 1 positions.
    if (ids.length + request.maxTokens - 1 > limit) {
      throw new RequestError(
        400,
        `prompt ${i} has ${ids.length} prompt tokens and max_tokens ${request.maxTokens} asks for ${request.maxTokens} more; ${what}: shorten the prompt or lower max_tokens`,
        ids.length > limit ? 'prompt' : 'max_tokens',
      );
    }
    const bad = ids.find((id) => id < 0 || id >= model.config.vocabSize);
    if (bad !== undefined) throw new RequestError(400, `prompt ${i} has token id ${bad} outside [0, ${model.config.vocabSize})`, 'prompt');
    return ids;
  });
}

/** Greedy decoding of every prompt, `batchSize` prompts per batch. */
async function decodeAll(served: ServedModel, request: CompletionRequest, batchSize: number, prompts: number[][]): Promise<Decoded[]> {
  const decoded: Decoded[] = [];
  for (let start = 0; start < prompts.length; start += batchSize)
    decoded.push(...(await decodeBatch(served, prompts.slice(start, start + batchSize), request)));
  return decoded;
}

/** The generated text: the tokens decoded together, end-of-sequence tokens and special tokens left out. */
function generatedText(served: ServedModel, d: Decoded): string {
  const eos = new Set([...served.tokenizer.eosTokenIds, ...served.model.config.eosTokenIds]);
  return served.tokenizer.decode(
    d.ids.filter((id) => !eos.has(id)),
    { skipSpecialTokens: true },
  );
}

const usage = (prompts: number[][], decoded: Decoded[]) => {
  const promptTokens = prompts.reduce((n, p) => n + p.length, 0);
  const completionTokens = decoded.reduce((n, d) => n + d.ids.length, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
};

const responseId = (prefix: string) => `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

/** The OpenAI completions response for a validated request (its prompts encoded by encodePrompts). */
export async function runCompletions(
  served: ServedModel,
  request: CompletionRequest,
  name: string,
  batchSize = 8,
  prompts: number[][] = encodePrompts(served, request),
): Promise<Record<string, unknown>> {
  const { tokenizer } = served;
  const decoded = await decodeAll(served, request, batchSize, prompts);
  const choices = decoded.map((d, index) => {
    const tokens = d.ids.map((id) => tokenizer.decode([id]));
    let at = 0;
    const offsets = tokens.map((token) => {
      const start = at;
      at += token.length;
      return start;
    });
    // Top logprobs keyed by token text; ids that decode alike keep the first (highest) value.
    const tops = d.tops.map((top) => {
      const byText: Record<string, number> = {};
      for (const { id, logprob } of top) {
        const text = tokenizer.decode([id]);
        if (!(text in byText)) byText[text] = logprob;
      }
      return byText;
    });
    return {
      index,
      text: generatedText(served, d),
      logprobs: request.logprobs === undefined ? null : { tokens, token_logprobs: d.logprobs, top_logprobs: tops, text_offset: offsets },
      finish_reason: d.finish,
    };
  });
  return {
    id: responseId('cmpl'),
    object: 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model: name,
    choices,
    usage: usage(prompts, decoded),
  };
}

/** A token as the chat API reports it: its text and that text's UTF-8 bytes. */
function chatToken(tokenizer: Tokenizer, id: number): { token: string; bytes: number[] } {
  const token = tokenizer.decode([id]);
  return { token, bytes: [...Buffer.from(token, 'utf8')] };
}

/** The OpenAI chat-completions response for a request parsed by parseChatRequest (one prompt, one choice). */
async function runChatCompletion(
  served: ServedModel,
  request: CompletionRequest,
  name: string,
  prompts: number[][],
): Promise<Record<string, unknown>> {
  const { tokenizer } = served;
  const decoded = await decodeAll(served, request, 1, prompts);
  const choices = decoded.map((d, index) => ({
    index,
    message: { role: 'assistant', content: generatedText(served, d) },
    logprobs:
      request.logprobs === undefined
        ? null
        : {
            content: d.ids.map((id, i) => ({
              ...chatToken(tokenizer, id),
              logprob: d.logprobs[i],
              top_logprobs: (d.tops[i] ?? []).map((t) => ({ ...chatToken(tokenizer, t.id), logprob: t.logprob })),
            })),
          },
    finish_reason: d.finish,
  }));
  return {
    id: responseId('chatcmpl'),
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model: name,
    choices,
    usage: usage(prompts, decoded),
  };
}

const MAX_BODY_BYTES = 16 << 20;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new RequestError(413, `the request body exceeds ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const errorTypes: Record<number, string> = {
  401: 'authentication_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
};

function sendError(res: ServerResponse, status: number, message: string, param?: string, headers?: Record<string, string>): void {
  const type = errorTypes[status] ?? (status >= 500 ? 'internal_server_error' : 'invalid_request_error');
  send(res, status, { error: { message, type, param: param ?? null, code: status } }, headers);
}

/** A request answered with extra headers (401: WWW-Authenticate; 429: Retry-After). */
class HeaderedRequestError extends RequestError {
  constructor(
    status: number,
    message: string,
    readonly headers: Record<string, string>,
  ) {
    super(status, message);
  }
}

/** 127.0.0.0/8, ::1 and localhost: addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h);
}

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/** Whether `header` is `Bearer <key>`, compared in constant time. */
function bearerMatches(header: string | undefined, key: string): boolean {
  const match = /^Bearer\s+(.+)$/i.exec(header?.trim() ?? '');
  return match !== null && timingSafeEqual(digest(match[1]), digest(key));
}

/** The server's limits from its options, each a positive integer; the context caps the prompt tokens. */
function resolveLimits(context: number, options: GuardrailServerOptions): ServerLimits {
  const limits: ServerLimits = {
    maxLogprobs: options.maxLogprobs ?? 100,
    maxTokens: options.maxTokens ?? 512,
    batchSize: options.batchSize ?? 8,
    maxPrompts: options.maxPrompts ?? 64,
    maxContextTokens: Math.min(context, options.maxContextTokens ?? context),
    maxPending: options.maxPending ?? 8,
  };
  for (const key of ['maxPrompts', 'maxContextTokens', 'maxPending', 'batchSize'] as const) {
    if (!Number.isInteger(limits[key]) || limits[key] < 1)
      throw new Error(`guardrail server: ${key} must be a positive integer, got ${limits[key]}`);
  }
  return limits;
}

/** Every route with its method. */
const ROUTES: Record<string, string> = {
  '/v1/completions': 'POST',
  '/v1/chat/completions': 'POST',
  '/v1/models': 'GET',
  '/health': 'GET',
};

/** Throws 401 unless the request carries the key (when the server has one). */
function authorize(req: IncomingMessage, apiKey: string | undefined): void {
  if (apiKey === undefined || bearerMatches(req.headers.authorization, apiKey)) return;
  req.resume();
  throw new HeaderedRequestError(
    401,
    req.headers.authorization
      ? 'Incorrect API key provided. Send the key as `Authorization: Bearer <key>`.'
      : 'You did not provide an API key. Send it as `Authorization: Bearer <key>`.',
    { 'www-authenticate': 'Bearer' },
  );
}

/** Throws 404 or 405 unless `path` is a route and the method is its own. */
function checkRoute(req: IncomingMessage, path: string): void {
  const method = ROUTES[path];
  if (!method)
    throw new RequestError(
      404,
      `no route ${req.method} ${path}; this server has POST /v1/completions, POST /v1/chat/completions, GET /v1/models and GET /health`,
    );
  if (req.method !== method) throw new RequestError(405, `${path} accepts ${method}, not ${req.method}`);
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const text = await readBody(req);
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new RequestError(400, `the request body is not valid JSON (${(error as Error).message})`);
  }
}

/** Listens on the options' host and port; warns when that address is reachable from other machines. */
async function listen(server: Server, options: GuardrailServerOptions): Promise<{ url: string; port: number }> {
  const listenHost = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, listenHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  if (!isLoopback(listenHost)) {
    (options.warn ?? ((line: string) => process.stderr.write(`${line}\n`)))(
      `warning: the guardrail server listens on ${listenHost}, not a loopback address: other machines can reach it` +
        (options.apiKey === undefined ? ' and use it without a key (set one with --api-key-env)' : ''),
    );
  }
  return { url: `http://${host}:${address.port}`, port: address.port };
}

/** Starts the server; resolves once it listens. */
export async function startGuardrailServer(served: ServedModel, options: GuardrailServerOptions): Promise<RunningServer> {
  const limits = resolveLimits(served.model.config.maxPositions, options);
  if (options.apiKey !== undefined && options.apiKey === '') throw new Error('guardrail server: the API key is empty');
  const { name, apiKey } = options;
  const started = Math.floor(Date.now() / 1000);
  // Scoring runs one request at a time, in arrival order; `pending` counts the one scored and those waiting.
  let pending = 0;
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (error instanceof HeaderedRequestError) sendError(res, error.status, error.message, error.param, error.headers);
      else if (error instanceof RequestError) sendError(res, error.status, error.message, error.param);
      else sendError(res, 500, error instanceof Error ? error.message : String(error));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
    if (path === '/health' && req.method === 'GET') return send(res, 200, { status: 'ok', pending, maxPending: limits.maxPending });
    authorize(req, apiKey);
    checkRoute(req, path);
    if (path === '/v1/models') {
      return send(res, 200, { object: 'list', data: [{ id: name, object: 'model', created: started, owned_by: 'star-dss' }] });
    }
    const body = await readJsonBody(req);
    const chat = path === '/v1/chat/completions';
    const request = chat ? parseChatRequest(body, served, name, limits) : parseCompletionRequest(body, name, limits);
    const prompts = encodePrompts(served, request, limits.maxContextTokens);
    if (pending >= limits.maxPending) {
      throw new HeaderedRequestError(
        429,
        `the server is busy: ${pending} request${pending === 1 ? ' is' : 's are'} being scored or waiting, its limit; retry later`,
        { 'retry-after': '1' },
      );
    }
    pending++;
    let gone = false;
    res.once('close', () => {
      gone = !res.writableFinished;
    });
    const turn = queue.then(async () => {
      if (gone) return; // the client went away while it waited
      send(
        res,
        200,
        chat
          ? await runChatCompletion(served, request, name, prompts)
          : await runCompletions(served, request, name, limits.batchSize, prompts),
      );
    });
    queue = turn.catch(() => {}).finally(() => pending--);
    await turn;
  }

  const { url, port } = await listen(server, options);
  return {
    url,
    port,
    close: async () => {
      await new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      await queue; // the request being scored finishes before the caller disposes the model
    },
  };
}
