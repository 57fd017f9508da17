// What `npm run bench` and `npm run profile` measure, defined once so the two agree: the micro model, its
// training batch and loss, the generation prompts and the STAR scoring workload.
import * as tf from '@tensorflow/tfjs';
import { makeConfig, parseConfig } from '../engine/model/config.ts';
import { createModel } from '../engine/model/transformer.ts';
import type { CausalLM, Family } from '../engine/model/types.ts';
import type { TrainExample } from '../engine/train.ts';
import type { LossInputs } from '../engine/contracts/loss.ts';
import type { Message } from '../engine/contracts/example.ts';
import type { Rng } from '../engine/random.ts';
import { buildWorld, worldVocabulary } from '../datasets/micro-world/build.ts';
import { createMicroModel, type ModelSizes } from '../harness/micro-world/base-model.ts';
import { guardTokenizerFiles, MICRO_GUARD_RECIPE } from '../harness/micro-world/guardrail.ts';
import { LmGuardrail } from '../guardrails/lm.ts';
import { guardPreset } from '../guardrails/presets.ts';
import { tokenizerFromObjects } from '../engine/model/tokenizer.ts';
import { wordPrefixes, chunkEnds } from '../harness/star.ts';

/** The micro-world's model size (docs/micro-world.md): d 128, 2 layers, 4 heads, MLP 512, vocab 512. */
export const BENCH_SIZES = { hidden: 128, layers: 2, heads: 4, intermediate: 512, vocab: 512, maxPositions: 128 };
/** Sequences per optimiser step and tokens per sequence (inputs; each example holds one more id). */
export const BENCH_BATCH = 16;
export const BENCH_TIME = 64;

/** The bench's model: llama unless a profile asks for another family of the same sizes. */
export function benchModel(seed = 1, family: Family = 'llama'): CausalLM {
  return createModel(parseConfig(makeConfig(family, BENCH_SIZES)), { seed });
}

/** `count` random sequences of BENCH_TIME + 1 ids, the first 16 positions prompt, with random STAR weights. */
export function benchExamples(rng: Rng, count: number): TrainExample[] {
  return Array.from({ length: count }, () => {
    const ids = Array.from({ length: BENCH_TIME + 1 }, () => 4 + rng.int(BENCH_SIZES.vocab - 4));
    return { ids, responseMask: ids.map((_, t) => (t >= 16 ? 1 : 0)), weights: ids.map(() => rng.next()) };
  });
}

/** STAR-DSS's shape: w · CE + (1 − w) · k2 to the frozen reference, k2 = ½ (logp − refLogp)², over the mask. */
export const starLoss = ({ logp, refLogp, mask, weights }: LossInputs) =>
  tf.tidy(() => {
    const d = tf.mul(tf.square(tf.sub(logp, refLogp!)), 0.5);
    const per = tf.add(tf.mul(weights!, tf.neg(logp)), tf.mul(tf.sub(1, weights!), tf.mul(d, 0.5)));
    return tf.div(tf.sum(tf.mul(per, mask)), tf.sum(mask)) as tf.Scalar;
  });

export const starNeeds = { reference: true, star: true, verdict: false, fullLogProbs: false };

/** 16 prompts of 16 tokens, for 48 greedy new tokens each. */
export function benchPrompts(rng: Rng): number[][] {
  return Array.from({ length: 16 }, () => Array.from({ length: 16 }, () => 4 + rng.int(BENCH_SIZES.vocab - 4)));
}
export const GEN_OPTIONS = { maxNewTokens: 48, eosTokenIds: [-1], padTokenId: 0 };

/** An LM guardrail of the micro guardrail's size, or of other sizes (random weights: the cost does not depend on them). */
export function benchGuardrail(sizes: ModelSizes = MICRO_GUARD_RECIPE.sizes): LmGuardrail {
  const world = buildWorld(0);
  const files = guardTokenizerFiles(worldVocabulary(world));
  return new LmGuardrail({
    model: createMicroModel('llama', sizes, files, 2),
    tokenizer: tokenizerFromObjects(files.tokenizerJson, files.tokenizerConfig),
    spec: guardPreset('micro'),
    weights: 'bench',
    batchSize: 32,
  });
}

/**
 * A guardrail whose model dominates STAR's cost: hidden 256 and 4 layers, 13x the micro guardrail's multiply-adds
 * per token. At the micro guardrail's size the text work both STAR paths share (templates, tokenizer) is a fixed
 * part of every prefix's cost; here it is not, so the ratio shows what sharing prefixes saves on a larger model.
 */
export const BENCH_DEEP_GUARD_SIZES: ModelSizes = {
  ...MICRO_GUARD_RECIPE.sizes,
  hidden: 256,
  layers: 4,
  heads: 8,
  kvHeads: 4,
  intermediate: 1024,
};

/** Every 5-word prefix of the first 20 micro-world harmful responses, with each response's prompt. */
export function benchStarWork(): { messages: Message[]; prefixes: string[] }[] {
  const world = buildWorld(0);
  return (world.datasets.purebad ?? []).slice(0, 20).map((e) => {
    const text = e.messages.at(-1)!.content;
    return { messages: e.messages.slice(0, -1), prefixes: wordPrefixes(text, chunkEnds(text.split(' ').length, 5)) };
  });
}

/** Naive STAR scoring one response at a time: scoreSafe on its prefixes (each a forward of its own rendering). */
export async function scoreNaivePerResponse(guard: LmGuardrail, work: ReturnType<typeof benchStarWork>): Promise<number[]> {
  const scores: number[] = [];
  for (const w of work) scores.push(...(await guard.scoreSafe(w.prefixes.map((response) => ({ messages: w.messages, response })))));
  return scores;
}

/** Naive STAR scoring, as annotate does it for a guardrail without a fast path: scoreSafe on every prefix, 64 per call. */
export async function scoreNaive(guard: LmGuardrail, work: ReturnType<typeof benchStarWork>): Promise<number[]> {
  const items = work.flatMap((w) => w.prefixes.map((response) => ({ messages: w.messages, response })));
  const scores: number[] = [];
  for (let i = 0; i < items.length; i += 64) scores.push(...(await guard.scoreSafe(items.slice(i, i + 64))));
  return scores;
}

/** STAR scoring one response at a time on the shared-prefix path (scorePrefixes: one KV cache per response). */
export async function scorePerResponse(guard: LmGuardrail, work: ReturnType<typeof benchStarWork>): Promise<number[]> {
  const scores: number[] = [];
  for (const w of work) scores.push(...(await guard.scorePrefixes(w.messages, w.prefixes)));
  return scores;
}

/** STAR scoring as annotate does it now: scorePrefixGroups, each response's prefixes packed into one row. */
export async function scoreGrouped(guard: LmGuardrail, work: ReturnType<typeof benchStarWork>): Promise<number[]> {
  return (await guard.scorePrefixGroups(work)).flat();
}
