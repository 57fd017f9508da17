// Hugging Face config.json ↔ ModelConfig. parseConfig validates the fields the transformer reads
// (with the defaults of transformers' LlamaConfig / Qwen2Config / GPT2Config) and rejects the
// variants it does not implement; makeConfig writes a complete config.json as transformers would.
import type { Family, ModelConfig, RopeScaling } from './types.ts';

export type ConfigErrorCode = 'CONFIG_INVALID' | 'CONFIG_UNSUPPORTED';

/** A bad or unsupported config.json field; the message is one line naming file, field and fix. */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  readonly file: string;
  readonly field: string;

  constructor(code: ConfigErrorCode, file: string, field: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ConfigError';
    this.code = code;
    this.file = file;
    this.field = field;
  }
}

const families = ['llama', 'qwen2', 'gpt2'] as const satisfies readonly Family[];

type Raw = Record<string, unknown>;

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

/** Reads fields of one config object; every error names the file and the field. */
class Fields {
  constructor(
    readonly raw: Raw,
    readonly file: string,
  ) {}

  invalid(field: string, expectation: string, value: unknown = this.raw[field]): ConfigError {
    return new ConfigError('CONFIG_INVALID', this.file, field, `field '${field}' ${expectation} (got ${show(value)})`);
  }

  unsupported(field: string, message: string): ConfigError {
    return new ConfigError('CONFIG_UNSUPPORTED', this.file, field, `field '${field}' ${message}`);
  }

  has(field: string): boolean {
    return this.raw[field] !== undefined && this.raw[field] !== null;
  }

  posInt(field: string, fallback?: number): number {
    const value = this.raw[field];
    if ((value === undefined || value === null) && fallback !== undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) throw this.invalid(field, 'must be a positive integer');
    return value;
  }

  posNumber(field: string, fallback?: number): number {
    const value = this.raw[field];
    if ((value === undefined || value === null) && fallback !== undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw this.invalid(field, 'must be a positive number');
    return value;
  }

  bool(field: string, fallback: boolean): boolean {
    const value = this.raw[field];
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'boolean') throw this.invalid(field, 'must be true or false');
    return value;
  }

  /** A token id: missing → the class default, null → none. */
  tokenId(field: string, fallback: number | undefined): number | undefined {
    const value = this.raw[field];
    if (value === undefined) return fallback;
    if (value === null) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0)
      throw this.invalid(field, 'must be a non-negative integer or null');
    return value;
  }

  /** eos_token_id may be one id or a list of ids. */
  tokenIds(field: string, fallback: number[]): number[] {
    const value = this.raw[field];
    if (value === undefined) return fallback;
    if (value === null) return [];
    const list = Array.isArray(value) ? value : [value];
    for (const id of list) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw this.invalid(field, 'must be a token id or a list of token ids');
    }
    return list as number[];
  }

  oneOf(field: string, allowed: readonly string[], fallback: string): string {
    const value = this.raw[field] ?? fallback;
    if (typeof value !== 'string' || !allowed.includes(value)) {
      throw this.unsupported(
        field,
        `must be ${allowed.map((a) => `"${a}"`).join(' or ')} (got ${show(value)}); other variants are not implemented`,
      );
    }
    return value;
  }

  /** A boolean option of which only one value is implemented. */
  only(field: string, supported: boolean, fallback: boolean): void {
    if (this.bool(field, fallback) !== supported) {
      throw this.unsupported(field, `must be ${supported} (got ${show(this.raw[field])}); the other setting is not implemented`);
    }
  }
}

function parseRopeScaling(f: Fields): RopeScaling | undefined {
  const value = f.raw.rope_scaling;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) throw f.invalid('rope_scaling', 'must be an object or null');
  const rs = { raw: value as Raw };
  const type = rs.raw.rope_type ?? rs.raw.type;
  if (type === 'default') return undefined;
  if (type !== 'llama3') {
    throw f.unsupported(
      'rope_scaling',
      `has rope_type ${show(type)}; only "llama3" (or null) is implemented — remove it or use a llama3 scaling`,
    );
  }
  const read = (field: string): number => {
    const v = rs.raw[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw f.invalid(`rope_scaling.${field}`, 'must be a positive number', v);
    return v;
  };
  const scaling: RopeScaling = {
    ropeType: 'llama3',
    factor: read('factor'),
    lowFreqFactor: read('low_freq_factor'),
    highFreqFactor: read('high_freq_factor'),
    originalMaxPositionEmbeddings: read('original_max_position_embeddings'),
  };
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    throw f.invalid(
      'rope_scaling.high_freq_factor',
      `must be greater than low_freq_factor (${scaling.lowFreqFactor})`,
      scaling.highFreqFactor,
    );
  }
  return scaling;
}

function checkHeads(f: Fields, headsField: string, kvField: string, heads: number, kvHeads: number): void {
  if (heads % kvHeads !== 0) {
    throw f.invalid(kvField, `must divide ${headsField} (${heads}); set it to a divisor such as ${heads}`, kvHeads);
  }
}

function parseLlamaLike(f: Fields, family: 'llama' | 'qwen2'): ModelConfig {
  const hiddenSize = f.posInt('hidden_size');
  const numHeads = f.posInt('num_attention_heads');
  const numKvHeads = f.posInt('num_key_value_heads', numHeads);
  checkHeads(f, 'num_attention_heads', 'num_key_value_heads', numHeads, numKvHeads);
  if (!f.has('head_dim') && hiddenSize % numHeads !== 0) {
    throw f.invalid('hidden_size', `must be a multiple of num_attention_heads (${numHeads}), or set 'head_dim'`, hiddenSize);
  }
  const headDim = f.posInt('head_dim', hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw f.invalid('head_dim', 'must be even for rotary embeddings', headDim);
  f.oneOf('hidden_act', ['silu'], 'silu');
  let attentionBias = true;
  if (family === 'llama') {
    attentionBias = f.bool('attention_bias', false);
    f.only('mlp_bias', false, false);
  } else {
    f.only('use_sliding_window', false, false);
  }
  return {
    family,
    vocabSize: f.posInt('vocab_size'),
    hiddenSize,
    numLayers: f.posInt('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: f.posInt('intermediate_size'),
    maxPositions: f.posInt('max_position_embeddings', family === 'llama' ? 2048 : 32768),
    normEps: f.posNumber('rms_norm_eps', 1e-6),
    ropeTheta: f.posNumber('rope_theta', 10000),
    ropeScaling: parseRopeScaling(f),
    attentionBias,
    tieWordEmbeddings: f.bool('tie_word_embeddings', false),
    bosTokenId: f.tokenId('bos_token_id', family === 'llama' ? 1 : undefined),
    eosTokenIds: f.tokenIds('eos_token_id', family === 'llama' ? [2] : []),
    padTokenId: f.tokenId('pad_token_id', undefined),
    raw: f.raw,
  };
}

function parseGpt2(f: Fields): ModelConfig {
  const hiddenSize = f.posInt('n_embd');
  const numHeads = f.posInt('n_head');
  if (hiddenSize % numHeads !== 0) throw f.invalid('n_embd', `must be a multiple of n_head (${numHeads})`, hiddenSize);
  f.oneOf('activation_function', ['gelu_new', 'gelu_pytorch_tanh'], 'gelu_new');
  f.only('scale_attn_weights', true, true);
  f.only('scale_attn_by_inverse_layer_idx', false, false);
  f.only('tie_word_embeddings', true, true);
  return {
    family: 'gpt2',
    vocabSize: f.posInt('vocab_size'),
    hiddenSize,
    numLayers: f.posInt('n_layer'),
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    intermediateSize: f.posInt('n_inner', 4 * hiddenSize),
    maxPositions: f.posInt('n_positions', 1024),
    normEps: f.posNumber('layer_norm_epsilon', 1e-5),
    ropeTheta: 10000, // unused: GPT-2 learns its positions
    attentionBias: true,
    tieWordEmbeddings: true,
    bosTokenId: f.tokenId('bos_token_id', 50256),
    eosTokenIds: f.tokenIds('eos_token_id', [50256]),
    padTokenId: f.tokenId('pad_token_id', undefined),
    raw: f.raw,
  };
}

/** Validates a parsed config.json and normalises it; throws ConfigError with a one-line message. */
export function parseConfig(raw: unknown, file = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError('CONFIG_INVALID', file, '', `expected a JSON object (got ${Array.isArray(raw) ? 'an array' : show(raw)})`);
  }
  const f = new Fields(raw as Raw, file);
  const type = f.raw.model_type;
  if (type === 'llama' || type === 'qwen2') return parseLlamaLike(f, type);
  if (type === 'gpt2') return parseGpt2(f);
  throw new ConfigError(
    'CONFIG_UNSUPPORTED',
    file,
    'model_type',
    `field 'model_type' must be one of ${families.map((x) => `"${x}"`).join(', ')} (got ${show(type)})`,
  );
}

export interface ConfigSizes {
  hidden: number;
  layers: number;
  heads: number;
  /** Key/value heads (llama, qwen2); default `heads`. */
  kvHeads?: number;
  /** MLP width; default 4 · hidden. */
  intermediate?: number;
  vocab: number;
  /** Context length; default 2048. */
  maxPositions?: number;
  /** Default: false for llama/qwen2; GPT-2 is always tied. */
  tieWordEmbeddings?: boolean;
  ropeTheta?: number;
  ropeScaling?: RopeScaling;
  /** Default: 1e-5 (llama, gpt2), 1e-6 (qwen2). */
  normEps?: number;
  bosTokenId?: number;
  eosTokenId?: number | number[];
  padTokenId?: number;
}

function rawRopeScaling(scaling: RopeScaling | undefined): Raw | null {
  if (!scaling) return null;
  return {
    rope_type: scaling.ropeType,
    factor: scaling.factor,
    low_freq_factor: scaling.lowFreqFactor,
    high_freq_factor: scaling.highFreqFactor,
    original_max_position_embeddings: scaling.originalMaxPositionEmbeddings,
  };
}

/** A complete config.json object of the kind transformers writes for LlamaForCausalLM, Qwen2ForCausalLM or GPT2LMHeadModel. */
export function makeConfig(family: Family, sizes: ConfigSizes): Record<string, unknown> {
  const raw = buildConfig(family, sizes);
  parseConfig(raw, `makeConfig(${family})`); // the same validation a loaded file gets
  return raw;
}

function buildConfig(family: Family, sizes: ConfigSizes): Raw {
  const intermediate = sizes.intermediate ?? 4 * sizes.hidden;
  const maxPositions = sizes.maxPositions ?? 2048;
  const tokens = {
    bos_token_id: sizes.bosTokenId ?? null,
    eos_token_id: sizes.eosTokenId ?? null,
    pad_token_id: sizes.padTokenId ?? null,
  };
  if (family === 'gpt2') {
    if (sizes.tieWordEmbeddings === false) {
      throw new ConfigError(
        'CONFIG_UNSUPPORTED',
        'makeConfig',
        'tie_word_embeddings',
        "field 'tie_word_embeddings' must be true for gpt2 (got false)",
      );
    }
    return {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      activation_function: 'gelu_new',
      attn_pdrop: 0.1,
      embd_pdrop: 0.1,
      resid_pdrop: 0.1,
      initializer_range: 0.02,
      layer_norm_epsilon: sizes.normEps ?? 1e-5,
      n_ctx: maxPositions,
      n_embd: sizes.hidden,
      n_head: sizes.heads,
      n_inner: sizes.intermediate ?? null,
      n_layer: sizes.layers,
      n_positions: maxPositions,
      reorder_and_upcast_attn: false,
      scale_attn_by_inverse_layer_idx: false,
      scale_attn_weights: true,
      summary_activation: null,
      summary_first_dropout: 0.1,
      summary_proj_to_labels: true,
      summary_type: 'cls_index',
      summary_use_proj: true,
      tie_word_embeddings: true,
      torch_dtype: 'float32',
      use_cache: true,
      vocab_size: sizes.vocab,
      ...tokens,
    };
  }
  const common = {
    attention_dropout: 0.0,
    head_dim: sizes.hidden / sizes.heads,
    hidden_act: 'silu',
    hidden_size: sizes.hidden,
    initializer_range: 0.02,
    intermediate_size: intermediate,
    max_position_embeddings: maxPositions,
    num_attention_heads: sizes.heads,
    num_hidden_layers: sizes.layers,
    num_key_value_heads: sizes.kvHeads ?? sizes.heads,
    rope_scaling: rawRopeScaling(sizes.ropeScaling),
    rope_theta: sizes.ropeTheta ?? 10000,
    tie_word_embeddings: sizes.tieWordEmbeddings ?? false,
    torch_dtype: 'float32',
    use_cache: true,
    vocab_size: sizes.vocab,
    ...tokens,
  };
  if (family === 'llama') {
    return {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      attention_bias: false,
      mlp_bias: false,
      pretraining_tp: 1,
      rms_norm_eps: sizes.normEps ?? 1e-5,
      ...common,
    };
  }
  return {
    architectures: ['Qwen2ForCausalLM'],
    model_type: 'qwen2',
    max_window_layers: sizes.layers,
    rms_norm_eps: sizes.normEps ?? 1e-6,
    sliding_window: null,
    use_sliding_window: false,
    ...common,
  };
}
