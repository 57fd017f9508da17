// Hugging Face config.json ↔ ModelConfig. MODEL_FAMILIES below is the one list of the families the engine
// implements, each read by its `model_type` with the defaults of its transformers config class:
//   llama (LlamaConfig), qwen2 (Qwen2Config: q/k/v biases), gpt2 (GPT2Config),
//   gemma2 (Gemma2Config: (1 + w) RMSNorms before and after attention and MLP, GeGLU, embeddings × sqrt(hidden),
//     query_pre_attn_scalar, attention and final logit softcapping, sliding window on even layers),
//   gemma3_text (Gemma3TextConfig, i.e. Gemma3ForCausalLM: gemma2 plus q/k norms, local layers by
//     sliding_window_pattern or layer_types with their own rope base rope_local_base_freq, rope_scaling on the
//     global layers only; HF's Gemma3 attention ignores attn_logit_softcapping, and so does this),
//   qwen3 (Qwen3Config: qwen2 without biases by default, plus per-head q/k RMSNorms and a free head_dim),
//   granite (GraniteConfig: llama with embedding_multiplier, attention_multiplier as the attention scale,
//     residual_multiplier on each block output and logits divided by logits_scaling).
// parseConfig validates every field the transformer reads and refuses, in one line naming the file and the
// field, each variant it does not implement (other rope scalings, activations, sliding windows on qwen,
// bidirectional gemma3); transformers v5's rope_parameters is read as the older rope fields. makeConfig
// writes a complete config.json for the families built from sizes alone (SIZED_FAMILIES); shrinkConfig
// turns a real config.json of any family into a tiny one with every feature switch kept.
import type { Family, LayerKind, ModelConfig, ModelFamily, RopeScaling } from './types.ts';

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

/** Every family the engine implements, by config.json model_type: the one list. */
export const MODEL_FAMILIES = ['llama', 'qwen2', 'gpt2', 'gemma2', 'gemma3_text', 'qwen3', 'granite'] as const;

/** The families makeConfig builds from sizes alone (the others come from a real config.json: shrinkConfig). */
export const SIZED_FAMILIES = ['llama', 'qwen2', 'gpt2'] as const satisfies readonly ModelFamily[];

type Raw = Record<string, unknown>;

function show(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

/** Reads fields of one config object; every error names the file and the field. */
class Fields {
  /**
   * `aliases` names, in errors, the file's own field behind a field read under another name (transformers
   * v5's rope_parameters read as rope_theta and rope_scaling): an alias of 'rope_scaling' covers
   * 'rope_scaling.factor' too.
   */
  constructor(
    readonly raw: Raw,
    readonly file: string,
    readonly aliases: Record<string, string> = {},
  ) {}

  private shown(field: string): string {
    const [head, ...rest] = field.split('.');
    const alias = this.aliases[field] ?? this.aliases[head];
    if (alias === undefined) return field;
    return this.aliases[field] !== undefined ? alias : [alias, ...rest].join('.');
  }

  invalid(field: string, expectation: string, value: unknown = this.raw[field]): ConfigError {
    const name = this.shown(field);
    return new ConfigError('CONFIG_INVALID', this.file, name, `field '${name}' ${expectation} (got ${show(value)})`);
  }

  unsupported(field: string, message: string): ConfigError {
    const name = this.shown(field);
    return new ConfigError('CONFIG_UNSUPPORTED', this.file, name, `field '${name}' ${message}`);
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

  /** A positive number that null switches off: missing → the class default, null → none. */
  optionalPosNumber(field: string, fallback: number | undefined): number | undefined {
    const value = this.raw[field];
    if (value === undefined) return fallback;
    if (value === null) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw this.invalid(field, 'must be a positive number or null');
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
  const raw = value as Raw;
  const type = raw.rope_type ?? raw.type;
  if (type === 'default') return undefined;
  const read = (field: string): number => {
    const v = raw[field];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw f.invalid(`rope_scaling.${field}`, 'must be a positive number', v);
    return v;
  };
  if (type === 'linear') return { ropeType: 'linear', factor: read('factor') };
  if (type !== 'llama3') {
    throw f.unsupported(
      'rope_scaling',
      `has rope_type ${show(type)}; only "llama3" and "linear" (or null) are implemented — remove it or use one of those`,
    );
  }
  const scaling = {
    ropeType: 'llama3',
    factor: read('factor'),
    lowFreqFactor: read('low_freq_factor'),
    highFreqFactor: read('high_freq_factor'),
    originalMaxPositionEmbeddings: read('original_max_position_embeddings'),
  } as const;
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

/** `layer_types` when given (one entry per layer), else the family's pattern. */
function parseLayerTypes(f: Fields, numLayers: number, pattern: (layer: number) => LayerKind): LayerKind[] {
  const value = f.raw.layer_types;
  if (value === undefined || value === null) return Array.from({ length: numLayers }, (_, i) => pattern(i));
  if (!Array.isArray(value) || value.length !== numLayers) {
    throw f.invalid('layer_types', `must list one attention type for each of the ${numLayers} layers (num_hidden_layers)`);
  }
  return value.map((type) => {
    if (type === 'full_attention') return 'full';
    if (type === 'sliding_attention') return 'sliding';
    throw f.unsupported('layer_types', `has ${show(type)}; only "full_attention" and "sliding_attention" are implemented`);
  });
}

type RotaryFamily = Exclude<ModelFamily, 'gpt2'>;

/** The defaults of each rotary family's transformers config class that are not shared by all of them. */
interface RotaryDefaults {
  maxPositions: number;
  ropeTheta: number;
  tie: boolean;
  bos?: number;
  eos: number[];
  pad?: number;
  /** The class's sizes; absent: the sizes are required (llama, qwen2). A fixed headDim overrides hidden / heads. */
  sizes?: { vocab: number; hidden: number; intermediate: number; layers: number; heads: number; kvHeads?: number; headDim?: number };
}

const gemmaTokens = { tie: true, bos: 2, eos: [1], pad: 0 };
const rotaryDefaults: Record<RotaryFamily, RotaryDefaults> = {
  llama: { maxPositions: 2048, ropeTheta: 10000, tie: false, bos: 1, eos: [2] },
  qwen2: { maxPositions: 32768, ropeTheta: 10000, tie: false, eos: [] },
  gemma2: {
    maxPositions: 8192,
    ropeTheta: 10000,
    ...gemmaTokens,
    sizes: { vocab: 256000, hidden: 2304, intermediate: 9216, layers: 26, heads: 8, kvHeads: 4, headDim: 256 },
  },
  gemma3_text: {
    maxPositions: 131072,
    ropeTheta: 1_000_000,
    ...gemmaTokens,
    sizes: { vocab: 262208, hidden: 2304, intermediate: 9216, layers: 26, heads: 8, kvHeads: 4, headDim: 256 },
  },
  qwen3: {
    maxPositions: 32768,
    ropeTheta: 10000,
    tie: false,
    eos: [],
    sizes: { vocab: 151936, hidden: 4096, intermediate: 22016, layers: 32, heads: 32, kvHeads: 32, headDim: 128 },
  },
  granite: {
    maxPositions: 2048,
    ropeTheta: 10000,
    tie: false,
    bos: 1,
    eos: [2],
    sizes: { vocab: 32000, hidden: 4096, intermediate: 11008, layers: 32, heads: 32 },
  },
};

/** The MLP activation of the gemmas (hidden_activation): the tanh approximation of GELU, under either HF name. */
function gemmaActivation(f: Fields): 'gelu_tanh' {
  f.oneOf('hidden_activation', ['gelu_pytorch_tanh', 'gelu_new'], 'gelu_pytorch_tanh');
  return 'gelu_tanh';
}

/**
 * transformers v5 writes rope_theta and rope_scaling together as rope_parameters ({rope_type, rope_theta, ...}),
 * per layer type for gemma3_text ({full_attention: ..., sliding_attention: ...}). Returns a view of the config
 * with the v4 fields (rope_theta, rope_scaling, rope_local_base_freq) whose errors name the v5 fields.
 */
function withV4Rope(f: Fields, family: RotaryFamily): Fields {
  const value = f.raw.rope_parameters;
  if (value === undefined || value === null || f.has('rope_theta')) return f;
  const object = (v: unknown, field: string): Raw => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw f.invalid(field, 'must be an object', v);
    return v as Raw;
  };
  const split = ({ rope_theta, ...scaling }: Raw) => ({ rope_theta, rope_scaling: scaling });
  const params = object(value, 'rope_parameters');
  if (family !== 'gemma3_text') {
    return new Fields({ ...f.raw, ...split(params) }, f.file, {
      rope_theta: 'rope_parameters.rope_theta',
      rope_scaling: 'rope_parameters',
    });
  }
  const local = object(params.sliding_attention ?? { rope_type: 'default' }, 'rope_parameters.sliding_attention');
  if ((local.rope_type ?? 'default') !== 'default') {
    throw f.unsupported(
      'rope_parameters.sliding_attention',
      `has rope_type ${show(local.rope_type)}; only "default" is implemented for the sliding layers`,
    );
  }
  return new Fields(
    { ...f.raw, ...split(object(params.full_attention, 'rope_parameters.full_attention')), rope_local_base_freq: local.rope_theta },
    f.file,
    {
      rope_theta: 'rope_parameters.full_attention.rope_theta',
      rope_scaling: 'rope_parameters.full_attention',
      rope_local_base_freq: 'rope_parameters.sliding_attention.rope_theta',
    },
  );
}

function parseRotary(file: Fields, family: RotaryFamily): ModelConfig {
  const f = withV4Rope(file, family);
  const d = rotaryDefaults[family];
  const gemma = family === 'gemma2' || family === 'gemma3_text';
  const hiddenSize = f.posInt('hidden_size', d.sizes?.hidden);
  const numHeads = f.posInt('num_attention_heads', d.sizes?.heads);
  const numKvHeads = f.posInt('num_key_value_heads', d.sizes?.kvHeads ?? numHeads);
  checkHeads(f, 'num_attention_heads', 'num_key_value_heads', numHeads, numKvHeads);
  if (d.sizes?.headDim === undefined && !f.has('head_dim') && hiddenSize % numHeads !== 0) {
    throw f.invalid('hidden_size', `must be a multiple of num_attention_heads (${numHeads}), or set 'head_dim'`, hiddenSize);
  }
  const headDim = f.posInt('head_dim', d.sizes?.headDim ?? hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw f.invalid('head_dim', 'must be even for rotary embeddings', headDim);
  const numLayers = f.posInt('num_hidden_layers', d.sizes?.layers);
  let hiddenAct: ModelConfig['hiddenAct'] = 'silu';
  if (gemma) hiddenAct = gemmaActivation(f);
  else f.oneOf('hidden_act', ['silu'], 'silu');
  let attentionBias = true;
  if (family === 'qwen2') f.only('use_sliding_window', false, false);
  else attentionBias = f.bool('attention_bias', false);
  if (family === 'qwen3') f.only('use_sliding_window', false, false);
  if (family === 'llama' || family === 'granite') f.only('mlp_bias', false, false);
  if (family === 'gemma3_text') f.only('use_bidirectional_attention', false, false);

  // Gemma2 slides on even layers; Gemma3 on all but every sliding_window_pattern-th ((i + 1) % pattern ≠ 0).
  let layerTypes: ModelConfig['layerTypes'] = Array.from({ length: numLayers }, () => 'full');
  let slidingWindow: number | undefined;
  if (gemma) {
    const pattern = family === 'gemma3_text' ? f.posInt('sliding_window_pattern', 6) : 2;
    layerTypes = parseLayerTypes(f, numLayers, (i) => ((i + 1) % pattern !== 0 ? 'sliding' : 'full'));
    if (layerTypes.includes('sliding')) {
      if (f.raw.sliding_window === null) throw f.invalid('sliding_window', 'must be a positive integer: some layers are sliding layers');
      slidingWindow = f.posInt('sliding_window', 4096);
    }
  }
  const granite = family === 'granite';
  return {
    family,
    vocabSize: f.posInt('vocab_size', d.sizes?.vocab),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    intermediateSize: f.posInt('intermediate_size', d.sizes?.intermediate),
    maxPositions: f.posInt('max_position_embeddings', d.maxPositions),
    normEps: f.posNumber('rms_norm_eps', 1e-6),
    ropeTheta: f.posNumber('rope_theta', d.ropeTheta),
    ropeScaling: parseRopeScaling(f),
    attentionBias,
    outputBias: family !== 'qwen2',
    tieWordEmbeddings: f.bool('tie_word_embeddings', d.tie),
    hiddenAct,
    normPlusOne: gemma,
    sandwichNorms: gemma,
    qkNorm: family === 'qwen3' || family === 'gemma3_text',
    // Gemma casts sqrt(hidden) to the model's dtype (float32 here) before multiplying.
    embeddingScale: gemma ? Math.fround(Math.sqrt(hiddenSize)) : granite ? f.posNumber('embedding_multiplier', 1) : 1,
    attentionScale: gemma
      ? f.posNumber('query_pre_attn_scalar', 256) ** -0.5
      : granite
        ? f.posNumber('attention_multiplier', 1)
        : 1 / Math.sqrt(headDim),
    residualScale: granite ? f.posNumber('residual_multiplier', 1) : 1,
    logitsDivisor: granite ? f.posNumber('logits_scaling', 1) : 1,
    attnSoftcap: family === 'gemma2' ? f.optionalPosNumber('attn_logit_softcapping', 50) : undefined,
    finalSoftcap: gemma ? f.optionalPosNumber('final_logit_softcapping', family === 'gemma2' ? 30 : undefined) : undefined,
    layerTypes,
    slidingWindow,
    ropeLocalTheta: family === 'gemma3_text' ? f.posNumber('rope_local_base_freq', 10000) : undefined,
    bosTokenId: f.tokenId('bos_token_id', d.bos),
    eosTokenIds: f.tokenIds('eos_token_id', d.eos),
    padTokenId: f.tokenId('pad_token_id', d.pad),
    raw: file.raw,
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
  const numLayers = f.posInt('n_layer');
  return {
    family: 'gpt2',
    vocabSize: f.posInt('vocab_size'),
    hiddenSize,
    numLayers,
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    intermediateSize: f.posInt('n_inner', 4 * hiddenSize),
    maxPositions: f.posInt('n_positions', 1024),
    normEps: f.posNumber('layer_norm_epsilon', 1e-5),
    ropeTheta: 10000, // unused: GPT-2 learns its positions
    attentionBias: true,
    outputBias: true,
    tieWordEmbeddings: true,
    hiddenAct: 'gelu_tanh',
    normPlusOne: false,
    sandwichNorms: false,
    qkNorm: false,
    embeddingScale: 1,
    attentionScale: 1 / Math.sqrt(hiddenSize / numHeads),
    residualScale: 1,
    logitsDivisor: 1,
    layerTypes: Array.from({ length: numLayers }, () => 'full'),
    bosTokenId: f.tokenId('bos_token_id', 50256),
    eosTokenIds: f.tokenIds('eos_token_id', [50256]),
    padTokenId: f.tokenId('pad_token_id', undefined),
    raw: f.raw,
  };
}

const parsers: Record<ModelFamily, (f: Fields) => ModelConfig> = {
  llama: (f) => parseRotary(f, 'llama'),
  qwen2: (f) => parseRotary(f, 'qwen2'),
  gpt2: parseGpt2,
  gemma2: (f) => parseRotary(f, 'gemma2'),
  gemma3_text: (f) => parseRotary(f, 'gemma3_text'),
  qwen3: (f) => parseRotary(f, 'qwen3'),
  granite: (f) => parseRotary(f, 'granite'),
};

function isFamily(type: unknown): type is ModelFamily {
  return typeof type === 'string' && (MODEL_FAMILIES as readonly string[]).includes(type);
}

/** Validates a parsed config.json and normalises it; throws ConfigError with a one-line message. */
export function parseConfig(raw: unknown, file = 'config.json'): ModelConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError('CONFIG_INVALID', file, '', `expected a JSON object (got ${Array.isArray(raw) ? 'an array' : show(raw)})`);
  }
  const f = new Fields(raw as Raw, file);
  const type = f.raw.model_type;
  if (isFamily(type)) return parsers[type](f);
  const hint =
    type === 'gemma3'
      ? "; this is the multimodal Gemma 3, of which only the text model 'gemma3_text' (Gemma3ForCausalLM) is implemented"
      : '';
  throw new ConfigError(
    'CONFIG_UNSUPPORTED',
    file,
    'model_type',
    `field 'model_type' must be one of ${MODEL_FAMILIES.map((x) => `"${x}"`).join(', ')} (got ${show(type)})${hint}`,
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
  if (scaling.ropeType === 'linear') return { rope_type: 'linear', factor: scaling.factor };
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

export interface ShrinkSizes {
  hidden: number;
  layers: number;
  heads: number;
  /** Default: heads divided by the original's query heads per key/value head, so grouped attention stays grouped. */
  kvHeads?: number;
  /** Default: hidden / heads (gpt2 always). */
  headDim?: number;
  /** MLP width. Default: hidden times the original's intermediate / hidden ratio. */
  intermediate?: number;
  /** Vocabulary size. Default: the original's (needed when its tokenizer comes along). */
  vocab?: number;
  /** Context length. Default: the original's. */
  maxPositions?: number;
  /** Window of the sliding layers (gemma2, gemma3_text). Default: the original's. */
  slidingWindow?: number;
  /** Replace the special token ids (when the model does not keep the original's tokenizer). */
  tokens?: { bos: number; eos: number; pad: number };
}

/** Fields of a real config.json that a randomly initialised float32 copy must not carry. */
const notCarried = ['_name_or_path', 'auto_map', 'quantization_config'];

/**
 * The text model of a multimodal Gemma 3 config (model_type "gemma3"): its text_config as a gemma3_text
 * config (Gemma3ForCausalLM), with the special token ids of the outer config where it has none.
 */
function textModelConfig(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const outer = raw as Raw;
  const text = outer.text_config;
  if (outer.model_type !== 'gemma3' || typeof text !== 'object' || text === null || Array.isArray(text)) return raw;
  const out: Raw = { ...(text as Raw), architectures: ['Gemma3ForCausalLM'], model_type: 'gemma3_text' };
  for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id', 'initializer_range']) {
    if (out[key] === undefined && outer[key] !== undefined) out[key] = outer[key];
  }
  return out;
}

/**
 * A copy of a real config.json (any family, or a multimodal Gemma 3's text model) with its sizes replaced
 * and every feature switch kept: activation, norms, rope base and scaling, softcapping, multipliers, the
 * pattern of sliding layers (layer_types is cut or repeated to the new depth), tying and biases. The
 * original is validated first, so an unsupported variant is refused before anything is written. Fields
 * that are scales of a size follow the size: query_pre_attn_scalar when it equals the old head_dim (or
 * hidden / heads), max_window_layers capped at the new depth.
 */
export function shrinkConfig(raw: unknown, sizes: ShrinkSizes, file = 'config.json'): Record<string, unknown> {
  const source = textModelConfig(raw);
  const original = parseConfig(source, file);
  const src = source as Raw;
  const out: Raw = { ...src, torch_dtype: 'float32' };
  for (const key of notCarried) delete out[key];
  const group = original.numHeads / original.numKvHeads;
  let kvHeads = sizes.kvHeads ?? Math.max(1, Math.floor(sizes.heads / group));
  while (sizes.kvHeads === undefined && kvHeads > 1 && sizes.heads % kvHeads !== 0) kvHeads--;
  const intermediate = sizes.intermediate ?? Math.max(1, Math.round((sizes.hidden * original.intermediateSize) / original.hiddenSize));
  if (original.family === 'gpt2') {
    Object.assign(out, {
      n_embd: sizes.hidden,
      n_head: sizes.heads,
      n_layer: sizes.layers,
      n_inner: src.n_inner === undefined || src.n_inner === null ? (sizes.intermediate ?? null) : intermediate,
      vocab_size: sizes.vocab ?? original.vocabSize,
    });
    if (sizes.maxPositions !== undefined) Object.assign(out, { n_positions: sizes.maxPositions, n_ctx: sizes.maxPositions });
  } else {
    const headDim = sizes.headDim ?? sizes.hidden / sizes.heads;
    Object.assign(out, {
      hidden_size: sizes.hidden,
      num_hidden_layers: sizes.layers,
      num_attention_heads: sizes.heads,
      num_key_value_heads: kvHeads,
      head_dim: headDim,
      intermediate_size: intermediate,
      vocab_size: sizes.vocab ?? original.vocabSize,
    });
    if (sizes.maxPositions !== undefined) out.max_position_embeddings = sizes.maxPositions;
    if (sizes.slidingWindow !== undefined) out.sliding_window = sizes.slidingWindow;
    const types = src.layer_types;
    if (Array.isArray(types) && types.length > 0) out.layer_types = Array.from({ length: sizes.layers }, (_, i) => types[i % types.length]);
    if (typeof src.max_window_layers === 'number') out.max_window_layers = Math.min(src.max_window_layers, sizes.layers);
    const scalar = src.query_pre_attn_scalar;
    if (scalar === original.headDim) out.query_pre_attn_scalar = headDim;
    else if (scalar === original.hiddenSize / original.numHeads) out.query_pre_attn_scalar = sizes.hidden / sizes.heads;
  }
  if (sizes.tokens) Object.assign(out, { bos_token_id: sizes.tokens.bos, eos_token_id: sizes.tokens.eos, pad_token_id: sizes.tokens.pad });
  parseConfig(out, `${file} (shrunk)`); // the sizes given must make a valid config of the same family
  return out;
}
