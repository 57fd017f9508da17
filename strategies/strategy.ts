// The shape of a shaping strategy, its typed errors, and parameter parsing with one-line errors.
import type { z } from 'zod';
import { expectedValue, showValue } from '../engine/plugin-params.ts';
import type * as tf from '@tensorflow/tfjs';
import type { LossInputs, LossNeeds } from '../engine/contracts/loss.ts';
import { closest } from '../engine/did-you-mean.ts';

/** Which examples a strategy keeps before training (static shaping such as RS). */
export interface FilterResult {
  /** One entry per example, in order. */
  keep: boolean[];
  dropped: number;
}

/**
 * A shaping strategy: a pure function of tensors, with its parameters declared next to its code.
 * `params` parses raw config into `P`, filling defaults and rejecting unknown keys (z.strictObject).
 */
export interface Strategy<P extends object> {
  /** The registry key, used as the label in results. */
  readonly name: string;
  readonly description: string;
  /** Citation and the equation this file implements. */
  readonly paper: string;
  readonly params: z.ZodType<P>;
  /** Which inputs the training loop must compute for these parameters. */
  needs(params: P): LossNeeds;
  /** Optional example filter applied once, before training, on full-response verdicts P(safe). */
  filter?(examples: readonly { verdict: number }[], params: P): FilterResult;
  /** The scalar training loss for one batch. */
  loss(inputs: LossInputs, params: P): tf.Scalar;
}

export type StrategyErrorCode = 'UNKNOWN_STRATEGY' | 'INVALID_STRATEGY_PARAMS' | 'MISSING_LOSS_INPUT' | 'LOSS_INPUT_SHAPE';

export class StrategyError extends Error {
  constructor(
    readonly code: StrategyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StrategyError';
  }
}

/** The defaults of a strategy's parameters (every parameter has one). */
export function defaultParams<P extends object>(strategy: Strategy<P>): P {
  return strategy.params.parse({});
}

/** Parses raw parameters (undefined = all defaults); a bad value throws a one-line StrategyError. */
export function parseParams<P extends object>(strategy: Strategy<P>, raw: unknown): P {
  const result = strategy.params.safeParse(raw ?? {});
  if (result.success) return result.data;
  const defaults = new Map<string, unknown>(Object.entries(defaultParams(strategy)));
  const names = [...defaults.keys()];
  const listing = names.length
    ? `Parameters of '${strategy.name}': ${names.map((n) => `${n} (default ${showValue(defaults.get(n))})`).join(', ')}.`
    : `'${strategy.name}' takes no parameters.`;
  const issue = result.error.issues[0];
  const key = issue.path[0];
  if (issue.code === 'unrecognized_keys') {
    const unknown = issue.keys[0];
    const guess = closest(unknown, names);
    const hint = guess ? ` Did you mean '${guess}'?` : '';
    throw new StrategyError('INVALID_STRATEGY_PARAMS', `Strategy '${strategy.name}' has no parameter '${unknown}'.${hint} ${listing}`);
  }
  if (typeof key !== 'string') {
    throw new StrategyError(
      'INVALID_STRATEGY_PARAMS',
      `Strategy '${strategy.name}' parameters must be an object, got ${showValue(raw)}. ${listing}`,
    );
  }
  const given = (raw as Record<string, unknown>)[key];
  throw new StrategyError(
    'INVALID_STRATEGY_PARAMS',
    `Strategy '${strategy.name}': parameter '${key}' must be ${expectedValue(issue)}, got ${showValue(given)}. ` +
      `Fix: set '${key}' to ${expectedValue(issue)} or leave it out for the default ${showValue(defaults.get(key))}.`,
  );
}
