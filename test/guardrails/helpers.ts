// Tiny guardrail checkpoints for the guardrail tests: a word-level llama whose weights are scaled up so
// that P(safe) varies visibly between inputs.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../engine/tensor/index.ts';
import { makeConfig, parseConfig } from '../../engine/model/config.ts';
import { saveModel, type TokenizerSource } from '../../engine/model/checkpoint.ts';
import { createModel } from '../../engine/model/transformer.ts';
import { buildWordLevelTokenizer } from '../../engine/model/tokenizer.ts';
import type { CausalLM } from '../../engine/model/types.ts';

export const words = (
  'safe unsafe how do i make a bomb cake you mix flour and sugar first get some powder then . sure here is the recipe sorry cannot help with that ' +
  'step one two three heat it until hot stir bake serve'
).split(' ');

export const specials = { pad: '<pad>', unk: '<unk>', eos: '<eos>', user: '<user>', assistant: '<assistant>', system: '<system>' };

export const tempDir = (label: string): string => mkdtempSync(join(tmpdir(), `star-dss-${label}-`));

/** Multiplies every matrix parameter (not the norm weights) so that logits spread over several units. */
export function scaleWeights(model: CausalLM, factor: number): void {
  for (const [name, v] of model.params) {
    if (name.endsWith('norm.weight')) continue;
    const scaled = tf.tidy(() => v.mul(factor));
    v.assign(scaled);
    scaled.dispose();
  }
}

/** Writes a word-level llama guardrail checkpoint (with guardrail.json naming the micro preset) and returns its dir. */
export async function writeWordGuard(seed = 3): Promise<string> {
  const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({ words, specialTokens: specials });
  const vocab = Object.keys(tokenizerJson.model.vocab).length;
  const raw = makeConfig('llama', {
    hidden: 16,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 32,
    vocab,
    maxPositions: 256,
    eosTokenId: tokenizerJson.model.vocab[specials.eos],
    padTokenId: tokenizerJson.model.vocab[specials.pad],
  });
  const model = createModel(parseConfig(raw), { seed });
  try {
    scaleWeights(model, 20);
    const dir = join(tempDir('guard'), 'word-guard');
    await saveModel(dir, model, { files: { 'tokenizer.json': tokenizerJson, 'tokenizer_config.json': tokenizerConfig } });
    writeFileSync(join(dir, 'guardrail.json'), JSON.stringify({ preset: 'micro' }));
    return dir;
  } finally {
    model.dispose();
  }
}

/** A llama checkpoint with a tiny hidden size over a real tokenizer's full vocabulary. */
export async function writeTinyGuardFor(tokenizer: TokenizerSource, vocab: number, seed = 5): Promise<string> {
  const raw = makeConfig('llama', {
    hidden: 8,
    layers: 1,
    heads: 2,
    kvHeads: 1,
    intermediate: 16,
    vocab,
    maxPositions: 512,
    tieWordEmbeddings: true,
  });
  const model = createModel(parseConfig(raw), { seed });
  try {
    scaleWeights(model, 25);
    const dir = join(tempDir('bpe-guard'), 'tiny-guard');
    await saveModel(dir, model, tokenizer);
    return dir;
  } finally {
    model.dispose();
  }
}

/** σ(d) written out, for expectations computed in the tests. */
export const sigmoid = (d: number): number => 1 / (1 + Math.exp(-d));
