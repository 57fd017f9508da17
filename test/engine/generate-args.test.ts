// generate() rejects decoding options outside their ranges with a one-line error naming the option.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../engine/tensor/index.ts';
import { createModel } from '../../engine/model/transformer.ts';
import { makeConfig, parseConfig } from '../../engine/model/config.ts';
import { generate, type GenerateOptions } from '../../engine/generate.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('generate option ranges', () => {
  const sampling = { temperature: 0.7, topP: 0.9, topK: 5 };
  const base: GenerateOptions = { maxNewTokens: 2, eosTokenIds: [1], padTokenId: 0, sampling };
  for (const [label, options, message] of [
    ['negative maxNewTokens', { maxNewTokens: -1 }, /maxNewTokens must be an integer ≥ 0, got -1/],
    ['fractional maxNewTokens', { maxNewTokens: 1.5 }, /maxNewTokens must be an integer ≥ 0, got 1.5/],
    ['temperature 0', { sampling: { ...sampling, temperature: 0 } }, /sampling.temperature must be a number > 0/],
    ['negative temperature', { sampling: { ...sampling, temperature: -1 } }, /sampling.temperature must be a number > 0/],
    ['top-p above 1', { sampling: { ...sampling, topP: 5 } }, /sampling.topP must be in \(0, 1\], got 5/],
    ['top-p 0', { sampling: { ...sampling, topP: 0 } }, /sampling.topP must be in \(0, 1\], got 0/],
    ['negative top-k', { sampling: { ...sampling, topK: -1 } }, /sampling.topK must be an integer ≥ 0, got -1/],
    ['repetition penalty 0', { repetitionPenalty: 0 }, /repetitionPenalty must be a number > 0, got 0/],
  ] as const) {
    it(`rejects ${label}`, async () => {
      const model = createModel(parseConfig(makeConfig('llama', { hidden: 16, layers: 1, heads: 2, vocab: 12, maxPositions: 16 })), {
        seed: 0,
      });
      try {
        await expect(generate(model, [[2, 3]], { ...base, ...options })).rejects.toThrow(message);
      } finally {
        model.dispose();
      }
    });
  }
});
