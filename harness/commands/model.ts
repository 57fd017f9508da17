// `star-dss model init|logits|generate|info|merge`: create (from sizes, or shaped like a real config.json with
// --like), inspect and run Hugging Face-layout checkpoints, with a LoRA adapter in PEFT layout (--adapter), and
// fold an adapter into a full checkpoint (merge).
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Argv, CommandModule, Options } from 'yargs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { readTextFile } from '../../engine/io.ts';
import { makeConfig, parseConfig, SIZED_FAMILIES, shrinkConfig } from '../../engine/model/config.ts';
import { knownConfig, knownConfigNames } from '../../engine/model/known-configs.ts';
import { createModel, parameterCount } from '../../engine/model/transformer.ts';
import type { ModelConfig } from '../../engine/model/types.ts';
import { CheckpointError, loadModel, saveModel, saveTargetProblem, type TokenizerSource } from '../../engine/model/checkpoint.ts';
import { buildWordLevelTokenizer, wordLevelChatTemplate } from '../../engine/model/tokenizer.ts';
import { generate } from '../../engine/generate.ts';
import { mergeLora } from '../../engine/model/lora.ts';
import { loadAdapter } from '../../engine/model/peft.ts';
import { type CommandArgs, defineCommand } from './define.ts';

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

/** Decoding flags of `model generate`, checked before any work: a one-line error naming the flag. */
function checkDecodingFlags(args: {
  maxNewTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  repetitionPenalty: number;
}): void {
  const checks: [flag: string, value: number, ok: boolean, expected: string][] = [
    ['--max-new-tokens', args.maxNewTokens, Number.isInteger(args.maxNewTokens) && args.maxNewTokens > 0, 'a positive integer'],
    [
      '--temperature',
      args.temperature,
      args.temperature > 0 && Number.isFinite(args.temperature),
      'a number > 0 (use --greedy for greedy decoding)',
    ],
    ['--top-p', args.topP, args.topP > 0 && args.topP <= 1, 'a number in (0, 1] (1 disables it)'],
    ['--top-k', args.topK, Number.isInteger(args.topK) && args.topK >= 0, 'an integer ≥ 0 (0 disables it)'],
    [
      '--repetition-penalty',
      args.repetitionPenalty,
      args.repetitionPenalty > 0 && Number.isFinite(args.repetitionPenalty),
      'a number > 0 (1 disables it)',
    ],
  ];
  for (const [flag, value, ok, expected] of checks) if (!ok) throw new Error(`${flag}: expected ${expected}, got ${value}`);
}

/** Throws when a model's logits hold NaN or ±Infinity (weights are checked on load; this catches overflow). */
/** A tensor's values as nested arrays, read asynchronously (webgpu allows no other read in Node); disposes it. */
async function readAndDispose(t: tf.Tensor): Promise<unknown> {
  try {
    return await t.array();
  } finally {
    t.dispose();
  }
}

function checkFiniteLogits(values: ArrayLike<number>, dir: string): void {
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i]))
      throw new CheckpointError(
        `${dir}: the logits are ${values[i]} (element ${i}) although the weights are finite: the forward pass overflows. Fix: check the checkpoint's weights and config (norm epsilon, scaling)`,
      );
}

/** The sizes of config.ts's ConfigSizes / ShrinkSizes, plus where and how to initialise. */
const initOptions = {
  family: { choices: SIZED_FAMILIES, describe: 'family of a new model built from the sizes alone (or use --like)' },
  like: {
    type: 'string',
    describe:
      "a real model folder or its config.json (any supported family): keep its family and every feature switch, shrink the sizes, and copy the tokenizer files beside it (then the vocabulary stays the original's); or a known model's name (SmolLM2-135M-Instruct, Qwen2.5-0.5B-Instruct, Llama-3.2-1B-Instruct, Llama-Guard-3-1B): its real config.json at its real sizes unless size flags are given, with a word-level tokenizer of its vocabulary size",
  },
  out: { type: 'string', demandOption: true, describe: 'model directory to write (new or empty, unless --force)' },
  force: {
    type: 'boolean',
    describe:
      'write into a non-empty --out: replace its checkpoint files (config.json, *.safetensors, tokenizer files), keep every other file',
  },
  hidden: { type: 'number', describe: 'default 64 (with a known --like name: the real size)' },
  layers: { type: 'number', describe: 'default 2 (with a known --like name: the real size)' },
  heads: { type: 'number', describe: 'default 4 (with a known --like name: the real size)' },
  'kv-heads': {
    type: 'number',
    describe: "key/value heads; default = heads (with --like: heads / the original's query heads per key/value head)",
  },
  'head-dim': { type: 'number', describe: 'with --like: width of a head; default hidden / heads' },
  intermediate: {
    type: 'number',
    describe: "MLP width; default 4 × hidden (with --like: hidden × the original's intermediate / hidden)",
  },
  vocab: {
    type: 'number',
    describe: "vocabulary size; default 256 (with --like and a tokenizer beside the config: the original's, and no other)",
  },
  'max-positions': { type: 'number', describe: "context length; default 128 (with --like: the original's)" },
  'sliding-window': { type: 'number', describe: "with --like: window of the sliding layers (gemma2, gemma3_text); default the original's" },
  tied: {
    type: 'boolean',
    describe: "tie the output head to the embeddings; default true (gpt2 always; refused with --like, which keeps the original's)",
  },
  seed: { type: 'number', default: 0 },
} satisfies Record<string, Options>;

export type InitArgs = CommandArgs<typeof initOptions>;

/** The word-level tokenizer of a new checkpoint: every special token plus words w0, w1, ... up to `vocab`. */
function wordLevelFiles(vocab: number) {
  const specialList = Object.values(specials);
  if (!Number.isInteger(vocab) || vocab < specialList.length + 1)
    throw new Error(`--vocab must be an integer of at least ${specialList.length + 1} (the special tokens plus one word), got ${vocab}`);
  const words = Array.from({ length: vocab - specialList.length }, (_, i) => `w${i}`);
  const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({
    words,
    specialTokens: specials,
    chatTemplate: wordLevelChatTemplate,
  });
  const ids = (tokenizerJson as { model: { vocab: Record<string, number> } }).model.vocab;
  return {
    files: { 'tokenizer.json': tokenizerJson, 'tokenizer_config.json': tokenizerConfig },
    tokens: { bos: ids[specials.bos], eos: ids[specials.eos], pad: ids[specials.pad] },
  };
}

/** Reads the config.json of --like (a folder holding one, or the file); the folder is where tokenizer files are looked for. */
function readLikeConfig(like: string): { file: string; dir?: string; raw: unknown } {
  if (!existsSync(like)) {
    const known = knownConfig(like);
    if (known) return { file: `${like} (known config)`, raw: known };
    throw new Error(
      `--like ${like}: not found. Fix: pass a model folder holding config.json, the path of a config.json, or a known model (${knownConfigNames().join(', ')})`,
    );
  }
  const file = statSync(like).isDirectory() ? join(like, 'config.json') : like;
  if (!existsSync(file)) throw new Error(`--like ${like}: holds no config.json. Fix: pass a model folder in Hugging Face layout`);
  try {
    return { file, dir: dirname(file), raw: JSON.parse(readTextFile(file)) };
  } catch (error) {
    if (error instanceof SyntaxError) throw new Error(`--like ${file}: invalid JSON (${error.message})`);
    throw error;
  }
}

/**
 * The config and tokenizer of `model init --like`: the real config shrunk to the flags' sizes with every
 * feature switch kept. With a tokenizer.json beside it, the tokenizer files are copied and the vocabulary
 * stays the real one (embedding rows are the token ids the tokenizer produces); without one, a word-level
 * tokenizer of --vocab (default 256) words is written and the special token ids point into it.
 */
function likeCheckpoint(args: InitArgs, like: string): { raw: Record<string, unknown>; tokenizer: TokenizerSource } {
  if (args.tied !== undefined)
    throw new Error('--tied: with --like the output head is tied exactly when the original is (tie_word_embeddings). Fix: drop --tied');
  const { file, dir, raw } = readLikeConfig(like);
  const sizeFlags = [
    args.hidden,
    args.layers,
    args.heads,
    args.kvHeads,
    args.headDim,
    args.intermediate,
    args.maxPositions,
    args.slidingWindow,
  ];
  if (!dir && sizeFlags.every((v) => v === undefined)) {
    // A known model at its real sizes: its config.json with a word-level tokenizer of its vocabulary.
    const real = parseConfig(raw, file);
    const words = wordLevelFiles(args.vocab ?? real.vocabSize);
    const sizes = {
      hidden: real.hiddenSize,
      layers: real.numLayers,
      heads: real.numHeads,
      kvHeads: real.numKvHeads,
      headDim: real.headDim,
    };
    return {
      raw: shrinkConfig(
        raw,
        { ...sizes, intermediate: real.intermediateSize, vocab: args.vocab ?? real.vocabSize, tokens: words.tokens },
        file,
      ),
      tokenizer: { files: words.files },
    };
  }
  const sizes = {
    hidden: args.hidden ?? 64,
    layers: args.layers ?? 2,
    heads: args.heads ?? 4,
    kvHeads: args.kvHeads,
    headDim: args.headDim,
    intermediate: args.intermediate,
    maxPositions: args.maxPositions,
    slidingWindow: args.slidingWindow,
  };
  if (dir && existsSync(join(dir, 'tokenizer.json'))) {
    const kept = shrinkConfig(raw, sizes, file); // the original vocabulary
    if (args.vocab !== undefined && args.vocab !== kept.vocab_size)
      throw new Error(
        `--vocab ${args.vocab}: the tokenizer copied from ${dir} needs the original vocabulary (vocab_size ${kept.vocab_size}). Fix: drop --vocab, or pass a config.json with no tokenizer.json beside it`,
      );
    return { raw: kept, tokenizer: { dir } };
  }
  const words = wordLevelFiles(args.vocab ?? 256);
  return {
    raw: shrinkConfig(raw, { ...sizes, vocab: args.vocab ?? 256, tokens: words.tokens }, file),
    tokenizer: { files: words.files },
  };
}

/** Checks the size flags in their own words before any config is built. */
function checkSizeFlags(args: InitArgs): void {
  for (const [flag, value] of [
    ['--hidden', args.hidden],
    ['--layers', args.layers],
    ['--heads', args.heads],
    ['--kv-heads', args.kvHeads],
    ['--head-dim', args.headDim],
    ['--intermediate', args.intermediate],
    ['--max-positions', args.maxPositions],
    ['--sliding-window', args.slidingWindow],
  ] as const)
    if (value !== undefined && !(Number.isInteger(value) && value > 0))
      throw new Error(`${flag}: expected a positive integer, got ${value}`);
  const heads = args.heads ?? 4;
  const hidden = args.hidden ?? 64;
  if (args.kvHeads !== undefined && heads % args.kvHeads !== 0) throw new Error(`--kv-heads ${args.kvHeads} must divide --heads ${heads}`);
  if (args.headDim === undefined && hidden % heads !== 0)
    throw new Error(`--hidden ${hidden} must be a multiple of --heads ${heads}${args.like ? ', or give --head-dim' : ''}`);
}

/**
 * Writes a randomly initialised checkpoint: of --family with a word-level tokenizer that covers its
 * vocabulary, or shaped like --like's config (see likeCheckpoint). Returns the config written.
 */
export async function initCheckpoint(args: InitArgs): Promise<ModelConfig> {
  // Refuse a non-empty --out (an existing checkpoint included) before any work; --force replaces only the
  // checkpoint files in it. Nothing here deletes or renames the directory or any other file in it.
  const existing = args.force ? 'force' : 'refuse';
  const problem = saveTargetProblem(args.out, existing);
  if (problem)
    throw new Error(
      `--out ${args.out}: ${problem}. Fix: ${problem.startsWith('exists') ? 'choose another --out' : 'choose a new or empty directory, or pass --force to replace only the checkpoint files in it (every other file is kept)'}`,
    );
  if ((args.family === undefined) === (args.like === undefined))
    throw new Error('model init: pass either --family (a new model from sizes) or --like (shaped like a real config.json), not both');
  checkSizeFlags(args);
  let raw: Record<string, unknown>;
  let tokenizer: TokenizerSource;
  if (args.like !== undefined) ({ raw, tokenizer } = likeCheckpoint(args, args.like));
  else {
    for (const [flag, value] of [
      ['--head-dim', args.headDim],
      ['--sliding-window', args.slidingWindow],
    ] as const)
      if (value !== undefined)
        throw new Error(`${flag} needs --like (a --family model has head_dim = hidden / heads and no sliding window)`);
    const words = wordLevelFiles(args.vocab ?? 256);
    tokenizer = { files: words.files };
    raw = makeConfig(args.family as NonNullable<InitArgs['family']>, {
      hidden: args.hidden ?? 64,
      layers: args.layers ?? 2,
      heads: args.heads ?? 4,
      kvHeads: args.kvHeads,
      intermediate: args.intermediate,
      vocab: args.vocab ?? 256,
      maxPositions: args.maxPositions ?? 128,
      tieWordEmbeddings: args.tied ?? true,
      bosTokenId: words.tokens.bos,
      eosTokenId: words.tokens.eos,
      padTokenId: words.tokens.pad,
    });
  }
  const config = parseConfig(raw);
  const model = createModel(config, { seed: args.seed });
  try {
    await saveModel(args.out, model, tokenizer, { existing });
  } finally {
    model.dispose();
  }
  return config;
}

const init = defineCommand({
  command: 'init',
  describe: 'write a randomly initialised checkpoint in Hugging Face layout',
  builder: (y) => y.options(initOptions),
  handler: async (args) => {
    await initBackend(args.backend);
    const config = await initCheckpoint(args);
    console.log(`wrote ${config.family} checkpoint${args.like ? ` shaped like ${args.like}` : ''} to ${args.out}`);
    if (config.slidingWindow !== undefined && !config.layerTypes.includes('full'))
      console.log(
        `note: all ${config.numLayers} layers are sliding layers at this depth; raise --layers to keep the original's global layers`,
      );
  },
});

const adapterOption = {
  type: 'string',
  describe: 'a LoRA adapter directory in PEFT layout (adapter_config.json, adapter_model.safetensors) to run on --model',
} satisfies Options;

/** The checkpoint of --model with the adapter of --adapter on it, if given; dispose frees both. */
function loadAdapted(dir: string, adapter: string | undefined) {
  const loaded = loadModel(dir);
  if (adapter === undefined) return { ...loaded, dispose: () => loaded.model.dispose() };
  try {
    const model = loadAdapter(adapter, loaded.model);
    return {
      ...loaded,
      model,
      dispose: () => {
        model.dispose();
        loaded.model.dispose();
      },
    };
  } catch (error) {
    loaded.model.dispose();
    throw error;
  }
}

const logitsOptions = {
  model: { type: 'string', demandOption: true },
  adapter: adapterOption,
  ids: { type: 'string', demandOption: true },
} satisfies Record<string, Options>;

const logits = defineCommand({
  command: 'logits',
  describe: 'print {"logits": [[...], ...]}: one row of vocabulary logits per input position',
  builder: (y) => y.options(logitsOptions),
  handler: async (args) => {
    await initBackend(args.backend);
    const { model, dispose } = loadAdapted(args.model, args.adapter);
    try {
      const ids = parseIds(args.ids, model.config.vocabSize);
      const rows = (await readAndDispose(
        tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], 'int32')).logits.squeeze([0])),
      )) as number[][];
      checkFiniteLogits(rows.flat(), args.model);
      process.stdout.write(`${JSON.stringify({ logits: rows })}\n`);
    } finally {
      dispose();
    }
  },
});

const generateOptions = {
  model: { type: 'string', demandOption: true },
  adapter: adapterOption,
  prompt: { type: 'string', demandOption: true },
  'max-new-tokens': { type: 'number', default: 64 },
  greedy: { type: 'boolean', default: false },
  temperature: { type: 'number', default: 0.2 },
  'top-p': { type: 'number', default: 0.9 },
  'top-k': { type: 'number', default: 50 },
  'repetition-penalty': { type: 'number', default: 1.2 },
  seed: { type: 'number', default: 0 },
  raw: { type: 'boolean', default: false, describe: 'encode the prompt as plain text, no chat template' },
} satisfies Record<string, Options>;

const generateCommand = defineCommand({
  command: 'generate',
  describe: 'generate a reply to --prompt (through the chat template unless --raw)',
  builder: (y) => y.options(generateOptions),
  handler: async (args) => {
    checkDecodingFlags(args);
    await initBackend(args.backend);
    const { model, tokenizer, dispose } = loadAdapted(args.model, args.adapter);
    try {
      const prompt =
        args.raw || !tokenizer.chatTemplate
          ? tokenizer.encode(args.prompt, { addSpecialTokens: true })
          : tokenizer.encodeChat([{ role: 'user', content: args.prompt }], { addGenerationPrompt: true });
      if (prompt.length === 0) throw new Error('--prompt: encodes to no tokens. Fix: pass a prompt with at least one word');
      // One forward pass of the prompt first: NaN logits fail here with a message, not as an empty reply.
      const last = tf.tidy(() => model.forward(tf.tensor2d([prompt], [1, prompt.length], 'int32'), { lastOnly: true }).logits);
      checkFiniteLogits(((await readAndDispose(last)) as number[][][]).flat(2), args.model);
      const [out] = await generate(model, [prompt], {
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
      dispose();
    }
  },
});

const infoOptions = {
  model: { type: 'string', demandOption: true },
} satisfies Record<string, Options>;

const info = defineCommand({
  command: 'info',
  describe: 'print family, parameter count, dtype and vocabulary size',
  builder: (y) => y.options(infoOptions),
  handler: async (args) => {
    await initBackend(args.backend);
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
});

const mergeOptions = {
  model: { type: 'string', demandOption: true, describe: 'the base checkpoint' },
  adapter: { ...adapterOption, demandOption: true },
  out: { type: 'string', demandOption: true, describe: 'checkpoint directory to write (new or empty, unless --force)' },
  force: { type: 'boolean', describe: 'write into a non-empty --out: replace its checkpoint files, keep every other file' },
} satisfies Record<string, Options>;

/** Writes --model with --adapter folded in (W + scaling · B·A) as a full checkpoint at --out. */
export async function mergeCheckpoint(args: { model: string; adapter: string; out: string; force?: boolean }): Promise<void> {
  const existing = args.force ? 'force' : 'refuse';
  const problem = saveTargetProblem(args.out, existing);
  if (problem) throw new Error(`--out ${args.out}: ${problem}. Fix: choose a new or empty directory, or pass --force`);
  const base = loadModel(args.model).model;
  try {
    const adapted = loadAdapter(args.adapter, base);
    const merged = mergeLora(adapted);
    adapted.dispose();
    try {
      await saveModel(args.out, merged, { dir: args.model }, { existing });
    } finally {
      merged.dispose();
    }
  } finally {
    base.dispose();
  }
}

const merge = defineCommand({
  command: 'merge',
  describe: 'fold a LoRA adapter (PEFT layout) into its base: a full checkpoint',
  builder: (y) => y.options(mergeOptions),
  handler: async (args) => {
    await initBackend(args.backend);
    await mergeCheckpoint(args);
    console.log(`wrote ${args.model} merged with ${args.adapter} to ${args.out}`);
  },
});

export const modelCommand: CommandModule = {
  command: 'model',
  describe: 'create, inspect and run checkpoints in Hugging Face layout',
  builder: (y: Argv) =>
    y.command(init).command(logits).command(generateCommand).command(info).command(merge).demandCommand(1, 'Name a model subcommand.'),
  handler: () => {},
};
