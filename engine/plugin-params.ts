// Wording shared by the plug-in registries (strategies, threats) for one-line parameter errors.
import type { z } from 'zod';

/** A value as it appears in an error message. */
export const showValue = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));

/** What a zod issue expected, in words: "a whole number", "one of "k2", "kl"", "a number ≥ 0". */
export function expectedValue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected === 'int' ? 'a whole number' : `a ${issue.expected}`;
    case 'invalid_value':
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return `a number ${issue.inclusive ? '≥' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return `a number ${issue.inclusive ? '≤' : '<'} ${String(issue.maximum)}`;
    default:
      return `valid (${issue.message})`;
  }
}
