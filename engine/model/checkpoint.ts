// A model directory in Hugging Face layout: config.json, model.safetensors (or shards with
// model.safetensors.index.json), tokenizer.json and tokenizer_config.json. Saving writes a whole new
// directory beside the target and renames it into place, so a reader never sees half a checkpoint.
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parseConfig } from './config.ts';
import { createModel } from './transformer.ts';
import { readCheckpointTensors, writeCheckpointTensors, type StoredTensor } from './safetensors.ts';
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
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new CheckpointError(`${file}: invalid JSON (${(error as Error).message})`);
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
    for (const [name, t] of stored) weights.set(name, tf.tensor(toFloat32(t), t.shape, 'float32'));
    const model = createModel(config, { weights });
    return { dir, model, tokenizer: loadTokenizer(dir), dtype: [...floatTypes].join('+') || 'F32' };
  } finally {
    tf.dispose([...weights.values()]);
  }
}

function toFloat32(t: StoredTensor): Float32Array {
  if (t.data instanceof Float32Array) return t.data;
  return Float32Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** Where the tokenizer files come from: a directory holding them, or their parsed contents. */
export type TokenizerSource = { dir: string } | { files: Record<string, unknown> };

/** Saves a model (F32 safetensors), its config and its tokenizer files as a new directory `dir`. */
export function saveModel(dir: string, model: CausalLM, tokenizer: TokenizerSource, options: { maxShardBytes?: number } = {}): void {
  const target = resolve(dir);
  mkdirSync(dirname(target), { recursive: true });
  const staging = join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging);
  try {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, v] of model.params) tensors.set(name, { shape: v.shape, data: v.dataSync() as Float32Array });
    writeCheckpointTensors(staging, tensors, options);
    writeJson(join(staging, 'config.json'), { ...model.config.raw, torch_dtype: 'float32' });
    if ('dir' in tokenizer) {
      for (const f of tokenizerFiles) if (existsSync(join(tokenizer.dir, f))) copyFileSync(join(tokenizer.dir, f), join(staging, f));
    } else {
      for (const [f, content] of Object.entries(tokenizer.files)) writeJson(join(staging, f), content);
    }
    if (!existsSync(join(staging, 'tokenizer.json')))
      throw new CheckpointError(`saveModel(${dir}): the tokenizer source has no tokenizer.json`);
    const old = existsSync(target) ? `${staging}-old` : undefined;
    if (old) renameSync(target, old);
    renameSync(staging, target);
    if (old) rmSync(old, { recursive: true, force: true });
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

function writeJson(file: string, value: unknown): void {
  // Inside the staging directory a plain write is enough: readers only ever see the renamed directory.
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}
