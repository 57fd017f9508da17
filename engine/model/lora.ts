// LoRA adapters as PEFT defines them: each targeted projection W (frozen) gains a low-rank update, so its
// output becomes W·x + scaling · B·A·dropout(x), with A [r, in], B [out, r], scaling = alpha / r (alpha /
// sqrt(r) with rsLoRA), A Kaiming-uniform (a = sqrt(5), i.e. U(±1/sqrt(in))) and B zero at the start, so a
// fresh adapter changes nothing. gpt2's Conv1D layers (weights [in, out]) take adapters of the same shapes
// (PEFT's fan_in_fan_out only changes how the update is merged). An adapted model's `params` are the adapter
// tensors alone, under PEFT's names, so train() updates exactly them; the base stays frozen. Its reference
// view is the same base without adapters: no second copy of the weights. peft.ts saves and loads adapters.
import { tf, linear, matMul } from '../tensor/index.ts';
import { hashString, Rng } from '../random.ts';
import { parameterSpecs } from './parameters.ts';
import { createModel } from './transformer.ts';
import type { CausalLM, ForwardOptions, ModelConfig } from './types.ts';

export interface LoraSettings {
  rank: number;
  alpha: number;
  /** Dropout on the adapter input, during training only (forward passes under gradient recording). */
  dropout: number;
  /** Module names (a module matches when its path equals one or ends with `.name`), or one regex the whole path must match, or 'all-linear'. Default: every attention and MLP projection. */
  targets?: string[] | string;
  /** scaling = alpha / sqrt(rank) instead of alpha / rank. */
  rslora?: boolean;
}

export class LoraError extends Error {
  readonly code = 'LORA';
}

/** One adapted projection. */
export interface LoraModule {
  /** The Hugging Face module path, e.g. `model.layers.0.self_attn.q_proj`. */
  module: string;
  inFeatures: number;
  outFeatures: number;
  /** The base weight is stored [in, out] (gpt2's Conv1D): PEFT's fan_in_fan_out. */
  fanInFanOut: boolean;
  a: tf.Variable; // [r, in]
  b: tf.Variable; // [out, r]
}

export interface LoraModel extends CausalLM {
  /** The frozen base model (its forward has no adapters). */
  readonly base: CausalLM;
  readonly settings: Required<LoraSettings>;
  readonly scaling: number;
  /** Adapted modules by Hugging Face path. */
  readonly modules: Map<string, LoraModule>;
  /** The base with adapters off, sharing its weights (π_ref for divergence-based strategies); disposing it is a no-op. */
  readonly reference: CausalLM;
}

/** Module names LoRA targets by default: every attention and MLP projection. */
export function defaultTargets(config: ModelConfig): string[] {
  return config.family === 'gpt2'
    ? ['c_attn', 'c_proj', 'c_fc']
    : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
}

/** PEFT's tensor name of an adapter matrix. */
export function peftTensorName(module: string, matrix: 'A' | 'B'): string {
  return `base_model.model.${module}.lora_${matrix}.weight`;
}

/** The projections that can take an adapter: module path, in/out features, and whether the weight is [in, out]. */
function linearModules(config: ModelConfig): { module: string; inFeatures: number; outFeatures: number; fanInFanOut: boolean }[] {
  const conv = config.family === 'gpt2';
  const names = new Set(defaultTargets(config));
  const out = [];
  for (const spec of parameterSpecs(config)) {
    if (!spec.name.endsWith('.weight') || spec.shape.length !== 2) continue;
    const module = spec.name.slice(0, -'.weight'.length);
    if (!names.has(module.slice(module.lastIndexOf('.') + 1))) continue;
    const [rows, cols] = spec.shape;
    out.push(
      conv
        ? { module, inFeatures: rows, outFeatures: cols, fanInFanOut: true }
        : { module, inFeatures: cols, outFeatures: rows, fanInFanOut: false },
    );
  }
  return out;
}

function matcher(targets: string[] | string): (module: string) => boolean {
  if (targets === 'all-linear') return () => true;
  if (typeof targets === 'string') {
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${targets})$`);
    } catch (error) {
      throw new LoraError(`LoRA targets: '${targets}' is not a valid regular expression (${(error as Error).message})`);
    }
    return (m) => re.test(m);
  }
  return (m) => targets.some((t) => m === t || m.endsWith(`.${t}`));
}

function checkSettings(s: LoraSettings): void {
  if (!Number.isInteger(s.rank) || s.rank <= 0) throw new LoraError(`LoRA rank: expected a positive integer, got ${s.rank}`);
  if (!(Number.isFinite(s.alpha) && s.alpha > 0)) throw new LoraError(`LoRA alpha: expected a number > 0, got ${s.alpha}`);
  if (!(s.dropout >= 0 && s.dropout < 1)) throw new LoraError(`LoRA dropout: expected a number in [0, 1), got ${s.dropout}`);
}

/**
 * Wraps `base` with fresh adapters (A seeded Kaiming-uniform, B zero), or with the given tensors (PEFT
 * names, see peftTensorName; every adapter's A and B must be there). The base is shared, not copied:
 * disposing the adapted model frees the adapters only.
 */
export function createLora(
  base: CausalLM,
  settings: LoraSettings,
  init: { seed: number } | { weights: Map<string, tf.Tensor> },
): LoraModel {
  checkSettings(settings);
  const full: Required<LoraSettings> = {
    rank: settings.rank,
    alpha: settings.alpha,
    dropout: settings.dropout,
    targets: settings.targets ?? defaultTargets(base.config),
    rslora: settings.rslora ?? false,
  };
  const matches = matcher(full.targets);
  const chosen = linearModules(base.config).filter((m) => matches(m.module));
  if (chosen.length === 0)
    throw new LoraError(
      `LoRA targets ${JSON.stringify(full.targets)} match no projection of this ${base.config.family} model. Fix: use module names such as ${defaultTargets(base.config).join(', ')}`,
    );
  const r = full.rank;
  const scaling = full.rslora ? full.alpha / Math.sqrt(r) : full.alpha / r;
  const modules = new Map<string, LoraModule>();
  const params = new Map<string, tf.Variable>();
  const given = 'weights' in init ? init.weights : undefined;
  const tensorOf = (name: string, shape: number[], fresh: () => Float32Array): tf.Variable => {
    const t = given?.get(name);
    if (given && !t) throw new LoraError(`adapter tensor '${name}' is missing (expected shape [${shape.join(', ')}])`);
    if (t && t.shape.join(',') !== shape.join(','))
      throw new LoraError(`adapter tensor '${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
    return tf.tidy(() => tf.variable(t ? t.cast('float32') : tf.tensor(fresh(), shape, 'float32')));
  };
  try {
    for (const m of chosen) {
      const aName = peftTensorName(m.module, 'A');
      const bName = peftTensorName(m.module, 'B');
      const a = tensorOf(aName, [r, m.inFeatures], () => {
        // kaiming_uniform_(a = sqrt(5)) on [r, in]: gain sqrt(2 / 6), bound gain · sqrt(3 / in) = 1 / sqrt(in).
        const bound = 1 / Math.sqrt(m.inFeatures);
        const rng = new Rng(`${'seed' in init ? init.seed : 0}:lora:${aName}`);
        return Float32Array.from({ length: r * m.inFeatures }, () => (2 * rng.next() - 1) * bound);
      });
      params.set(aName, a);
      const b = tensorOf(bName, [m.outFeatures, r], () => new Float32Array(m.outFeatures * r));
      params.set(bName, b);
      modules.set(m.module, { ...m, a, b });
    }
    if (given) {
      const unexpected = [...given.keys()].filter((k) => !params.has(k));
      if (unexpected.length > 0)
        throw new LoraError(
          `adapter tensor '${unexpected[0]}'${unexpected.length > 1 ? ` (and ${unexpected.length - 1} more)` : ''} belongs to no targeted ${base.config.family} projection`,
        );
    }
  } catch (error) {
    for (const v of params.values()) v.dispose();
    throw error;
  }

  const seed = 'seed' in init ? init.seed : 0;
  let calls = 0;
  const delta = (module: string, input: tf.Tensor): tf.Tensor | undefined => {
    const m = modules.get(module);
    if (!m) return undefined;
    let x = input;
    // Dropout only while gradients are recorded: in train(), never in evaluation or generation.
    if (full.dropout > 0 && tf.engine().state.gradientDepth > 0) {
      const keep = tf.greaterEqual(tf.randomUniform(x.shape, 0, 1, 'float32', hashString(`${seed}:${calls}:${module}`)), full.dropout);
      x = tf.div(tf.mul(x, tf.cast(keep, 'float32')), 1 - full.dropout);
    }
    return tf.mul(linear(linear(x, m.a as tf.Tensor2D), m.b as tf.Tensor2D), scaling);
  };
  const without = (options: ForwardOptions): ForwardOptions => ({ ...options, linearDelta: undefined });
  const withAdapters = (options: ForwardOptions): ForwardOptions => {
    calls++;
    return options.adapters === false ? without(options) : { ...options, linearDelta: delta };
  };
  // The chunked label log-probs of train() run on forwardHidden, when the base has it.
  const hidden = (wrap: (options: ForwardOptions) => ForwardOptions): Pick<CausalLM, 'forwardHidden'> =>
    base.forwardHidden ? { forwardHidden: (ids, options = {}) => base.forwardHidden!(ids, wrap(options)) } : {};
  const reference: CausalLM = {
    config: base.config,
    params: base.params,
    forward: (ids, options = {}) => base.forward(ids, without(options)),
    ...hidden(without),
    dispose: () => {},
  };
  return {
    config: base.config,
    params,
    base,
    settings: full,
    scaling,
    modules,
    reference,
    forward: (ids, options = {}) => base.forward(ids, withAdapters(options)),
    ...hidden(withAdapters),
    dispose: () => {
      for (const v of params.values()) v.dispose();
      params.clear();
      modules.clear();
    },
  };
}

/** The base weights with every adapter folded in: W + scaling · B·A (transposed for [in, out] weights). Caller disposes. */
export function mergedWeights(model: LoraModel): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, w] of model.base.params) {
    const m = name.endsWith('.weight') ? model.modules.get(name.slice(0, -'.weight'.length)) : undefined;
    if (!m) {
      out.set(name, tf.clone(w));
      continue;
    }
    out.set(
      name,
      tf.tidy(() => {
        const update = tf.mul(matMul(m.b as tf.Tensor2D, m.a as tf.Tensor2D), model.scaling); // [out, in]
        return tf.add(w, m.fanInFanOut ? tf.transpose(update) : update);
      }),
    );
  }
  return out;
}

/** A new plain model (its own weights) with the adapters folded in. */
export function mergeLora(model: LoraModel): CausalLM {
  const weights = mergedWeights(model);
  try {
    return createModel(model.config, { weights });
  } finally {
    tf.dispose([...weights.values()]);
  }
}

/** True for a model createLora built. */
export function isLora(model: CausalLM): model is LoraModel {
  return 'modules' in model && 'base' in model;
}
