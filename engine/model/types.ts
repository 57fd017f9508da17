// Shared model types. Parameters keep Hugging Face names and layouts in memory (nn.Linear weights are
// [out, in]; GPT-2 Conv1D weights are [in, out]), so loading and saving a checkpoint is a plain copy.
import type * as tf from '@tensorflow/tfjs';

export type Family = 'llama' | 'qwen2' | 'gpt2';

/** The llama3 rope_scaling of Hugging Face (`rope_type: "llama3"`). */
export interface RopeScaling {
  ropeType: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** A normalised view of a Hugging Face config.json; `raw` keeps the original object for saving. */
export interface ModelConfig {
  family: Family;
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
  /** q/k/v projection biases (qwen2). */
  attentionBias: boolean;
  tieWordEmbeddings: boolean;
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
  /** Keys and values of earlier positions; when given, the result carries the extended cache. */
  cache?: KVCache;
  /** Return a cache even when none was passed in (the first step of generation). */
  useCache?: boolean;
  /** Compute logits for the last position only ([batch, 1, vocab]): decoding needs no more. */
  lastOnly?: boolean;
}

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
  dispose(): void;
}
