// The parameters of each family under their Hugging Face names and layouts, their seeded random
// initialisation, and loading (with name normalisation and shape checks) from a checkpoint's tensors.
import { tf } from '../tensor/index.ts';
import { Rng } from '../random.ts';
import type { ModelConfig } from './types.ts';

export interface ParamSpec {
  name: string;
  shape: number[];
  init: 'normal' | 'ones' | 'zeros';
}

export class WeightsError extends Error {
  readonly code = 'WEIGHTS_MISMATCH';
  constructor(message: string) {
    super(message);
    this.name = 'WeightsError';
  }
}

/** The rotary families (llama, qwen2, gemma2, gemma3_text, qwen3, granite): one layout with optional parts. */
function rotarySpecs(c: ModelConfig): ParamSpec[] {
  const d = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  // A (1 + weight) norm starts at weight 0, as HF's Gemma initialises it: both are the identity scale.
  const norm = c.normPlusOne ? 'zeros' : 'ones';
  const specs: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, d], init: 'normal' }];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    specs.push(
      { name: `${p}.input_layernorm.weight`, shape: [d], init: norm },
      { name: `${p}.self_attn.q_proj.weight`, shape: [qDim, d], init: 'normal' },
      { name: `${p}.self_attn.k_proj.weight`, shape: [kvDim, d], init: 'normal' },
      { name: `${p}.self_attn.v_proj.weight`, shape: [kvDim, d], init: 'normal' },
      { name: `${p}.self_attn.o_proj.weight`, shape: [d, qDim], init: 'normal' },
    );
    if (c.attentionBias) {
      specs.push(
        { name: `${p}.self_attn.q_proj.bias`, shape: [qDim], init: 'zeros' },
        { name: `${p}.self_attn.k_proj.bias`, shape: [kvDim], init: 'zeros' },
        { name: `${p}.self_attn.v_proj.bias`, shape: [kvDim], init: 'zeros' },
      );
      // attention_bias covers o_proj too, except in Qwen2, which has q/k/v biases only.
      if (c.outputBias) specs.push({ name: `${p}.self_attn.o_proj.bias`, shape: [d], init: 'zeros' });
    }
    if (c.qkNorm) {
      specs.push(
        { name: `${p}.self_attn.q_norm.weight`, shape: [c.headDim], init: norm },
        { name: `${p}.self_attn.k_norm.weight`, shape: [c.headDim], init: norm },
      );
    }
    specs.push({ name: `${p}.post_attention_layernorm.weight`, shape: [d], init: norm });
    if (c.sandwichNorms) {
      specs.push(
        { name: `${p}.pre_feedforward_layernorm.weight`, shape: [d], init: norm },
        { name: `${p}.post_feedforward_layernorm.weight`, shape: [d], init: norm },
      );
    }
    specs.push(
      { name: `${p}.mlp.gate_proj.weight`, shape: [c.intermediateSize, d], init: 'normal' },
      { name: `${p}.mlp.up_proj.weight`, shape: [c.intermediateSize, d], init: 'normal' },
      { name: `${p}.mlp.down_proj.weight`, shape: [d, c.intermediateSize], init: 'normal' },
    );
  }
  specs.push({ name: 'model.norm.weight', shape: [d], init: norm });
  if (!c.tieWordEmbeddings) specs.push({ name: 'lm_head.weight', shape: [c.vocabSize, d], init: 'normal' });
  return specs;
}

function gpt2Specs(c: ModelConfig): ParamSpec[] {
  const d = c.hiddenSize;
  const specs: ParamSpec[] = [
    { name: 'transformer.wte.weight', shape: [c.vocabSize, d], init: 'normal' },
    { name: 'transformer.wpe.weight', shape: [c.maxPositions, d], init: 'normal' },
  ];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer.h.${i}`;
    // Conv1D weights are [in, out]; c_attn fuses q|k|v along the output axis.
    specs.push(
      { name: `${p}.ln_1.weight`, shape: [d], init: 'ones' },
      { name: `${p}.ln_1.bias`, shape: [d], init: 'zeros' },
      { name: `${p}.attn.c_attn.weight`, shape: [d, 3 * d], init: 'normal' },
      { name: `${p}.attn.c_attn.bias`, shape: [3 * d], init: 'zeros' },
      { name: `${p}.attn.c_proj.weight`, shape: [d, d], init: 'normal' },
      { name: `${p}.attn.c_proj.bias`, shape: [d], init: 'zeros' },
      { name: `${p}.ln_2.weight`, shape: [d], init: 'ones' },
      { name: `${p}.ln_2.bias`, shape: [d], init: 'zeros' },
      { name: `${p}.mlp.c_fc.weight`, shape: [d, c.intermediateSize], init: 'normal' },
      { name: `${p}.mlp.c_fc.bias`, shape: [c.intermediateSize], init: 'zeros' },
      { name: `${p}.mlp.c_proj.weight`, shape: [c.intermediateSize, d], init: 'normal' },
      { name: `${p}.mlp.c_proj.bias`, shape: [d], init: 'zeros' },
    );
  }
  specs.push({ name: 'transformer.ln_f.weight', shape: [d], init: 'ones' }, { name: 'transformer.ln_f.bias', shape: [d], init: 'zeros' });
  return specs;
}

/** Every trainable parameter of the family, in checkpoint order. */
export function parameterSpecs(config: ModelConfig): ParamSpec[] {
  return config.family === 'gpt2' ? gpt2Specs(config) : rotarySpecs(config);
}

/** Seeded init: normal(0, initializer_range) matrices/embeddings, ones for norm weights (zeros for (1 + w) norms), zeros for biases. */
export function initParams(config: ModelConfig, seed: number): Map<string, tf.Variable> {
  const range = config.raw.initializer_range;
  const std = typeof range === 'number' && range > 0 ? range : 0.02;
  const params = new Map<string, tf.Variable>();
  for (const spec of parameterSpecs(config)) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (spec.init === 'ones') values.fill(1);
    if (spec.init === 'normal') {
      // One generator per name: a parameter's values do not depend on which others exist.
      const rng = new Rng(`${seed}:${spec.name}`);
      for (let i = 0; i < size; i++) values[i] = rng.normal() * std;
    }
    params.set(
      spec.name,
      tf.tidy(() => tf.variable(tf.tensor(values, spec.shape, 'float32'))),
    ); // tidy frees the source tensor
  }
  return params;
}

/** Buffers and duplicates a checkpoint may carry that are not parameters. */
function isIgnored(name: string, config: ModelConfig): boolean {
  if (name.endsWith('rotary_emb.inv_freq')) return true;
  if (config.tieWordEmbeddings && name === 'lm_head.weight') return true;
  return config.family === 'gpt2' && /\.attn\.(bias|masked_bias)$/.test(name);
}

/** The original gpt2 files name parameters without the `transformer.` prefix. */
function canonicalName(name: string, config: ModelConfig): string {
  if (config.family === 'gpt2' && !name.startsWith('transformer.') && !name.startsWith('lm_head.')) return `transformer.${name}`;
  return name;
}

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;

/** Copies a checkpoint's tensors into float32 variables; any missing, misshapen or unknown tensor is an error. */
export function loadParams(config: ModelConfig, weights: Map<string, tf.Tensor>): Map<string, tf.Variable> {
  const byName = new Map<string, tf.Tensor>();
  const unexpected: string[] = [];
  const specs = parameterSpecs(config);
  const known = new Set(specs.map((s) => s.name));
  for (const [name, tensor] of weights) {
    if (isIgnored(name, config)) continue;
    const canonical = canonicalName(name, config);
    if (known.has(canonical)) byName.set(canonical, tensor);
    else unexpected.push(name);
  }
  const problems: string[] = [];
  for (const spec of specs) {
    const tensor = byName.get(spec.name);
    if (!tensor) problems.push(`missing parameter '${spec.name}' (expected shape ${fmt(spec.shape)})`);
    else if (fmt(tensor.shape) !== fmt(spec.shape)) {
      problems.push(`parameter '${spec.name}' has shape ${fmt(tensor.shape)}, expected ${fmt(spec.shape)}`);
    }
  }
  for (const name of unexpected) problems.push(`unexpected tensor '${name}' (not a ${config.family} parameter for this config)`);
  if (problems.length > 0) {
    const more = problems.length > 3 ? ` (and ${problems.length - 3} more problems)` : '';
    throw new WeightsError(
      `Weights do not match the ${config.family} config: ${problems.slice(0, 3).join('; ')}${more}. Check that config.json belongs to these weights.`,
    );
  }
  const params = new Map<string, tf.Variable>();
  for (const spec of specs) {
    const tensor = byName.get(spec.name) as tf.Tensor;
    // A float32 tensor becomes the variable's storage as it is: a cast would copy it (wasm's Cast kernel
    // copies even to the same dtype), and with every copy alive at once loading would need twice the weights.
    params.set(spec.name, tensor.dtype === 'float32' ? tf.variable(tensor) : tf.tidy(() => tf.variable(tensor.cast('float32'))));
  }
  return params;
}
