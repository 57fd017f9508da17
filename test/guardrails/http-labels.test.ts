// Label processing on an HTTP guardrail: the returned top logprobs stand for the vocabulary, in completions and
// chat mode, with hand-computed scores; a label outside the top K is removed when top-k ≤ K; ids cover the setting.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpGuardrail } from '../../guardrails/http.ts';
import { labelSettings, type LabelProcessing } from '../../guardrails/label-processing.ts';
import { guardPresets } from '../../guardrails/presets.ts';
import type { GuardItem } from '../../guardrails/types.ts';

const { paper, official } = labelSettings;
const sigmoid = (d: number): number => 1 / (1 + Math.exp(-d));
/** Logprobs of the logits 2, 1.5, 1, 0, −1 (logits minus their log-sum-exp). */
const lse = Math.log([2, 1.5, 1, 0, -1].reduce((a, l) => a + Math.exp(l), 0));
const WIDE = { safe: 2 - lse, unsafe: 1.5 - lse, cake: 1 - lse, bomb: -lse, mix: -1 - lse };
/** Logits 1.0, 1.2, 1.1, −3 (safe, unsafe, cake, bomb): both labels survive the official setting. */
const CLOSE = { safe: 1.0, unsafe: 1.2, cake: 1.1, bomb: -3 };

let tops: Record<string, number> = WIDE;
let server: Server;
let url: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { prompt?: string[] };
      res.writeHead(200, { 'content-type': 'application/json' });
      const content = [{ token: 'x', logprob: -0.1, top_logprobs: Object.entries(tops).map(([token, logprob]) => ({ token, logprob })) }];
      const choices = req.url?.includes('chat')
        ? [{ index: 0, message: { role: 'assistant', content: 'x' }, logprobs: { content } }]
        : (body.prompt ?? []).map((_, index) => ({ index, text: 'x', logprobs: { tokens: ['x'], top_logprobs: [tops] } }));
      res.end(JSON.stringify({ model: 'm', choices }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
});

const item: GuardItem = { messages: [{ role: 'user', content: 'q' }], response: 'r' };
const template = { chatTemplate: '{% for m in messages %}{{ m.content }} {% endfor %}' };
const guard = (mode: 'completions' | 'chat', labelProcessing: LabelProcessing = paper, topLogprobs = 20) =>
  createHttpGuardrail({
    url,
    model: 'm',
    mode,
    spec: guardPresets.micro,
    topLogprobs,
    labelProcessing,
    ...(mode === 'completions' ? { template } : {}),
  });

describe.each(['completions', 'chat'] as const)('HTTP guardrail label processing (%s mode)', (mode) => {
  it('paper formula: σ(lp_safe − lp_unsafe) = σ(0.5)', async () => {
    tops = WIDE;
    const [p] = await (await guard(mode)).scoreSafe([item]);
    expect(p).toBeCloseTo(sigmoid(0.5), 12);
  });

  it('official: exactly 1 when top-p removes the unsafe label (tempered shares 0.918 and 0.075 of five tokens)', async () => {
    tops = WIDE;
    expect(await (await guard(mode, official)).scoreSafe([item])).toEqual([1]);
  });

  it('official: σ((ℓ_safe − ℓ_unsafe) / 0.2) = σ(−1) when both labels survive', async () => {
    tops = CLOSE;
    const [p] = await (await guard(mode, official)).scoreSafe([item]);
    expect(p).toBeCloseTo(0.2689414, 6);
  });

  it('official with top-k ≤ K: a label outside the returned top K is removed by top-k, exactly 0', async () => {
    tops = { unsafe: -0.05, cake: -3.5 };
    expect(await (await guard(mode, { temperature: 0.2, topK: 2, topP: 0.9 }, 2)).scoreSafe([item])).toEqual([0]);
  });
});

describe('HTTP guardrail ids with label processing', () => {
  it('keep the paper formula out of the id, and put the setting (and K) in it otherwise', async () => {
    for (const mode of ['completions', 'chat'] as const) {
      const plain = (await createHttpGuardrail({ url, model: 'm', mode, spec: guardPresets.micro, template })).id;
      expect((await guard(mode, paper)).id).toBe(plain);
      const ids = new Set([plain, (await guard(mode, official)).id, (await guard(mode, official, 50)).id]);
      expect(ids.size).toBe(3);
    }
  });

  it('refuses out-of-range numbers in one line naming the endpoint', async () => {
    await expect(guard('chat', { temperature: 0.2, topK: 50, topP: 1.5 })).rejects.toThrow(
      `${url}/v1/chat/completions: label processing topP must be in (0, 1], got 1.5`,
    );
  });

  it('completions mode with the paper formula still names a missing label', async () => {
    tops = { unsafe: -0.05, cake: -3.5 };
    await expect((await guard('completions', paper, 2)).scoreSafe([item])).rejects.toThrow(/the safe label "safe" is missing/);
  });
});
