// The shape of a shaping strategy and its typed errors (parameter parsing is the registry's: engine/registry.ts).
import type { PluginSpec } from '../engine/registry.ts';
import type * as tf from '@tensorflow/tfjs';
import type { LossInputs, LossNeeds } from '../engine/contracts/loss.ts';

/** Which examples a strategy keeps in the training set (static shaping such as RS). */
export interface FilterResult {
  /** One entry per example, in order: false removes the example before training. */
  keep: boolean[];
  /**
   * Examples the strategy learns nothing from: those removed (keep false) plus those kept in the batches with
   * weight 0 (RS's default mode). It is what `training.dropped` of a result records.
   */
  dropped: number;
}

/**
 * A shaping strategy: a pure function of tensors, with its parameters declared next to its code.
 * `params` parses raw config into `P`, filling defaults and rejecting unknown keys (z.strictObject).
 */
export interface Strategy<P extends object> extends PluginSpec<P> {
  /** Which inputs the training loop must compute for these parameters. */
  needs(params: P): LossNeeds;
  /** Optional example filter applied once, before training, on full-response verdicts P(safe) (see FilterResult). */
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
