// The training loop: AdamW with decoupled weight decay, linear warmup then cosine decay, global-norm
// clipping, gradient accumulation, padding and response masks, seeded shuffling. The loss is the caller's
// (a shaping strategy): a pure function of per-token label log-probs, so strategies never touch this file.
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { adamWUpdate, labelLogProb, labelLogProbGrad, matMul, oneHot } from './tensor/ops.ts';
import { headLogits } from './model/transformer.ts';
import { fitMicroBatch, LOGIT_CHUNK_BYTES, memoryRefusal, type MemoryPlan, type ReferenceKind, type Trainable } from './memory-plan.ts';
import { Rng } from './random.ts';
import type { CausalLM, ForwardOptions, ModelConfig } from './model/types.ts';
import type { LossFn, LossInputs, LossNeeds } from './contracts/loss.ts';

/** One tokenized training sequence. Per-token arrays are indexed by sequence position. */
export interface TrainExample {
  ids: number[];
  /** 1 on tokens that are learned (the response and its end token), 0 on the prompt. */
  responseMask: number[];
  /** STAR weight of each token (needed only by strategies that ask for it). */
  weights?: number[];
  /** Full-response P(safe) (needed only by strategies that ask for it). */
  verdict?: number;
}

/**
 * Optimiser and schedule settings with their defaults: the one place training defaults live. Sweep configs
 * parse `train:` with this schema; recipes (the micro-world's base models and guardrail) override fields.
 */
export const trainSettings = z.strictObject({
  epochs: z.number().int().positive().default(10),
  lr: z.number().positive().default(3e-4),
  /** Cosine decay ends here. */
  minLr: z.number().min(0).default(3e-5),
  /** Examples per optimiser step = microBatch × gradAccum. */
  batchSize: z.number().int().positive().default(16),
  gradAccum: z.number().int().positive().default(1),
  /** Warmup steps; when absent, warmupRatio × total steps. */
  warmupSteps: z.number().int().min(0).optional(),
  warmupRatio: z.number().min(0).max(1).default(0.03),
  betas: z.tuple([z.number(), z.number()]).default([0.9, 0.95]),
  weightDecay: z.number().min(0).default(0),
  /** Global gradient-norm clip; 0 disables. */
  clipNorm: z.number().min(0).default(1),
  /** Train LoRA adapters (engine/model/lora.ts, PEFT's conventions) instead of every weight; the base stays frozen. */
  lora: z
    .strictObject({
      rank: z.number().int().positive().default(8),
      alpha: z.number().positive().default(16),
      dropout: z.number().min(0).lt(1).default(0),
      /** Module names or one regex; default every attention and MLP projection. */
      targets: z.union([z.array(z.string()).min(1), z.string()]).optional(),
      rslora: z.boolean().default(false),
    })
    .optional(),
});
export type TrainSettings = z.output<typeof trainSettings>;

export interface TrainConfig extends TrainSettings {
  eps: number;
  seed: number;
  /** Token id used to pad batches (masked out of the loss). */
  padId: number;
}

export const defaultTrainConfig: TrainConfig = { ...trainSettings.parse({}), eps: 1e-8, seed: 42, padId: 0 };

export interface StepInfo {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  seconds: number;
}

export interface TrainOptions {
  loss: LossFn;
  needs: LossNeeds;
  /** The frozen reference π_ref, required when needs.reference. */
  reference?: CausalLM;
  config?: Partial<TrainConfig>;
  onStep?: (info: StepInfo) => void;
  /** Called after each epoch (e.g. to evaluate a harm curve). */
  onEpoch?: (epoch: number) => void | Promise<void>;
  /**
   * Size micro-batches to memory (engine/memory-plan.ts): the largest micro-batch whose plan fits the backend's
   * limit (or `budget` bytes), at most batchSize / gradAccum, with gradient accumulation up to the configured
   * examples per step. A model for which not even one sequence fits is refused (TrainError MEMORY) before any
   * step. Absent: micro-batches of batchSize / gradAccum, as configured.
   */
  memory?: { backend: string; budget?: number; trainable?: Trainable; reference?: ReferenceKind };
  /** Activation recomputation per block (ForwardOptions.recompute): less memory, about one more forward pass. */
  recompute?: boolean;
}

export interface TrainResult {
  losses: number[];
  steps: number;
  tokens: number;
  seconds: number;
  /** Sequences per micro-batch the run used (sized to memory when options.memory was given). */
  microBatch: number;
  /** The memory plan of that micro-batch, when options.memory was given. */
  memoryPlan?: MemoryPlan;
}

export class TrainError extends Error {
  readonly code: 'NON_FINITE_LOSS' | 'BAD_INPUT' | 'MEMORY';
  constructor(code: 'NON_FINITE_LOSS' | 'BAD_INPUT' | 'MEMORY', message: string) {
    super(message);
    this.code = code;
  }
}

/** Learning rate at a 1-based step: linear warmup to `lr`, then cosine decay to `minLr`. */
export function learningRate(step: number, totalSteps: number, config: Pick<TrainConfig, 'lr' | 'minLr'>, warmup: number): number {
  if (warmup > 0 && step <= warmup) return (config.lr * step) / warmup;
  const progress = totalSteps > warmup ? Math.min(1, (step - warmup) / (totalSteps - warmup)) : 1;
  return config.minLr + (config.lr - config.minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
}

interface Batch {
  ids: tf.Tensor2D; // [batch, time] inputs (tokens 0..n-2)
  labels: tf.Tensor2D; // [batch, time] next tokens (1..n-1)
  mask: tf.Tensor2D; // [batch, time] 1 where the label is a response token
  weights?: tf.Tensor2D; // [batch, time] STAR weight of the label token
  verdicts?: tf.Tensor1D; // [batch]
  tokens: number;
}

/** Right-pads a list of examples into label-aligned tensors (position t predicts token t+1). */
export function makeBatch(examples: TrainExample[], padId: number, needs: Pick<LossNeeds, 'star' | 'verdict'>): Batch {
  const time = Math.max(...examples.map((e) => e.ids.length)) - 1;
  const size = examples.length * time;
  const ids = new Int32Array(size).fill(padId);
  const labels = new Int32Array(size).fill(padId);
  const mask = new Float32Array(size);
  const weights = needs.star ? new Float32Array(size) : undefined;
  let tokens = 0;
  examples.forEach((e, b) => {
    if (e.ids.length < 2 || e.responseMask.length !== e.ids.length) {
      throw new TrainError('BAD_INPUT', `training example ${b} needs ≥ 2 tokens and a response mask of equal length`);
    }
    if (needs.star && e.weights?.length !== e.ids.length) {
      throw new TrainError('BAD_INPUT', `training example ${b} has no per-token STAR weights, which the strategy needs`);
    }
    for (let t = 0; t < e.ids.length - 1; t++) {
      const i = b * time + t;
      ids[i] = e.ids[t];
      labels[i] = e.ids[t + 1];
      mask[i] = e.responseMask[t + 1];
      if (weights) weights[i] = e.weights![t + 1];
      tokens += mask[i];
    }
  });
  let verdicts: tf.Tensor1D | undefined;
  if (needs.verdict) {
    const missing = examples.findIndex((e) => e.verdict === undefined);
    if (missing >= 0) throw new TrainError('BAD_INPUT', `training example ${missing} has no verdict, which the strategy needs`);
    verdicts = tf.tensor1d(examples.map((e) => e.verdict!));
  }
  const shape: [number, number] = [examples.length, time];
  return {
    ids: tf.tensor2d(ids, shape, 'int32'),
    labels: tf.tensor2d(labels, shape, 'int32'),
    mask: tf.tensor2d(mask, shape),
    weights: weights && tf.tensor2d(weights, shape),
    verdicts,
    tokens,
  };
}

function disposeBatch(batch: Batch): void {
  tf.dispose([batch.ids, batch.labels, batch.mask, ...(batch.weights ? [batch.weights] : []), ...(batch.verdicts ? [batch.verdicts] : [])]);
}

/** Log-softmax rows [batch, time, vocab] and the label log-probs [batch, time] of a model on a batch. */
function fullLabelLogProbs(
  model: CausalLM,
  ids: tf.Tensor2D,
  labels: tf.Tensor2D,
  forward: ForwardOptions = {},
): { logProbs: tf.Tensor3D; logp: tf.Tensor2D } {
  const logits = model.forward(ids, forward).logits;
  const logProbs = tf.logSoftmax(logits) as tf.Tensor3D;
  const logp = tf.sum(tf.mul(logProbs, oneHot(labels, logits.shape[2])), -1) as tf.Tensor2D;
  return { logProbs, logp };
}

/**
 * Largest single chunk of logits the forward keeps for the backward (rather than recomputing it there): small
 * next to the memory plan's chunk allowance (LOGIT_CHUNK_BYTES), and the micro-world's batches fit in it.
 */
const KEEP_LOGIT_BYTES = 8 * 1024 ** 2;

/** Time steps per chunk so that one chunk's [batch, steps, vocab] float32 logits stay within `chunkBytes`. */
function chunkSteps(batch: number, time: number, vocab: number, chunkBytes: number): number {
  return Math.max(1, Math.min(time, Math.floor(chunkBytes / (4 * batch * vocab))));
}

/**
 * Label log-probs [batch, time] from hidden states [batch, time, hidden] and the head [vocab, hidden], in chunks
 * over time with a custom gradient: the forward keeps one chunk's logits at a time (logits → logsumexp → label
 * logit), and the backward recomputes each chunk's logits and returns the gradients wrt the hidden states and
 * the head. No [batch, time, vocab] tensor exists for the whole batch, except when one chunk of at most
 * KEEP_LOGIT_BYTES covers it: then the forward keeps those logits and the backward reuses them. With
 * `headGrad` false (a frozen head: LoRA) the head is not an input of the custom gradient, so its [vocab, hidden]
 * gradient, as large as the head itself, is never computed.
 */
export function chunkedLabelLogProbs(
  config: ModelConfig,
  hidden: tf.Tensor3D,
  head: tf.Tensor2D,
  labels: tf.Tensor2D,
  chunkBytes = LOGIT_CHUNK_BYTES,
  headGrad = true,
): tf.Tensor2D {
  const [batch, time] = labels.shape;
  const vocab = head.shape[0];
  const steps = chunkSteps(batch, time, vocab, chunkBytes);
  const chunks: [number, number][] = [];
  for (let t = 0; t < time; t += steps) chunks.push([t, Math.min(steps, time - t)]);
  const slice3 = (x: tf.Tensor, [t, n]: [number, number]) => x.slice([0, t, 0], [batch, n, -1]);
  const labelsOf = ([t, n]: [number, number]) => labels.slice([0, t], [batch, n]);
  // One chunk of at most KEEP_LOGIT_BYTES: the forward keeps its logits for the backward instead of recomputing them.
  const keep = chunks.length === 1 && 4 * batch * time * vocab <= KEEP_LOGIT_BYTES;
  const fn = tf.customGrad((hIn, ...rest) => {
    const h = hIn as tf.Tensor3D;
    const w = headGrad ? (rest[0] as tf.Tensor2D) : head;
    const saveIn = rest.at(-1);
    const kept: tf.Tensor[] = [];
    const parts = chunks.map((chunk) =>
      tf.tidy(() => {
        const logits = headLogits(config, slice3(h, chunk), w as tf.Tensor2D);
        if (keep) kept.push(tf.keep(logits));
        const flat = labelLogProb(logits.reshape([-1, vocab]) as tf.Tensor2D, labelsOf(chunk).reshape([-1]) as tf.Tensor1D);
        return flat.reshape([batch, chunk[1]]);
      }),
    );
    (saveIn as tf.GradSaveFunc)([h, w, ...kept]);
    tf.dispose(kept); // the saved copies share their buffers
    const value = (parts.length === 1 ? parts[0] : tf.concat(parts, 1)) as tf.Tensor2D;
    if (parts.length > 1) tf.dispose(parts);
    return {
      value,
      gradFunc: (dy, saved) => {
        const [sh, sw, keptLogits] = saved as [tf.Tensor3D, tf.Tensor2D, tf.Tensor3D?];
        const dh: tf.Tensor[] = [];
        let dw: tf.Tensor | undefined;
        for (const chunk of chunks) {
          const [dhChunk, dwSum] = tf.tidy(() => {
            const hc = slice3(sh, chunk);
            const logits = keptLogits ?? headLogits(config, hc, sw);
            // d logp / d logits = onehot − softmax, times the upstream gradient of each position.
            const dyc = (dy as tf.Tensor2D).slice([0, chunk[0]], [batch, chunk[1]]).reshape([-1]) as tf.Tensor1D;
            const rows = logits.reshape([-1, vocab]) as tf.Tensor2D;
            let dz: tf.Tensor = labelLogProbGrad(rows, labelsOf(chunk).reshape([-1]) as tf.Tensor1D, dyc).reshape(logits.shape);
            if (config.finalSoftcap !== undefined) dz = tf.mul(dz, tf.sub(1, tf.square(tf.div(logits, config.finalSoftcap))));
            if (config.logitsDivisor !== 1) dz = tf.div(dz, config.logitsDivisor);
            const flat = dz.reshape([-1, vocab]) as tf.Tensor2D; // [rows, vocab]
            const hFlat = hc.reshape([-1, sh.shape[2]]) as tf.Tensor2D; // [rows, hidden]
            const dhc = matMul(flat, sw).reshape(hc.shape); // [batch, steps, hidden]
            if (!headGrad) return [dhc, undefined];
            const dwc = matMul(flat, hFlat, true, false); // head gradient [vocab, hidden]
            return [dhc, dw ? tf.add(dw, dwc) : dwc];
          });
          dw?.dispose();
          dw = dwSum;
          dh.push(dhChunk);
        }
        const dhAll = dh.length === 1 ? dh[0] : tf.concat(dh, 1);
        if (dh.length > 1) tf.dispose(dh);
        return headGrad ? [dhAll, dw as tf.Tensor] : [dhAll];
      },
    };
  });
  return (headGrad ? fn(hidden, head) : fn(hidden)) as tf.Tensor2D;
}

/**
 * The label log-probs [batch, time] of a model on a batch, and with `full` the log-softmax rows [batch, time,
 * vocab] too. Without `full` (and for a model with forwardHidden) they are computed in chunks over time
 * (chunkedLabelLogProbs), so only one chunk's logits exist at a time, in the forward and in the backward.
 */
export function labelLogProbs(
  model: CausalLM,
  ids: tf.Tensor2D,
  labels: tf.Tensor2D,
  options: { full?: boolean; chunkBytes?: number; recompute?: boolean } = {},
): { logProbs?: tf.Tensor3D; logp: tf.Tensor2D } {
  const forward = options.recompute ? { recompute: true } : {};
  if (options.full || !model.forwardHidden) return fullLabelLogProbs(model, ids, labels, forward);
  const { hidden, head } = model.forwardHidden(ids, forward);
  // A head that is a model parameter is trained; any other (a LoRA model's frozen base weights) is not.
  const headGrad = !(head instanceof tf.Variable) || [...model.params.values()].includes(head);
  return { logp: chunkedLabelLogProbs(model.config, hidden, head, labels, options.chunkBytes, headGrad) };
}

function zeroState(p: tf.Variable): tf.Variable {
  const zeros = tf.zerosLike(p);
  const state = tf.variable(zeros, false);
  zeros.dispose(); // the variable holds its own reference to the data
  return state;
}

/** AdamW state for one parameter. */
interface Moments {
  m: tf.Variable;
  v: tf.Variable;
}

/** Optimiser state and the schedule one training run shares between its steps. */
interface Optimiser {
  config: TrainConfig;
  vars: tf.Variable[];
  moments: Moments[];
  warmup: number;
}

/** The loss value and parameter gradients of one micro-batch (the reference's forward runs without gradients). */
function lossAndGrads(model: CausalLM, batch: Batch, options: TrainOptions, vars: tf.Variable[]): { value: tf.Scalar; grads: tf.Tensor[] } {
  const { needs } = options;
  return tf.tidy(() => {
    const ref =
      needs.reference && options.reference
        ? tf.tidy(() => labelLogProbs(options.reference!, batch.ids, batch.labels, { full: needs.fullLogProbs }))
        : undefined;
    const result = tf.variableGrads(() => {
      const { logProbs, logp } = labelLogProbs(model, batch.ids, batch.labels, { full: needs.fullLogProbs, recompute: options.recompute });
      const inputs: LossInputs = {
        logp,
        refLogp: ref?.logp,
        mask: batch.mask,
        weights: batch.weights,
        verdicts: batch.verdicts,
        logProbs: needs.fullLogProbs ? logProbs : undefined,
        refLogProbs: needs.fullLogProbs ? ref?.logProbs : undefined,
      };
      return options.loss(inputs);
    }, vars);
    return { value: result.value, grads: vars.map((v) => result.grads[v.name]) };
  });
}

/**
 * Sums the gradients of the micro-batches of one optimiser step; returns them with the mean loss and the
 * response tokens seen. A non-finite loss stops training with the step and epoch in the message.
 */
async function accumulate(
  model: CausalLM,
  micro: TrainExample[][],
  options: TrainOptions,
  optimiser: Optimiser,
  where: { step: number; epoch: number },
): Promise<{ grads: tf.Tensor[]; loss: number; tokens: number }> {
  let accumulated: tf.Tensor[] | undefined;
  let lossSum = 0;
  let tokens = 0;
  for (const examples of micro) {
    const batch = makeBatch(examples, optimiser.config.padId, options.needs);
    tokens += batch.tokens;
    const { value, grads } = lossAndGrads(model, batch, options, optimiser.vars);
    disposeBatch(batch);
    const lossValue = (await value.data())[0];
    value.dispose();
    if (!Number.isFinite(lossValue)) {
      tf.dispose(grads);
      tf.dispose(accumulated ?? []);
      throw new TrainError('NON_FINITE_LOSS', `training stopped at step ${where.step} (epoch ${where.epoch}): the loss is ${lossValue}`);
    }
    lossSum += lossValue;
    if (!accumulated) accumulated = grads;
    else {
      // One parameter at a time, so that only one extra gradient-sized tensor exists at once.
      const sums = accumulated;
      sums.forEach((g, k) => {
        sums[k] = tf.add(g, grads[k]);
        tf.dispose([g, grads[k]]);
      });
    }
  }
  return { grads: accumulated ?? [], loss: lossSum / micro.length, tokens };
}

/**
 * Averages summed gradients over `count` micro-batches, clips by global norm, takes an AdamW step; returns the norm.
 * One parameter at a time, each in its own tidy: the temporaries of the update (a few parameter-sized tensors)
 * exist for one parameter at once, not for the whole model (which on wasm ran out of its 4 GiB).
 */
async function adamWStep(optimiser: Optimiser, summed: tf.Tensor[], count: number, step: number, lr: number): Promise<number> {
  const { config, vars, moments } = optimiser;
  const squares = summed.map((g) => tf.tidy(() => tf.sum(tf.square(tf.div(g, count)))));
  // A running sum, not tf.addN: tfjs-webgpu's AddN gives a wrong total over many inputs (the clipped steps drifted).
  const norm = tf.tidy(() => tf.sqrt(squares.reduce((total, s) => tf.add(total, s))));
  const n = (await norm.data())[0]; // an async read: backends such as webgpu have no synchronous one
  tf.dispose([...squares, norm]);
  const factor = config.clipNorm > 0 && n > config.clipNorm ? config.clipNorm / (n + 1e-6) : 1;
  const [b1, b2] = config.betas;
  const c1 = 1 - b1 ** step;
  const c2 = 1 - b2 ** step;
  vars.forEach((p, k) => {
    // One parameter at a time (one fused kernel on wasm): a few parameter-sized tensors exist at once.
    const { m, v } = moments[k];
    const [p2, m2, v2] = adamWUpdate(p, m, v, summed[k], {
      gradScale: factor / count,
      lr,
      beta1: b1,
      beta2: b2,
      correction1: c1,
      correction2: c2,
      eps: config.eps,
      decay: config.weightDecay > 0 && p.rank >= 2 ? config.weightDecay : 0,
    });
    p.assign(p2);
    m.assign(m2);
    v.assign(v2);
    tf.dispose([p2, m2, v2]);
  });
  return n;
}

/**
 * Trains `model` in place on `examples` with the caller's loss.
 * Weight decay is decoupled (AdamW) and applies to matrices and embeddings only, not to norms or biases.
 */
export async function train(model: CausalLM, examples: TrainExample[], options: TrainOptions): Promise<TrainResult> {
  const config: TrainConfig = { ...defaultTrainConfig, ...options.config };
  if (options.needs.reference && !options.reference)
    throw new TrainError('BAD_INPUT', 'the strategy needs a reference model, but none was given');
  if (examples.length === 0) throw new TrainError('BAD_INPUT', 'no training examples');
  const configured = Math.max(1, Math.floor(config.batchSize / config.gradAccum));
  const perStep = configured * config.gradAccum;
  let microBatch = configured;
  let plan: MemoryPlan | undefined;
  if (options.memory) {
    const m = options.memory;
    const seqLen = Math.max(...examples.map((e) => e.ids.length)) - 1;
    const fit = fitMicroBatch(
      model.config,
      {
        backend: m.backend,
        seqLen,
        trainable: m.trainable ?? 'full',
        reference: m.reference ?? (options.needs.reference ? 'copy' : 'none'),
        chunked: !options.needs.fullLogProbs && model.forwardHidden !== undefined,
        recompute: options.recompute,
      },
      configured,
      m.budget,
    );
    plan = fit.plan;
    if (fit.batch === 0)
      throw new TrainError(
        'MEMORY',
        memoryRefusal(
          m.budget === undefined ? fit.plan : { ...fit.plan, fits: false, limit: { ...fit.plan.limit, bytes: m.budget } },
          'this model',
        ) ?? 'not even one sequence fits the memory budget',
      );
    microBatch = fit.batch;
  }
  const totalSteps = Math.ceil(examples.length / perStep) * config.epochs;
  const vars = [...model.params.values()];
  const optimiser: Optimiser = {
    config,
    vars,
    moments: vars.map((p) => ({ m: zeroState(p), v: zeroState(p) })),
    warmup: config.warmupSteps ?? Math.round(config.warmupRatio * totalSteps),
  };
  const rng = new Rng(config.seed);
  const losses: number[] = [];
  const started = performance.now();
  let step = 0;
  let tokensSeen = 0;

  try {
    for (let epoch = 1; epoch <= config.epochs; epoch++) {
      // 1. Seeded shuffle, then micro-batches grouped into optimiser steps.
      const order = rng.shuffle(examples.map((_, i) => i));
      for (let start = 0; start < order.length; start += perStep) {
        step++;
        const stepIdx = order.slice(start, start + perStep);
        const micro: TrainExample[][] = [];
        for (let j = 0; j < stepIdx.length; j += microBatch) micro.push(stepIdx.slice(j, j + microBatch).map((i) => examples[i]));
        // 2. Accumulate gradients of the mean micro-batch loss.
        const { grads, loss, tokens } = await accumulate(model, micro, options, optimiser, { step, epoch });
        tokensSeen += tokens;
        losses.push(loss);
        // 3. Average, clip by global norm, and take an AdamW step.
        const lr = learningRate(step, totalSteps, config, optimiser.warmup);
        const gradNorm = await adamWStep(optimiser, grads, micro.length, step, lr);
        tf.dispose(grads);
        options.onStep?.({
          step,
          totalSteps,
          epoch,
          loss,
          lr,
          gradNorm,
          tokens: tokensSeen,
          seconds: (performance.now() - started) / 1000,
        });
      }
      await options.onEpoch?.(epoch);
    }
  } finally {
    tf.dispose(optimiser.moments.flatMap(({ m, v }) => [m, v]));
  }
  return {
    losses,
    steps: step,
    tokens: tokensSeen,
    seconds: (performance.now() - started) / 1000,
    microBatch,
    ...(plan ? { memoryPlan: plan } : {}),
  };
}
