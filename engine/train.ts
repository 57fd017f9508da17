// The training loop: AdamW with decoupled weight decay, linear warmup then cosine decay, global-norm
// clipping, gradient accumulation, padding and response masks, seeded shuffling. The loss is the caller's
// (a shaping strategy): a pure function of per-token label log-probs, so strategies never touch this file.
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { oneHot } from './tensor/ops.ts';
import { Rng } from './random.ts';
import type { CausalLM } from './model/types.ts';
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
}

export interface TrainResult {
  losses: number[];
  steps: number;
  tokens: number;
  seconds: number;
}

export class TrainError extends Error {
  readonly code: 'NON_FINITE_LOSS' | 'BAD_INPUT';
  constructor(code: 'NON_FINITE_LOSS' | 'BAD_INPUT', message: string) {
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
export function labelLogProbs(model: CausalLM, ids: tf.Tensor2D, labels: tf.Tensor2D): { logProbs: tf.Tensor3D; logp: tf.Tensor2D } {
  const logits = model.forward(ids).logits;
  const logProbs = tf.logSoftmax(logits) as tf.Tensor3D;
  const logp = tf.sum(tf.mul(logProbs, oneHot(labels, logits.shape[2])), -1) as tf.Tensor2D;
  return { logProbs, logp };
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
      needs.reference && options.reference ? tf.tidy(() => labelLogProbs(options.reference!, batch.ids, batch.labels)) : undefined;
    const result = tf.variableGrads(() => {
      const { logProbs, logp } = labelLogProbs(model, batch.ids, batch.labels);
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
      const sum = accumulated.map((g, k) => tf.add(g, grads[k]));
      tf.dispose([...accumulated, ...grads]);
      accumulated = sum;
    }
  }
  return { grads: accumulated ?? [], loss: lossSum / micro.length, tokens };
}

/** Averages summed gradients over `count` micro-batches, clips by global norm, takes an AdamW step; returns the norm. */
function adamWStep(optimiser: Optimiser, summed: tf.Tensor[], count: number, step: number, lr: number): number {
  const { config, vars, moments } = optimiser;
  return tf.tidy(() => {
    const scaled = summed.map((g) => tf.div(g, count));
    const norm = tf.sqrt(tf.addN(scaled.map((g) => tf.sum(tf.square(g)))));
    const n = norm.dataSync()[0];
    const factor = config.clipNorm > 0 && n > config.clipNorm ? config.clipNorm / (n + 1e-6) : 1;
    const [b1, b2] = config.betas;
    const c1 = 1 - b1 ** step;
    const c2 = 1 - b2 ** step;
    vars.forEach((p, k) => {
      const g = factor === 1 ? scaled[k] : tf.mul(scaled[k], factor);
      const { m, v } = moments[k];
      m.assign(tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1)));
      v.assign(tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2)));
      const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), config.eps));
      const decay = config.weightDecay > 0 && p.rank >= 2 ? tf.mul(p, config.weightDecay) : undefined;
      p.assign(tf.sub(p, tf.mul(decay ? tf.add(update, decay) : update, lr)));
    });
    return n;
  });
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
  const microBatch = Math.max(1, Math.floor(config.batchSize / config.gradAccum));
  const perStep = microBatch * config.gradAccum;
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
        const gradNorm = adamWStep(optimiser, grads, micro.length, step, lr);
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
  return { losses, steps: step, tokens: tokensSeen, seconds: (performance.now() - started) / 1000 };
}
