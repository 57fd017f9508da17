// The memory plan of finetuning: what training a model of a given config.json holds in memory, per part, on a
// backend, computed from the config alone (no weight is allocated), so a run that cannot fit is refused before
// it starts. `star-dss doctor` prints it; the cell runner checks and records it; train() sizes its micro-batches
// with it (fitMicroBatch). An estimate, not a measurement (docs/architecture.md §6, "Memory plan").
import { totalmem } from 'node:os';
import { readConfigFile } from './model/checkpoint.ts';
import { parameterSpecs } from './model/parameters.ts';
import type { ModelConfig } from './model/types.ts';

const GIB = 1024 ** 3;

/** The most bytes of [rows, vocabulary] logits one chunk of the chunked label log-probs holds (train.ts). */
export const LOGIT_CHUNK_BYTES = 64 * 1024 ** 2;

/** Node and the libraries before any tensor exists: bench/memory-check.ts measures about 170 MiB at start. */
export const RUNTIME_BYTES = 200 * 1024 ** 2;

/** Bytes, in GiB with one decimal (or MiB below 1 GiB). */
export function formatBytes(bytes: number): string {
  return bytes >= GIB ? `${(bytes / GIB).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
}

/** The number of parameters of a model (every tensor parameterSpecs lists, tied embeddings once). */
export function configParameterCount(config: ModelConfig): number {
  return parameterSpecs(config).reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

/** What is trained: every parameter, or LoRA adapters of a rank on the attention and MLP projections. */
export type Trainable = 'full' | { loraRank: number };

/**
 * π_ref: a frozen float32 copy of the weights ('copy'), the same weights with the adapters switched off
 * ('adapters-off', LoRA only: no extra weights), or none (no strategy needs one).
 */
export type ReferenceKind = 'copy' | 'none' | 'adapters-off';

export interface MemoryPlanOptions {
  backend: string;
  /** Sequences per micro-batch (what is in memory at once). */
  batch: number;
  /** Tokens per sequence. */
  seqLen: number;
  trainable: Trainable;
  reference: ReferenceKind;
  /** Label log-probs computed in chunks over time (train.ts), not as one [batch, time, vocabulary] tensor. */
  chunked: boolean;
  /** Activation recomputation per block: each block keeps its input (hidden floats a token), one block its all. */
  recompute?: boolean;
}

export interface BackendLimit {
  backend: string;
  /** Bytes the backend can address; undefined when not known here (GPU memory). */
  bytes?: number;
  source: string;
}

export interface MemoryPlan {
  backend: string;
  batch: number;
  seqLen: number;
  parameters: number;
  trainableParameters: number;
  /** float32 weights: 4 bytes per parameter. */
  weights: number;
  /** Gradients of the trained parameters (4 bytes each). */
  gradients: number;
  /** AdamW's two moments (8 bytes per trained parameter). */
  optimizer: number;
  /** A frozen copy of the weights (reference 'copy'), else 0. */
  reference: number;
  /** Activations kept for the backward pass, the vocabulary rows included (memoryPlan's formula). */
  activations: number;
  /** Of `activations`: the [tokens, vocabulary] rows (logits, log-probs, their gradient, the reference's). */
  vocabulary: number;
  /**
   * wasm only: the heap's high-water mark beyond the live tensors during a step, as much again as
   * `activations` (the backward pass's temporaries and kernel scratch; bench/memory-check.ts measured 1.6 to 1.9
   * times the activation formula beyond it); 0 on the other backends (not measured there).
   */
  workspace: number;
  /** What the backend holds during a step: weights, trained state, reference, activations, workspace. */
  step: number;
  /** The peak while loading: the checkpoint read from disk and the backend's copy of it, 2 × weights. */
  loading: number;
  /** The process before any tensor (RUNTIME_BYTES). */
  runtime: number;
  /** Peak resident memory: runtime + the larger of loading and step. */
  total: number;
  limit: BackendLimit;
  /** On wasm the heap (step) ≤ its 4 GiB, elsewhere total ≤ RAM; true when the limit is not known. */
  fits: boolean;
}

/** The memory a backend can use: wasm's 32-bit address space, the machine's RAM for cpu and tensorflow. */
export function backendLimit(backend: string): BackendLimit {
  if (backend === 'wasm') return { backend, bytes: 4 * GIB, source: '32-bit WebAssembly memory' };
  if (backend === 'tensorflow-gpu' || backend === 'webgpu') return { backend, source: 'GPU memory, not known here' };
  return { backend, bytes: totalmem(), source: "this machine's RAM" };
}

/** The limits of the backends a plan is compared against (doctor's table). */
export function backendLimits(): (BackendLimit & { bytes: number })[] {
  return (['wasm', 'cpu', 'tensorflow'] as const).map((b) => backendLimit(b) as BackendLimit & { bytes: number });
}

/** Parameters of LoRA adapters of `rank` on every q/k/v/o and gate/up/down projection: rank × (in + out) each. */
function loraParameters(config: ModelConfig, rank: number): number {
  const { hiddenSize: h, intermediateSize: i, numHeads, numKvHeads, headDim, numLayers } = config;
  const q = numHeads * headDim;
  const kv = numKvHeads * headDim;
  const perLayer = h + q + (h + kv) * 2 + (q + h) + (h + i) * 2 + (i + h);
  return numLayers * rank * perLayer;
}

/**
 * What finetuning a model holds in memory, in bytes, all float32 (the engine loads every checkpoint as float32):
 * weights; gradients and AdamW moments of the trained parameters (all of them, or the LoRA adapters'); a
 * frozen reference copy when reference is 'copy'; and activations for `batch` sequences of `seqLen` tokens by a
 * rough formula: per token, per layer, 10·hidden + 4·intermediate + 2·heads·seqLen floats (the normed inputs,
 * q/k/v and their rotations, attention output and projections, the MLP's gate, up, activation and product,
 * attention scores before and after the softmax), plus the vocabulary rows: unchunked, 3 per token (logits,
 * log-probabilities and their gradient; 2 more for a reference's); chunked, 3 rows of one chunk
 * (LOGIT_CHUNK_BYTES, or one sequence position of the batch if larger), 2 more for a reference; and on wasm a
 * workspace (MemoryPlan.workspace). The peak is the larger of loading (2 × weights) and a step, plus the
 * runtime. Calibrated against measured peaks with bench/memory-check.ts (docs/architecture.md §6).
 */
export function memoryPlan(config: ModelConfig, options: MemoryPlanOptions): MemoryPlan {
  const { batch, seqLen, trainable } = options;
  const parameters = configParameterCount(config);
  const trainableParameters = trainable === 'full' ? parameters : loraParameters(config, trainable.loraRank);
  const weights = 4 * parameters + (trainable === 'full' ? 0 : 4 * trainableParameters);
  const gradients = 4 * trainableParameters;
  const optimizer = 8 * trainableParameters;
  const reference = options.reference === 'copy' ? 4 * parameters : 0;
  const { hiddenSize: h, intermediateSize: i, numHeads: heads, numLayers: layers, vocabSize: vocab } = config;
  const tokens = batch * seqLen;
  const rows = options.reference === 'none' ? 3 : 5;
  const fullRows = 4 * tokens * vocab;
  const chunkRows = Math.min(fullRows, Math.max(LOGIT_CHUNK_BYTES, 4 * batch * vocab));
  const vocabulary = rows * (options.chunked ? chunkRows : fullRows);
  const perBlock = 10 * h + 4 * i + 2 * heads * seqLen;
  const activations = 4 * tokens * (options.recompute ? layers * h + perBlock : layers * perBlock) + vocabulary;
  const workspace = options.backend === 'wasm' ? activations : 0;
  const step = weights + gradients + optimizer + reference + activations + workspace;
  const loading = 2 * 4 * parameters;
  const total = RUNTIME_BYTES + Math.max(loading, step);
  const limit = backendLimit(options.backend);
  // wasm's limit is its heap, which holds the step's tensors; the host copy of a loading checkpoint is outside it.
  const need = options.backend === 'wasm' ? step : total;
  return {
    backend: options.backend,
    batch,
    seqLen,
    parameters,
    trainableParameters,
    weights,
    gradients,
    optimizer,
    reference,
    activations,
    vocabulary,
    workspace,
    step,
    loading,
    runtime: RUNTIME_BYTES,
    total,
    limit,
    fits: limit.bytes === undefined || need <= limit.bytes,
  };
}

/**
 * The largest micro-batch (≤ batchSize) whose plan fits the backend's limit (or `budget` bytes when given), and
 * its plan; batch 0 when not even one sequence fits. Gradient accumulation makes up the rest of the batch.
 */
export function fitMicroBatch(
  config: ModelConfig,
  options: Omit<MemoryPlanOptions, 'batch'>,
  batchSize: number,
  budget?: number,
): { batch: number; plan: MemoryPlan } {
  const fits = (p: MemoryPlan) => (budget !== undefined ? p.total <= budget : p.fits);
  let best = memoryPlan(config, { ...options, batch: 1 });
  if (!fits(best)) return { batch: 0, plan: best };
  let batch = 1;
  for (let b = 2; b <= batchSize; b++) {
    const plan = memoryPlan(config, { ...options, batch: b });
    if (!fits(plan)) break;
    batch = b;
    best = plan;
  }
  return { batch, plan: best };
}

/**
 * The one-line refusal of a plan that does not fit (undefined when it fits): the numbers and the fix. `name`
 * names the model in the message.
 */
export function memoryRefusal(plan: MemoryPlan, name: string): string | undefined {
  if (plan.fits || plan.limit.bytes === undefined) return undefined;
  const parts = `weights ${formatBytes(plan.weights)}, gradients + AdamW ${formatBytes(plan.gradients + plan.optimizer)}, reference ${formatBytes(plan.reference)}, activations ${formatBytes(plan.activations)} at micro-batch ${plan.batch} × ${plan.seqLen} tokens${plan.workspace ? `, wasm workspace ${formatBytes(plan.workspace)}` : ''}`;
  const lora = plan.trainableParameters < plan.parameters;
  const other =
    plan.backend === 'wasm'
      ? '--backend tensorflow-gpu (or tensorflow on a machine with more RAM)'
      : 'a machine with more memory (--backend tensorflow-gpu)';
  const fix =
    plan.weights + plan.reference > plan.limit.bytes
      ? `the float32 weights alone exceed it: run with ${other}${lora ? '' : ', training LoRA adapters (train.lora) instead of every parameter'}`
      : !lora && plan.weights + plan.gradients + plan.optimizer + plan.reference > plan.limit.bytes
        ? `train LoRA adapters (train.lora) instead of every parameter, or run with ${other}`
        : `lower train.batchSize (micro-batches) or the sequence length, or run with ${other}`;
  const need = plan.backend === 'wasm' ? `${formatBytes(plan.step)} of wasm heap` : formatBytes(plan.total);
  return `finetuning ${name} needs about ${need} (estimate: ${parts}) and the ${plan.backend} backend has ${formatBytes(plan.limit.bytes)} (${plan.limit.source}). Fix: ${fix}`;
}

export class MemoryPlanError extends Error {
  readonly plan: MemoryPlan;
  constructor(plan: MemoryPlan, message: string) {
    super(message);
    this.plan = plan;
  }
}

/**
 * The plan of finetuning the checkpoint in `dir`, from its config.json alone (no weight is read or allocated);
 * throws MemoryPlanError with the one-line refusal when it does not fit the backend.
 */
export function checkCheckpointMemory(dir: string, options: MemoryPlanOptions): MemoryPlan {
  const plan = memoryPlan(readConfigFile(dir), options);
  const refusal = memoryRefusal(plan, `'${dir}'`);
  if (refusal) throw new MemoryPlanError(plan, refusal);
  return plan;
}
