// gemma2, gemma3_text, qwen3 and granite against the independent Float64 reference (reference.ts), on tiny
// checkpoints with every feature their configs can turn on switched on and biting: softcaps small enough to
// bend the scores, a sliding window shorter than the sequence, different local and global rope bases with a
// linear scaling on the global layers, multipliers ≠ 1, q/k norms with random weights. Then each feature
// switched off on its own must change the logits (so the feature is exercised), the KV cache must decode as
// the full forward does, and a checkpoint must round-trip through safetensors under Hugging Face names.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, oneHot, tf } from '../../../engine/tensor/index.ts';
import { Rng } from '../../../engine/random.ts';
import { parseConfig } from '../../../engine/model/config.ts';
import { createModel, disposeCache } from '../../../engine/model/transformer.ts';
import { parameterSpecs } from '../../../engine/model/parameters.ts';
import { loadModel, saveModel } from '../../../engine/model/checkpoint.ts';
import { readCheckpointTensors } from '../../../engine/model/safetensors.ts';
import { buildWordLevelTokenizer } from '../../../engine/model/tokenizer.ts';
import { generate } from '../../../engine/generate.ts';
import type { CausalLM, KVCache, ModelConfig } from '../../../engine/model/types.ts';
import { hfParameterShapes, randomWeights, referenceLogits, referenceLoss, type RefWeights } from './reference.ts';

type Raw = Record<string, unknown>;

const tokens = { bos_token_id: 2, eos_token_id: 1, pad_token_id: 0 };

/** Tiny configs in the form of the real config.json files, every switch on. head_dim 12 ≠ hidden / heads (8). */
const tinyRaw = {
  gemma2: {
    architectures: ['Gemma2ForCausalLM'],
    model_type: 'gemma2',
    vocab_size: 50,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 12,
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 100,
    attention_bias: false,
    query_pre_attn_scalar: 20,
    sliding_window: 3,
    attn_logit_softcapping: 1.0,
    final_logit_softcapping: 1.5,
    tie_word_embeddings: true,
    ...tokens,
  },
  gemma3_text: {
    architectures: ['Gemma3ForCausalLM'],
    model_type: 'gemma3_text',
    vocab_size: 50,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 12,
    hidden_activation: 'gelu_pytorch_tanh',
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 1000,
    rope_local_base_freq: 10,
    rope_scaling: { rope_type: 'linear', factor: 4 },
    query_pre_attn_scalar: 20,
    sliding_window: 3,
    sliding_window_pattern: 2, // layers 0 and 2 local, 1 and 3 global
    attn_logit_softcapping: null,
    final_logit_softcapping: 1.5,
    tie_word_embeddings: true,
    ...tokens,
  },
  qwen3: {
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    vocab_size: 50,
    hidden_size: 32,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 12,
    hidden_act: 'silu',
    max_position_embeddings: 64,
    rms_norm_eps: 1e-6,
    rope_theta: 1000,
    rope_scaling: null,
    attention_bias: true,
    use_sliding_window: false,
    sliding_window: null,
    max_window_layers: 2,
    tie_word_embeddings: false,
    ...tokens,
  },
  granite: {
    architectures: ['GraniteForCausalLM'],
    model_type: 'granite',
    vocab_size: 50,
    hidden_size: 32,
    intermediate_size: 48,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    hidden_act: 'silu',
    max_position_embeddings: 64,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 8, original_max_position_embeddings: 64 },
    attention_bias: false,
    mlp_bias: false,
    embedding_multiplier: 3,
    attention_multiplier: 0.05,
    residual_multiplier: 0.5,
    logits_scaling: 4,
    tie_word_embeddings: true,
    ...tokens,
  },
} satisfies Record<string, Raw>;

type NewFamily = keyof typeof tinyRaw;
const newFamilies = Object.keys(tinyRaw) as NewFamily[];

const ids = [
  [5, 17, 3, 44, 9, 21, 30, 12],
  [0, 0, 0, 8, 19, 2, 41, 7],
];
const mask = [
  [1, 1, 1, 1, 1, 1, 1, 1],
  [0, 0, 0, 1, 1, 1, 1, 1],
];

/** A model of `config` holding the reference weights it has parameters for. */
function modelFor(config: ModelConfig, ref: RefWeights): CausalLM {
  const names = new Set(parameterSpecs(config).map((s) => s.name));
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, t] of ref) if (names.has(name)) tensors.set(name, tf.tensor(Float32Array.from(t.data), t.shape));
  const model = createModel(config, { weights: tensors });
  tf.dispose([...tensors.values()]);
  return model;
}

function build(family: NewFamily, seed = 7) {
  const config = parseConfig(tinyRaw[family]);
  const ref = randomWeights(config, seed);
  return { config, ref, model: modelFor(config, ref) };
}

function logitsOf(model: CausalLM, idRows: number[][], m?: number[][]): number[][][] {
  return tf.tidy(() => {
    const options = m ? { attentionMask: tf.tensor2d(m, undefined, 'int32') } : {};
    return model.forward(tf.tensor2d(idRows, undefined, 'int32'), options).logits.arraySync();
  });
}

/** Largest |a − b| over the unmasked positions. */
function maxDiff(a: ArrayLike<ArrayLike<ArrayLike<number>>>, b: ArrayLike<ArrayLike<ArrayLike<number>>>, m: number[][]): number {
  let worst = 0;
  m.forEach((row, i) =>
    row.forEach((on, t) => {
      if (!on) return;
      for (let v = 0; v < a[i][t].length; v++) worst = Math.max(worst, Math.abs(a[i][t][v] - b[i][t][v]));
    }),
  );
  return worst;
}

/** Logits decoded with the KV cache: a prompt of 4, a chunk of 2, then one token at a time. */
function cachedLogits(model: CausalLM, idRows: number[][], m: number[][]): number[][][] {
  const rows: number[][][] = idRows.map(() => []);
  let cache: KVCache | undefined;
  let at = 0;
  for (const n of [4, 2, 1, 1]) {
    const got = tf.tidy(() => {
      const chunk = tf.tensor2d(
        idRows.map((r) => r.slice(at, at + n)),
        undefined,
        'int32',
      );
      const sofar = tf.tensor2d(
        m.map((r) => r.slice(0, at + n)),
        undefined,
        'int32',
      );
      const out = model.forward(chunk, { attentionMask: sofar, cache, useCache: true });
      if (cache) disposeCache(cache);
      cache = out.cache;
      return out.logits.arraySync();
    });
    got.forEach((r, b) => rows[b].push(...r));
    at += n;
  }
  if (cache) disposeCache(cache);
  return rows;
}

const report = process.env.FAMILIES_REPORT === '1';

beforeAll(async () => {
  await initBackend('wasm');
});

describe.each(newFamilies)('%s against the Float64 reference, every feature on', (family) => {
  it('matches within 1e-4 on a left-padded batch, with and without the KV cache, and frees the cache', () => {
    const { config, ref, model } = build(family);
    const expected = referenceLogits(config, ref, ids, mask);
    const full = logitsOf(model, ids, mask);
    const before = tf.memory().numTensors;
    const cached = cachedLogits(model, ids, mask);
    expect(tf.memory().numTensors).toBe(before);
    const dFull = maxDiff(full, expected, mask);
    const dCached = maxDiff(cached, expected, mask);
    if (report)
      console.log(`[families] ${family}: max |Δ| vs reference ${dFull.toExponential(2)} (full), ${dCached.toExponential(2)} (cache)`);
    expect(dFull).toBeLessThan(1e-4);
    expect(dCached).toBeLessThan(1e-4);
    expect(maxDiff(cached, full, mask)).toBeLessThan(1e-5);
    // Left padding changes nothing for the real tokens (sliding windows included).
    const alone = logitsOf(model, [ids[1].slice(3)]);
    expect(maxDiff([full[1].slice(3)], alone, [[1, 1, 1, 1, 1]])).toBeLessThan(1e-5);
    // The logits are not trivially small: the checks above compare something.
    expect(Math.max(...full[0].flat().map(Math.abs))).toBeGreaterThan(0.3);
    model.dispose();
  });

  it('generates the same tokens with and without the KV cache', async () => {
    const { model } = build(family);
    const prompts = [
      [5, 17, 3, 44, 9],
      [8, 19],
    ];
    const options = { maxNewTokens: 6, eosTokenIds: [], padTokenId: 0 };
    const cached = await generate(model, prompts, options);
    const plain = await generate(model, prompts, { ...options, useCache: false });
    expect(cached.map((g) => g.tokens)).toEqual(plain.map((g) => g.tokens));
    expect(cached[0].tokens).toHaveLength(6);
    model.dispose();
  });
});

describe.each(newFamilies)('%s gradient check', (family) => {
  it('tfjs gradients match finite differences of the Float64 reference loss (relative error < 1e-3)', () => {
    const config = parseConfig(tinyRaw[family]);
    const weights = randomWeights(config, 21);
    const labels = [
      [17, 3, 44, 9, 21, 30, 12, 1],
      [-1, -1, -1, 19, 2, 41, 7, 3],
    ];
    const valid: number[] = labels.flat().map((l) => (l >= 0 ? 1 : 0));
    const names = [...weights.keys()];
    const [loss, ...arrays] = tf.tidy(() => {
      const model = modelFor(config, weights);
      const { value, grads } = tf.variableGrads(() => {
        const { logits } = model.forward(tf.tensor2d(ids, undefined, 'int32'), { attentionMask: tf.tensor2d(mask, undefined, 'int32') });
        const target = oneHot(
          tf.tensor1d(
            labels.flat().map((l) => Math.max(l, 0)),
            'int32',
          ),
          config.vocabSize,
        );
        const picked = tf.sum(tf.mul(tf.logSoftmax(logits).reshape([-1, config.vocabSize]), target), 1);
        return tf.div(
          tf.neg(tf.sum(tf.mul(picked, tf.tensor1d(valid)))),
          valid.reduce((a, b) => a + b, 0),
        ) as tf.Scalar;
      }, [...model.params.values()]);
      const out = names.map((n) => grads[(model.params.get(n) as tf.Variable).name].dataSync() as Float32Array);
      const lossValue = value.dataSync()[0];
      model.dispose();
      return [lossValue, ...out];
    });
    expect(Math.abs((loss as number) - referenceLoss(config, weights, ids, labels, mask))).toBeLessThan(1e-5);
    // 16 tensors spread over the network (norms, q/k norms and multiplied paths among them), one entry each
    // whose gradient is not negligible.
    const rng = new Rng(`families-gradcheck:${family}`);
    const picked = [...new Set(Array.from({ length: 16 }, (_, i) => names[Math.round((i * (names.length - 1)) / 15)]))];
    if (config.qkNorm) picked.push('model.layers.0.self_attn.k_norm.weight');
    const h = 1e-5;
    const errors: string[] = [];
    for (const name of picked) {
      const g = arrays[names.indexOf(name)] as Float32Array;
      const scale = Math.max(...Array.from(g, Math.abs));
      let index = rng.int(g.length);
      for (let tries = 0; tries < 50 && Math.abs(g[index]) < 0.05 * scale; tries++) index = rng.int(g.length);
      const data = (weights.get(name) as { data: Float64Array }).data;
      const original = data[index];
      data[index] = original + h;
      const plus = referenceLoss(config, weights, ids, labels, mask);
      data[index] = original - h;
      const minus = referenceLoss(config, weights, ids, labels, mask);
      data[index] = original;
      const numeric = (plus - minus) / (2 * h);
      const rel = Math.abs(g[index] - numeric) / Math.max(Math.abs(g[index]), Math.abs(numeric));
      if (!(rel < 1e-3 && Math.abs(numeric) > 1e-6)) errors.push(`${name}[${index}]: tfjs ${g[index]}, finite difference ${numeric}`);
    }
    expect(errors).toEqual([]);
  });
});

/** A feature switched off: through config.json fields where HF has one, else on the normalised config. */
interface Switch {
  feature: string;
  raw?: Raw;
  config?: Partial<ModelConfig>;
}

const gemmaSwitches: Switch[] = [
  { feature: 'embeddings × sqrt(hidden)', config: { embeddingScale: 1 } },
  { feature: 'RMSNorm × (1 + w)', config: { normPlusOne: false } },
  { feature: 'post-attention and pre/post-feedforward norms', config: { sandwichNorms: false } },
  { feature: 'GeGLU (gelu_pytorch_tanh)', config: { hiddenAct: 'silu' } },
  { feature: 'query_pre_attn_scalar', raw: { query_pre_attn_scalar: 12 } }, // = head_dim: the plain 1/sqrt(head_dim)
  { feature: 'final_logit_softcapping', raw: { final_logit_softcapping: null } },
  { feature: 'sliding window', raw: { sliding_window: 4096 } },
];

const switches: Record<NewFamily, Switch[]> = {
  gemma2: [...gemmaSwitches, { feature: 'attn_logit_softcapping', raw: { attn_logit_softcapping: null } }],
  gemma3_text: [
    ...gemmaSwitches,
    { feature: 'q/k norms', config: { qkNorm: false } },
    { feature: 'rope_local_base_freq on local layers', raw: { rope_local_base_freq: 1000 } },
    { feature: 'linear rope_scaling on global layers', raw: { rope_scaling: null } },
    { feature: 'sliding_window_pattern (every layer global)', raw: { sliding_window_pattern: 1 } },
  ],
  qwen3: [
    { feature: 'q/k norms', config: { qkNorm: false } },
    { feature: 'attention_bias', raw: { attention_bias: false } },
  ],
  granite: [
    { feature: 'embedding_multiplier', raw: { embedding_multiplier: 1 } },
    { feature: 'attention_multiplier', raw: { attention_multiplier: 1 / Math.sqrt(8) } }, // llama's 1/sqrt(head_dim)
    { feature: 'residual_multiplier', raw: { residual_multiplier: 1 } },
    { feature: 'logits_scaling', raw: { logits_scaling: 1 } },
  ],
};

describe.each(newFamilies)('%s: each feature switched off changes the logits', (family) => {
  const { config, ref } = (() => {
    const config = parseConfig(tinyRaw[family]);
    return { config, ref: randomWeights(config, 7) };
  })();
  let on: number[][][];

  beforeAll(() => {
    const model = modelFor(config, ref);
    on = logitsOf(model, ids, mask);
    model.dispose();
  });

  it.each(switches[family])('$feature', ({ raw, config: override }) => {
    const off = raw ? parseConfig({ ...tinyRaw[family], ...raw }) : { ...config, ...override };
    const model = modelFor(off, ref);
    const logits = logitsOf(model, ids, mask);
    model.dispose();
    expect(maxDiff(logits, on, mask)).toBeGreaterThan(1e-2);
    // A switch HF reads from config.json is read the same way by the reference (given the weights HF would have).
    const names = new Set(hfParameterShapes(off).map(([n]) => n));
    const refOff: RefWeights = new Map([...ref].filter(([n]) => names.has(n)));
    if (raw) expect(maxDiff(logits, referenceLogits(off, refOff, ids, mask), mask)).toBeLessThan(1e-4);
  });
});

describe('family details', () => {
  it('gemma3_text ignores attn_logit_softcapping, as HF Gemma3Attention does', () => {
    const { ref, model } = build('gemma3_text');
    const capped = modelFor(parseConfig({ ...tinyRaw.gemma3_text, attn_logit_softcapping: 0.5 }), ref);
    expect(maxDiff(logitsOf(capped, ids, mask), logitsOf(model, ids, mask), mask)).toBe(0);
    capped.dispose();
    model.dispose();
  });

  it('picks the sliding layers as HF does: gemma2 even layers, gemma3 by pattern or layer_types', () => {
    expect(parseConfig(tinyRaw.gemma2).layerTypes).toEqual(['sliding', 'full', 'sliding']);
    expect(parseConfig({ ...tinyRaw.gemma3_text, num_hidden_layers: 7, sliding_window_pattern: 6 }).layerTypes).toEqual([
      'sliding',
      'sliding',
      'sliding',
      'sliding',
      'sliding',
      'full',
      'sliding',
    ]);
    const layerTypes = ['full_attention', 'sliding_attention', 'sliding_attention', 'full_attention'];
    const explicit = parseConfig({ ...tinyRaw.gemma3_text, layer_types: layerTypes });
    expect(explicit.layerTypes).toEqual(['full', 'sliding', 'sliding', 'full']);
    // The reference reads layer_types itself; the model must agree with it.
    const ref = randomWeights(explicit, 3);
    const model = modelFor(explicit, ref);
    expect(maxDiff(logitsOf(model, ids, mask), referenceLogits(explicit, ref, ids, mask), mask)).toBeLessThan(1e-4);
    expect(maxDiff(cachedLogits(model, ids, mask), referenceLogits(explicit, ref, ids, mask), mask)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('initialises from a seed under HF names: (1 + w) norms at 0, other norms at 1, biases at 0', () => {
    for (const family of newFamilies) {
      const config = parseConfig(tinyRaw[family]);
      const model = createModel(config, { seed: 1 });
      const shapes = hfParameterShapes(config);
      expect([...model.params.keys()].sort()).toEqual(shapes.map(([n]) => n).sort());
      for (const [name, shape] of shapes) expect(model.params.get(name)?.shape).toEqual(shape);
      for (const [name, v] of model.params) {
        const data = [...v.dataSync()];
        if (name.endsWith('norm.weight')) expect(data.every((x) => x === (config.normPlusOne ? 0 : 1))).toBe(true);
        if (name.endsWith('.bias')) expect(data.every((x) => x === 0)).toBe(true);
      }
      model.dispose();
    }
  });

  it.each(newFamilies)('%s: save then load through safetensors keeps HF names and the logits bit for bit', async (family) => {
    const { config, ref, model } = build(family, 5);
    const dir = join(mkdtempSync(join(tmpdir(), `families-${family}-`)), 'm');
    const specials = { pad: '<pad>', unk: '<unk>', bos: '<bos>', eos: '<eos>' };
    const words = Array.from({ length: config.vocabSize - 4 }, (_, i) => `w${i}`);
    const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({ words, specialTokens: specials });
    await saveModel(dir, model, { files: { 'tokenizer.json': tokenizerJson, 'tokenizer_config.json': tokenizerConfig } });
    const stored = readCheckpointTensors(dir);
    expect([...stored.keys()].sort()).toEqual(
      hfParameterShapes(config)
        .map(([n]) => n)
        .sort(),
    );
    const loaded = loadModel(dir);
    expect(loaded.model.config.family).toBe(family);
    const before = logitsOf(model, ids, mask);
    const after = logitsOf(loaded.model, ids, mask);
    expect(
      maxDiff(after, before, [
        [1, 1, 1, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 1, 1, 1],
      ]),
    ).toBe(0);
    expect(maxDiff(after, referenceLogits(config, ref, ids, mask), mask)).toBeLessThan(1e-4);
    loaded.model.dispose();
    model.dispose();
  });
});
