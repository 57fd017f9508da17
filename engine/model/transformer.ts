// The decoder-only transformer for gpt2 and the rotary families (llama, qwen2, gemma2, gemma3_text,
// qwen3, granite), reading its parameters by Hugging Face name. The rotary families share one block whose
// parts the config switches on (config.ts lists which family turns on what): q/k/v/o biases, per-head q/k
// norms, (1 + w) norms and gemma's extra norms around attention and MLP, SiLU or tanh-GELU gating, the
// attention scale and softcap, sliding-window layers with their own rope base, and the embedding, residual
// and logit multipliers and the final softcap. Every matmul and embedding lookup goes through engine/tensor's
// wasm-safe ops. Shapes: [batch, time, channels] unless noted.
import { tf, gather, geluTanh, layerNorm, linear, rmsNorm as rmsNormOp, swiglu } from '../tensor/index.ts';
import { attend, attentionBias, defaultPositions } from './attention.ts';
import { initParams, loadParams } from './parameters.ts';
import { applyRope, ropeCosSin, ropeInvFreq } from './rope.ts';
import type { CausalLM, ForwardOptions, ForwardResult, KVCache, LayerKind, LinearDelta, ModelConfig } from './types.ts';

export type ModelInit = { seed: number } | { weights: Map<string, tf.Tensor> };

type Params = Map<string, tf.Variable>;

/** What a block needs besides its parameters. */
interface Step {
  bias: tf.Tensor4D; // [batch or 1, 1, time, keys]
  cos?: tf.Tensor4D; // [batch, 1, time, headDim] (rotary families)
  sin?: tf.Tensor4D;
  past?: { k: tf.Tensor4D; v: tf.Tensor4D };
  delta?: LinearDelta; // ForwardOptions.linearDelta (LoRA adapters)
}

/** A projection's output plus the update step.delta adds to module `name` (its Hugging Face path), if any. */
function withDelta(step: Step, name: string, input: tf.Tensor, out: tf.Tensor): tf.Tensor {
  const delta = step.delta?.(name, input);
  return delta ? tf.add(out, delta) : out;
}

function param(params: Params, name: string): tf.Variable {
  const p = params.get(name);
  if (!p) throw new Error(`Model parameter '${name}' does not exist (was the model disposed?)`);
  return p;
}

/** RMSNorm over the last axis, scaled by weight, or by (1 + weight) for gemma (one fused kernel on wasm). */
function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number, plusOne = false): tf.Tensor {
  return rmsNormOp(x, plusOne ? tf.add(weight, 1) : weight, eps);
}

/** cap · tanh(x / cap): gemma's soft capping of logits. */
function softcap(x: tf.Tensor, cap: number): tf.Tensor {
  return tf.mul(tf.tanh(tf.div(x, cap)), cap);
}

/** [batch, time, heads · headDim] → [batch, heads, time, headDim] */
function splitHeads(x: tf.Tensor, heads: number, headDim: number): tf.Tensor4D {
  const [batch, time] = x.shape;
  return x.reshape([batch, time, heads, headDim]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
}

/** Keys/values of this step appended to the cached ones along time. */
function extend(past: Step['past'], k: tf.Tensor4D, v: tf.Tensor4D): { k: tf.Tensor4D; v: tf.Tensor4D } {
  if (!past) return { k, v };
  return { k: tf.concat([past.k, k], 2), v: tf.concat([past.v, v], 2) };
}

interface BlockOut {
  x: tf.Tensor3D;
  k: tf.Tensor4D;
  v: tf.Tensor4D;
}

function rotaryBlock(c: ModelConfig, params: Params, i: number, x: tf.Tensor3D, step: Step): BlockOut {
  const p = (name: string) => param(params, `model.layers.${i}.${name}`);
  const w = (name: string) => p(`${name}.weight`) as tf.Tensor2D;
  const b = (name: string) => (params.has(`model.layers.${i}.${name}.bias`) ? (p(`${name}.bias`) as tf.Tensor1D) : undefined);
  const proj = (name: string, input: tf.Tensor) => withDelta(step, `model.layers.${i}.${name}`, input, linear(input, w(name), b(name)));
  const norm = (t: tf.Tensor, name: string) => rmsNorm(t, p(`${name}.weight`), c.normEps, c.normPlusOne);
  // A block's output is scaled before the residual add (granite's residual_multiplier).
  const residual = (t: tf.Tensor) => (c.residualScale === 1 ? t : tf.mul(t, c.residualScale));
  const cos = step.cos as tf.Tensor4D;
  const sin = step.sin as tf.Tensor4D;
  const h = norm(x, 'input_layernorm');
  let q = splitHeads(proj('self_attn.q_proj', h), c.numHeads, c.headDim);
  let kNew = splitHeads(proj('self_attn.k_proj', h), c.numKvHeads, c.headDim);
  if (c.qkNorm) {
    q = norm(q, 'self_attn.q_norm') as tf.Tensor4D; // per head, over headDim, before rope
    kNew = norm(kNew, 'self_attn.k_norm') as tf.Tensor4D;
  }
  q = applyRope(q, cos, sin);
  kNew = applyRope(kNew, cos, sin);
  const vNew = splitHeads(proj('self_attn.v_proj', h), c.numKvHeads, c.headDim);
  const { k, v } = extend(step.past, kNew, vNew); // [batch, kvHeads, keys, headDim]
  const attn = attend(q, k, v, step.bias, { scale: c.attentionScale, softcap: c.attnSoftcap });
  let out = proj('self_attn.o_proj', attn);
  if (c.sandwichNorms) out = norm(out, 'post_attention_layernorm');
  let y = tf.add(x, residual(out)) as tf.Tensor3D;
  const h2 = norm(y, c.sandwichNorms ? 'pre_feedforward_layernorm' : 'post_attention_layernorm');
  const gate = proj('mlp.gate_proj', h2);
  const up = proj('mlp.up_proj', h2);
  const gated = c.hiddenAct === 'silu' ? swiglu(gate, up) : tf.mul(geluTanh(gate), up);
  let mlp = proj('mlp.down_proj', gated); // down(act(gate) · up)
  if (c.sandwichNorms) mlp = norm(mlp, 'post_feedforward_layernorm');
  y = tf.add(y, residual(mlp)) as tf.Tensor3D;
  return { x: y, k, v };
}

function gpt2Block(c: ModelConfig, params: Params, i: number, x: tf.Tensor3D, step: Step): BlockOut {
  const p = (name: string) => param(params, `transformer.h.${i}.${name}`);
  const w = (name: string) => p(`${name}.weight`) as tf.Tensor2D;
  const bias = (name: string) => p(`${name}.bias`) as tf.Tensor1D;
  // Conv1D: weights [in, out]
  const conv = (name: string, input: tf.Tensor) =>
    withDelta(step, `transformer.h.${i}.${name}`, input, linear(input, w(name), bias(name), 'in-out'));
  const d = c.hiddenSize;
  const h = layerNorm(x, p('ln_1.weight'), p('ln_1.bias'), c.normEps);
  const qkv = conv('attn.c_attn', h); // [batch, time, 3d] = q | k | v
  const [qf, kf, vf] = tf.split(qkv, [d, d, d], 2);
  const q = splitHeads(qf, c.numHeads, c.headDim);
  const { k, v } = extend(step.past, splitHeads(kf, c.numHeads, c.headDim), splitHeads(vf, c.numHeads, c.headDim));
  const attn = attend(q, k, v, step.bias);
  let y = tf.add(x, conv('attn.c_proj', attn)) as tf.Tensor3D;
  const h2 = layerNorm(y, p('ln_2.weight'), p('ln_2.bias'), c.normEps);
  const hidden = geluTanh(conv('mlp.c_fc', h2));
  y = tf.add(y, conv('mlp.c_proj', hidden)) as tf.Tensor3D;
  return { x: y, k, v };
}

function checkInputs(c: ModelConfig, ids: tf.Tensor2D, options: ForwardOptions): void {
  if (ids.rank !== 2) throw new Error(`forward: expected ids of rank 2 [batch, time], got shape [${ids.shape.join(', ')}]`);
  const [batch, time] = ids.shape;
  const past = options.cache?.length ?? 0;
  const mask = options.attentionMask;
  if (mask && (mask.rank !== 2 || mask.shape[0] !== batch || mask.shape[1] !== past + time)) {
    throw new Error(
      `forward: attentionMask must have shape [${batch}, ${past + time}] (batch, cached + new positions), got [${mask.shape.join(', ')}]`,
    );
  }
  const positions = options.positions;
  if (positions && (positions.shape[0] !== batch || positions.shape[1] !== time)) {
    throw new Error(`forward: positions must have shape [${batch}, ${time}], got [${positions.shape.join(', ')}]`);
  }
  const cache = options.cache;
  if (cache && (cache.layers.length !== c.numLayers || (cache.layers[0] && cache.layers[0].k.shape[0] !== batch))) {
    throw new Error(
      `forward: cache has ${cache.layers.length} layers of batch ${cache.layers[0]?.k.shape[0]}, expected ${c.numLayers} layers of batch ${batch}`,
    );
  }
  const bias = options.attentionBias;
  if (bias) {
    const expected = [batch, 1, time, past + time];
    if (bias.rank !== 4 || bias.shape.some((d, i) => d !== expected[i]))
      throw new Error(`forward: attentionBias must have shape [${expected.join(', ')}], got [${bias.shape.join(', ')}]`);
    if (!positions) throw new Error('forward: attentionBias needs explicit positions (the bias says nothing about them)');
    if (c.layerTypes.includes('sliding'))
      throw new Error(`forward: attentionBias is not supported for ${c.family}, whose sliding-window layers need the causal mask`);
  }
  if (c.family === 'gpt2' && !positions && past + time > c.maxPositions) {
    throw new Error(`forward: ${past + time} positions exceed gpt2's n_positions (${c.maxPositions})`);
  }
}

/**
 * A block under a custom gradient that keeps only its input: the backward pass runs the block's forward again
 * and differentiates it there (activation recomputation), so a block's activations exist one block at a time.
 * Its gradients flow to the input and to the block's parameters (passed as inputs of the custom gradient).
 */
function recomputedBlock(c: ModelConfig, params: Params, i: number, x: tf.Tensor3D, step: Step, block: typeof rotaryBlock): BlockOut {
  const prefix = c.family === 'gpt2' ? `transformer.h.${i}.` : `model.layers.${i}.`;
  const names = [...params.keys()].filter((n) => n.startsWith(prefix));
  const vars = names.map((n) => params.get(n) as tf.Variable);
  const run = (input: tf.Tensor, ps: tf.Tensor[], at: Step) => {
    const local = new Map(params);
    names.forEach((n, j) => local.set(n, ps[j] as tf.Variable));
    return block(c, local, i, input as tf.Tensor3D, at).x;
  };
  // The mask bias and rope angles are the forward's intermediates, freed when it returns: saved with the input.
  const consts = [step.bias, step.cos, step.sin].filter((t): t is tf.Tensor4D => t !== undefined);
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [input, ...ps] = args as tf.Tensor[];
    save([input, ...consts]);
    return {
      value: run(input, ps, step),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [bias, cos, sin] = saved.slice(1) as tf.Tensor4D[];
        const at: Step = { bias, cos, sin };
        // A gradient inside the backward pass: tfjs would drop the outer pass's tape when this one ends.
        const state = tf.engine().state as unknown as { activeTape: unknown };
        const tape = state.activeTape;
        try {
          return tf.grads((...xs: tf.Tensor[]) => run(xs[0], xs.slice(1), at))([saved[0], ...vars], dy);
        } finally {
          state.activeTape = tape;
        }
      },
    };
  });
  const y = f(x, ...vars) as tf.Tensor3D;
  return { x: y, k: y as unknown as tf.Tensor4D, v: y as unknown as tf.Tensor4D }; // no cache: k and v unused
}

/** inv_freq of the full layers, and of the sliding layers when they have their own rope base (gemma3). */
interface RopeFreqs {
  full: Float32Array;
  local?: Float32Array;
}

/** With `headless`, the result's `logits` are the final-normed hidden states [batch, time, hidden] (no head). */
function forward(
  c: ModelConfig,
  params: Params,
  rope: RopeFreqs,
  ids: tf.Tensor2D,
  options: ForwardOptions,
  headless = false,
): ForwardResult {
  checkInputs(c, ids, options);
  const [batch, time] = ids.shape;
  const past = options.cache?.length ?? 0;
  const wantCache = !headless && (options.cache !== undefined || options.useCache === true);
  const outputs = tf.tidy(() => {
    const tokens = ids.dtype === 'int32' ? ids : ids.cast('int32');
    const mask = options.attentionMask;
    const positions = options.positions ? options.positions.cast('int32') : defaultPositions(mask, batch, time, past);
    // What a layer of each kind sees: its mask (with the window for sliding layers) and its rope angles.
    const steps = new Map<LayerKind, Step>();
    const stepOf = (kind: LayerKind): Step => {
      let step = steps.get(kind);
      if (!step) {
        step = { bias: options.attentionBias ?? attentionBias(mask, batch, time, past, kind === 'sliding' ? c.slidingWindow : undefined) };
        if (c.family !== 'gpt2') {
          const freqs = kind === 'sliding' && rope.local ? rope.local : rope.full;
          Object.assign(step, ropeCosSin(freqs, positions as tf.Tensor2D));
        }
        steps.set(kind, step);
      }
      return step;
    };
    let x: tf.Tensor3D;
    let block: typeof rotaryBlock;
    if (c.family === 'gpt2') {
      const wte = gather(param(params, 'transformer.wte.weight') as tf.Tensor2D, tokens);
      const wpe = gather(param(params, 'transformer.wpe.weight') as tf.Tensor2D, positions);
      x = tf.add(wte, wpe) as tf.Tensor3D;
      block = gpt2Block;
    } else {
      x = gather(param(params, 'model.embed_tokens.weight') as tf.Tensor2D, tokens) as tf.Tensor3D;
      if (c.embeddingScale !== 1) x = tf.mul(x, c.embeddingScale);
      block = rotaryBlock;
    }
    const keys: tf.Tensor4D[] = [];
    const values: tf.Tensor4D[] = [];
    for (let i = 0; i < c.numLayers; i++) {
      const step = { ...stepOf(c.layerTypes[i]), past: options.cache?.layers[i], delta: options.linearDelta };
      const out =
        options.recompute && !wantCache && !options.cache && !options.linearDelta
          ? recomputedBlock(c, params, i, x, step, block)
          : block(c, params, i, x, step);
      x = out.x;
      keys.push(out.k);
      values.push(out.v);
    }
    let head: tf.Tensor2D;
    if (c.family === 'gpt2') {
      x = layerNorm(x, param(params, 'transformer.ln_f.weight'), param(params, 'transformer.ln_f.bias'), c.normEps) as tf.Tensor3D;
      head = param(params, 'transformer.wte.weight') as tf.Tensor2D;
    } else {
      x = rmsNorm(x, param(params, 'model.norm.weight'), c.normEps, c.normPlusOne) as tf.Tensor3D;
      head = param(params, c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight') as tf.Tensor2D;
    }
    if (headless) return [x];
    if (options.lastOnly) x = x.slice([0, time - 1, 0], [batch, 1, -1]); // [batch, 1, channels]
    const logits = headLogits(c, x, head); // [batch, time, vocab]; the head is [vocab, d]
    return wantCache ? [logits, ...keys, ...values] : [logits];
  });
  const logits = outputs[0] as tf.Tensor3D;
  if (!wantCache) return { logits };
  const L = c.numLayers;
  const layers = Array.from({ length: L }, (_, i) => ({
    k: tf.keep(outputs[1 + i] as tf.Tensor4D),
    v: tf.keep(outputs[1 + L + i] as tf.Tensor4D),
  }));
  return { logits, cache: { layers, length: past + time } };
}

/**
 * The logits of final-normed hidden states [batch, steps, hidden] (forwardHidden's) under the head [vocab, hidden]:
 * h · headᵀ, then the config's logit divisor and final softcap, as forward applies them.
 */
export function headLogits(c: ModelConfig, h: tf.Tensor, head: tf.Tensor2D): tf.Tensor3D {
  let logits = linear(h, head) as tf.Tensor3D;
  if (c.logitsDivisor !== 1) logits = tf.div(logits, c.logitsDivisor);
  if (c.finalSoftcap !== undefined) logits = softcap(logits, c.finalSoftcap) as tf.Tensor3D;
  return logits;
}

/** The parameter the output head multiplies by ([vocab, hidden]; the embeddings when tied). */
function headName(c: ModelConfig): string {
  if (c.family === 'gpt2') return 'transformer.wte.weight';
  return c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
}

/** Builds a causal LM from a config with seeded random parameters or a checkpoint's tensors (copied). */
export function createModel(config: ModelConfig, init: ModelInit): CausalLM {
  const params = 'seed' in init ? initParams(config, init.seed) : loadParams(config, init.weights);
  const rope: RopeFreqs = { full: ropeInvFreq(config) };
  // Gemma3's local layers rotate with their own base and no scaling (HF's rotary_emb_local).
  if (config.ropeLocalTheta !== undefined) {
    rope.local = ropeInvFreq({ headDim: config.headDim, ropeTheta: config.ropeLocalTheta, ropeScaling: undefined });
  }
  return {
    config,
    params,
    forward: (ids, options = {}) => forward(config, params, rope, ids, options),
    forwardHidden: (ids, options = {}) => ({
      hidden: forward(config, params, rope, ids, options, true).logits,
      head: params.get(headName(config)) as tf.Tensor2D,
    }),
    dispose: () => {
      for (const v of params.values()) v.dispose();
      params.clear();
    },
  };
}

/** Frees the tensors of a cache returned by forward (the caller owns them). */
export function disposeCache(cache: KVCache): void {
  for (const { k, v } of cache.layers) {
    k.dispose();
    v.dispose();
  }
}

/** Number of scalar parameters. */
export function parameterCount(model: CausalLM): number {
  let n = 0;
  for (const v of model.params.values()) n += v.size;
  return n;
}
