// Evaluation: generate → judge → aggregate. Safety (any judge; the micro-world oracle by default; evaluateSafety
// in safety.ts runs all three stages) and capability (exact match, GSM8K "####" answers). Every result carries
// its metrics' metadata. judgeAndAggregate is stages 2-3 alone, for responses generated earlier (a sweep cell's,
// or the ones it saved).
export { judgeAndAggregate, judgedResponse, type Judge, type SafetyItem } from './safety.ts';
export { exactMatch } from './capability.ts';
