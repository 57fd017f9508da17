// `star-dss model init|logits|generate|info`: create, inspect and run Hugging Face-layout checkpoints.
import type { Argv, CommandModule, Options } from 'yargs';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { makeConfig, parseConfig } from '../../engine/model/config.ts';
import { createModel, parameterCount } from '../../engine/model/transformer.ts';
import { CheckpointError, loadModel, saveModel, saveTargetProblem } from '../../engine/model/checkpoint.ts';
import { buildWordLevelTokenizer, wordLevelChatTemplate } from '../../engine/model/tokenizer.ts';
import { generate } from '../../engine/generate.ts';
import { type CommandArgs, defineCommand } from './define.ts';

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
function checkFiniteLogits(values: ArrayLike<number>, dir: string): void {
  for (let i = 0; i < values.length; i++)
    if (!Number.isFinite(values[i]))
      throw new CheckpointError(
        `${dir}: the logits are ${values[i]} (element ${i}) although the weights are finite: the forward pass overflows. Fix: check the checkpoint's weights and config (norm epsilon, scaling)`,
      );
}

/** The sizes of config.ts's ConfigSizes (context length required here), plus where and how to initialise. */
const initOptions = {
  family: { choices: families, demandOption: true },
  out: { type: 'string', demandOption: true, describe: 'model directory to write (new or empty, unless --force)' },
  force: {
    type: 'boolean',
    describe:
      'write into a non-empty --out: replace its checkpoint files (config.json, *.safetensors, tokenizer files), keep every other file',
  },
  hidden: { type: 'number', default: 64 },
  layers: { type: 'number', default: 2 },
  heads: { type: 'number', default: 4 },
  'kv-heads': { type: 'number', describe: 'key/value heads (llama, qwen2); default = heads' },
  intermediate: { type: 'number', describe: 'MLP width; default 4 × hidden (gpt2) or 8/3 × hidden' },
  vocab: { type: 'number', default: 256 },
  'max-positions': { type: 'number', default: 128 },
  tied: { type: 'boolean', default: true, describe: 'tie the output head to the embeddings (gpt2 always)' },
  seed: { type: 'number', default: 0 },
} satisfies Record<string, Options>;

export type InitArgs = CommandArgs<typeof initOptions>;

/** Writes a randomly initialised checkpoint with a word-level tokenizer that covers its vocabulary. */
export function initCheckpoint(args: InitArgs): void {
  // Refuse a non-empty --out (an existing checkpoint included) before any work; --force replaces only the
  // checkpoint files in it. Nothing here deletes or renames the directory or any other file in it.
  const existing = args.force ? 'force' : 'refuse';
  const problem = saveTargetProblem(args.out, existing);
  if (problem)
    throw new Error(
      `--out ${args.out}: ${problem}. Fix: ${problem.startsWith('exists') ? 'choose another --out' : 'choose a new or empty directory, or pass --force to replace only the checkpoint files in it (every other file is kept)'}`,
    );
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
    saveModel(args.out, model, { files: { 'tokenizer.json': tokenizerJson, 'tokenizer_config.json': tokenizerConfig } }, { existing });
  } finally {
    model.dispose();
  }
}

const init = defineCommand({
  command: 'init',
  describe: 'write a randomly initialised checkpoint in Hugging Face layout',
  builder: (y) => y.options(initOptions),
  handler: async (args) => {
    await initBackend(args.backend);
    initCheckpoint(args);
    console.log(`wrote ${args.family} checkpoint to ${args.out}`);
  },
});

const logitsOptions = {
  model: { type: 'string', demandOption: true },
  ids: { type: 'string', demandOption: true },
} satisfies Record<string, Options>;

const logits = defineCommand({
  command: 'logits',
  describe: 'print {"logits": [[...], ...]}: one row of vocabulary logits per input position',
  builder: (y) => y.options(logitsOptions),
  handler: async (args) => {
    await initBackend(args.backend);
    const { model } = loadModel(args.model);
    try {
      const ids = parseIds(args.ids, model.config.vocabSize);
      const rows = tf.tidy(() =>
        model
          .forward(tf.tensor2d([ids], [1, ids.length], 'int32'))
          .logits.squeeze([0])
          .arraySync(),
      ) as number[][];
      checkFiniteLogits(rows.flat(), args.model);
      process.stdout.write(`${JSON.stringify({ logits: rows })}\n`);
    } finally {
      model.dispose();
    }
  },
});

const generateOptions = {
  model: { type: 'string', demandOption: true },
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
    const { model, tokenizer } = loadModel(args.model);
    try {
      const prompt =
        args.raw || !tokenizer.chatTemplate
          ? tokenizer.encode(args.prompt, { addSpecialTokens: true })
          : tokenizer.encodeChat([{ role: 'user', content: args.prompt }], { addGenerationPrompt: true });
      if (prompt.length === 0) throw new Error('--prompt: encodes to no tokens. Fix: pass a prompt with at least one word');
      // One forward pass of the prompt first: NaN logits fail here with a message, not as an empty reply.
      checkFiniteLogits(
        tf.tidy(() => model.forward(tf.tensor2d([prompt], [1, prompt.length], 'int32'), { lastOnly: true }).logits.dataSync()),
        args.model,
      );
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

export const modelCommand: CommandModule = {
  command: 'model',
  describe: 'create, inspect and run checkpoints in Hugging Face layout',
  builder: (y: Argv) => y.command(init).command(logits).command(generateCommand).command(info).demandCommand(1, 'Name a model subcommand.'),
  handler: () => {},
};
