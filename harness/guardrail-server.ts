// An OpenAI-compatible completions server for a local causal LM (node:http, no framework), so the HTTP
// guardrail is exercised against a real server on loopback and a micro guardrail can be shared between
// processes. It implements the part of vLLM's API the HTTP guardrail uses:
//   POST /v1/completions  {model?, prompt: string | string[] | ids | ids[], max_tokens?, temperature?: 0,
//                          logprobs?: K, add_special_tokens?, ignore_eos?}  → greedy decoding, with the top-K
//                          log-probabilities over the full vocabulary at each generated position
//   GET  /v1/models, GET /health
// Decoding is greedy only (temperature must be 0 or absent). Tokens are returned as strings (each token
// decoded on its own); errors as {error: {message, type, param, code}} with a 4xx status.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { disposeCache } from '../engine/model/transformer.ts';
import type { Tokenizer } from '../engine/model/tokenizer.ts';
import type { CausalLM, KVCache } from '../engine/model/types.ts';
import { argmax, forwardLast } from '../guardrails/lm.ts';

export interface ServedModel {
  model: CausalLM;
  tokenizer: Tokenizer;
}

export interface ServerLimits {
  /** Largest accepted `logprobs`. Default 100. */
  maxLogprobs: number;
  /** Largest accepted `max_tokens`. Default 512. */
  maxTokens: number;
  /** Prompts decoded together in one left-padded batch. Default 8. */
  batchSize: number;
}

export interface GuardrailServerOptions extends Partial<ServerLimits> {
  /** The model name served (GET /v1/models, and the `model` a request may name). */
  name: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
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

/** Validates a completions request body against what this server implements. */
export function parseCompletionRequest(body: unknown, name: string, limits: ServerLimits): CompletionRequest {
  if (!isRecord(body)) throw new RequestError(400, 'the request body must be a JSON object');
  if (body.model !== undefined && body.model !== null && body.model !== name) {
    throw new RequestError(404, `The model \`${String(body.model)}\` does not exist. This server serves \`${name}\`.`, 'model');
  }
  const p = body.prompt;
  let prompts: (string | number[])[];
  if (typeof p === 'string') prompts = [p];
  else if (isIdList(p)) prompts = [p];
  else if (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string' || isIdList(x))) prompts = p as (string | number[])[];
  else throw new RequestError(400, "'prompt' must be a string, a list of strings, a list of token ids or a list of such lists", 'prompt');
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
  if (boolField(body, 'echo', false)) throw new RequestError(400, "'echo' is not supported", 'echo');
  const stop = body.stop;
  if (stop !== undefined && stop !== null && !(Array.isArray(stop) && stop.length === 0))
    throw new RequestError(400, "'stop' is not supported", 'stop');
  return {
    prompts,
    maxTokens: intField(body, 'max_tokens', 16, 1, limits.maxTokens)!,
    logprobs: intField(body, 'logprobs', undefined, 0, limits.maxLogprobs),
    addSpecialTokens: boolField(body, 'add_special_tokens', true),
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
  tops: Record<string, number>[];
  finish: 'stop' | 'length';
}

/** Greedy decoding of one left-padded batch, with each position's log-probabilities. */
function decodeBatch(served: ServedModel, prompts: number[][], request: CompletionRequest): Decoded[] {
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
  let step = forwardLast(model, rows, { mask, keepCache: request.maxTokens > 1 });
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
        if (request.logprobs !== undefined) {
          const top: Record<string, number> = {};
          for (const id of topK(row, request.logprobs)) {
            const text = tokenizer.decode([id]);
            if (!(text in top)) top[text] = row[id] - lse;
          }
          o.tops.push(top);
        }
        if (eos.has(token) && !request.ignoreEos) {
          done[b] = true;
          o.finish = 'stop';
        }
        return token;
      });
      if (t === request.maxTokens - 1 || done.every(Boolean)) break;
      mask?.forEach((m) => m.push(1)); // finished rows continue on padding; their outputs are ignored
      step = forwardLast(
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

/** The OpenAI completions response for a validated request. */
export function runCompletions(served: ServedModel, request: CompletionRequest, name: string, batchSize = 8): Record<string, unknown> {
  const { tokenizer, model } = served;
  const prompts = request.prompts.map((p, i) => {
    const ids = typeof p === 'string' ? tokenizer.encode(p, { addSpecialTokens: request.addSpecialTokens }) : p;
    if (ids.length === 0) throw new RequestError(400, `prompt ${i} encodes to no tokens`, 'prompt');
    const bad = ids.find((id) => id < 0 || id >= model.config.vocabSize);
    if (bad !== undefined) throw new RequestError(400, `prompt ${i} has token id ${bad} outside [0, ${model.config.vocabSize})`, 'prompt');
    return ids;
  });
  const decoded: Decoded[] = [];
  for (let start = 0; start < prompts.length; start += batchSize)
    decoded.push(...decodeBatch(served, prompts.slice(start, start + batchSize), request));
  const eos = new Set([...tokenizer.eosTokenIds, ...model.config.eosTokenIds]);
  const choices = decoded.map((d, index) => {
    const tokens = d.ids.map((id) => tokenizer.decode([id]));
    let at = 0;
    const offsets = tokens.map((token) => {
      const start = at;
      at += token.length;
      return start;
    });
    return {
      index,
      text: tokenizer.decode(
        d.ids.filter((id) => !eos.has(id)),
        { skipSpecialTokens: true },
      ),
      logprobs: request.logprobs === undefined ? null : { tokens, token_logprobs: d.logprobs, top_logprobs: d.tops, text_offset: offsets },
      finish_reason: d.finish,
    };
  });
  const promptTokens = prompts.reduce((n, p) => n + p.length, 0);
  const completionTokens = decoded.reduce((n, d) => n + d.ids.length, 0);
  return {
    id: `cmpl-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`,
    object: 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model: name,
    choices,
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
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

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, message: string, param?: string): void {
  const type = status === 404 ? 'not_found_error' : status >= 500 ? 'internal_server_error' : 'invalid_request_error';
  send(res, status, { error: { message, type, param: param ?? null, code: status } });
}

/** Starts the server; resolves once it listens. */
export async function startGuardrailServer(served: ServedModel, options: GuardrailServerOptions): Promise<RunningServer> {
  const limits: ServerLimits = {
    maxLogprobs: options.maxLogprobs ?? 100,
    maxTokens: options.maxTokens ?? 512,
    batchSize: options.batchSize ?? 8,
  };
  const { name } = options;
  const started = Math.floor(Date.now() / 1000);
  const server = createServer((req, res) => {
    void handle(req, res).catch((error: unknown) => {
      if (error instanceof RequestError) sendError(res, error.status, error.message, error.param);
      else sendError(res, 500, error instanceof Error ? error.message : String(error));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
    const routes: Record<string, string> = { '/v1/completions': 'POST', '/v1/models': 'GET', '/health': 'GET' };
    const method = routes[path];
    if (!method)
      throw new RequestError(404, `no route ${req.method} ${path}; this server has POST /v1/completions, GET /v1/models and GET /health`);
    if (req.method !== method) throw new RequestError(405, `${path} accepts ${method}, not ${req.method}`);
    if (path === '/health') return send(res, 200, { status: 'ok' });
    if (path === '/v1/models') {
      return send(res, 200, { object: 'list', data: [{ id: name, object: 'model', created: started, owned_by: 'star-dss' }] });
    }
    const text = await readBody(req);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw new RequestError(400, `the request body is not valid JSON (${(error as Error).message})`);
    }
    const request = parseCompletionRequest(body, name, limits);
    send(res, 200, runCompletions(served, request, name, limits.batchSize));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
