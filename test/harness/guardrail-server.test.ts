// The guardrail server's limits: prompt length (the model's context), prompts per request, queued work,
// an API key, health while scoring, and the warning for a non-loopback address. The real server on
// loopback port 0 with the tiny word-level guardrail of the guardrail tests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yargs from 'yargs';
import { initBackend } from '../../engine/tensor/index.ts';
import { createHttpGuardrail } from '../../guardrails/http.ts';
import { loadLmGuardrail, type LmGuardrail } from '../../guardrails/lm.ts';
import { guardPresets } from '../../guardrails/presets.ts';
import { makeServeCommand } from '../../harness/commands/serve.ts';
import { startGuardrailServer, type GuardrailServerOptions, type RunningServer } from '../../harness/guardrail-server.ts';
import { writeWordGuard } from '../guardrails/helpers.ts';

let dir: string;
let local: LmGuardrail;
const open: RunningServer[] = [];

beforeAll(async () => {
  await initBackend('wasm');
  dir = await writeWordGuard();
  local = loadLmGuardrail(dir, guardPresets.micro);
});
afterAll(async () => {
  for (const s of open) await s.close();
  local?.dispose();
});

async function serve(options: Partial<GuardrailServerOptions> = {}): Promise<RunningServer> {
  const server = await startGuardrailServer(local, { name: 'word-guard', port: 0, ...options });
  open.push(server);
  return server;
}

interface Reply {
  status: number;
  headers: Headers;
  body: { error?: { message: string; type: string; code: unknown }; choices?: unknown[] } & Record<string, unknown>;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const res = await fetch(`${url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Reply['body'] };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A request that keeps the server busy for a while: many prompts, many greedy steps. */
const long = (n = 64) => ({
  prompt: Array.from({ length: n }, (_, i) => `how do i make a ${i % 2 ? 'bomb' : 'cake'} step ${'one '.repeat(1 + (i % 5))}`),
  max_tokens: 40,
  ignore_eos: true,
});

describe('guardrail server limits', () => {
  it("rejects a prompt longer than the model's context with a 400 naming the limit", async () => {
    const server = await serve();
    const context = local.model.config.maxPositions; // 256 for the word guard
    const words = Array.from({ length: context + 50 }, () => 'cake').join(' ');
    for (const prompt of [words, Array.from({ length: context + 1 }, () => 5)]) {
      const r = await post(server.url, { prompt, max_tokens: 1 });
      expect(r.status).toBe(400);
      expect(r.body.error?.type).toBe('invalid_request_error');
      expect(r.body.error?.message).toMatch(new RegExp(`context length is ${context} tokens`));
    }
    // Prompt plus generated tokens must fit as well; exactly at the limit is fine.
    const fits = Array.from({ length: context - 3 }, () => 5);
    expect((await post(server.url, { prompt: fits, max_tokens: 4 })).status).toBe(200);
    const over = await post(server.url, { prompt: fits, max_tokens: 5 });
    expect(over.status).toBe(400);
    expect(over.body.error?.message).toMatch(/253 prompt tokens.*max_tokens 5/);
  });

  it('rejects more prompts per request than --max-prompts allows (default 64)', async () => {
    const server = await serve();
    const r = await post(server.url, { prompt: Array.from({ length: 65 }, () => 'hi'), max_tokens: 1 });
    expect(r.status).toBe(400);
    expect(r.body.error?.message).toMatch(/65 prompts.*at most 64/);
    const small = await serve({ maxPrompts: 2 });
    expect((await post(small.url, { prompt: ['a', 'b', 'c'], max_tokens: 1 })).status).toBe(400);
    expect((await post(small.url, { prompt: ['a', 'b'], max_tokens: 1 })).status).toBe(200);
  });

  it('answers /health at once while a long request is being scored', async () => {
    const server = await serve();
    let longDone = 0;
    const started = Date.now();
    const pending = post(server.url, long()).then((r) => {
      longDone = Date.now();
      return r;
    });
    // The longest stall of this process's event loop while the request runs (server and client share it).
    let last = Date.now();
    let maxGap = 0;
    const ticker = setInterval(() => {
      const now = Date.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 5);
    try {
      // Poll /health until the long request is answered: every check is answered at once, while it runs.
      const latencies: number[] = [];
      while (!longDone) {
        const sent = Date.now();
        const health = await fetch(`${server.url}/health`);
        expect(health.status).toBe(200);
        if (!longDone) latencies.push(Date.now() - sent);
        await sleep(10);
      }
      const r = await pending;
      expect(r.status).toBe(200);
      expect(r.body.choices).toHaveLength(64);
      console.log(
        `long request ${longDone - started} ms; ${latencies.length} health checks during it, slowest ${Math.max(...latencies)} ms; longest event-loop stall ${maxGap} ms`,
      );
      // Behaviour, not speed (timings go to the log above): the server answers health checks between the long
      // request's forward passes, where before it answered none until the request was done.
      expect(latencies.length, 'health checks answered while the long request ran').toBeGreaterThanOrEqual(3);
    } finally {
      clearInterval(ticker);
    }
  });

  it('answers 429 with Retry-After when its queue is full, and serves again once it drains', async () => {
    const server = await serve({ maxPending: 1 });
    const first = post(server.url, long());
    // Wait until the server counts the first request (GET /health reports the queue).
    for (let i = 0; i < 200; i++) {
      const health = (await (await fetch(`${server.url}/health`)).json()) as { pending: number; maxPending: number };
      expect(health.maxPending).toBe(1);
      if (health.pending === 1) break;
      await sleep(5);
    }
    const busy = await post(server.url, { prompt: 'hi', max_tokens: 1 });
    expect(busy.status).toBe(429);
    expect(Number(busy.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(busy.body.error?.message).toMatch(/busy.*1 request/);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await first).status).toBe(200);
    expect((await post(server.url, { prompt: 'hi', max_tokens: 1 })).status).toBe(200);
  });

  it('with an API key, answers 401 to requests without the right bearer token, except /health', async () => {
    const server = await serve({ apiKey: 'sekrit-key' });
    const none = await post(server.url, { prompt: 'hi', max_tokens: 1 });
    expect(none.status).toBe(401);
    expect(none.body.error?.message).toMatch(/API key/);
    expect(JSON.stringify(none.body)).not.toContain('sekrit');
    expect((await post(server.url, { prompt: 'hi', max_tokens: 1 }, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await fetch(`${server.url}/v1/models`)).status).toBe(401);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await post(server.url, { prompt: 'hi', max_tokens: 1 }, { authorization: 'Bearer sekrit-key' })).status).toBe(200);
    // The HTTP guardrail sends the key it reads from its apiKeyEnv.
    process.env.STAR_DSS_TEST_GUARD_KEY = 'sekrit-key';
    try {
      const remote = await createHttpGuardrail({
        url: server.url,
        spec: guardPresets.micro,
        template: { tokenizerDir: dir },
        topLogprobs: 100,
        apiKeyEnv: 'STAR_DSS_TEST_GUARD_KEY',
      });
      const [p] = await remote.scoreSafe([{ messages: [{ role: 'user', content: 'how do i make a cake' }], response: 'mix flour' }]);
      expect(p).toBeGreaterThan(0);
    } finally {
      delete process.env.STAR_DSS_TEST_GUARD_KEY;
    }
  });

  it('warns on stderr when it listens on a non-loopback address, and not on loopback', async () => {
    const lines: string[] = [];
    await serve({ host: '127.0.0.1', warn: (l) => lines.push(l) });
    await serve({ host: 'localhost', warn: (l) => lines.push(l) });
    expect(lines).toEqual([]);
    await serve({ host: '0.0.0.0', warn: (l) => lines.push(l) });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/0\.0\.0\.0.*not a loopback address.*--api-key-env/);
  });
});

describe('star-dss serve guardrail --api-key-env', () => {
  const run = async (args: string[], deps: Parameters<typeof makeServeCommand>[0]) =>
    yargs(args)
      .command(makeServeCommand(deps))
      .strict()
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();

  it('fails at startup in one line when the variable is unset or empty', async () => {
    delete process.env.STAR_DSS_TEST_UNSET_KEY;
    for (const value of [undefined, '']) {
      if (value !== undefined) process.env.STAR_DSS_TEST_UNSET_KEY = value;
      await expect(
        run(['serve', 'guardrail', '--guardrail', dir, '--port', '0', '--api-key-env', 'STAR_DSS_TEST_UNSET_KEY'], {
          untilStopped: async () => {},
        }),
      ).rejects.toThrow(/^--api-key-env: environment variable STAR_DSS_TEST_UNSET_KEY is (unset|empty)[^\n]*$/);
    }
    delete process.env.STAR_DSS_TEST_UNSET_KEY;
  });

  it('requires the key once the variable is set, and passes the limits flags on', async () => {
    process.env.STAR_DSS_TEST_SERVE_KEY = 'k1';
    const statuses: number[] = [];
    const lines: string[] = [];
    try {
      await run(
        ['serve', 'guardrail', '--guardrail', dir, '--port', '0', '--api-key-env', 'STAR_DSS_TEST_SERVE_KEY', '--max-prompts', '1'],
        {
          log: (l) => lines.push(l),
          untilStopped: async (server) => {
            statuses.push((await post(server.url, { prompt: 'hi', max_tokens: 1 })).status);
            statuses.push((await post(server.url, { prompt: 'hi', max_tokens: 1 }, { authorization: 'Bearer k1' })).status);
            statuses.push((await post(server.url, { prompt: ['a', 'b'], max_tokens: 1 }, { authorization: 'Bearer k1' })).status);
          },
        },
      );
    } finally {
      delete process.env.STAR_DSS_TEST_SERVE_KEY;
    }
    expect(statuses).toEqual([401, 200, 400]);
    expect(lines.join('\n')).not.toContain('k1');
  });
});
