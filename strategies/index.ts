// The strategy registry. Adding a strategy = its file + one line here + its test (see README.md).
import { z } from 'zod';
import type { LossFn, LossNeeds } from '../engine/contracts/loss.ts';
import { StrategyError, parseParams, type FilterResult, type Strategy } from './strategy.ts';
import { checkLossInputs } from './loss-terms.ts';
import { closest } from '../engine/did-you-mean.ts';
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
export const strategyNames = Object.keys(strategies) as StrategyName[];

export function isStrategyName(name: string): name is StrategyName {
  return Object.hasOwn(strategies, name);
}

/** The strategy registered under `name`; an unknown name throws a StrategyError that suggests the nearest one. */
export function getStrategy<N extends StrategyName>(name: N): (typeof strategies)[N];
export function getStrategy(name: string): (typeof strategies)[StrategyName];
export function getStrategy(name: string): (typeof strategies)[StrategyName] {
  return strategies[strategyName(name)];
}

/** `name` as a StrategyName, or a StrategyError that suggests the nearest registered name. */
export function strategyName(name: string): StrategyName {
  if (isStrategyName(name)) return name;
  const guess = closest(name, strategyNames);
  throw new StrategyError(
    'UNKNOWN_STRATEGY',
    `Unknown strategy '${name}'.${guess ? ` Did you mean '${guess}'?` : ''} Available: ${strategyNames.join(', ')}.`,
  );
}

/** Parses a strategy's raw parameters (from a sweep config or CLI), filling defaults; errors are one line. */
export function parseStrategyParams<N extends StrategyName>(name: N, raw: unknown): StrategyParams<N>;
export function parseStrategyParams(name: string, raw: unknown): StrategyParams<StrategyName>;
export function parseStrategyParams(name: string, raw: unknown): StrategyParams<StrategyName> {
  const strategy: Strategy<StrategyParams<StrategyName>> = getStrategy(name);
  return parseParams(strategy, raw);
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
  const params = parseParams(strategy, raw);
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

export interface StrategyParamInfo {
  name: string;
  /** e.g. `number ≥ 0`, `"k2" | "kl"`, `boolean`. */
  type: string;
  default: unknown;
  description?: string;
}

export interface StrategyInfo {
  name: StrategyName;
  description: string;
  paper: string;
  params: StrategyParamInfo[];
}

function describeType(schema: z.core.JSONSchema.JSONSchema): string {
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  const bounds: string[] = [];
  if (schema.minimum !== undefined) bounds.push(`≥ ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined) bounds.push(`> ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined && schema.maximum < Number.MAX_SAFE_INTEGER) bounds.push(`≤ ${schema.maximum}`);
  if (schema.exclusiveMaximum !== undefined) bounds.push(`< ${schema.exclusiveMaximum}`);
  return [String(schema.type ?? 'value'), ...bounds].join(' ');
}

/** One row per registered strategy with its parameters, types and defaults (for `star-dss strategies`). */
export function describeStrategies(): StrategyInfo[] {
  return strategyNames.map((name) => {
    const strategy: Strategy<object> = strategies[name];
    const properties = z.toJSONSchema(strategy.params, { io: 'input' }).properties ?? {};
    const params = Object.entries(properties).map(([param, schema]): StrategyParamInfo => {
      const s = typeof schema === 'boolean' ? {} : schema;
      return { name: param, type: describeType(s), default: s.default, description: s.description };
    });
    return { name, description: strategy.description, paper: strategy.paper, params };
  });
}
