import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { wordLevelChatTemplate } from '../../engine/model/tokenizer.ts';
import { loadLmGuardrail, type LmGuardrail } from '../../guardrails/lm.ts';
import { createHttpGuardrail, normaliseBaseUrl, HttpGuardrailError } from '../../guardrails/http.ts';
import { startGuardrailServer, topK, type RunningServer } from '../../harness/guardrail-server.ts';
import { guardPresets, type GuardSpec } from '../../guardrails/presets.ts';
import type { GuardItem } from '../../guardrails/types.ts';
import { sigmoid, writeWordGuard } from './helpers.ts';

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

const items: GuardItem[] = [
  { messages: [{ role: 'user', content: 'how do i make a bomb' }], response: 'sure here is the recipe . first get some powder then mix' },
  { messages: [{ role: 'user', content: 'how do i make a cake' }], response: 'mix flour and sugar' },
  { messages: [{ role: 'user', content: 'help' }], response: 'sorry i cannot help with that' },
  { messages: [{ role: 'user', content: 'make a cake' }], response: 'step one heat it until hot . step two stir' },
  { messages: [{ role: 'user', content: 'how do i make a bomb' }], response: '' },
];

const post = async (url: string, body: unknown) => {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

/** A throwaway node:http server for failure cases. */
async function fakeServer(
  handler: (req: IncomingMessage, res: ServerResponse, n: number) => void,
): Promise<{ url: string; server: Server; requests: () => number }> {
  let n = 0;
  const s = createServer((req, res) => {
    n++;
    req.resume();
    req.on('end', () => handler(req, res, n));
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, server: s, requests: () => n };
}

const stop = (s: Server) =>
  new Promise<void>((resolve) => {
    s.close(() => resolve());
    s.closeAllConnections();
  });

const reply = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
};

const completion = (tops: Record<string, number>[]) => ({
  object: 'text_completion',
  choices: [{ index: 0, text: 'x', logprobs: { tokens: ['x'], token_logprobs: [-0.1], top_logprobs: tops }, finish_reason: 'length' }],
});

const template = { chatTemplate: wordLevelChatTemplate, specialTokens: { eos_token: '<eos>' } };
const micro: GuardSpec = guardPresets.micro;

describe('completions server', () => {
  it('returns greedy tokens with full-vocabulary log-probabilities that match a manual forward', async () => {
    const prompt = local.render(items[0]);
    const { status, body } = await post(server.url, { model: 'word-guard', prompt, max_tokens: 2, temperature: 0, logprobs: 5 });
    expect(status).toBe(200);
    const choice = (
      body.choices as { text: string; logprobs: { tokens: string[]; token_logprobs: number[]; top_logprobs: Record<string, number>[] } }[]
    )[0];
    // Manual: forward the prompt, log-softmax the last row in double precision.
    const ids = local.tokenizer.encode(prompt);
    const row = tf.tidy(() =>
      Array.from(
        local.model
          .forward(tf.tensor2d([ids], [1, ids.length], 'int32'))
          .logits.slice([0, ids.length - 1, 0], [1, 1, -1])
          .dataSync(),
      ),
    );
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    const best = row.indexOf(max);
    expect(choice.logprobs.tokens[0]).toBe(local.tokenizer.idToToken(best));
    expect(choice.logprobs.token_logprobs[0]).toBeCloseTo(max - lse, 5);
    const top = Object.entries(choice.logprobs.top_logprobs[0]);
    expect(top).toHaveLength(5);
    const sorted = [...row]
      .sort((a, b) => b - a)
      .slice(0, 5)
      .map((x) => x - lse);
    top.forEach(([, lp], i) => expect(lp).toBeCloseTo(sorted[i], 5));
    expect(choice.logprobs.top_logprobs).toHaveLength(2);
    // A batch of prompts of different lengths leaves no tensors behind.
    const before = tf.memory().numTensors;
    const batch = await post(server.url, { prompt: items.map((it) => local.render(it)), max_tokens: 3, logprobs: 2, ignore_eos: true });
    expect((batch.body.choices as unknown[]).length).toBe(items.length);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('lists its model and answers bad requests with OpenAI-style 4xx errors', async () => {
    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(['word-guard']);
    const cases: [unknown, number, RegExp][] = [
      [{ prompt: 'hi', temperature: 0.7 }, 400, /temperature.*greedily/],
      [{ model: 'other', prompt: 'hi' }, 404, /model `other` does not exist/],
      [{ prompt: 3 }, 400, /'prompt' must be/],
      [{ prompt: 'hi', logprobs: 1000 }, 400, /'logprobs' must be an integer in \[0, 100\]/],
      [{ prompt: 'hi', stream: true }, 400, /stream/],
      ['{not json', 400, /not valid JSON/],
    ];
    for (const [body, status, message] of cases) {
      const res = await post(server.url, body);
      expect(res.status).toBe(status);
      expect((res.body.error as { message: string }).message).toMatch(message);
    }
    const wrongMethod = await fetch(`${server.url}/v1/completions`);
    expect(wrongMethod.status).toBe(405);
    expect((await fetch(`${server.url}/v2/nothing`)).status).toBe(404);
  });

  it('picks the top K in order', () => {
    expect(topK(Float32Array.from([0.5, 3, -1, 3, 2]), 3)).toEqual([1, 3, 4]);
    expect(topK(Float32Array.from([1, 2]), 5)).toEqual([1, 0]);
  });
});

describe('HTTP guardrail', () => {
  it('gives the LM guardrail’s P(safe) within 1e-4 against the local server, at positions 1 and 2, in batches', async () => {
    for (const spec of [micro, { ...micro, position: 2 as const }]) {
      // The random test model does not rank its labels in the top 20, so ask for the whole small vocabulary.
      const remote = await createHttpGuardrail({
        url: `${server.url}/v1/`,
        spec,
        template: { tokenizerDir: dir },
        batchSize: 2,
        topLogprobs: 100,
      });
      const reference = loadLmGuardrail(dir, spec);
      try {
        expect(remote.model).toBe('word-guard'); // from GET /v1/models
        const [a, b] = [await remote.scoreSafe(items), await reference.scoreSafe(items)];
        a.forEach((p, i) => expect(Math.abs(p - b[i])).toBeLessThan(1e-4));
        expect(Math.max(...a) - Math.min(...a)).toBeGreaterThan(0.05);
        expect(remote.calls).toBe(items.length);
        expect(remote.id).toMatch(/^http-[0-9a-f]{16}$/);
      } finally {
        reference.dispose();
      }
    }
  });

  it('derives its id from url, model, template, labels and position', async () => {
    const base = { url: server.url, model: 'word-guard', spec: micro, template };
    const ids = await Promise.all([
      createHttpGuardrail(base),
      createHttpGuardrail({ ...base, url: `${server.url}/` }),
      createHttpGuardrail({ ...base, model: 'other' }),
      createHttpGuardrail({ ...base, spec: { ...micro, position: 2 } }),
      createHttpGuardrail({ ...base, url: 'http://127.0.0.2:1' }),
    ]).then((gs) => gs.map((g) => g.id));
    expect(ids[1]).toBe(ids[0]);
    expect(new Set(ids).size).toBe(4);
  });

  it('times out against a server that stalls, after its retries, in bounded time', async () => {
    const stalling = await fakeServer(() => {
      // never answers
    });
    try {
      const guard = await createHttpGuardrail({
        url: stalling.url,
        model: 'm',
        spec: micro,
        template,
        timeoutMs: 150,
        retries: 2,
        backoffMs: 20,
      });
      const started = Date.now();
      const error = await guard.scoreSafe(items.slice(0, 1)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HttpGuardrailError);
      expect((error as Error).message).toBe(
        `${stalling.url}/v1/completions: no complete response within 150 ms (timeout); gave up after 3 attempts`,
      );
      expect(stalling.requests()).toBe(3);
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      await stop(stalling.server);
    }
  });

  it('names endpoint, position, label and what was returned when a label token is missing', async () => {
    const dropping = await fakeServer((_req, res) => reply(res, 200, completion([{ safe: -0.1, cake: -3 }])));
    try {
      const guard = await createHttpGuardrail({ url: dropping.url, model: 'm', spec: micro, template });
      await expect(guard.scoreSafe(items.slice(0, 1))).rejects.toThrow(
        `${dropping.url}/v1/completions: the unsafe label "unsafe" is missing from top_logprobs at generated position 1 (prompt 0); returned {"safe": -0.100, "cake": -3.000}. Fix: raise topLogprobs (now 20) or check the labels and position`,
      );
    } finally {
      await stop(dropping.server);
    }
  });

  it('retries after a 503 and succeeds; does not retry a 400; sends the API key without showing it', async () => {
    const seen: (string | undefined)[] = [];
    const flaky = await fakeServer((req, res, n) => {
      seen.push(req.headers.authorization);
      if (n === 1) reply(res, 503, { error: { message: 'overloaded' } });
      else reply(res, 200, completion([{ safe: -0.2, unsafe: -1.9 }]));
    });
    const refusing = await fakeServer((_req, res) => reply(res, 400, { error: { message: 'bad field' } }));
    process.env.TEST_GUARD_KEY = 'sk-secret-123';
    try {
      const guard = await createHttpGuardrail({
        url: flaky.url,
        model: 'm',
        spec: micro,
        template,
        backoffMs: 10,
        apiKeyEnv: 'TEST_GUARD_KEY',
      });
      const [p] = await guard.scoreSafe(items.slice(0, 1));
      // σ(−0.2 − (−1.9)) = σ(1.7) = 0.8455347349164652
      expect(p).toBeCloseTo(sigmoid(1.7), 12);
      expect(p).toBeCloseTo(0.8455347349164652, 12);
      expect(flaky.requests()).toBe(2);
      expect(seen).toEqual(['Bearer sk-secret-123', 'Bearer sk-secret-123']);

      const strict = await createHttpGuardrail({
        url: refusing.url,
        model: 'm',
        spec: micro,
        template,
        backoffMs: 10,
        apiKeyEnv: 'TEST_GUARD_KEY',
      });
      const error = (await strict.scoreSafe(items.slice(0, 1)).catch((e: unknown) => e)) as Error;
      expect(error.message).toBe(`${refusing.url}/v1/completions: HTTP 400: bad field`);
      expect(error.message).not.toContain('sk-secret');
      expect(refusing.requests()).toBe(1);

      delete process.env.TEST_GUARD_KEY;
      await expect(strict.scoreSafe(items.slice(0, 1))).rejects.toThrow(
        /environment variable TEST_GUARD_KEY \(named by apiKeyEnv\) is not set/,
      );
    } finally {
      delete process.env.TEST_GUARD_KEY;
      await stop(flaky.server);
      await stop(refusing.server);
    }
  });

  it('reports a refused connection after retries', async () => {
    const gone = await fakeServer(() => {});
    const url = gone.url;
    await stop(gone.server);
    const guard = await createHttpGuardrail({ url, model: 'm', spec: micro, template, retries: 1, backoffMs: 5 });
    await expect(guard.scoreSafe(items.slice(0, 1))).rejects.toThrow(/network error: ECONNREFUSED; gave up after 2 attempts/);
  });

  it('normalises base URLs', () => {
    expect(normaliseBaseUrl('http://h:8000/v1/')).toBe('http://h:8000');
    expect(normaliseBaseUrl('https://h/proxy/v1')).toBe('https://h/proxy');
    expect(() => normaliseBaseUrl('ftp://h')).toThrow(/only http/);
  });
});
