// A model directory in Hugging Face layout: config.json, model.safetensors (or shards with
// model.safetensors.index.json), tokenizer.json and tokenizer_config.json. Saving a new directory writes it
// whole beside the target and renames it into place, so a reader never sees half a checkpoint. Saving over an
// existing directory never deletes or renames that directory, nor any file in it that is not a checkpoint file:
// the new files are staged inside it, then renamed over the old ones one by one.
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { readTextFile } from '../io.ts';
import { parseConfig } from './config.ts';
import { isLora } from './lora.ts';
import { createModel } from './transformer.ts';
import { INDEX_FILE, readCheckpointTensors, SINGLE_FILE, writeCheckpointTensors, type StoredTensor } from './safetensors.ts';
import { loadTokenizer, type Tokenizer } from './tokenizer.ts';
import type { CausalLM } from './types.ts';

export interface LoadedModel {
  dir: string;
  model: CausalLM;
  tokenizer: Tokenizer;
  /** Storage dtype of the floating-point weights on disk (F32, F16 or BF16). */
  dtype: string;
}

export class CheckpointError extends Error {
  readonly code = 'CHECKPOINT';
}

const tokenizerFiles = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
  'chat_template.jinja',
];

export function readConfigFile(dir: string) {
  const file = join(dir, 'config.json');
  if (!existsSync(file))
    throw new CheckpointError(
      `${file}: not found. Fix: pass a model directory in Hugging Face layout (config.json, model.safetensors, tokenizer.json)`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(readTextFile(file));
  } catch (error) {
    if (error instanceof SyntaxError) throw new CheckpointError(`${file}: invalid JSON (${error.message})`);
    throw error;
  }
  return parseConfig(raw, file);
}

/** Loads config, weights (as float32 variables) and tokenizer from a model directory. */
export function loadModel(dir: string): LoadedModel {
  const config = readConfigFile(dir);
  const stored = readCheckpointTensors(dir);
  const floatTypes = new Set([...stored.values()].map((t) => t.dtype).filter((d) => d.startsWith('F') || d === 'BF16'));
  const weights = new Map<string, tf.Tensor>();
  try {
    for (const [name, t] of stored) {
      const values = toFloat32(t);
      const bad = firstNonFinite(values);
      if (bad >= 0)
        throw new CheckpointError(
          `${dir}: tensor '${name}' holds non-finite values (${values[bad]} at element ${bad}): the checkpoint's weights are corrupt (a diverged training?). Fix: retrain or re-export the checkpoint`,
        );
      weights.set(name, tf.tensor(values, t.shape, 'float32'));
    }
    const model = createModel(config, { weights });
    return { dir, model, tokenizer: loadTokenizer(dir), dtype: [...floatTypes].join('+') || 'F32' };
  } finally {
    tf.dispose([...weights.values()]);
  }
}

/** Index of the first NaN or ±Infinity in `values`, or -1 (a plain loop: this scans every weight on load). */
function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

function toFloat32(t: StoredTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  return Float32Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** Where the tokenizer files come from: a directory holding them, or their parsed contents. */
export type TokenizerSource = { dir: string } | { files: Record<string, unknown> };

/**
 * What saveModel does when the target directory exists and is not empty. Whatever the policy, it never deletes
 * or renames that directory, and never touches a file in it that is not a checkpoint file (CHECKPOINT_FILES,
 * model-*-of-*.safetensors shards, and the files named in the tokenizer source).
 * - 'checkpoint' (the default): replace the checkpoint files of a directory that already holds a checkpoint
 *   (config.json plus model.safetensors or its index); refuse any other non-empty directory.
 * - 'refuse': refuse every non-empty directory (`star-dss model init` without --force).
 * - 'force': write the checkpoint files into any directory, replacing checkpoint files of the same names.
 * - 'keep': leave a checkpoint that is already there (or that another process renames into place while this
 *   one writes) as it is, and return 'kept'; refuse any other non-empty directory. For caches that several
 *   processes may fill at once.
 */
export type ExistingDirPolicy = 'checkpoint' | 'refuse' | 'force' | 'keep';

/** Every file name saveModel may write or replace (besides the extra files of a `{ files }` tokenizer source). */
const CHECKPOINT_FILES = ['config.json', SINGLE_FILE, INDEX_FILE, 'guardrail.json', ...tokenizerFiles];
const SHARD_FILE = /^model-\d{5}-of-\d{5}\.safetensors$/;
const isCheckpointFile = (name: string): boolean => CHECKPOINT_FILES.includes(name) || SHARD_FILE.test(name);

/** A directory holding a checkpoint: config.json and the weights (model.safetensors or its shard index). */
function holdsCheckpoint(dir: string): boolean {
  return existsSync(join(dir, 'config.json')) && (existsSync(join(dir, SINGLE_FILE)) || existsSync(join(dir, INDEX_FILE)));
}

const NOT_A_DIRECTORY = 'exists and is not a directory';

/**
 * Why a checkpoint cannot be saved into `dir` under `existing`, as "<problem>" for a one-line error, or
 * undefined when it can (the directory is absent or empty, or the policy allows it).
 */
export function saveTargetProblem(dir: string, existing: ExistingDirPolicy): string | undefined {
  if (!existsSync(dir)) return undefined;
  if (!statSync(dir).isDirectory()) return NOT_A_DIRECTORY;
  if (readdirSync(dir).length === 0 || existing === 'force') return undefined;
  if (holdsCheckpoint(dir)) return existing === 'checkpoint' || existing === 'keep' ? undefined : 'already holds a checkpoint';
  return 'is not empty and holds no checkpoint (no config.json beside model.safetensors)';
}

export interface SaveModelOptions {
  /** Shard the weights above this many bytes (default: the transformers default, 5 GB). */
  maxShardBytes?: number;
  /** What to do when `dir` exists and is not empty (default 'checkpoint'). */
  existing?: ExistingDirPolicy;
}

/**
 * Saves a model (F32 safetensors), its config and its tokenizer files as the directory `dir`: a new directory
 * when it does not exist, else into the existing one as `options.existing` allows (see ExistingDirPolicy).
 * Returns 'kept' when `existing: 'keep'` left a checkpoint already there, else 'written'. Asynchronous because
 * the weights are read with `await data()`, the only read webgpu allows in Node.
 */
export async function saveModel(
  dir: string,
  model: CausalLM,
  tokenizer: TokenizerSource,
  options: SaveModelOptions = {},
): Promise<'written' | 'kept'> {
  if (isLora(model))
    throw new CheckpointError(
      `saveModel(${dir}): the model is a base with LoRA adapters. Fix: save the adapter (peft.ts saveAdapter), or merge it first (mergeLora)`,
    );
  const target = resolve(dir);
  const policy = options.existing ?? 'checkpoint';
  const problem = saveTargetProblem(target, policy);
  if (problem)
    throw new CheckpointError(
      `${dir}: ${problem}. Fix: ${problem === NOT_A_DIRECTORY ? 'choose another path' : "choose a new or empty directory, or pass existing: 'force' to write the checkpoint files into it (every other file is kept)"}`,
    );
  const existed = existsSync(target);
  const replacing = existed && holdsCheckpoint(target);
  if (replacing && policy === 'keep') return 'kept';
  const tensors = await readWeights(model.params);
  if (!existed) mkdirSync(dirname(target), { recursive: true });
  // A fresh staging directory: beside a new target (renamed into place), inside an existing one (its files
  // renamed over the old ones). mkdirSync fails rather than reuse a directory that exists, so the staging
  // directory, created here, is the only directory this function ever removes.
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const staging = existed ? join(target, `.save-tmp-${suffix}`) : join(dirname(target), `.${basename(target)}.tmp-${suffix}`);
  mkdirSync(staging);
  try {
    const written = writeCheckpointFiles(staging, tensors, model, tokenizer, options, dir);
    if (!existed) {
      try {
        renameSync(staging, target);
      } catch (error) {
        // Another process renamed its checkpoint into place meanwhile (ENOTEMPTY/EEXIST): keep it if asked.
        const code = (error as NodeJS.ErrnoException).code;
        if (policy !== 'keep' || (code !== 'ENOTEMPTY' && code !== 'EEXIST') || !holdsCheckpoint(target)) throw error;
        rmSync(staging, { recursive: true, force: true });
        return 'kept';
      }
      return 'written';
    }
    for (const name of written) renameSync(join(staging, name), join(target, name));
    // Checkpoint files of the old checkpoint that the new one lacks (other shards, an old index, a chat
    // template the new tokenizer has not) would mix two checkpoints: remove them, and nothing else.
    if (replacing)
      for (const name of readdirSync(target))
        if (isCheckpointFile(name) && !written.includes(name)) rmSync(join(target, name), { force: true });
    rmdirSync(staging);
    return 'written';
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

/** Each tensor's shape and float32 values, read asynchronously (on webgpu the values are copied off the GPU). */
export async function readWeights(params: ReadonlyMap<string, tf.Tensor>): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, v] of params) out.set(name, { shape: v.shape, data: (await v.data()) as Float32Array });
  return out;
}

/** Writes the checkpoint into the (empty) directory `staging`; returns the names of the files written. */
function writeCheckpointFiles(
  staging: string,
  tensors: Map<string, { shape: number[]; data: Float32Array }>,
  model: CausalLM,
  tokenizer: TokenizerSource,
  options: SaveModelOptions,
  dir: string,
): string[] {
  writeCheckpointTensors(staging, tensors, { maxShardBytes: options.maxShardBytes });
  writeJson(join(staging, 'config.json'), { ...model.config.raw, torch_dtype: 'float32' });
  if ('dir' in tokenizer) {
    for (const f of tokenizerFiles) if (existsSync(join(tokenizer.dir, f))) copyFileSync(join(tokenizer.dir, f), join(staging, f));
  } else {
    for (const [f, content] of Object.entries(tokenizer.files)) {
      if (f !== basename(f) || f.startsWith('.'))
        throw new CheckpointError(`saveModel(${dir}): tokenizer file name '${f}' is not a plain file name`);
      writeJson(join(staging, f), content);
    }
  }
  if (!existsSync(join(staging, 'tokenizer.json')))
    throw new CheckpointError(`saveModel(${dir}): the tokenizer source has no tokenizer.json`);
  return readdirSync(staging);
}

function writeJson(file: string, value: unknown): void {
  // Inside the staging directory a plain write is enough: readers only ever see files renamed out of it.
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}
