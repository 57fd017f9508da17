// LoRA adapters on disk in PEFT's layout, so Python `peft` loads ours and we load theirs: a directory with
// adapter_config.json (peft_type "LORA", r, lora_alpha, lora_dropout, target_modules, use_rslora, ...) and
// adapter_model.safetensors holding `base_model.model.<module>.lora_A.weight` [r, in] and `.lora_B.weight`
// [out, r]. Options this engine does not implement (bias training, DoRA, modules_to_save, per-layer ranks,
// ...) are refused in one line rather than silently ignored.
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../tensor/index.ts';
import { readTextFile } from '../io.ts';
import { createLora, type LoraModel, type LoraSettings } from './lora.ts';
import { readWeights } from './checkpoint.ts';
import { readSafetensors, writeSafetensors } from './safetensors.ts';
import type { CausalLM } from './types.ts';

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';

export class AdapterError extends Error {
  readonly code = 'ADAPTER';
}

/** The adapter_config.json of an adapted model; `baseModel` is base_model_name_or_path. */
export function adapterConfig(model: LoraModel, baseModel: string): Record<string, unknown> {
  const s = model.settings;
  return {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModel,
    bias: 'none',
    fan_in_fan_out: model.config.family === 'gpt2', // Conv1D weights are [in, out]
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: s.alpha,
    lora_dropout: s.dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: s.rank,
    rank_pattern: {},
    revision: null,
    target_modules: s.targets,
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: s.rslora,
  };
}

const isEmpty = (v: unknown): boolean =>
  v === undefined ||
  v === null ||
  v === false ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && Object.keys(v as object).length === 0);

/** LoRA settings from a parsed adapter_config.json; anything this engine cannot honour is a one-line error. */
export function parseAdapterConfig(raw: unknown, file = ADAPTER_CONFIG): LoraSettings {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AdapterError(`${file}: expected a JSON object`);
  const c = raw as Record<string, unknown>;
  const refuse = (what: string) => {
    throw new AdapterError(`${file}: ${what} is not supported (only plain LoRA adapters on the base model's projections load)`);
  };
  if (c.peft_type !== 'LORA') refuse(`peft_type ${JSON.stringify(c.peft_type)}`);
  if (c.task_type !== undefined && c.task_type !== null && c.task_type !== 'CAUSAL_LM') refuse(`task_type ${JSON.stringify(c.task_type)}`);
  if (c.bias !== undefined && c.bias !== 'none') refuse(`bias ${JSON.stringify(c.bias)}`);
  if (c.use_dora === true) refuse('use_dora: true (DoRA)');
  if (c.lora_bias === true) refuse('lora_bias: true');
  for (const key of [
    'modules_to_save',
    'rank_pattern',
    'alpha_pattern',
    'layers_to_transform',
    'layer_replication',
    'exclude_modules',
    'trainable_token_indices',
    'target_parameters',
    'megatron_config',
  ])
    if (!isEmpty(c[key])) refuse(`${key} ${JSON.stringify(c[key])}`);
  const number = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new AdapterError(`${file}: ${key} must be a number, got ${JSON.stringify(c[key])}`);
    return v;
  };
  const targets = c.target_modules;
  if (!(typeof targets === 'string' || (Array.isArray(targets) && targets.length > 0 && targets.every((t) => typeof t === 'string'))))
    throw new AdapterError(`${file}: target_modules must be a list of module names or a regex string, got ${JSON.stringify(targets)}`);
  return {
    rank: number('r'),
    alpha: number('lora_alpha', 8),
    dropout: number('lora_dropout', 0),
    targets: Array.isArray(targets) ? [...targets].sort() : targets,
    rslora: c.use_rslora === true,
  };
}

/** Reads and checks dir/adapter_config.json. */
export function readAdapterConfig(dir: string): LoraSettings {
  const file = join(dir, ADAPTER_CONFIG);
  if (!existsSync(file))
    throw new AdapterError(
      `${file}: not found. Fix: pass a LoRA adapter directory in PEFT layout (adapter_config.json, adapter_model.safetensors)`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(readTextFile(file));
  } catch (error) {
    if (error instanceof SyntaxError) throw new AdapterError(`${file}: invalid JSON (${error.message})`);
    throw error;
  }
  return parseAdapterConfig(raw, file);
}

/** Loads the adapter in `dir` onto `base` (shared, not copied); names and shapes must match exactly. */
export function loadAdapter(dir: string, base: CausalLM): LoraModel {
  const settings = readAdapterConfig(dir);
  const file = join(dir, ADAPTER_WEIGHTS);
  if (!existsSync(file)) throw new AdapterError(`${file}: not found (adapter_model.bin is not read: convert it to safetensors)`);
  const weights = new Map<string, tf.Tensor>();
  try {
    for (const [name, t] of readSafetensors(file).tensors) {
      if (!(t.data instanceof Float32Array)) throw new AdapterError(`${file}: tensor '${name}' is ${t.dtype}, not a float`);
      weights.set(name, tf.tensor(t.data, t.shape, 'float32'));
    }
    try {
      return createLora(base, settings, { weights });
    } catch (error) {
      throw new AdapterError(`${dir}: ${(error as Error).message}`);
    }
  } finally {
    tf.dispose([...weights.values()]);
  }
}

/** Saves an adapted model's adapters (F32) and adapter_config.json into `dir` (created if absent; those two files replaced). */
export async function saveAdapter(dir: string, model: LoraModel, baseModel: string): Promise<void> {
  const tensors = await readWeights(model.params);
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, ADAPTER_WEIGHTS), tensors);
  const tmp = join(dir, `.${ADAPTER_CONFIG}.tmp-${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(adapterConfig(model, baseModel), null, 2)}\n`);
  renameSync(tmp, join(dir, ADAPTER_CONFIG));
}
