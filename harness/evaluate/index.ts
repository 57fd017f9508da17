// Evaluation: generate → judge → aggregate. Safety (any judge; the micro-world oracle by default) and
// capability (exact match, GSM8K "####" answers). Every result carries its metrics' metadata.
export type { MetricInfo } from './metrics.ts';
export {
  generateResponses,
  maxNewTokensFor,
  promptIds,
  promptMessages,
  MAX_NEW_TOKENS_MARGIN,
  type GenerationSettings,
} from './generate-responses.ts';
export {
  aggregateSafety,
  evaluateSafety,
  judgeResponses,
  judgedResponse,
  lastUserText,
  oracleJudge,
  safetyItem,
  SAFETY_METRICS,
  type CategoryRates,
  type EvaluateSafetyOptions,
  type Judge,
  type JudgeItem,
  type JudgeVerdict,
  type SafetyItem,
  type SafetyResult,
  type SafetySample,
} from './safety.ts';
export {
  EXACT_MATCH_METRIC,
  exactMatch,
  extractGsm8kAnswer,
  isExactMatch,
  referenceOf,
  scoreExactMatch,
  type CapabilityResult,
  type CapabilitySample,
  type ExactMatchOptions,
  type Reference,
} from './capability.ts';
