import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../../engine/tensor/index.ts';
import { ConfigError, makeConfig, parseConfig, type ConfigSizes } from '../../../engine/model/config.ts';
import { createModel, disposeCache, parameterCount } from '../../../engine/model/transformer.ts';
import { WeightsError } from '../../../engine/model/parameters.ts';
import { defaultPositions } from '../../../engine/model/attention.ts';
import type { Family, KVCache } from '../../../engine/model/types.ts';
import { hfParameterShapes, randomWeights, referenceLogits, referencePositions, type RefWeights } from './reference.ts';
import { knownConfig } from '../../../engine/model/known-configs.ts';

const llama3Scaling = { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 8, originalMaxPositionEmbeddings: 64 } as const;

// Tiny checkpoints. head_dim 8 with theta 10000 gives wavelengths 6.3, 63, 628, 6283: with the scaling
// above (wavelength band [8, 64]) one frequency is kept, one smoothed and two divided by the factor.
const tiny: Record<Family, ConfigSizes> = {
  llama: {
    hidden: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 48,
    vocab: 50,
    maxPositions: 64,
    ropeScaling: llama3Scaling,
    bosTokenId: 1,
    eosTokenId: [2, 3],
  },
  qwen2: {
    hidden: 32,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 40,
    vocab: 50,
    maxPositions: 64,
    tieWordEmbeddings: true,
    ropeTheta: 1000,
  },
  gpt2: { hidden: 24, layers: 2, heads: 3, vocab: 50, maxPositions: 32 },
};

function tfWeights(w: RefWeights): Map<string, tf.Tensor> {
  return new Map([...w].map(([name, t]) => [name, tf.tensor(Float32Array.from(t.data), t.shape)]));
}

function build(family: Family, seed = 7) {
  const config = parseConfig(makeConfig(family, tiny[family]));
  const ref = randomWeights(config, seed);
  const tensors = tfWeights(ref);
  const model = createModel(config, { weights: tensors });
  for (const t of tensors.values()) t.dispose();
  return { config, ref, model };
}

const ids = [
  [5, 17, 3, 44, 9, 21, 30, 12],
  [0, 0, 0, 8, 19, 2, 41, 7],
];
const mask = [
  [1, 1, 1, 1, 1, 1, 1, 1],
  [0, 0, 0, 1, 1, 1, 1, 1],
];

function maxDiffAt(actual: number[][][], expected: Float64Array[][], m: number[][]): number {
  let worst = 0;
  expected.forEach((row, b) =>
    row.forEach((logits, t) => {
      if (m[b][t] === 0) return;
      logits.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - actual[b][t][i]))));
    }),
  );
  return worst;
}

function logitsOf(model: ReturnType<typeof createModel>, idRows: number[][], m?: number[][]): number[][][] {
  return tf.tidy(() => {
    const options = m ? { attentionMask: tf.tensor2d(m, undefined, 'int32') } : {};
    return model.forward(tf.tensor2d(idRows, undefined, 'int32'), options).logits.arraySync();
  });
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('parseConfig', () => {
  it('reads a Llama-3.2-1B-Instruct config.json with its llama3 rope scaling and eos list', () => {
    const c = parseConfig(knownConfig('Llama-3.2-1B-Instruct'));
    expect(c).toMatchObject({
      family: 'llama',
      vocabSize: 128256,
      hiddenSize: 2048,
      numLayers: 16,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 64,
      intermediateSize: 8192,
      maxPositions: 131072,
      normEps: 1e-5,
      ropeTheta: 500000,
      attentionBias: false,
      tieWordEmbeddings: true,
      bosTokenId: 128000,
      eosTokenIds: [128001, 128008, 128009],
      padTokenId: undefined,
      ropeScaling: { ropeType: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
    });
  });

  it('reads a Qwen2.5 config (always q/k/v biases) and the original gpt2 config (no n_inner, tied)', () => {
    const q = parseConfig({
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      hidden_size: 896,
      intermediate_size: 4864,
      num_attention_heads: 14,
      num_hidden_layers: 24,
      num_key_value_heads: 2,
      max_position_embeddings: 32768,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000.0,
      sliding_window: 32768,
      use_sliding_window: false,
      tie_word_embeddings: true,
      vocab_size: 151936,
      bos_token_id: 151643,
      eos_token_id: 151645,
    });
    expect(q).toMatchObject({
      family: 'qwen2',
      headDim: 64,
      numKvHeads: 2,
      attentionBias: true,
      ropeTheta: 1e6,
      eosTokenIds: [151645],
      ropeScaling: undefined,
    });
    const g = parseConfig({
      activation_function: 'gelu_new',
      architectures: ['GPT2LMHeadModel'],
      bos_token_id: 50256,
      eos_token_id: 50256,
      layer_norm_epsilon: 1e-5,
      model_type: 'gpt2',
      n_ctx: 1024,
      n_embd: 768,
      n_head: 12,
      n_layer: 12,
      n_positions: 1024,
      vocab_size: 50257,
    });
    expect(g).toMatchObject({
      family: 'gpt2',
      intermediateSize: 3072,
      headDim: 64,
      tieWordEmbeddings: true,
      maxPositions: 1024,
      eosTokenIds: [50256],
    });
  });

  it('applies the HF class defaults for optional fields', () => {
    const c = parseConfig({
      model_type: 'llama',
      vocab_size: 10,
      hidden_size: 8,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 16,
    });
    expect(c).toMatchObject({
      numKvHeads: 2,
      headDim: 4,
      ropeTheta: 10000,
      normEps: 1e-6,
      tieWordEmbeddings: false,
      attentionBias: false,
      bosTokenId: 1,
      eosTokenIds: [2],
    });
  });

  it('rejects bad fields with one line naming file, field and value', () => {
    const base = makeConfig('llama', tiny.llama);
    const err = (raw: unknown, file?: string) => {
      try {
        parseConfig(raw, file);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        expect((e as Error).message).not.toContain('\n');
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    };
    expect(err({ ...base, hidden_size: 'abc' }).message).toBe(`config.json: field 'hidden_size' must be a positive integer (got "abc")`);
    expect(err({ ...base, hidden_size: 'abc' }).code).toBe('CONFIG_INVALID');
    const rope = err({ ...base, rope_scaling: { type: 'yarn', factor: 4 } }, 'models/x/config.json');
    expect(rope.code).toBe('CONFIG_UNSUPPORTED');
    expect(rope.message).toMatch(/^models\/x\/config\.json: field 'rope_scaling' .*"yarn".*"llama3"/);
    expect(err({ ...base, model_type: 'mistral' }).message).toContain(`'model_type'`);
    expect(err({ ...base, num_key_value_heads: 3 }).field).toBe('num_key_value_heads');
    expect(err({ ...base, rope_scaling: { rope_type: 'llama3', factor: 8 } }).field).toBe('rope_scaling.low_freq_factor');
    expect(err({ ...base, eos_token_id: [2, 'x'] }).field).toBe('eos_token_id');
    expect(err([1, 2]).message).toContain('expected a JSON object');
  });

  it('makeConfig writes what the HF classes need and parses back to the requested sizes', () => {
    const raw = makeConfig('qwen2', tiny.qwen2);
    expect(raw).toMatchObject({
      architectures: ['Qwen2ForCausalLM'],
      model_type: 'qwen2',
      torch_dtype: 'float32',
      use_sliding_window: false,
      hidden_act: 'silu',
    });
    const g = makeConfig('gpt2', { ...tiny.gpt2, bosTokenId: 49, eosTokenId: 49 });
    expect(g).toMatchObject({
      architectures: ['GPT2LMHeadModel'],
      n_embd: 24,
      n_inner: null,
      activation_function: 'gelu_new',
      bos_token_id: 49,
      eos_token_id: 49,
    });
    const l = parseConfig(makeConfig('llama', tiny.llama));
    expect(l).toMatchObject({
      hiddenSize: 32,
      numKvHeads: 2,
      headDim: 8,
      intermediateSize: 48,
      ropeScaling: llama3Scaling,
      eosTokenIds: [2, 3],
      tieWordEmbeddings: false,
    });
    expect(() => makeConfig('gpt2', { ...tiny.gpt2, tieWordEmbeddings: false })).toThrow(ConfigError);
    expect(() => makeConfig('llama', { ...tiny.llama, hidden: 30 })).toThrow(/head_dim/);
  });
});

describe('defaultPositions', () => {
  it('follows HF: cumsum(mask) − 1, pads at 1, continuing after cached positions', () => {
    const m = [
      [0, 0, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 1],
    ];
    expect(referencePositions(m[0])).toEqual([1, 1, 0, 1, 2, 3]);
    const got = tf.tidy(() => {
      const mask = tf.tensor2d(m, undefined, 'int32');
      const all = defaultPositions(mask, 2, 6, 0);
      const last2 = defaultPositions(mask, 2, 2, 4);
      const plain = defaultPositions(undefined, 2, 3, 5);
      expect([all.dtype, last2.dtype, plain.dtype]).toEqual(['int32', 'int32', 'int32']);
      return [all.arraySync(), last2.arraySync(), plain.arraySync()];
    });
    expect(got[0]).toEqual([
      [1, 1, 0, 1, 2, 3],
      [0, 1, 2, 3, 4, 5],
    ]);
    expect(got[1]).toEqual([
      [2, 3],
      [4, 5],
    ]);
    expect(got[2]).toEqual([
      [5, 6, 7],
      [5, 6, 7],
    ]);
  });
});

describe.each(['llama', 'qwen2', 'gpt2'] as const)('%s transformer', (family) => {
  it('matches the Float64 reference within 1e-4, on a left-padded batch too', () => {
    const { config, ref, model } = build(family);
    expect(maxDiffAt([logitsOf(model, [ids[0]])[0]], [referenceLogits(config, ref, [ids[0]])[0]], [mask[0]])).toBeLessThan(1e-4);
    const padded = logitsOf(model, ids, mask);
    const expected = referenceLogits(config, ref, ids, mask);
    expect(maxDiffAt(padded, expected, mask)).toBeLessThan(1e-4);
    // Left padding changes nothing for the real tokens: positions restart at 0 after the pads.
    const alone = logitsOf(model, [ids[1].slice(3)]);
    expect(maxDiffAt([padded[1].slice(3)], [alone[0].map((r) => Float64Array.from(r))], [[1, 1, 1, 1, 1]])).toBeLessThan(1e-5);
    model.dispose();
  });

  it('decodes with the KV cache exactly as the full forward, with left padding, and frees its tensors', () => {
    const { model } = build(family);
    const expected = logitsOf(model, ids, mask);
    const start = tf.memory().numTensors;
    for (let round = 0; round < 2; round++) {
      // Prompt of 4, a chunk of 2, then one token at a time.
      const steps = [4, 2, 1, 1];
      let cache: KVCache | undefined;
      let at = 0;
      for (const n of steps) {
        const got = tf.tidy(() => {
          const chunk = tf.tensor2d(
            ids.map((r) => r.slice(at, at + n)),
            undefined,
            'int32',
          );
          const m = tf.tensor2d(
            mask.map((r) => r.slice(0, at + n)),
            undefined,
            'int32',
          );
          const out = model.forward(chunk, { attentionMask: m, cache, useCache: true });
          if (cache) disposeCache(cache);
          cache = out.cache;
          return out.logits.arraySync();
        });
        expect(cache?.length).toBe(at + n);
        expect(cache?.layers[0].k.shape).toEqual([2, model.config.numKvHeads, at + n, model.config.headDim]);
        const want = expected.map((r) => r.slice(at, at + n).map((v) => Float64Array.from(v)));
        expect(
          maxDiffAt(
            got,
            want,
            mask.map((r) => r.slice(at, at + n)),
          ),
        ).toBeLessThan(1e-5);
        at += n;
      }
      if (cache) disposeCache(cache);
      // Without a mask the cached positions continue at 4, 5, ...
      const plain = tf.tidy(() => {
        const first = model.forward(tf.tensor2d([ids[0].slice(0, 4)], undefined, 'int32'), { useCache: true });
        const next = model.forward(tf.tensor2d([ids[0].slice(4)], undefined, 'int32'), { cache: first.cache });
        disposeCache(first.cache as KVCache);
        disposeCache(next.cache as KVCache);
        return next.logits.arraySync();
      });
      expect(maxDiffAt(plain, [expected[0].slice(4).map((v) => Float64Array.from(v))], [[1, 1, 1, 1]])).toBeLessThan(1e-5);
      expect(tf.memory().numTensors).toBe(start);
    }
    model.dispose();
  });

  it('initialises from a seed: same seed same values, HF init statistics, HF names', () => {
    const config = parseConfig(makeConfig(family, tiny[family]));
    const a = createModel(config, { seed: 3 });
    const b = createModel(config, { seed: 3 });
    const c = createModel(config, { seed: 4 });
    const shapes = hfParameterShapes(config);
    expect([...a.params.keys()].sort()).toEqual(shapes.map(([n]) => n).sort());
    for (const [name, shape] of shapes) expect(a.params.get(name)?.shape).toEqual(shape);
    expect(parameterCount(a)).toBe(shapes.reduce((s, [, sh]) => s + sh.reduce((x, y) => x * y, 1), 0));
    const emb = family === 'gpt2' ? 'transformer.wte.weight' : 'model.embed_tokens.weight';
    const va = a.params.get(emb)!.dataSync() as Float32Array;
    expect([...va]).toEqual([...(b.params.get(emb)!.dataSync() as Float32Array)]);
    expect([...va]).not.toEqual([...(c.params.get(emb)!.dataSync() as Float32Array)]);
    const mean = va.reduce((s, v) => s + v, 0) / va.length;
    const std = Math.sqrt(va.reduce((s, v) => s + (v - mean) ** 2, 0) / va.length);
    expect(Math.abs(mean)).toBeLessThan(0.003);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
    for (const [name, v] of a.params) {
      const data = [...v.dataSync()];
      if (/norm\.weight$|ln_\d\.weight$|ln_f\.weight$/.test(name)) expect(data.every((x) => x === 1)).toBe(true);
      if (name.endsWith('.bias')) expect(data.every((x) => x === 0)).toBe(true);
    }
    for (const m of [a, b, c]) m.dispose();
  });
});

describe('loading weights', () => {
  it('accepts the original gpt2 names and ignores known buffers and a tied lm_head', () => {
    const config = parseConfig(makeConfig('gpt2', tiny.gpt2));
    const ref = randomWeights(config, 11);
    const tensors = new Map<string, tf.Tensor>();
    for (const [name, t] of ref) tensors.set(name.replace(/^transformer\./, ''), tf.tensor(Float32Array.from(t.data), t.shape));
    tensors.set('h.0.attn.bias', tf.ones([1, 1, 32, 32]));
    tensors.set('h.1.attn.masked_bias', tf.scalar(-1e4));
    tensors.set('lm_head.weight', tf.zeros([50, 24]));
    const model = createModel(config, { weights: tensors });
    for (const t of tensors.values()) t.dispose();
    expect(maxDiffAt(logitsOf(model, ids, mask), referenceLogits(config, ref, ids, mask), mask)).toBeLessThan(1e-4);
    model.dispose();

    const llama = parseConfig(makeConfig('llama', tiny.llama));
    const lw = tfWeights(randomWeights(llama, 12));
    lw.set('model.layers.0.self_attn.rotary_emb.inv_freq', tf.ones([4]));
    const lm = createModel(llama, { weights: lw });
    expect(lm.params.has('model.layers.0.self_attn.rotary_emb.inv_freq')).toBe(false);
    // The model owns copies: freeing the checkpoint's tensors leaves it working.
    for (const t of lw.values()) t.dispose();
    expect(lm.params.get('lm_head.weight')?.dtype).toBe('float32');
    lm.dispose();
  });

  it('names the parameter, expected and actual shape on a mismatch, and missing or unknown tensors', () => {
    const config = parseConfig(makeConfig('qwen2', tiny.qwen2));
    const expectError = (mutate: (w: Map<string, tf.Tensor>) => void, pattern: RegExp) => {
      const w = tfWeights(randomWeights(config, 1));
      const original = [...w.values()];
      mutate(w);
      expect(() => createModel(config, { weights: w })).toThrow(WeightsError);
      expect(() => createModel(config, { weights: w })).toThrow(pattern);
      for (const t of new Set([...original, ...w.values()])) t.dispose();
    };
    const before = tf.memory().numTensors;
    expectError(
      (w) => w.set('model.layers.1.self_attn.k_proj.weight', tf.zeros([32, 32])),
      /'model\.layers\.1\.self_attn\.k_proj\.weight' has shape \[32, 32\], expected \[16, 32\]/,
    );
    expectError(
      (w) => w.delete('model.layers.0.self_attn.q_proj.bias'),
      /missing parameter 'model\.layers\.0\.self_attn\.q_proj\.bias' \(expected shape \[32\]\)/,
    );
    expectError(
      (w) => w.set('model.layers.0.self_attn.o_proj.bias', tf.zeros([32])),
      /unexpected tensor 'model\.layers\.0\.self_attn\.o_proj\.bias'/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('lastOnly', () => {
  it('gives the last row of the full logits', async () => {
    const { createModel } = await import('../../../engine/model/transformer.ts');
    const { makeConfig, parseConfig } = await import('../../../engine/model/config.ts');
    const { tf } = await import('../../../engine/tensor/index.ts');
    const model = createModel(parseConfig(makeConfig('qwen2', { hidden: 16, layers: 1, heads: 2, vocab: 20 })), { seed: 4 });
    const ids = tf.tensor2d(
      [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
      ],
      [2, 4],
      'int32',
    );
    const full = model.forward(ids).logits;
    const last = model.forward(ids, { lastOnly: true }).logits;
    expect(last.shape).toEqual([2, 1, 20]);
    expect(Array.from(last.dataSync())).toEqual(Array.from(full.slice([0, 3, 0], [2, 1, 20]).dataSync()));
    tf.dispose([ids, full, last]);
    model.dispose();
  });
});

describe('lifecycle', () => {
  it('creating and disposing a model (random or from weights) leaves no tensors behind', async () => {
    const { createModel } = await import('../../../engine/model/transformer.ts');
    const { makeConfig, parseConfig } = await import('../../../engine/model/config.ts');
    const { tf } = await import('../../../engine/tensor/index.ts');
    const config = parseConfig(makeConfig('gpt2', { hidden: 16, layers: 1, heads: 2, vocab: 20 }));
    const before = tf.memory().numTensors;
    const a = createModel(config, { seed: 1 });
    const weights = new Map([...a.params].map(([k, v]) => [k, v.clone() as tf.Tensor]));
    const b = createModel(config, { weights });
    tf.dispose([...weights.values()]);
    a.dispose();
    b.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
