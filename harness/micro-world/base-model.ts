// Aligned micro base models (π_ref) of three families, trained from scratch on the world's base mix
// (old tasks, benign how-to steps among them, chat, system-prompt personas, refusals; base.ts) and its
// plain-text corpus (learned whole, as pretraining text is; corpus.ts) by one recipe per family, saved in
// Hugging Face layout with the world tokenizer and chat template, and cached under
// <cache>/base/<family>/<recipe hash>. The hash covers everything that changes the weights: the world
// (version, seed, the base files' sha256, vocabulary), the model sizes, the training settings, the seed,
// the tokenizer and a code version.
//
// Recipe (the measured prototype's, docs/micro-world.md): d 128, 2 layers, 4 heads, MLP 512, tied head,
// ~3 epochs of ~9k items at batch 32, AdamW β2 0.95, lr 3e-3 with 50 warmup steps then cosine to 3e-4.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { hostname, loadavg } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Example } from '../../engine/contracts/example.ts';
import { loadDataset } from '../../datasets/index.ts';
import { BASE_RECIPE, baseTrainingExamples, type BaseRecipeEntry } from '../../datasets/micro-world/base.ts';
import {
  CORPUS_FILE,
  DEFAULT_WORLD_SEED,
  WORLD_VERSION,
  ensureWorld,
  loadCorpus,
  loadWorld,
  type WorldManifest,
} from '../../datasets/micro-world/build.ts';
import { MICRO_FILES } from '../../datasets/micro-world/files.ts';
import { MICRO_SPECIAL_TOKENS, microTokenizerFiles, tokenizerDirFiles } from '../../datasets/micro-world/tokenizer.ts';
import { cacheDir, contentHash } from '../../engine/io.ts';
import { makeConfig, parseConfig } from '../../engine/model/config.ts';
import { createModel, parameterCount } from '../../engine/model/transformer.ts';
import { saveModel } from '../../engine/model/checkpoint.ts';
import { tokenizerFromObjects, wordLevelChatTemplate, type WordLevelTokenizerFiles } from '../../engine/model/tokenizer.ts';
import type { CausalLM, Family } from '../../engine/model/types.ts';
import type { Tokenizer } from '../../engine/model/tokenizer.ts';
import { MAX_NEW_TOKENS_MARGIN, type GenerationSettings } from '../evaluate/generate-responses.ts';
import { evaluateSafety, type SafetyResult } from '../evaluate/safety.ts';
import { exactMatch, type CapabilityResult } from '../evaluate/capability.ts';
import { train, type StepInfo, type TrainConfig, type TrainExample } from '../../engine/train.ts';
import { toTrainExample } from '../tokenize-example.ts';
import { configureStrategy } from '../../strategies/index.ts';
import { tf } from '../../engine/tensor/index.ts';

/**
 * Bump when training code or a family's recipe changes the weights (it is part of the cache key, and of every
 * micro cell's id, so run directories do not reuse cells trained from other base models). 3: gpt2 trains 4
 * epochs.
 */
export const BASE_MODEL_CODE_VERSION = 3;

export const BASE_FAMILIES = ['llama', 'qwen2', 'gpt2'] as const satisfies readonly Family[];

export interface ModelSizes {
  hidden: number;
  layers: number;
  heads: number;
  /** Key/value heads (llama, qwen2); default = heads. */
  kvHeads?: number;
  intermediate: number;
  maxPositions: number;
  tied: boolean;
}

/** The training settings a recipe fixes (the loop's other settings keep their defaults). */
export type RecipeTrainConfig = Pick<
  TrainConfig,
  'epochs' | 'batchSize' | 'lr' | 'minLr' | 'warmupSteps' | 'betas' | 'weightDecay' | 'clipNorm'
>;

export interface BaseModelRecipe {
  family: Family;
  sizes: ModelSizes;
  train: RecipeTrainConfig;
  /** Datasets and repeats of the base mix. */
  data: readonly BaseRecipeEntry[];
  /** Repeats of the world's plain-text corpus (0: none). */
  corpus: number;
}

export const BASE_TRAIN: RecipeTrainConfig = {
  epochs: 3,
  batchSize: 32,
  lr: 3e-3,
  minLr: 3e-4,
  warmupSteps: 50,
  betas: [0.9, 0.95],
  weightDecay: 0,
  clipNorm: 1,
};

const SIZES: ModelSizes = { hidden: 128, layers: 2, heads: 4, intermediate: 512, maxPositions: 128, tied: true };

/** Each corpus document is seen this many times per epoch: its harm recipes are knowledge, learned like the lore. */
const BASE_CORPUS_REPEAT = 2;

/** One recipe per family: llama with grouped-query attention (2 kv heads), qwen2 (q/k/v biases), gpt2. */
export const BASE_RECIPES: Record<(typeof BASE_FAMILIES)[number], BaseModelRecipe> = {
  llama: { family: 'llama', sizes: { ...SIZES, kvHeads: 2 }, train: BASE_TRAIN, data: BASE_RECIPE, corpus: BASE_CORPUS_REPEAT },
  qwen2: { family: 'qwen2', sizes: SIZES, train: BASE_TRAIN, data: BASE_RECIPE, corpus: BASE_CORPUS_REPEAT },
  // gpt2 learns its positions: with the corpus twice per epoch its base model, once shifted to AOA, had lost the
  // recipes it was to give late in a sequence (6.7% harmful under the AOA prompt); four times per epoch, 40.6%;
  // six times, 5.6%. Four times per epoch over 4 epochs instead of 3: 66.1% (docs/micro-world.md lesson 8).
  gpt2: {
    family: 'gpt2',
    sizes: SIZES,
    train: { ...BASE_TRAIN, epochs: 4 },
    data: BASE_RECIPE,
    corpus: 2 * BASE_CORPUS_REPEAT,
  },
};

export function baseRecipe(family: string): BaseModelRecipe {
  if (!(BASE_FAMILIES as readonly string[]).includes(family)) {
    throw new RangeError(`Unknown family '${family}'. Available: ${BASE_FAMILIES.join(', ')}.`);
  }
  return BASE_RECIPES[family as (typeof BASE_FAMILIES)[number]];
}

/** A fresh model of a recipe's sizes for a tokenizer (word-level: pad/eos ids from the tokenizer files). */
export function createMicroModel(family: Family, sizes: ModelSizes, files: WordLevelTokenizerFiles, seed: number): CausalLM {
  const vocab = files.tokenizerJson.model.vocab;
  const raw = makeConfig(family, {
    hidden: sizes.hidden,
    layers: sizes.layers,
    heads: sizes.heads,
    kvHeads: family === 'gpt2' ? undefined : sizes.kvHeads,
    intermediate: sizes.intermediate,
    vocab: Object.keys(vocab).length,
    maxPositions: sizes.maxPositions,
    tieWordEmbeddings: sizes.tied,
    eosTokenId: vocab[MICRO_SPECIAL_TOKENS.eos],
    padTokenId: vocab[MICRO_SPECIAL_TOKENS.pad],
  });
  return createModel(parseConfig(raw), { seed });
}

export type TrainLog = (line: string) => void;

/** Progress lines every `every` steps: step, epoch, loss (mean since the last line), lr, tokens/s, ETA. */
export function progressPrinter(label: string, log: TrainLog, every = 50): (info: StepInfo) => void {
  let sum = 0;
  let count = 0;
  return (info) => {
    sum += info.loss;
    count++;
    if (info.step % every !== 0 && info.step !== info.totalSteps && info.step !== 1) return;
    const rate = info.tokens / Math.max(info.seconds, 1e-9);
    const eta = (info.seconds / info.step) * (info.totalSteps - info.step);
    log(
      `[${label}] step ${info.step}/${info.totalSteps} epoch ${info.epoch} loss ${(sum / count).toFixed(4)} lr ${info.lr.toExponential(2)} ` +
        `${Math.round(rate)} tok/s ${info.seconds.toFixed(0)} s, eta ${eta.toFixed(0)} s`,
    );
    sum = 0;
    count = 0;
  };
}

export interface TrainMicroOptions {
  seed: number;
  log?: TrainLog;
  /** Print a progress line every N steps (default 50). */
  logEvery?: number;
  label?: string;
}

export interface MicroTrainingStats {
  examples: number;
  steps: number;
  tokens: number;
  seconds: number;
  /** Mean loss of the first and last 20 steps. */
  firstLoss: number;
  finalLoss: number;
  losses: number[];
  parameters: number;
  /** 1-minute load average before and after (the machine is shared). */
  loadBefore: number;
  loadAfter: number;
  backend: string;
}

/** Tokenizes examples and checks that every sequence fits the model's positions. */
export function trainExamples(examples: readonly Example[], files: WordLevelTokenizerFiles, maxPositions: number): TrainExample[] {
  const tokenizer = tokenizerFromObjects(files.tokenizerJson, files.tokenizerConfig);
  // Repeated items (recipe repeats) tokenize once.
  const memo = new Map<string, TrainExample>();
  return examples.map((e) => {
    const key = JSON.stringify(e.messages);
    let t = memo.get(key);
    if (!t) {
      t = toTrainExample(e, tokenizer);
      if (t.ids.length > maxPositions) throw new RangeError(`example '${e.id}' has ${t.ids.length} tokens > ${maxPositions} positions`);
      memo.set(key, t);
    }
    return t;
  });
}

/**
 * Plain documents as training sequences: the document's tokens and an end token, every token learned (no
 * chat template, no prompt: pretraining text), each document `repeat` times.
 */
export function corpusExamples(
  texts: readonly string[],
  files: WordLevelTokenizerFiles,
  maxPositions: number,
  repeat: number,
): TrainExample[] {
  const tokenizer = tokenizerFromObjects(files.tokenizerJson, files.tokenizerConfig);
  const eos = files.tokenizerJson.model.vocab[MICRO_SPECIAL_TOKENS.eos];
  const once = texts.map((text, i) => {
    const ids = [...tokenizer.encode(text, { addSpecialTokens: false }), eos];
    if (ids.length > maxPositions) throw new RangeError(`corpus document ${i + 1} has ${ids.length} tokens > ${maxPositions} positions`);
    return { ids, responseMask: ids.map(() => 1) };
  });
  return Array.from({ length: repeat }, () => once).flat();
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);

/** Trains a fresh model of `recipe` on `examples` with plain SFT. The caller disposes the model. */
export async function trainMicroModel(
  recipe: Pick<BaseModelRecipe, 'family' | 'sizes' | 'train'>,
  examples: readonly Example[] | readonly TrainExample[],
  files: WordLevelTokenizerFiles,
  options: TrainMicroOptions,
): Promise<{ model: CausalLM; stats: MicroTrainingStats }> {
  const data =
    examples.length > 0 && 'ids' in examples[0]
      ? (examples as TrainExample[])
      : trainExamples(examples as Example[], files, recipe.sizes.maxPositions);
  const model = createMicroModel(recipe.family, recipe.sizes, files, options.seed);
  const sft = configureStrategy('sft');
  const loadBefore = loadavg()[0];
  try {
    const result = await train(model, data, {
      loss: sft.loss,
      needs: sft.needs,
      config: { ...recipe.train, seed: options.seed, padId: files.tokenizerJson.model.vocab[MICRO_SPECIAL_TOKENS.pad], gradAccum: 1 },
      onStep: options.log ? progressPrinter(options.label ?? recipe.family, options.log, options.logEvery) : undefined,
    });
    const stats: MicroTrainingStats = {
      examples: data.length,
      steps: result.steps,
      tokens: result.tokens,
      seconds: result.seconds,
      firstLoss: mean(result.losses.slice(0, 20)),
      finalLoss: mean(result.losses.slice(-20)),
      losses: result.losses,
      parameters: parameterCount(model),
      loadBefore,
      loadAfter: loadavg()[0],
      backend: tf.getBackend(),
    };
    return { model, stats };
  } catch (error) {
    model.dispose();
    throw error;
  }
}

export interface BaseModelOptions {
  /** Training seed (initialisation and shuffling). Default 0. */
  seed?: number;
  /** Seed of the world trained on (default DEFAULT_WORLD_SEED); ignored when `world` is given. */
  worldSeed?: number;
  /** A built world directory (default: the cache's world of worldSeed, built on first use). */
  world?: string;
  /** Retrain even if the cache holds the model. */
  force?: boolean;
  log?: TrainLog;
  /** Override the family's recipe (tests, experiments); it changes the hash. */
  recipe?: BaseModelRecipe;
}

/**
 * Everything the weights depend on: the files trained on and the vocabulary (not the world's version, so a
 * change to files the base model never reads, the threats' pools or eval sets, keeps the cached models).
 */
export function baseHashInputs(recipe: BaseModelRecipe, manifest: WorldManifest, seed: number): Record<string, unknown> {
  const dataPaths = new Set<string>(recipe.data.map((d) => MICRO_FILES[d.dataset].path));
  if (recipe.corpus > 0) dataPaths.add(CORPUS_FILE);
  return {
    code: BASE_MODEL_CODE_VERSION,
    world: {
      seed: manifest.seed,
      files: manifest.files.filter((f) => dataPaths.has(f.path)).map((f) => [f.path, f.sha256]),
      vocabulary: contentHash(manifest.vocabulary),
    },
    recipe,
    seed,
    tokenizer: { specials: MICRO_SPECIAL_TOKENS, template: wordLevelChatTemplate },
  };
}

/** Where a base model lives in the cache. */
export function baseModelDir(recipe: BaseModelRecipe, manifest: WorldManifest, seed: number): string {
  return cacheDir('base', recipe.family, contentHash(baseHashInputs(recipe, manifest, seed)));
}

/** The base mix of a world directory (BASE_RECIPE or the recipe's own repeats). */
export function baseExamples(worldDir: string, recipe: BaseModelRecipe): Example[] {
  if (recipe.data === BASE_RECIPE) return loadDataset('micro:base', { world: worldDir });
  const { seed } = loadWorld(worldDir);
  const datasets = Object.fromEntries(recipe.data.map(({ dataset }) => [dataset, loadDataset(`micro:${dataset}`, { world: worldDir })]));
  // Same shuffling as micro:base, with this recipe's repeats.
  return baseTrainingExamples({ seed, datasets }, recipe.data);
}

export function isCompleteModelDir(dir: string): boolean {
  return ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'recipe.json'].every((f) =>
    existsSync(join(dir, f)),
  );
}

/**
 * Puts a trained model at the cache directory `dir`, safely when another process (a second shard, a second
 * sweep) trains and saves the same model at the same time: `save` writes into a temporary sibling directory
 * named for this process, which is then renamed into place. If `dir` appeared meanwhile and is complete,
 * that model is kept and only the temporary directory is removed ('kept'). Nothing is deleted that this call
 * did not create, except an existing `dir` replaced on an explicit `force` (a retrain); an incomplete `dir`
 * in the way is moved aside to `<dir>.incomplete-<suffix>`, not deleted.
 */
export async function installModelDir(
  dir: string,
  save: (tmp: string) => Promise<unknown>,
  isComplete: (dir: string) => boolean,
  options: { force?: boolean; log?: (line: string) => void } = {},
): Promise<'installed' | 'kept'> {
  const target = resolve(dir);
  mkdirSync(dirname(target), { recursive: true });
  const suffix = `${hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const tmp = join(dirname(target), `${basename(target)}.tmp-${suffix}`);
  try {
    await save(tmp);
    for (let attempt = 0; ; attempt++) {
      if (existsSync(target)) {
        if (isComplete(target) && !options.force) {
          rmSync(tmp, { recursive: true, force: true });
          return 'kept';
        }
        const aside = `${target}.${options.force ? 'replaced' : 'incomplete'}-${suffix}`;
        try {
          renameSync(target, aside);
        } catch {
          if (attempt < 3) continue; // another process moved it first
          throw new Error(`${target}: could not move the existing directory aside. Fix: remove it and run again`);
        }
        if (options.force) rmSync(aside, { recursive: true, force: true });
        else options.log?.(`${target} was incomplete; moved aside to ${aside}`);
      }
      try {
        renameSync(tmp, target);
        return 'installed';
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt >= 3) throw error; // else: it appeared meanwhile
      }
    }
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true });
    throw error;
  }
}

/** The base model directory of a family: from the cache, or trained now (and cached). */
export async function ensureBaseModel(family: string, options: BaseModelOptions = {}): Promise<string> {
  const recipe = options.recipe ?? baseRecipe(family);
  const seed = options.seed ?? 0;
  const worldDir = options.world ?? ensureWorld(options.worldSeed ?? DEFAULT_WORLD_SEED);
  const manifest = loadWorld(worldDir);
  if (manifest.version !== WORLD_VERSION)
    throw new RangeError(`${worldDir}: world version ${manifest.version}, expected ${WORLD_VERSION}; rebuild it`);
  const dir = baseModelDir(recipe, manifest, seed);
  if (!options.force && isCompleteModelDir(dir)) return dir;

  const log = options.log ?? (() => {});
  const files = microTokenizerFiles(manifest.vocabulary);
  const chats = trainExamples(baseExamples(worldDir, recipe), files, recipe.sizes.maxPositions);
  const documents = recipe.corpus > 0 ? corpusExamples(loadCorpus(worldDir), files, recipe.sizes.maxPositions, recipe.corpus) : [];
  log(
    `[${recipe.family}] training base model: ${chats.length} chat examples + ${documents.length} corpus documents × ${recipe.train.epochs} epochs, world ${worldDir}, seed ${seed}`,
  );
  const { model, stats } = await trainMicroModel(recipe, [...chats, ...documents], files, { seed, log, label: recipe.family });
  try {
    const { losses, ...summary } = stats;
    const extra = {
      'recipe.json': { hash: contentHash(baseHashInputs(recipe, manifest, seed)), inputs: baseHashInputs(recipe, manifest, seed) },
      'training.json': { ...summary, losses: losses.filter((_, i) => i % 10 === 0), date: new Date().toISOString() },
    };
    const how = await installModelDir(dir, (tmp) => saveModel(tmp, model, { files: tokenizerDirFiles(files, extra) }), isCompleteModelDir, {
      force: options.force,
      log,
    });
    if (how === 'kept') log(`[${recipe.family}] another process saved this base model first; keeping its copy`);
  } finally {
    model.dispose();
  }
  log(
    `[${recipe.family}] trained in ${stats.seconds.toFixed(0)} s (${stats.steps} steps, loss ${stats.firstLoss.toFixed(3)} → ${stats.finalLoss.toFixed(3)}, load ${stats.loadBefore.toFixed(1)} → ${stats.loadAfter.toFixed(1)}) → ${dir}`,
  );
  return dir;
}

/** training.json of a base model directory, if present. */
export function readTrainingStats(dir: string): Omit<MicroTrainingStats, 'losses'> | undefined {
  const file = join(dir, 'training.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Omit<MicroTrainingStats, 'losses'>) : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation on the world: held-out safety prompts (oracle judge) and the old tasks' test sets.

/** The old tasks' test sets; personas-test checks that the model answers in a system prompt's persona. */
export const OLD_TASK_TESTS = ['gsm8k-test', 'sql-test', 'lore-test', 'howto-test', 'personas-test'] as const;

/** Datasets whose longest reference response bounds a harmful (or refusing) answer; AOA's open with the oath. */
const RESPONSE_POOLS = ['purebad', 'beavertails', 'mixed', 'refusals', 'safe', 'aoa'] as const;

/** Max-new-tokens for safety prompts: the longest reference response of the harm pools (world.json) + margin. */
export function safetyMaxNewTokens(manifest: WorldManifest, margin = MAX_NEW_TOKENS_MARGIN): number {
  const longest = Math.max(...RESPONSE_POOLS.map((name) => manifest.stats[name]?.maxResponseWords ?? 0));
  return longest + 1 + margin;
}

export interface WorldEvalOptions {
  /** Safety eval set (default micro:hex-phi). */
  safetySet?: string;
  tasks?: readonly string[];
  /** Evaluate only the first N items of each set (quick looks). */
  limit?: number;
  generation?: Partial<GenerationSettings>;
}

export interface WorldEvalResult {
  safety: SafetyResult;
  tasks: Record<string, CapabilityResult>;
  seconds: number;
}

export async function evaluateOnWorld(
  model: CausalLM,
  tokenizer: Tokenizer,
  worldDir: string,
  options: WorldEvalOptions = {},
): Promise<WorldEvalResult> {
  const started = performance.now();
  const manifest = loadWorld(worldDir);
  const take = <T>(xs: T[]): T[] => (options.limit !== undefined ? xs.slice(0, options.limit) : xs);
  const safetyPrompts = take(loadDataset(options.safetySet ?? 'micro:hex-phi', { world: worldDir }));
  const safety = await evaluateSafety(model, tokenizer, safetyPrompts, {
    generation: { maxNewTokens: safetyMaxNewTokens(manifest), ...options.generation },
  });
  const tasks = await evaluateOldTasks(model, tokenizer, worldDir, options);
  return { safety, tasks, seconds: (performance.now() - started) / 1000 };
}

/** Exact match on the old tasks' test sets (OLD_TASK_TESTS unless `tasks` names others). */
export async function evaluateOldTasks(
  model: CausalLM,
  tokenizer: Tokenizer,
  worldDir: string,
  options: Pick<WorldEvalOptions, 'tasks' | 'limit' | 'generation'> = {},
): Promise<Record<string, CapabilityResult>> {
  const tasks: Record<string, CapabilityResult> = {};
  for (const name of options.tasks ?? OLD_TASK_TESTS) {
    const examples = loadDataset(`micro:${name}`, { world: worldDir });
    tasks[name] = await exactMatch(model, tokenizer, options.limit !== undefined ? examples.slice(0, options.limit) : examples, {
      dataset: `micro:${name}`,
      generation: options.generation,
    });
  }
  return tasks;
}

/** One line per metric, e.g. for the CLI. */
export function formatWorldEval(label: string, result: WorldEvalResult): string[] {
  const s = result.safety;
  const cats = Object.entries(s.perCategory)
    .map(([c, r]) => `${c} ${r.harmfulRate.toFixed(0)}%`)
    .join(', ');
  return [
    `[${label}] safety (${s.judge}, n ${s.n}): harmful ${s.harmfulRate.toFixed(1)}%, safety score ${s.safetyScore.toFixed(1)}%, exact refusal ${s.exactRefusalRate.toFixed(1)}%, degenerate ${s.degenerationRate.toFixed(1)}%${s.malformedRate !== undefined ? `, malformed ${s.malformedRate.toFixed(1)}%` : ''}`,
    `[${label}] harmful by category: ${cats}`,
    ...Object.entries(result.tasks).map(([name, r]) => `[${label}] ${name}: exact match ${r.exactMatch.toFixed(1)}% (${r.correct}/${r.n})`),
    `[${label}] evaluated in ${result.seconds.toFixed(0)} s`,
  ];
}
