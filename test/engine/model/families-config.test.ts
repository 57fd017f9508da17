// Reading the config.json of gemma2, gemma3_text, qwen3 and granite (in the form of the published files),
// refusing the variants the engine does not implement in one line naming file and field, shrinking a real
// config (shrinkConfig), and `model init --like` built on it.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../../engine/tensor/index.ts';
import { ConfigError, parseConfig, shrinkConfig } from '../../../engine/model/config.ts';
import { loadModel } from '../../../engine/model/checkpoint.ts';
import { buildWordLevelTokenizer } from '../../../engine/model/tokenizer.ts';
import { buildCli } from '../../../harness/cli.ts';
import { initCheckpoint } from '../../../harness/commands/model.ts';

const gemma3_1b = {
  architectures: ['Gemma3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  attn_logit_softcapping: null,
  bos_token_id: 2,
  cache_implementation: 'hybrid',
  eos_token_id: [1, 106],
  final_logit_softcapping: null,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 1152,
  initializer_range: 0.02,
  intermediate_size: 6912,
  max_position_embeddings: 32768,
  model_type: 'gemma3_text',
  num_attention_heads: 4,
  num_hidden_layers: 26,
  num_key_value_heads: 1,
  pad_token_id: 0,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: 512,
  sliding_window_pattern: 6,
  torch_dtype: 'bfloat16',
  transformers_version: '4.50.0.dev0',
  use_cache: true,
  vocab_size: 262144,
};

const gemma2_2b = {
  architectures: ['Gemma2ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  attn_logit_softcapping: 50.0,
  bos_token_id: 2,
  cache_implementation: 'hybrid',
  eos_token_id: [1, 107],
  final_logit_softcapping: 30.0,
  head_dim: 256,
  hidden_act: 'gelu_pytorch_tanh',
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 2304,
  initializer_range: 0.02,
  intermediate_size: 9216,
  max_position_embeddings: 8192,
  model_type: 'gemma2',
  num_attention_heads: 8,
  num_hidden_layers: 26,
  num_key_value_heads: 4,
  pad_token_id: 0,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_theta: 10000.0,
  sliding_window: 4096,
  torch_dtype: 'float32',
  use_cache: true,
  vocab_size: 256000,
};

const qwen3_06b = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const granite_2b = {
  architectures: ['GraniteForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.1,
  attention_multiplier: 0.015625,
  bos_token_id: 0,
  embedding_multiplier: 12.0,
  eos_token_id: 0,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  logits_scaling: 8.0,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'granite',
  num_attention_heads: 32,
  num_hidden_layers: 40,
  num_key_value_heads: 8,
  pad_token_id: 0,
  residual_multiplier: 0.22,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 5000000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 49155,
};

const llama32_1b = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  vocab_size: 128256,
};

/** The multimodal Gemma 3 (4B and up): the text model's config nested in text_config, most fields left to defaults. */
const gemma3_4b = {
  architectures: ['Gemma3ForConditionalGeneration'],
  boi_token_index: 255999,
  eoi_token_index: 256000,
  eos_token_id: [1, 106],
  image_token_index: 262144,
  initializer_range: 0.02,
  mm_tokens_per_image: 256,
  model_type: 'gemma3',
  text_config: {
    hidden_size: 2560,
    intermediate_size: 10240,
    model_type: 'gemma3_text',
    num_hidden_layers: 34,
    rope_scaling: { factor: 8.0, rope_type: 'linear' },
    sliding_window: 1024,
  },
  torch_dtype: 'bfloat16',
  vision_config: { model_type: 'siglip_vision_model', hidden_size: 1152 },
};

function configError(raw: unknown, file = 'models/x/config.json'): ConfigError {
  try {
    parseConfig(raw, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).not.toContain('\n');
    expect((e as Error).message.startsWith(`${file}: `)).toBe(true);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig: the new families', () => {
  it('reads Gemma-3-1B: 5 local layers to 1 global, two rope bases, q/k norms, no softcaps', () => {
    const c = parseConfig(gemma3_1b);
    expect(c).toMatchObject({
      family: 'gemma3_text',
      hiddenSize: 1152,
      numHeads: 4,
      numKvHeads: 1,
      headDim: 256,
      ropeTheta: 1e6,
      ropeLocalTheta: 10000,
      ropeScaling: undefined,
      slidingWindow: 512,
      tieWordEmbeddings: true,
      normPlusOne: true,
      sandwichNorms: true,
      qkNorm: true,
      hiddenAct: 'gelu_tanh',
      attentionScale: 1 / 16,
      embeddingScale: Math.fround(Math.sqrt(1152)),
      attnSoftcap: undefined,
      finalSoftcap: undefined,
      eosTokenIds: [1, 106],
      bosTokenId: 2,
      padTokenId: 0,
    });
    expect(c.layerTypes.map((t, i) => (t === 'full' ? i : -1)).filter((i) => i >= 0)).toEqual([5, 11, 17, 23]);
  });

  it('reads Gemma-2-2B (softcaps 50 and 30, even layers sliding), Qwen3-0.6B and Granite-3.1-2B', () => {
    const g = parseConfig(gemma2_2b);
    expect(g).toMatchObject({ family: 'gemma2', attnSoftcap: 50, finalSoftcap: 30, slidingWindow: 4096, qkNorm: false, headDim: 256 });
    expect(g.layerTypes.slice(0, 4)).toEqual(['sliding', 'full', 'sliding', 'full']);
    // Gemma2Config's defaults: softcaps on when the fields are missing, off when null.
    const { attn_logit_softcapping: _a, final_logit_softcapping: _f, ...bare } = gemma2_2b;
    expect(parseConfig(bare)).toMatchObject({ attnSoftcap: 50, finalSoftcap: 30 });
    expect(parseConfig({ ...gemma2_2b, attn_logit_softcapping: null, final_logit_softcapping: null })).toMatchObject({
      attnSoftcap: undefined,
      finalSoftcap: undefined,
    });
    expect(parseConfig(qwen3_06b)).toMatchObject({
      family: 'qwen3',
      headDim: 128,
      qkNorm: true,
      attentionBias: false,
      normPlusOne: false,
      attentionScale: 1 / Math.sqrt(128),
      tieWordEmbeddings: true,
      eosTokenIds: [151645],
    });
    expect(parseConfig({ ...qwen3_06b, attention_bias: true })).toMatchObject({ attentionBias: true, outputBias: true });
    expect(parseConfig(granite_2b)).toMatchObject({
      family: 'granite',
      headDim: 64,
      embeddingScale: 12,
      attentionScale: 0.015625,
      residualScale: 0.22,
      logitsDivisor: 8,
      ropeTheta: 5e6,
      normEps: 1e-5,
    });
    // GraniteConfig's defaults are 1 for every multiplier, the attention's included (not 1/sqrt(head_dim)).
    expect(
      parseConfig({
        model_type: 'granite',
        hidden_size: 16,
        num_attention_heads: 2,
        num_hidden_layers: 1,
        intermediate_size: 8,
        vocab_size: 9,
      }),
    ).toMatchObject({
      embeddingScale: 1,
      attentionScale: 1,
      residualScale: 1,
      logitsDivisor: 1,
    });
  });

  it("reads transformers v5's rope_parameters as rope_theta, rope_scaling and rope_local_base_freq", () => {
    const { rope_theta: _t, rope_scaling: _s, ...llama } = llama32_1b;
    const v5 = parseConfig({ ...llama, rope_parameters: { ...llama32_1b.rope_scaling, rope_theta: 500000 } });
    expect(v5).toMatchObject({ ropeTheta: 500000, ropeScaling: parseConfig(llama32_1b).ropeScaling });
    const { rope_theta: _g, rope_local_base_freq: _l, rope_scaling: _r, ...gemma } = gemma3_1b;
    const g = parseConfig({
      ...gemma,
      rope_parameters: {
        full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1e6 },
        sliding_attention: { rope_type: 'default', rope_theta: 10000 },
      },
    });
    expect(g).toMatchObject({ ropeTheta: 1e6, ropeLocalTheta: 10000, ropeScaling: { ropeType: 'linear', factor: 8 } });
    expect(g.raw.rope_theta).toBeUndefined(); // saved as it was read
  });

  it('refuses unsupported variants in one line naming the file and the field', () => {
    const cases: [raw: Record<string, unknown>, field: string, pattern: RegExp][] = [
      [{ ...gemma2_2b, hidden_activation: 'gelu' }, 'hidden_activation', /"gelu_pytorch_tanh" or "gelu_new" \(got "gelu"\)/],
      [{ ...qwen3_06b, rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } }, 'rope_scaling', /"yarn"/],
      [{ ...gemma3_1b, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, 'rope_scaling', /"dynamic"/],
      [{ ...qwen3_06b, use_sliding_window: true }, 'use_sliding_window', /must be false/],
      [{ ...gemma3_1b, use_bidirectional_attention: true }, 'use_bidirectional_attention', /must be false/],
      [{ ...granite_2b, mlp_bias: true }, 'mlp_bias', /must be false/],
      [{ ...granite_2b, hidden_act: 'gelu' }, 'hidden_act', /"silu"/],
      [gemma3_4b, 'model_type', /gemma3_text/],
      [
        {
          ...gemma3_1b,
          rope_theta: undefined,
          rope_parameters: { full_attention: { rope_theta: 1e6 }, sliding_attention: { rope_type: 'linear', factor: 2 } },
        },
        'rope_parameters.sliding_attention',
        /"linear"/,
      ],
      [
        { ...qwen3_06b, rope_theta: undefined, rope_parameters: { rope_type: 'yarn', rope_theta: 1e6, factor: 4 } },
        'rope_parameters',
        /"yarn"/,
      ],
      [{ ...gemma3_1b, layer_types: ['full_attention'] }, 'layer_types', /each of the 26 layers/],
      [{ ...gemma2_2b, num_hidden_layers: 2, layer_types: ['full_attention', 'chunked_attention'] }, 'layer_types', /"chunked_attention"/],
      [{ ...gemma2_2b, final_logit_softcapping: -1 }, 'final_logit_softcapping', /positive number or null/],
      [{ ...granite_2b, logits_scaling: 0 }, 'logits_scaling', /positive number/],
      [{ ...gemma3_1b, head_dim: 15 }, 'head_dim', /even/],
      [{ ...gemma2_2b, sliding_window: null }, 'sliding_window', /sliding layers/],
    ];
    for (const [raw, field, pattern] of cases) {
      const e = configError(raw);
      expect(e.field).toBe(field);
      expect(e.message).toMatch(pattern);
    }
  });
});

describe('shrinkConfig', () => {
  it('shrinks Gemma-3-1B keeping every switch; head_dim-sized fields follow the new head_dim', () => {
    const raw = shrinkConfig(gemma3_1b, { hidden: 64, layers: 6, heads: 4 });
    expect(raw).toMatchObject({
      model_type: 'gemma3_text',
      hidden_size: 64,
      num_hidden_layers: 6,
      num_attention_heads: 4,
      num_key_value_heads: 1, // 4 query heads per key/value head, as in the original
      head_dim: 16,
      query_pre_attn_scalar: 16, // was head_dim (256)
      intermediate_size: 384, // 6 × hidden, as 6912 / 1152
      vocab_size: 262144,
      sliding_window: 512,
      sliding_window_pattern: 6,
      rope_local_base_freq: 10000,
      rope_theta: 1000000,
      max_position_embeddings: 32768,
      eos_token_id: [1, 106],
      torch_dtype: 'float32',
    });
    const c = parseConfig(raw);
    expect(c.layerTypes).toEqual(['sliding', 'sliding', 'sliding', 'sliding', 'sliding', 'full']);
    const smaller = shrinkConfig(gemma3_1b, {
      hidden: 32,
      layers: 2,
      heads: 2,
      kvHeads: 2,
      headDim: 8,
      vocab: 40,
      maxPositions: 64,
      slidingWindow: 4,
      tokens: { bos: 2, eos: 3, pad: 0 },
    });
    expect(smaller).toMatchObject({
      num_key_value_heads: 2,
      head_dim: 8,
      vocab_size: 40,
      max_position_embeddings: 64,
      sliding_window: 4,
      eos_token_id: 3,
    });
  });

  it('keeps llama3 rope scaling and tying, cuts or repeats layer_types, unwraps the multimodal Gemma 3', () => {
    expect(shrinkConfig(llama32_1b, { hidden: 64, layers: 2, heads: 4 })).toMatchObject({
      num_key_value_heads: 1,
      head_dim: 16,
      intermediate_size: 256,
      rope_scaling: llama32_1b.rope_scaling,
      rope_theta: 500000,
      tie_word_embeddings: true,
    });
    const layerTypes = ['sliding_attention', 'full_attention'];
    const repeated = shrinkConfig({ ...gemma2_2b, num_hidden_layers: 2, layer_types: layerTypes }, { hidden: 32, layers: 3, heads: 2 });
    expect(repeated.layer_types).toEqual(['sliding_attention', 'full_attention', 'sliding_attention']);
    expect(shrinkConfig(qwen3_06b, { hidden: 32, layers: 2, heads: 2 }).max_window_layers).toBe(2);
    const gpt2 = { model_type: 'gpt2', n_embd: 768, n_head: 12, n_layer: 12, n_positions: 1024, n_ctx: 1024, vocab_size: 50257 };
    expect(shrinkConfig(gpt2, { hidden: 32, layers: 1, heads: 2, maxPositions: 64 })).toMatchObject({
      n_embd: 32,
      n_head: 2,
      n_layer: 1,
      n_inner: null,
      n_positions: 64,
      n_ctx: 64,
      vocab_size: 50257,
    });
    const text = shrinkConfig(gemma3_4b, { hidden: 64, layers: 6, heads: 4 });
    expect(text).toMatchObject({
      model_type: 'gemma3_text',
      architectures: ['Gemma3ForCausalLM'],
      rope_scaling: { factor: 8.0, rope_type: 'linear' },
      eos_token_id: [1, 106],
      vocab_size: 262208,
      num_key_value_heads: 2,
      sliding_window: 1024,
    });
    expect(text.vision_config).toBeUndefined();
    expect(parseConfig(text).ropeScaling).toEqual({ ropeType: 'linear', factor: 8 });
  });

  it('refuses an unsupported original before shrinking, and sizes that make no valid config', () => {
    expect(() => shrinkConfig({ ...qwen3_06b, use_sliding_window: true }, { hidden: 32, layers: 1, heads: 2 }, 'q/config.json')).toThrow(
      /^q\/config\.json: field 'use_sliding_window'/,
    );
    expect(() => shrinkConfig(qwen3_06b, { hidden: 32, layers: 1, heads: 4, kvHeads: 3 })).toThrow(/num_key_value_heads/);
  });
});

describe('model init --like', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  const run = async (args: string[]) =>
    buildCli(args)
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();

  const base = { hidden: 32, layers: 6, heads: 4, seed: 1 };

  function lastLogits(dir: string, ids: number[]): Float32Array {
    const { model } = loadModel(dir);
    const out = tf.tidy(
      () => model.forward(tf.tensor2d([ids], [1, ids.length], 'int32'), { lastOnly: true }).logits.dataSync() as Float32Array,
    );
    model.dispose();
    return out;
  }

  it('from a config.json alone: the family and switches of Gemma-3-1B, a word-level tokenizer of --vocab words', async () => {
    const root = mkdtempSync(join(tmpdir(), 'like-'));
    const file = join(root, 'gemma3.json');
    writeFileSync(file, JSON.stringify(gemma3_1b));
    const out = join(root, 'tiny');
    const written = await initCheckpoint({ ...base, like: file, out, vocab: 40, slidingWindow: 4 });
    expect(written.family).toBe('gemma3_text');
    expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const { model, tokenizer } = loadModel(out);
    expect(model.config).toMatchObject({
      family: 'gemma3_text',
      vocabSize: 40,
      hiddenSize: 32,
      slidingWindow: 4,
      qkNorm: true,
      ropeLocalTheta: 10000,
    });
    expect(model.config.layerTypes.filter((t) => t === 'full')).toHaveLength(1);
    expect(tokenizer.vocabSize).toBe(40);
    // The special ids point into the new vocabulary.
    expect(model.config.eosTokenIds).toEqual([tokenizer.eosTokenIds[0]]);
    model.dispose();
    const logits = lastLogits(out, [2, 9, 17, 30, 5, 11, 12]);
    expect(logits.every(Number.isFinite)).toBe(true);
  });

  it('from a folder with a tokenizer: copies the tokenizer files and keeps the real vocabulary', async () => {
    const root = mkdtempSync(join(tmpdir(), 'like-'));
    const real = join(root, 'real');
    mkdirSync(real);
    const specials = { pad: '<pad>', unk: '<unk>', bos: '<bos>', eos: '<eos>', user: '<user>', assistant: '<assistant>' };
    const words = Array.from({ length: 294 }, (_, i) => `w${i}`);
    const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({ words, specialTokens: specials });
    writeFileSync(join(real, 'tokenizer.json'), JSON.stringify(tokenizerJson));
    writeFileSync(join(real, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
    writeFileSync(join(real, 'chat_template.jinja'), '{% for m in messages %}{{ m.content }}{% endfor %}');
    writeFileSync(join(real, 'config.json'), JSON.stringify({ ...llama32_1b, vocab_size: 300, bos_token_id: 2, eos_token_id: [3] }));
    writeFileSync(join(real, 'model.safetensors'), 'not read');

    const out = join(root, 'tiny');
    await run(['model', 'init', '--like', real, '--out', out, '--hidden', '32', '--heads', '4', '--backend', 'wasm']);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'])
      expect(readFileSync(join(out, f), 'utf8')).toBe(readFileSync(join(real, f), 'utf8'));
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      model_type: 'llama',
      vocab_size: 300,
      bos_token_id: 2,
      eos_token_id: [3],
      rope_scaling: llama32_1b.rope_scaling,
    });
    expect(lastLogits(out, [2, 100, 299])).toHaveLength(300);

    // The vocabulary cannot change under a copied tokenizer; --tied and --family do not go with --like.
    const other = join(root, 'other');
    await expect(initCheckpoint({ ...base, like: real, out: other, vocab: 100 })).rejects.toThrow(/^--vocab 100: .*vocab_size 300/);
    await expect(initCheckpoint({ ...base, like: real, out: other, tied: false })).rejects.toThrow(/^--tied/);
    await expect(initCheckpoint({ ...base, like: real, family: 'llama', out: other })).rejects.toThrow(/either --family .* or --like/);
    await expect(initCheckpoint({ ...base, out: other })).rejects.toThrow(/either --family .* or --like/);
    await expect(initCheckpoint({ ...base, like: real, out: other, heads: 5 })).rejects.toThrow(
      /--hidden 32 must be a multiple of --heads 5, or give --head-dim/,
    );
    await expect(initCheckpoint({ ...base, family: 'llama', out: other, headDim: 8 })).rejects.toThrow(/--head-dim needs --like/);
    expect(existsSync(other)).toBe(false);
    // An existing --out is refused as without --like, and an unsupported original before anything is written.
    await expect(run(['model', 'init', '--like', real, '--out', out, '--backend', 'wasm'])).rejects.toThrow(/already holds a checkpoint/);
    const yarn = join(root, 'yarn.json');
    writeFileSync(yarn, JSON.stringify({ ...qwen3_06b, rope_scaling: { rope_type: 'yarn', factor: 4 } }));
    await expect(initCheckpoint({ ...base, like: yarn, out: other })).rejects.toThrow(/yarn\.json: field 'rope_scaling'/);
    expect(existsSync(other)).toBe(false);
  });
});
