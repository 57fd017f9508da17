// What one sweep cell records. result.json is validated on read (reports never trust a file blindly),
// and every metric names its judge and version, so reports never special-case a metric name.
import { z } from 'zod';
import { metricInfo, SAFETY_METRICS } from './metrics.ts';

export type { MetricInfo } from './metrics.ts';

/** Safety of one eval condition (plain, trigger, aoa, prefill, ...) on one safety set. */
export const safetyResult = z.strictObject({
  condition: z.string(),
  dataset: z.string(),
  judge: z.string(),
  /** Results written before judge versions were recorded read as version 1, the only one there was. */
  judgeVersion: z.number().int().default(1),
  n: z.number().int(),
  /** % of responses judged safe (higher is better). */
  safetyScore: z.number(),
  /** % judged harmful. */
  harmfulRate: z.number(),
  /** % that are exactly a refusal: a safe score made of refusals is real safety. */
  exactRefusalRate: z.number(),
  /** % with a repeated 3-gram: a safe score made of degenerate text is a broken model. */
  degenerationRate: z.number(),
  /** % judged safe yet fitting none of the answer skeletons, from judges that know them (the micro-world oracle). */
  malformedRate: z.number().optional(),
  /** Mean 1-5 harmfulness score, from judges that score responses (`llm-score:`); absent for the others. */
  harmfulnessScore: z.number().optional(),
  /** % of responses scored 5, from judges that score responses; absent for the others. */
  harmfulnessRate: z.number().optional(),
  perCategory: z.record(z.string(), z.strictObject({ n: z.number().int(), harmfulRate: z.number() })),
  /** The metadata of each metric field above, keyed by field (older results read as today's version-1 metrics). */
  metrics: z.record(z.string(), metricInfo).default(SAFETY_METRICS),
});
export type SafetyResult = z.infer<typeof safetyResult>;

export const capabilityResult = z.strictObject({
  dataset: z.string(),
  metric: metricInfo,
  n: z.number().int(),
  /** In % (exact match or multiple-choice accuracy). */
  value: z.number(),
});
export type CapabilityResult = z.infer<typeof capabilityResult>;

export const sampleOutput = z.strictObject({
  condition: z.string(),
  prompt: z.string(),
  response: z.string(),
  harmful: z.boolean(),
  category: z.string().optional(),
});
export type SampleOutput = z.infer<typeof sampleOutput>;

/** Safety measured after some epochs of finetuning (the harm curve). */
export const curvePoint = z.strictObject({
  epoch: z.number().int(),
  condition: z.string(),
  safetyScore: z.number(),
  harmfulRate: z.number(),
});

/** STAR chunk scores of a training example, for trajectory plots. */
export const starTrajectory = z.strictObject({
  id: z.string(),
  harmful: z.boolean().optional(),
  chunkEnds: z.array(z.number().int()),
  scores: z.array(z.number()),
  verdict: z.number(),
  words: z.array(z.string()),
});
export type StarTrajectory = z.infer<typeof starTrajectory>;

/** The axes of a cell, flattened for tables and CSV (a base row has strategy and threat 'base'). */
export const cellLabels = z.strictObject({
  kind: z.enum(['base', 'finetune']),
  model: z.string(),
  task: z.string(),
  harmful: z.string(),
  threat: z.string(),
  threatLabel: z.string(),
  strategy: z.string(),
  strategyLabel: z.string(),
  guardrail: z.string(),
  falseNegativeRate: z.number(),
  seed: z.number().int(),
});
export type CellLabels = z.infer<typeof cellLabels>;

export const cellResult = z.strictObject({
  id: z.string(),
  status: z.enum(['ok', 'error']),
  labels: cellLabels,
  error: z.strictObject({ message: z.string(), stack: z.string().optional() }).optional(),
  /**
   * Safety as the reports show it: one entry per (eval condition, safety set), all by one judge, the cell's
   * reported judge (`eval.judge`, or the last `star-dss judge` run that was made the reported one). The curve
   * and the samples are by the same judge.
   */
  safety: z.array(safetyResult),
  /**
   * Safety by other judges (`star-dss judge --no-primary`, or the judge a re-judge replaced): one entry per
   * (eval condition, safety set, judge), never the reported judge. Absent when the cell has only one judge.
   */
  otherJudges: z.array(safetyResult).optional(),
  capability: z.array(capabilityResult),
  training: z
    .strictObject({
      examples: z.number().int(),
      dropped: z.number().int(),
      steps: z.number().int(),
      tokens: z.number(),
      seconds: z.number(),
      firstLoss: z.number(),
      finalLoss: z.number(),
    })
    .optional(),
  curve: z.array(curvePoint),
  samples: z.array(sampleOutput),
  trajectories: z.array(starTrajectory),
  seconds: z.number(),
});
export type CellResult = z.infer<typeof cellResult>;
