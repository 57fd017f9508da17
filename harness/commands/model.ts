// `star-dss model init|logits|generate|info`: create, inspect and run Hugging Face-layout checkpoints.
import type { Argv, CommandModule } from 'yargs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { makeConfig, parseConfig, type ConfigSizes } from '../../engine/model/config.ts';
import { createModel, parameterCount } from '../../engine/model/transformer.ts';
import { loadModel, saveModel } from '../../engine/model/checkpoint.ts';
import { buildWordLevelTokenizer, wordLevelChatTemplate } from '../../engine/model/tokenizer.ts';
import { generate } from '../../engine/generate.ts';
import type { Family } from '../../engine/model/types.ts';

const families = ['llama', 'qwen2', 'gpt2'] as const;
const specials = { pad: '<pad>', unk: '<unk>', bos: '<bos>', eos: '<eos>', system: '<system>', user: '<user>', assistant: '<assistant>' };

/** Ids from a comma-separated list, with a one-line error naming the flag. */
export function parseIds(text: string, vocabSize?: number): number[] {
  const ids = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || (vocabSize !== undefined && id >= vocabSize));
  if (ids.length === 0 || bad !== undefined) {
    throw new Error(`--ids: expected comma-separated token ids in [0, ${vocabSize ?? '?'}), got '${text}'`);
  }
  return ids;
}

/** The sizes of config.ts's ConfigSizes (context length required here), plus where and how to initialise. */
export interface InitArgs extends Pick<ConfigSizes, 'hidden' | 'layers' | 'heads' | 'kvHeads' | 'intermediate' | 'vocab'> {
  family: Family;
  out: string;
  maxPositions: number;
  tied: boolean;
  seed: number;
}

/** Writes a randomly initialised checkpoint with a word-level tokenizer that covers its vocabulary. */
export function initCheckpoint(args: InitArgs): void {
  const specialList = Object.values(specials);
  if (args.vocab < specialList.length + 1)
    throw new Error(`--vocab must be at least ${specialList.length + 1} (the special tokens plus one word)`);
  const words = Array.from({ length: args.vocab - specialList.length }, (_, i) => `w${i}`);
  const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({
    words,
    specialTokens: specials,
    chatTemplate: wordLevelChatTemplate,
  });
  const vocab = (tokenizerJson as { model: { vocab: Record<string, number> } }).model.vocab;
  const raw = makeConfig(args.family, {
    hidden: args.hidden,
    layers: args.layers,
    heads: args.heads,
    kvHeads: args.kvHeads,
    intermediate: args.intermediate,
    vocab: args.vocab,
    maxPositions: args.maxPositions,
    tieWordEmbeddings: args.tied,
    bosTokenId: vocab[specials.bos],
    eosTokenId: vocab[specials.eos],
    padTokenId: vocab[specials.pad],
  });
  const model = createModel(parseConfig(raw), { seed: args.seed });
  try {
    saveModel(args.out, model, { files: { 'tokenizer.json': tokenizerJson, 'tokenizer_config.json': tokenizerConfig } });
  } finally {
    model.dispose();
  }
}

const init: CommandModule<object, InitArgs> = {
  command: 'init',
  describe: 'write a randomly initialised checkpoint in Hugging Face layout',
  builder: (y: Argv) =>
    y
      .option('family', { choices: families, demandOption: true })
      .option('out', { type: 'string', demandOption: true, describe: 'model directory to write' })
      .option('hidden', { type: 'number', default: 64 })
      .option('layers', { type: 'number', default: 2 })
      .option('heads', { type: 'number', default: 4 })
      .option('kv-heads', { type: 'number', describe: 'key/value heads (llama, qwen2); default = heads' })
      .option('intermediate', { type: 'number', describe: 'MLP width; default 4 × hidden (gpt2) or 8/3 × hidden' })
      .option('vocab', { type: 'number', default: 256 })
      .option('max-positions', { type: 'number', default: 128 })
      .option('tied', { type: 'boolean', default: true, describe: 'tie the output head to the embeddings (gpt2 always)' })
      .option('seed', { type: 'number', default: 0 }) as unknown as Argv<InitArgs>,
  handler: async (args) => {
    await initBackend((args as { backend?: string }).backend);
    initCheckpoint(args);
    console.log(`wrote ${args.family} checkpoint to ${args.out}`);
  },
};

const logits: CommandModule<object, { model: string; ids: string }> = {
  command: 'logits',
  describe: 'print {"logits": [[...], ...]}: one row of vocabulary logits per input position',
  builder: (y: Argv) =>
    y.option('model', { type: 'string', demandOption: true }).option('ids', { type: 'string', demandOption: true }) as unknown as Argv<{
      model: string;
      ids: string;
    }>,
  handler: async (args) => {
    await initBackend((args as { backend?: string }).backend);
    const { model } = loadModel(args.model);
    try {
      const ids = parseIds(args.ids, model.config.vocabSize);
      const rows = tf.tidy(() =>
        model
          .forward(tf.tensor2d([ids], [1, ids.length], 'int32'))
          .logits.squeeze([0])
          .arraySync(),
      ) as number[][];
      process.stdout.write(`${JSON.stringify({ logits: rows })}\n`);
    } finally {
      model.dispose();
    }
  },
};

interface GenerateArgs {
  model: string;
  prompt: string;
  maxNewTokens: number;
  greedy: boolean;
  temperature: number;
  topP: number;
  topK: number;
  repetitionPenalty: number;
  seed: number;
  raw: boolean;
}

const generateCommand: CommandModule<object, GenerateArgs> = {
  command: 'generate',
  describe: 'generate a reply to --prompt (through the chat template unless --raw)',
  builder: (y: Argv) =>
    y
      .option('model', { type: 'string', demandOption: true })
      .option('prompt', { type: 'string', demandOption: true })
      .option('max-new-tokens', { type: 'number', default: 64 })
      .option('greedy', { type: 'boolean', default: false })
      .option('temperature', { type: 'number', default: 0.2 })
      .option('top-p', { type: 'number', default: 0.9 })
      .option('top-k', { type: 'number', default: 50 })
      .option('repetition-penalty', { type: 'number', default: 1.2 })
      .option('seed', { type: 'number', default: 0 })
      .option('raw', {
        type: 'boolean',
        default: false,
        describe: 'encode the prompt as plain text, no chat template',
      }) as unknown as Argv<GenerateArgs>,
  handler: async (args) => {
    await initBackend((args as { backend?: string }).backend);
    const { model, tokenizer } = loadModel(args.model);
    try {
      const prompt =
        args.raw || !tokenizer.chatTemplate
          ? tokenizer.encode(args.prompt, { addSpecialTokens: true })
          : tokenizer.encodeChat([{ role: 'user', content: args.prompt }], { addGenerationPrompt: true });
      const [out] = generate(model, [prompt], {
        maxNewTokens: args.maxNewTokens,
        sampling: args.greedy ? undefined : { temperature: args.temperature, topP: args.topP, topK: args.topK },
        repetitionPenalty: args.repetitionPenalty,
        eosTokenIds: tokenizer.eosTokenIds.length ? tokenizer.eosTokenIds : model.config.eosTokenIds,
        padTokenId: tokenizer.padTokenId ?? model.config.padTokenId ?? 0,
        decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
        seed: args.seed,
      });
      console.log(out.text);
    } finally {
      model.dispose();
    }
  },
};

const info: CommandModule<object, { model: string }> = {
  command: 'info',
  describe: 'print family, parameter count, dtype and vocabulary size',
  builder: (y: Argv) => y.option('model', { type: 'string', demandOption: true }) as unknown as Argv<{ model: string }>,
  handler: async (args) => {
    await initBackend((args as { backend?: string }).backend);
    const { model, tokenizer, dtype } = loadModel(args.model);
    try {
      const c = model.config;
      console.log(
        JSON.stringify({
          family: c.family,
          parameters: parameterCount(model),
          dtype,
          vocabSize: c.vocabSize,
          tokenizerVocabSize: tokenizer.vocabSize,
          layers: c.numLayers,
          hidden: c.hiddenSize,
          heads: c.numHeads,
          kvHeads: c.numKvHeads,
          tiedEmbeddings: c.tieWordEmbeddings,
        }),
      );
    } finally {
      model.dispose();
    }
  },
};

export const modelCommand: CommandModule = {
  command: 'model',
  describe: 'create, inspect and run checkpoints in Hugging Face layout',
  builder: (y: Argv) => y.command(init).command(logits).command(generateCommand).command(info).demandCommand(1, 'Name a model subcommand.'),
  handler: () => {},
};
