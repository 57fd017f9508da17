import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { applyRepetitionPenalty, chooseToken, generate, type GenerateOptions } from '../../engine/generate.ts';
import { Rng } from '../../engine/random.ts';
import { tinyModel } from '../harness/helpers.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const prompts = [
  [3, 4, 5, 6, 7],
  [8, 9],
  [10, 11, 12],
];
const base: GenerateOptions = { maxNewTokens: 12, eosTokenIds: [1], padTokenId: 0 };

describe('sampling rules', () => {
  it('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
    const logits = Float32Array.from([2, -2, 1, 3]);
    applyRepetitionPenalty(logits, [0, 1, 1], 2);
    expect(Array.from(logits)).toEqual([1, -4, 1, 3]);
  });

  it('greedy takes the argmax; top-k 1 and a tiny top-p do too', async () => {
    const logits = Float32Array.from([0.1, 2.5, 2.4, -1]);
    const rng = new Rng(1);
    expect(await chooseToken(logits, undefined, rng)).toBe(1);
    for (let i = 0; i < 50; i++) {
      expect(await chooseToken(logits, { temperature: 1, topK: 1, topP: 1 }, rng)).toBe(1);
      expect(await chooseToken(logits, { temperature: 1, topK: 0, topP: 0.01 }, rng)).toBe(1);
    }
  });

  it('samples from softmax(logits / T) restricted to the top-p nucleus', async () => {
    const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
    const rng = new Rng(9);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) counts[await chooseToken(logits, { temperature: 1, topK: 0, topP: 0.9 }, rng)]++;
    // The nucleus for top_p 0.9 is {0.5, 0.3, 0.15} (cumulative 0.8 < 0.9, then 0.95): renormalised by 0.95.
    expect(counts[3]).toBe(0);
    expect(counts[0] / n).toBeCloseTo(0.5 / 0.95, 1);
    expect(counts[1] / n).toBeCloseTo(0.3 / 0.95, 1);
    expect(counts[2] / n).toBeCloseTo(0.15 / 0.95, 1);
    // Temperature 0.5 squares the probabilities before renormalising.
    const hot = [0, 0, 0, 0];
    for (let i = 0; i < n; i++) hot[await chooseToken(logits, { temperature: 0.5, topK: 2, topP: 1 }, rng)]++;
    expect(hot[0] / n).toBeCloseTo(0.25 / (0.25 + 0.09), 1);
  });
});

describe('generate', () => {
  for (const family of ['llama', 'qwen2', 'gpt2'] as const) {
    it(`${family}: KV-cached decoding gives exactly the tokens of full recomputation`, async () => {
      const model = tinyModel(family, 11);
      for (const sampling of [undefined, { temperature: 1.5, topK: 10, topP: 0.95 }]) {
        const opts = { ...base, sampling, seed: 4, repetitionPenalty: 1.3 };
        const cached = await generate(model, prompts, opts);
        const full = await generate(model, prompts, { ...opts, useCache: false });
        expect(cached.map((g) => g.tokens)).toEqual(full.map((g) => g.tokens));
        expect(cached.some((g) => g.tokens.length > 0)).toBe(true);
      }
      model.dispose();
    });
  }

  it('a left-padded batch gives each prompt the tokens it gets alone (greedy)', async () => {
    const model = tinyModel('llama', 12);
    const batched = (await generate(model, prompts, base)).map((g) => g.tokens);
    const alone: number[][] = [];
    for (const p of prompts) alone.push((await generate(model, [p], base))[0].tokens);
    expect(batched).toEqual(alone);
    model.dispose();
  });

  it('stops at end tokens and stop strings, and cuts the text before the stop', async () => {
    const model = tinyModel('gpt2', 13);
    const free = (await generate(model, [prompts[0]], { ...base, maxNewTokens: 6 }))[0];
    expect(free.finish).toBe('length');
    expect(free.tokens).toHaveLength(6);
    const eos = (await generate(model, [prompts[0]], { ...base, maxNewTokens: 6, eosTokenIds: [free.tokens[2]] }))[0];
    expect(eos.finish).toBe('eos');
    expect(eos.tokens).toEqual(free.tokens.slice(0, free.tokens.indexOf(free.tokens[2])));
    const decode = (ids: number[]) => ids.map((i) => `t${i}`).join(' ');
    const stop = `t${free.tokens[1]}`;
    const stopped = (await generate(model, [prompts[0]], { ...base, maxNewTokens: 6, decode, stopStrings: [stop] }))[0];
    expect(stopped.finish).toBe('stop');
    expect(stopped.text).toBe(decode(free.tokens).slice(0, decode(free.tokens).indexOf(stop)));
    model.dispose();
  });

  it('repeated generation leaves the tensor count unchanged', async () => {
    const model = tinyModel('qwen2', 14);
    await generate(model, prompts, base);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await generate(model, prompts, { ...base, sampling: { temperature: 1, topK: 5, topP: 0.9 }, seed: i });
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
