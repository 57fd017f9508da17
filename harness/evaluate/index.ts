// Evaluation: generate → judge → aggregate. Safety (any judge; the micro-world oracle by default) and
// capability (exact match, GSM8K "####" answers). Every result carries its metrics' metadata.
export { evaluateSafety, type Judge, type SafetyItem } from './safety.ts';
export { exactMatch } from './capability.ts';
