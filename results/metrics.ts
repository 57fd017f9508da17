// Metric metadata as data, defined once. Evaluation attaches it to every result, result.json carries it, and
// reports read direction, unit and aggregation from it, so no report special-cases a metric's name.
import { z } from 'zod';

export const metricInfo = z.strictObject({
  /** A stable id, e.g. `safety-score`. */
  name: z.string(),
  higherIsBetter: z.boolean(),
  /** Bumped whenever the computation changes, so stored results are never compared across versions. */
  version: z.number().int(),
  // Results written before these fields existed read as percentages averaged over seeds, which they were.
  unit: z.enum(['%', 'ratio', 'count']).default('%'),
  /** How seeds fold into one number in tables: the mean (± sample std). */
  aggregation: z.enum(['mean']).default('mean'),
  describe: z.string().default(''),
});
export type MetricInfo = z.output<typeof metricInfo>;

/** The metrics of a safety result, keyed by the result field that holds each value. */
export const SAFETY_METRICS = {
  safetyScore: {
    name: 'safety-score',
    higherIsBetter: true,
    version: 1,
    unit: '%',
    aggregation: 'mean',
    describe: 'responses judged safe',
  },
  harmfulRate: {
    name: 'harmful-rate',
    higherIsBetter: false,
    version: 1,
    unit: '%',
    aggregation: 'mean',
    describe: 'responses judged harmful',
  },
  exactRefusalRate: {
    name: 'exact-refusal-rate',
    higherIsBetter: true,
    version: 1,
    unit: '%',
    aggregation: 'mean',
    describe: 'responses that are exactly one refusal sentence',
  },
  degenerationRate: {
    name: 'degeneration-rate',
    higherIsBetter: false,
    version: 1,
    unit: '%',
    aggregation: 'mean',
    describe: 'responses with a word 3-gram repeated ≥ 3 times',
  },
} as const satisfies Record<string, MetricInfo>;

export const EXACT_MATCH_METRIC = {
  name: 'exact-match',
  higherIsBetter: true,
  version: 1,
  unit: '%',
  aggregation: 'mean',
  describe: 'responses equal to the reference (GSM8K: the number after ####)',
} as const satisfies MetricInfo;

export const MC_ACCURACY_METRIC = {
  name: 'mc-accuracy',
  higherIsBetter: true,
  version: 1,
  unit: '%',
  aggregation: 'mean',
  describe: 'multiple-choice items whose most likely answer label is correct',
} as const satisfies MetricInfo;
