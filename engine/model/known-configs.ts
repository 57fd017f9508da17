// The config.json of a few published models, as data: `star-dss model init --like NAME` writes a random-init
// checkpoint of the real size from one, so memory and speed are measurable without downloading weights.
// NOTE: typed from memory of the published config.json files on the Hugging Face Hub (not copied from a
// download); the sizes that matter for memory and speed (hidden, layers, heads, kv heads, intermediate,
// vocabulary, tying) are the well-known ones. Check against the Hub before relying on a minor field.

const smolLM2_135M = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 576,
  initializer_range: 0.041666666666666664,
  intermediate_size: 1536,
  is_llama_config: true,
  max_position_embeddings: 8192,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  pad_token_id: 2,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_interleaved: false,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.42.3',
  use_cache: true,
  vocab_size: 49152,
};

const qwen25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 21,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.43.1',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const llama32_1B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.45.0.dev0',
  use_cache: true,
  vocab_size: 128256,
};

/** Llama Guard 3 1B: Llama-3.2-1B's architecture with an untied output head (1.5 B parameters). */
const llamaGuard3_1B = {
  ...llama32_1B,
  eos_token_id: 128009,
  tie_word_embeddings: false,
  transformers_version: '4.45.0',
};

/** Known configs by their Hugging Face repository name (the organisation prefix is optional). */
export const KNOWN_CONFIGS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  'HuggingFaceTB/SmolLM2-135M-Instruct': smolLM2_135M,
  'Qwen/Qwen2.5-0.5B-Instruct': qwen25_05B,
  'meta-llama/Llama-3.2-1B-Instruct': llama32_1B,
  'meta-llama/Llama-Guard-3-1B': llamaGuard3_1B,
};

/** The config.json of a known model by name ('Qwen2.5-0.5B-Instruct' or 'Qwen/Qwen2.5-0.5B-Instruct', any case), a copy. */
export function knownConfig(name: string): Record<string, unknown> | undefined {
  const wanted = name.toLowerCase();
  for (const [repo, config] of Object.entries(KNOWN_CONFIGS))
    if (repo.toLowerCase() === wanted || repo.split('/')[1].toLowerCase() === wanted)
      return structuredClone(config) as Record<string, unknown>;
  return undefined;
}

/** The names `--like` accepts (without the organisation). */
export function knownConfigNames(): string[] {
  return Object.keys(KNOWN_CONFIGS).map((repo) => repo.split('/')[1]);
}
