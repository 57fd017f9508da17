// The strategy registry. Adding a strategy = its file + one line here + its test (see README.md).
import type { z } from 'zod';
import type { LossFn, LossNeeds } from '../engine/contracts/loss.ts';
import { StrategyError, type FilterResult, type Strategy } from './strategy.ts';
import { checkLossInputs } from './loss-terms.ts';
import { createRegistry, type PluginInfo } from '../engine/registry.ts';
import { sft } from './sft.ts';
import { rs } from './rs.ts';
import { reweight } from './reweight.ts';
import { starDss } from './star-dss.ts';
import { deepToken } from './deep-token.ts';
import { klOnly } from './kl-only.ts';

export const strategies = {
  sft,
  rs,
  reweight,
  'star-dss': starDss,
  'deep-token': deepToken,
  'kl-only': klOnly,
} satisfies Record<string, Strategy<object>>;

export type StrategyName = keyof typeof strategies;
export type StrategyParams<N extends StrategyName> = z.output<(typeof strategies)[N]['params']>;
const registry = createRegistry('strategy', strategies, (failure, message) =>
  failure === 'unknown-name' ? new StrategyError('UNKNOWN_STRATEGY', message) : new StrategyError('INVALID_STRATEGY_PARAMS', message),
);

export const strategyNames = registry.names;
/** `name` as a StrategyName, or a StrategyError that suggests the nearest registered name. */
export const strategyName = registry.resolve;

/** The strategy registered under `name`; an unknown name throws a StrategyError that suggests the nearest one. */
export function getStrategy<N extends StrategyName>(name: N): (typeof strategies)[N];
export function getStrategy(name: string): (typeof strategies)[StrategyName];
export function getStrategy(name: string): (typeof strategies)[StrategyName] {
  return strategies[strategyName(name)];
}

/** Parses a strategy's raw parameters (from a sweep config or CLI), filling defaults; errors are one line. */
export function parseStrategyParams<N extends StrategyName>(name: N, raw: unknown): StrategyParams<N>;
export function parseStrategyParams(name: string, raw: unknown): StrategyParams<StrategyName>;
export function parseStrategyParams(name: string, raw: unknown): StrategyParams<StrategyName> {
  return registry.parse(name, raw) as StrategyParams<StrategyName>;
}

/** A strategy with its parameters parsed and bound: what the training loop holds for one cell. */
export interface ConfiguredStrategy {
  readonly name: StrategyName;
  readonly params: object;
  readonly needs: LossNeeds;
  /** Keeps every example when the strategy does not filter. */
  filter(examples: readonly { verdict: number }[]): FilterResult;
  /** Checks that logp and mask agree, then computes the strategy's loss. */
  readonly loss: LossFn;
}

function configure<P extends object>(name: StrategyName, strategy: Strategy<P>, raw: unknown): ConfiguredStrategy {
  const params = registry.parse(name, raw) as P;
  return {
    name,
    params,
    needs: strategy.needs(params),
    filter: (examples) => strategy.filter?.(examples, params) ?? { keep: examples.map(() => true), dropped: 0 },
    loss: (inputs) => {
      checkLossInputs(inputs, name);
      return strategy.loss(inputs, params);
    },
  };
}

/** Looks up, parses and binds a strategy: `configureStrategy('star-dss', { lambda: 0.5 }).loss(inputs)`. */
export function configureStrategy(name: string, raw?: unknown): ConfiguredStrategy {
  const known = strategyName(name);
  const strategy: Strategy<object> = strategies[known];
  return configure(known, strategy, raw);
}

/** One row per registered strategy with its parameters, types and defaults (for `star-dss strategies`). */
export const describeStrategies: () => PluginInfo<StrategyName>[] = registry.describe;
