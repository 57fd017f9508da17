// Tiny models for engine tests.
import { parseConfig, makeConfig } from '../../engine/model/config.ts';
import { createModel } from '../../engine/model/transformer.ts';
import type { CausalLM, Family } from '../../engine/model/types.ts';

export function tinyModel(family: Family = 'llama', seed = 1, vocab = 24): CausalLM {
  const raw = makeConfig(family, {
    hidden: 16,
    layers: 2,
    heads: 4,
    kvHeads: family === 'gpt2' ? undefined : 2,
    intermediate: 32,
    vocab,
    maxPositions: 64,
    tieWordEmbeddings: family !== 'qwen2',
  });
  return createModel(parseConfig(raw), { seed });
}
