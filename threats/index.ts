// The threat registry. Adding a threat = its file + one line here + its test (see README.md).
import type { z } from 'zod';
import type { Example } from '../engine/contracts/example.ts';
import type { Rng } from '../engine/random.ts';
import { backdoor } from './backdoor.ts';
import { benign } from './benign.ts';
import { harmfulInjection } from './harmful-injection.ts';
import { identityShift } from './identity-shift.ts';
import { prefill } from './prefill.ts';
import { responseAdaptation } from './response-adaptation.ts';
import { createRegistry, type PluginInfo } from '../engine/registry.ts';
import { ThreatError, type EvalCondition, type Threat, type ThreatContext, type ThreatText } from './threat.ts';

export const threats = {
  benign,
  'harmful-injection': harmfulInjection,
  'identity-shift': identityShift,
  backdoor,
  'response-adaptation': responseAdaptation,
  prefill,
} satisfies Record<string, Threat<object>>;

export type ThreatName = keyof typeof threats;
export type ThreatParams<N extends ThreatName> = z.output<(typeof threats)[N]['params']>;
const registry = createRegistry('threat', threats, (failure, message) =>
  failure === 'unknown-name' ? new ThreatError('UNKNOWN_THREAT', message) : new ThreatError('INVALID_THREAT_PARAMS', message),
);

export const threatNames = registry.names;
/** `name` as a ThreatName, or a ThreatError that suggests the nearest registered name. */
export const threatName = registry.resolve;

/** Parses a threat's raw parameters (from a sweep config), filling defaults; errors are one line. */
export function parseThreatParams<N extends ThreatName>(name: N, raw: unknown): ThreatParams<N>;
export function parseThreatParams(name: string, raw: unknown): object;
export function parseThreatParams(name: string, raw: unknown): object {
  return registry.parse(name, raw);
}

/** A threat with its parameters parsed and bound: what a sweep cell holds. */
export interface ConfiguredThreat {
  readonly name: ThreatName;
  readonly params: object;
  /** The threat-text fields its data and conditions read. */
  readonly texts: readonly (keyof ThreatText)[];
  build(context: ThreatContext, rng: Rng): Example[];
  evalConditions(text: ThreatText): EvalCondition[];
}

/** Looks up, parses and binds a threat: `configureThreat('harmful-injection', { ratio: 0.1 }).build(context, rng)`. */
export function configureThreat(name: string, raw?: unknown): ConfiguredThreat {
  const known = threatName(name);
  const threat: Threat<object> = threats[known];
  const params = registry.parse(known, raw);
  return {
    name: known,
    params,
    texts: threat.texts,
    build: (context, rng) => threat.build(context, params, rng),
    evalConditions: (text) => threat.evalConditions(params, text),
  };
}

/** One row per registered threat with its parameters, types and defaults (for `star-dss threats`). */
export const describeThreats: () => PluginInfo<ThreatName>[] = registry.describe;

export {
  ENGLISH_THREAT_TEXT,
  namingModel,
  ThreatError,
  threatContext,
  threatTextSchema,
  type EvalCondition,
  type Threat,
  type ThreatContext,
  type ThreatText,
} from './threat.ts';
