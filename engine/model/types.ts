// Shared model types. Parameters keep Hugging Face names and layouts in memory (nn.Linear weights are
// [out, in]; GPT-2 Conv1D weights are [in, out]), so loading and saving a checkpoint is a plain copy.
import type * as tf from '@tensorflow/tfjs';
import type { MODEL_FAMILIES, SIZED_FAMILIES } from './config.ts';

/** Every family parseConfig reads: a config.json's model_type (the list lives in config.ts). */
export type ModelFamily = (typeof MODEL_FAMILIES)[number];

/** The families makeConfig builds from sizes alone (`model init --family`, the micro-world base models). */
export type Family = (typeof SIZED_FAMILIES)[number];

/** Hugging Face's rope_scaling: `rope_type: "llama3"` (Llama 3.1+) or `"linear"` (positions divided by factor). */
export type RopeScaling =
  | {
      ropeType: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    }
  | { ropeType: 'linear'; factor: number };

/** A layer's attention: over every earlier position, or over the last `slidingWindow` positions only. */
export type LayerKind = 'full' | 'sliding';

/** A normalised view of a Hugging Face config.json; `raw` keeps the original object for saving. */
export interface ModelConfig {
  family: ModelFamily;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  normEps: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  /** q/k/v projection biases (qwen2 always; the others when attention_bias). */
  attentionBias: boolean;
  /** o_proj carries a bias too when attentionBias (every rotary family but qwen2). */
  outputBias: boolean;
  tieWordEmbeddings: boolean;
  /** Activation of the gated MLP of the rotary families: silu(gate)·up or gelu_tanh(gate)·up (gemma). */
  hiddenAct: 'silu' | 'gelu_tanh';
  /** RMSNorm multiplies by (1 + weight) instead of weight, and its weights start at 0 (gemma). */
  normPlusOne: boolean;
  /** Norms on the attention and MLP outputs and a separate pre-MLP norm (gemma2, gemma3_text). */
  sandwichNorms: boolean;
  /** Per-head RMSNorm of the queries and keys (weight [headDim]) before rope (qwen3, gemma3_text). */
  qkNorm: boolean;
  /** Multiplies the token embeddings: sqrt(hidden) in float32 (gemma), embedding_multiplier (granite), else 1. */
  embeddingScale: number;
  /** Multiplies q·k: 1/sqrt(headDim), query_pre_attn_scalar^-0.5 (gemma), attention_multiplier (granite). */
  attentionScale: number;
  /** Multiplies each block's attention and MLP output before the residual add (granite), else 1. */
  residualScale: number;
  /** The logits are divided by this (granite's logits_scaling), else 1. */
  logitsDivisor: number;
  /** cap · tanh(scores / cap) on the attention scores (gemma2's attn_logit_softcapping). */
  attnSoftcap?: number;
  /** cap · tanh(logits / cap) on the output logits (final_logit_softcapping). */
  finalSoftcap?: number;
  /** The kind of each layer (length numLayers); sliding layers see `slidingWindow` positions, themselves included. */
  layerTypes: LayerKind[];
  slidingWindow?: number;
  /** Rope base of the sliding layers, which then use no rope scaling (gemma3's rope_local_base_freq). */
  ropeLocalTheta?: number;
  bosTokenId?: number;
  eosTokenIds: number[];
  padTokenId?: number;
  raw: Record<string, unknown>;
}

/** Per-layer key/value tensors [batch, kvHeads, time, headDim] for the positions seen so far. */
export interface KVCache {
  layers: { k: tf.Tensor4D; v: tf.Tensor4D }[];
  /** Number of cached positions (including left padding). */
  length: number;
}

export interface ForwardOptions {
  /** [batch, pastLength + time]: 1 for real tokens, 0 for (left) padding. Default: all ones. */
  attentionMask?: tf.Tensor2D;
  /** [batch, time] int32 position ids. Default: derived from the attention mask as Hugging Face does. */
  positions?: tf.Tensor2D;
  /**
   * An additive attention bias [batch, 1, time, past + time] (0: may attend, MASKED: may not) used instead of the
   * causal one derived from attentionMask, so that one row can hold several sequences that share a start (STAR's
   * batched prefix scoring). Needs explicit positions; refused for models with sliding-window layers.
   */
  attentionBias?: tf.Tensor4D;
  /** Keys and values of earlier positions; when given, the result carries the extended cache. */
  cache?: KVCache;
  /** Return a cache even when none was passed in (the first step of generation). */
  useCache?: boolean;
  /** Compute logits for the last position only ([batch, 1, vocab]): decoding needs no more. */
  lastOnly?: boolean;
  /**
   * Adds to a projection's output: given the module's Hugging Face path (`model.layers.0.self_attn.q_proj`)
   * and its input, the update to add, or undefined. How LoRA adapters (lora.ts) enter the forward pass.
   */
  linearDelta?: LinearDelta;
  /** false runs an adapted model (lora.ts) without its adapters: the frozen base. A plain model ignores it. */
  adapters?: boolean;
  /**
   * Activation recomputation: each block keeps only its input for the backward pass and runs its forward again
   * there (transformer.ts). Ignored with a cache or with linearDelta (adapters close over their own variables).
   */
  recompute?: boolean;
}

/** See ForwardOptions.linearDelta. */
export type LinearDelta = (module: string, input: tf.Tensor) => tf.Tensor | undefined;

export interface ForwardResult {
  /** [batch, time, vocab] */
  logits: tf.Tensor3D;
  cache?: KVCache;
}

export interface CausalLM {
  readonly config: ModelConfig;
  /** Trainable parameters by Hugging Face name. */
  readonly params: Map<string, tf.Variable>;
  forward(ids: tf.Tensor2D, options?: ForwardOptions): ForwardResult;
  /**
   * The final-normed hidden states [batch, time, hidden] and the output head's weight [vocab, hidden], without
   * the logits: forward's logits are head(hidden) (logits = hidden · headᵀ, then config.logitsDivisor and
   * config.finalSoftcap). Training's chunked label log-probs use it (train.ts); a model without it (a wrapper)
   * is trained through forward's full logits. Options as forward's (the cache ones ignored).
   */
  forwardHidden?(ids: tf.Tensor2D, options?: ForwardOptions): { hidden: tf.Tensor3D; head: tf.Tensor2D };
  dispose(): void;
}
