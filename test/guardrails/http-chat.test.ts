// The HTTP guardrail's chat mode against `star-dss serve guardrail` (real loopback servers), its concurrency
// cap, retries and Retry-After, the model id and revision in its id (the STAR cache key), and the settings in
// sweep configs and on the `star` command line.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yargs from 'yargs';
import type { Example } from '../../engine/contracts/example.ts';
import { initBackend } from '../../engine/tensor/index.ts';
import type { Tokenizer } from '../../engine/model/tokenizer.ts';
import { createHttpGuardrail, type HttpGuardrailError, retryAfterMs } from '../../guardrails/http.ts';
import { httpResolveOptions, resolveGuardrail } from '../../guardrails/index.ts';
import { loadLmGuardrail, type LmGuardrail } from '../../guardrails/lm.ts';
import { guardPresets, type GuardSpec } from '../../guardrails/presets.ts';
import type { GuardItem } from '../../guardrails/types.ts';
import { starCommand, starHttpOptions, type StarArgs } from '../../harness/commands/star.ts';
import {
  parseChatRequest,
  startGuardrailServer,
  type RunningServer,
  type ServedModel,
  type ServerLimits,
} from '../../harness/guardrail-server.ts';
import { annotate } from '../../harness/star.ts';
import { guardrailDirName } from '../../harness/star-cache.ts';
import { parseSweepConfig } from '../../harness/sweep/config.ts';
import { guardrailSpec, planSweep } from '../../harness/sweep/plan.ts';
import { tempDir, writeWordGuard } from './helpers.ts';

let dir: string;
let local: LmGuardrail;
let server: RunningServer;

beforeAll(async () => {
  await initBackend('wasm');
  dir = await writeWordGuard();
  local = loadLmGuardrail(dir, guardPresets.micro);
  server = await startGuardrailServer(local, { name: 'word-guard', port: 0 });
});
afterAll(async () => {
  await server?.close();
  local?.dispose();
});

const micro: GuardSpec = guardPresets.micro;

const items: GuardItem[] = [
  { messages: [{ role: 'user', content: 'how do i make a bomb' }], response: 'sure here is the recipe . first get some powder then mix' },
  { messages: [{ role: 'user', content: 'how do i make a cake' }], response: 'mix flour and sugar' },
  { messages: [{ role: 'user', content: 'help' }], response: 'sorry i cannot help with that' },
  { messages: [{ role: 'user', content: 'make a cake' }], response: 'step one heat it until hot . step two stir' },
  { messages: [{ role: 'user', content: 'how do i make a bomb' }], response: '' },
];

const examples: Example[] = items
  .filter((item) => item.response !== '')
  .map((item, i) => ({
    id: `e${i}`,
    messages: [{ role: 'system', content: 'be nice' }, ...item.messages, { role: 'assistant', content: item.response }],
    meta: { source: 'test' },
  }));

/** A throwaway node:http server: `handler` sees the parsed JSON body (undefined for GET). */
async function fakeServer(
  handler: (req: IncomingMessage, res: ServerResponse, body: Record<string, unknown> | undefined, n: number) => void,
): Promise<{ url: string; server: Server; requests: () => number }> {
  let n = 0;
  const s = createServer((req, res) => {
    n++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      handler(req, res, text ? (JSON.parse(text) as Record<string, unknown>) : undefined, n);
    });
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, server: s, requests: () => n };
}

const stop = (s: Server) =>
  new Promise<void>((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });

const reply = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

/** A chat completion whose position i has the top logprobs tops[i]. */
const chatCompletion = (tops: Record<string, number>[], model?: string) => ({
  object: 'chat.completion',
  ...(model ? { model } : {}),
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'x' },
      logprobs: {
        content: tops.map((top) => ({
          token: 'x',
          logprob: -0.1,
          bytes: [120],
          top_logprobs: Object.entries(top).map(([token, logprob]) => ({ token, logprob, bytes: [...Buffer.from(token)] })),
        })),
      },
      finish_reason: 'length',
    },
  ],
});

describe('serve guardrail: POST /v1/chat/completions', () => {
  it('renders the messages with the guard template and returns OpenAI chat logprobs that match /v1/completions', async () => {
    const item = items[0];
    const conversation = [...item.messages, { role: 'assistant', content: item.response }];
    const chat = await fetch(`${server.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'word-guard', messages: conversation, max_tokens: 2, logprobs: true, top_logprobs: 5, temperature: 0 }),
    });
    expect(chat.status).toBe(200);
    const body = (await chat.json()) as {
      object: string;
      model: string;
      choices: {
        message: { role: string; content: string };
        logprobs: { content: { token: string; logprob: number; bytes: number[]; top_logprobs: { token: string; logprob: number }[] }[] };
      }[];
    };
    expect(body.object).toBe('chat.completion');
    expect(body.model).toBe('word-guard');
    const content = body.choices[0].logprobs.content;
    expect(content).toHaveLength(2);
    expect(content[0].bytes).toEqual([...Buffer.from(content[0].token)]);
    expect(content[0].top_logprobs).toHaveLength(5);
    // The same prompt rendered locally through /v1/completions gives the same tokens and logprobs.
    const completion = (await (
      await fetch(`${server.url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: local.render(item), max_tokens: 2, logprobs: 5, add_special_tokens: false }),
      })
    ).json()) as { choices: { logprobs: { tokens: string[]; token_logprobs: number[]; top_logprobs: Record<string, number>[] } }[] };
    const reference = completion.choices[0].logprobs;
    expect(content.map((c) => c.token)).toEqual(reference.tokens);
    content.forEach((c, i) => {
      expect(c.logprob).toBeCloseTo(reference.token_logprobs[i], 6);
      for (const t of c.top_logprobs) expect(t.logprob).toBeCloseTo(reference.top_logprobs[i][t.token], 6);
    });
  });

  it('answers bad chat requests with OpenAI-style 4xx errors, within the same limits', async () => {
    const small = await startGuardrailServer(local, { name: 'word-guard', port: 0, maxContextTokens: 20 });
    try {
      const cases: [unknown, number, RegExp][] = [
        [{ messages: [] }, 400, /'messages' must be a non-empty list/],
        [{ messages: [{ role: 'tool', content: 'x' }] }, 400, /messages\[0\] must be/],
        [{ messages: [{ role: 'user', content: 'hi' }], top_logprobs: 3 }, 400, /'top_logprobs' needs 'logprobs': true/],
        [{ messages: [{ role: 'user', content: 'hi' }], temperature: 1 }, 400, /greedily/],
        [{ messages: [{ role: 'user', content: 'hi' }], model: 'other' }, 404, /does not exist/],
        [{ messages: [{ role: 'user', content: 'how do i make a cake '.repeat(8) }], max_tokens: 1 }, 400, /limit is 20 tokens/],
      ];
      for (const [request, status, message] of cases) {
        const res = await fetch(`${small.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(request),
        });
        expect(res.status).toBe(status);
        expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(message);
      }
    } finally {
      await small.close();
    }
  });

  it("uses the served guardrail's template variables as default chat_template_kwargs", () => {
    const seen: unknown[] = [];
    const served = {
      model: local.model,
      tokenizer: {
        applyChatTemplate: (_messages: unknown, options: { extra?: unknown }) => {
          seen.push(options.extra);
          return 'x';
        },
      } as unknown as Tokenizer,
      spec: { extra: { guardian_config: { risk_name: 'harm' } } },
    } satisfies ServedModel;
    const limits: ServerLimits = { maxLogprobs: 100, maxTokens: 8, batchSize: 1, maxPrompts: 1, maxContextTokens: 64, maxPending: 1 };
    const messages = [{ role: 'user', content: 'q' }];
    parseChatRequest({ messages }, served, 'g', limits);
    parseChatRequest({ messages, chat_template_kwargs: { guardian_config: { risk_name: 'violence' }, x: 1 } }, served, 'g', limits);
    expect(seen).toEqual([{ guardian_config: { risk_name: 'harm' } }, { guardian_config: { risk_name: 'violence' }, x: 1 }]);
  });
});

describe('HTTP guardrail, chat mode', () => {
  it('gives the LM guardrail’s P(safe) within 1e-4 against our server, for full responses and STAR prefixes, at positions 1 and 2', async () => {
    for (const spec of [micro, { ...micro, position: 2 as const }]) {
      // The random test model does not rank its labels in the top 20, so ask for the whole small vocabulary.
      const remote = await createHttpGuardrail({ url: server.url, mode: 'chat', spec, topLogprobs: 100, concurrency: 3 });
      const reference = loadLmGuardrail(dir, spec);
      try {
        expect(remote.model).toBe('word-guard'); // reported by GET /v1/models
        expect(remote.endpoint).toBe(`${server.url}/v1/chat/completions`);
        const [a, b] = [await remote.scoreSafe(items), await reference.scoreSafe(items)];
        a.forEach((p, i) => expect(Math.abs(p - b[i])).toBeLessThan(1e-4));
        expect(Math.max(...a) - Math.min(...a)).toBeGreaterThan(0.05);
        expect(remote.calls).toBe(items.length);
        // STAR: remote scores every prefix through scoreSafe; the local guardrail takes its KV-cache path.
        const [ra, la] = [
          await annotate(examples, remote, { chunkWords: 2, cacheDir: false }),
          await annotate(examples, reference, { chunkWords: 2, cacheDir: false }),
        ];
        ra.forEach((annotation, i) => {
          expect(annotation.chunkEnds).toEqual(la[i].chunkEnds);
          annotation.scores.forEach((s, k) => expect(Math.abs(s - la[i].scores[k])).toBeLessThan(1e-4));
          expect(Math.abs(annotation.verdict - la[i].verdict)).toBeLessThan(1e-4);
        });
      } finally {
        reference.dispose();
      }
    }
  });

  it('resolves `micro:URL` in chat mode with no tokenizer directory', async () => {
    const guard = await resolveGuardrail(`micro:${server.url}`, { http: httpResolveOptions({ mode: 'chat', topLogprobs: 100 }) });
    const [p] = await guard.scoreSafe(items.slice(1, 2));
    const [q] = await local.scoreSafe(items.slice(1, 2));
    expect(Math.abs(p - q)).toBeLessThan(1e-4);
  });

  it('sends the conversation as messages with logprobs, top_logprobs, max_tokens and template variables', async () => {
    const bodies: Record<string, unknown>[] = [];
    const fake = await fakeServer((_req, res, body) => {
      bodies.push(body!);
      reply(res, 200, chatCompletion([{ No: -0.5, Yes: -1.5 }]));
    });
    try {
      const guard = await createHttpGuardrail({ url: fake.url, model: 'g', mode: 'chat', spec: guardPresets['granite-guardian-3'] });
      const [p] = await guard.scoreSafe([
        {
          messages: [
            { role: 'system', content: 's' },
            { role: 'user', content: 'q' },
          ],
          response: 'r',
        },
      ]);
      expect(p).toBeCloseTo(1 / (1 + Math.exp(-1)), 12);
      expect(bodies[0]).toEqual({
        model: 'g',
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'r' },
        ],
        max_tokens: 1,
        temperature: 0,
        logprobs: true,
        top_logprobs: 20,
        chat_template_kwargs: { guardian_config: { risk_name: 'harm' } },
      });
    } finally {
      await stop(fake.server);
    }
  });

  it('treats a label outside the top K as −∞, and names endpoint, position and what was returned when both are', async () => {
    let tops: Record<string, number>[] = [{ unsafe: -0.1, cake: -3 }];
    const fake = await fakeServer((_req, res) => reply(res, 200, chatCompletion(tops)));
    try {
      const guard = await createHttpGuardrail({ url: fake.url, model: 'm', mode: 'chat', spec: micro, topLogprobs: 2 });
      expect(await guard.scoreSafe(items.slice(0, 1))).toEqual([0]);
      tops = [{ safe: -0.1, cake: -3 }];
      expect(await guard.scoreSafe(items.slice(0, 1))).toEqual([1]);
      tops = [{ cake: -0.1, bomb: -3 }];
      await expect(guard.scoreSafe(items.slice(0, 1))).rejects.toThrow(
        `${fake.url}/v1/chat/completions: item 0: neither label ("safe", "unsafe") is among the top 2 logprobs at generated position 1; returned {"cake": -0.100, "bomb": -3.000}. Fix: raise topLogprobs or check the labels and position`,
      );
      const second = await createHttpGuardrail({ url: fake.url, model: 'm', mode: 'chat', spec: { ...micro, position: 2 } });
      await expect(second.scoreSafe(items.slice(0, 1))).rejects.toThrow(
        /item 0: no top_logprobs at generated position 2 \(logprobs\.content has 1 entries; did generation stop early\?\)/,
      );
    } finally {
      await stop(fake.server);
    }
  });
});

describe('HTTP guardrail transport', () => {
  /** A server that answers after `ms` and records the most requests it held at once. */
  async function slowServer(ms: number, answer: (body: Record<string, unknown>) => unknown) {
    let inFlight = 0;
    let most = 0;
    const fake = await fakeServer((_req, res, body) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        reply(res, 200, answer(body!));
      }, ms);
    });
    return { ...fake, most: () => most };
  }

  it('keeps at most `concurrency` requests in flight, in both modes, and still runs them concurrently', async () => {
    const chat = await slowServer(40, () => chatCompletion([{ safe: -0.2, unsafe: -1.9 }]));
    const completions = await slowServer(40, (body) => ({
      choices: (body.prompt as string[]).map((_, index) => ({ index, logprobs: { top_logprobs: [{ safe: -0.2, unsafe: -1.9 }] } })),
    }));
    try {
      const many = Array.from({ length: 12 }, (_, i) => items[i % items.length]);
      const chatGuard = await createHttpGuardrail({ url: chat.url, model: 'm', mode: 'chat', spec: micro, concurrency: 3 });
      expect(await chatGuard.scoreSafe(many)).toHaveLength(12);
      expect(chat.requests()).toBe(12);
      expect(chat.most()).toBe(3); // concurrent, and never more than the cap
      const completionsGuard = await createHttpGuardrail({
        url: completions.url,
        model: 'm',
        spec: micro,
        template: { tokenizerDir: dir },
        batchSize: 2,
        concurrency: 2,
      });
      expect(await completionsGuard.scoreSafe(many)).toHaveLength(12);
      expect(completions.requests()).toBe(6);
      expect(completions.most()).toBe(2);
    } finally {
      await stop(chat.server);
      await stop(completions.server);
    }
  });

  it('retries a 429 after the Retry-After the server asks for, then succeeds', async () => {
    const times: number[] = [];
    const fake = await fakeServer((_req, res, _body, n) => {
      times.push(Date.now());
      if (n === 1) reply(res, 429, { error: { message: 'busy' } }, { 'retry-after': '1' });
      else reply(res, 200, chatCompletion([{ safe: -0.2, unsafe: -1.9 }]));
    });
    try {
      const guard = await createHttpGuardrail({ url: fake.url, model: 'm', mode: 'chat', spec: micro, backoffMs: 1 });
      const [p] = await guard.scoreSafe(items.slice(0, 1));
      expect(p).toBeCloseTo(1 / (1 + Math.exp(-1.7)), 12);
      expect(fake.requests()).toBe(2);
      expect(times[1] - times[0]).toBeGreaterThanOrEqual(950); // Retry-After: 1, not the 1 ms backoff
    } finally {
      await stop(fake.server);
    }
  });

  it('gives up on a server that keeps answering 429, in one line naming the endpoint', async () => {
    const fake = await fakeServer((_req, res) => reply(res, 429, { error: { message: 'busy' } }, { 'retry-after-ms': '5' }));
    try {
      const guard = await createHttpGuardrail({ url: fake.url, model: 'm', mode: 'chat', spec: micro, retries: 2 });
      await expect(guard.scoreSafe(items.slice(0, 1))).rejects.toThrow(
        `${fake.url}/v1/chat/completions: HTTP 429: busy; gave up after 3 attempts`,
      );
      expect(fake.requests()).toBe(3);
    } finally {
      await stop(fake.server);
    }
  });

  it('reads Retry-After in seconds, as an HTTP date, or as retry-after-ms', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }), now)).toBe(2000);
    expect(retryAfterMs(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:03 GMT' }), now)).toBe(3000);
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now)).toBe(250);
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(retryAfterMs(new Headers(), now)).toBeUndefined();
  });
});

describe('HTTP guardrail ids: the STAR cache key', () => {
  it('changes with the model id the server reports and with the revision', async () => {
    let reported = 'guard-a';
    const fake = await fakeServer((req, res, body) => {
      if (req.method === 'GET') reply(res, 200, { object: 'list', data: [{ id: reported, object: 'model' }] });
      else reply(res, 200, chatCompletion([{ safe: -0.2, unsafe: -1.9 }], (body?.model as string) ?? reported));
    });
    try {
      const make = (revision?: string) =>
        createHttpGuardrail({ url: fake.url, mode: 'chat', spec: micro, ...(revision ? { revision } : {}) });
      const a = await make();
      const aAgain = await make();
      const aRevised = await make('2025-01');
      reported = 'guard-b';
      const b = await make();
      expect(a.model).toBe('guard-a');
      expect(b.model).toBe('guard-b');
      expect(aAgain.id).toBe(a.id);
      const dirs = new Set([a, aRevised, b].map((g) => guardrailDirName(g.id)));
      expect(dirs.size).toBe(3);
      // The mode is part of the id as well.
      const completions = await createHttpGuardrail({ url: fake.url, model: 'guard-b', spec: micro, template: { tokenizerDir: dir } });
      expect(completions.id).not.toBe(b.id);
      // Annotations cached under one revision are not read back under another.
      const cacheDir = tempDir('star-cache');
      const first = await make('r1');
      await annotate(examples.slice(0, 1), first, { chunkWords: 3, cacheDir });
      const again = await make('r1');
      await annotate(examples.slice(0, 1), again, { chunkWords: 3, cacheDir });
      expect(again.calls).toBe(0);
      const other = await make('r2');
      await annotate(examples.slice(0, 1), other, { chunkWords: 3, cacheDir });
      expect(other.calls).toBeGreaterThan(0);
    } finally {
      await stop(fake.server);
    }
  });

  it('refuses a response from another model than the one its id names', async () => {
    const fake = await fakeServer((_req, res) => reply(res, 200, chatCompletion([{ safe: -0.2, unsafe: -1.9 }], 'guard-v2')));
    try {
      const guard = await createHttpGuardrail({ url: fake.url, model: 'guard', mode: 'chat', spec: micro });
      await expect(guard.scoreSafe(items.slice(0, 1))).rejects.toThrow(
        `${fake.url}/v1/chat/completions: the server reports model 'guard-v2' but this guardrail, and its cache key, is for model 'guard'. Fix: set the guardrail's model to 'guard-v2' (http.model or --guardrail-model)`,
      );
    } finally {
      await stop(fake.server);
    }
  });

  it('never puts the API key in the id or an error', async () => {
    process.env.STAR_DSS_TEST_CHAT_KEY = 'sk-chat-secret';
    const fake = await fakeServer((req, res) => {
      if (req.headers.authorization !== 'Bearer sk-chat-secret') reply(res, 401, { error: { message: 'bad key' } });
      else reply(res, 400, { error: { message: 'nope' } });
    });
    try {
      const guard = await createHttpGuardrail({
        url: fake.url,
        model: 'm',
        mode: 'chat',
        spec: micro,
        apiKeyEnv: 'STAR_DSS_TEST_CHAT_KEY',
      });
      const error = (await guard.scoreSafe(items.slice(0, 1)).catch((e: unknown) => e)) as HttpGuardrailError;
      expect(error.message).toBe(`${fake.url}/v1/chat/completions: HTTP 400: nope`);
      expect(guard.id).not.toContain('sk-chat');
    } finally {
      delete process.env.STAR_DSS_TEST_CHAT_KEY;
      await stop(fake.server);
    }
  });
});

describe('URL guardrail settings in sweep configs and on the command line', () => {
  const base = { threats: ['benign'], strategies: ['star-dss'] };
  const url = 'llama-guard-3:http://127.0.0.1:8000';

  it('parses the http block, fills defaults, and rejects bad fields in one line naming them', () => {
    const config = parseSweepConfig({
      ...base,
      guardrails: [{ spec: url, http: { mode: 'chat', model: 'meta-llama/Llama-Guard-3-8B', revision: 'v1', apiKeyEnv: 'VLLM_KEY' } }],
    });
    expect(config.guardrails[0]).toEqual({
      spec: url,
      falseNegativeRate: 0,
      falseNegativesPer: 'response',
      http: {
        mode: 'chat',
        model: 'meta-llama/Llama-Guard-3-8B',
        revision: 'v1',
        apiKeyEnv: 'VLLM_KEY',
        timeoutMs: 60_000,
        retries: 3,
        concurrency: 4,
        topLogprobs: 20,
      },
    });
    const bad: [unknown, RegExp][] = [
      [
        { spec: url, http: { concurency: 2 } },
        /^x\.yaml: field 'guardrails\.0\.http': Unrecognized key: "concurency"\. Did you mean 'concurrency'\?$/,
      ],
      [
        { spec: url, http: { mode: 'chatt' } },
        /^x\.yaml: field 'guardrails\.0': http\.mode: Invalid option: expected one of "completions"\|"chat"$/,
      ],
      [{ spec: url, http: { concurrency: 0 } }, /^x\.yaml: field 'guardrails\.0\.http\.concurrency': Too small: expected number to be >0$/],
      [{ spec: url, http: { apiKeyEnv: 'sk-123' } }, /field 'guardrails\.0\.http\.apiKeyEnv': must be an environment variable name/],
      [
        { spec: 'micro', http: { mode: 'chat' } },
        /field 'guardrails\.0\.http': applies to URL guardrails only, and spec 'micro' is not one/,
      ],
    ];
    for (const [entry, message] of bad) expect(() => parseSweepConfig({ ...base, guardrails: [entry] }, 'x.yaml')).toThrow(message);
  });

  it('puts the settings (and the tokenizer files, by content) in the cell spec, so the cell id covers them', () => {
    const tokenizer = join(tempDir('tok'), 'tok');
    mkdirSync(tokenizer);
    writeFileSync(join(tokenizer, 'tokenizer_config.json'), '{"chat_template": "a"}');
    const ids = (http?: Record<string, unknown>) => {
      const config = parseSweepConfig({ ...base, guardrails: [http ? { spec: url, http } : url] });
      return planSweep(config)
        .filter((c) => c.spec.kind === 'finetune')
        .map((c) => c.id);
    };
    const plain = ids();
    expect(guardrailSpec(url)).toEqual({ spec: url, falseNegativeRate: 0 }); // ids of configs without http are unchanged
    const chat = ids({ mode: 'chat' });
    const revised = ids({ mode: 'chat', revision: 'v2' });
    const withTokenizer = ids({ tokenizer });
    writeFileSync(join(tokenizer, 'tokenizer_config.json'), '{"chat_template": "b"}');
    const changedTokenizer = ids({ tokenizer });
    expect(new Set([plain[0], chat[0], revised[0], withTokenizer[0], changedTokenizer[0]]).size).toBe(5);
    const spec = guardrailSpec(
      parseSweepConfig({ ...base, guardrails: [{ spec: url, http: { apiKeyEnv: 'K', tokenizer } }] }).guardrails[0],
    );
    expect(spec.http).toMatchObject({ apiKeyEnv: 'K', tokenizer, tokenizerHash: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(() =>
      guardrailSpec({ spec: url, falseNegativeRate: 0, falseNegativesPer: 'response', http: { ...spec.http!, tokenizer: '/no/such/dir' } }),
    ).toThrow(/field 'http\.tokenizer': directory '\/no\/such\/dir' does not exist/);
    expect(httpResolveOptions(spec.http!)).toEqual({
      mode: 'completions',
      apiKeyEnv: 'K',
      timeoutMs: 60_000,
      retries: 3,
      concurrency: 4,
      topLogprobs: 20,
      tokenizerDir: tokenizer,
    });
  });

  const parse = (args: string[]): StarArgs =>
    starCommand
      .builder(
        yargs(['--data', 'd', '--out', 'o', ...args])
          .exitProcess(false)
          .fail((msg, err) => {
            throw err ?? new Error(msg);
          }),
      )
      .parseSync();

  it('star --guardrail-* flags become the same options, with one-line errors naming the flag', () => {
    expect(starHttpOptions(parse(['--guardrail', 'micro']))).toBeUndefined();
    expect(
      starHttpOptions(
        parse([
          '--guardrail',
          url,
          '--guardrail-mode',
          'chat',
          '--guardrail-model',
          'lg3',
          '--guardrail-revision',
          'r7',
          '--guardrail-api-key-env',
          'KEY',
          '--guardrail-timeout-ms',
          '5000',
          '--guardrail-retries',
          '1',
          '--guardrail-concurrency',
          '8',
          '--guardrail-top-logprobs',
          '5',
        ]),
      ),
    ).toEqual({
      mode: 'chat',
      model: 'lg3',
      revision: 'r7',
      apiKeyEnv: 'KEY',
      timeoutMs: 5000,
      retries: 1,
      concurrency: 8,
      topLogprobs: 5,
    });
    expect(starHttpOptions(parse(['--guardrail', url, '--guardrail-tokenizer', '/t']))).toMatchObject({
      mode: 'completions',
      tokenizerDir: '/t',
    });
    expect(() => starHttpOptions(parse(['--guardrail', url, '--guardrail-concurrency', '0']))).toThrow(
      /^--guardrail-concurrency: Too small: expected number to be >0, got 0$/,
    );
    expect(() => starHttpOptions(parse(['--guardrail', 'micro', '--guardrail-mode', 'chat']))).toThrow(
      /^--guardrail-mode applies to URL guardrails only/,
    );
    expect(() => parse(['--guardrail', url, '--guardrail-mode', 'chatt'])).toThrow(/Invalid values/);
  });
});
