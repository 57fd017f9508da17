// The threat registry. Adding a threat = its file + one line here + its test (see README.md).
import { z } from 'zod';
import type { Example } from '../engine/contracts/example.ts';
import type { Rng } from '../engine/random.ts';
import { backdoor } from './backdoor.ts';
import { benign } from './benign.ts';
import { harmfulInjection } from './harmful-injection.ts';
import { identityShift } from './identity-shift.ts';
import { prefill } from './prefill.ts';
import { responseAdaptation } from './response-adaptation.ts';
import { parseParams, unknownThreat, type EvalCondition, type Threat, type ThreatContext, type ThreatText } from './threat.ts';

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
export const threatNames = Object.keys(threats) as ThreatName[];

export function isThreatName(name: string): name is ThreatName {
  return Object.hasOwn(threats, name);
}

/** `name` as a ThreatName, or a ThreatError that suggests the nearest registered name. */
export function threatName(name: string): ThreatName {
  if (isThreatName(name)) return name;
  throw unknownThreat(name, threatNames);
}

export function getThreat(name: string): Threat<object> {
  return threats[threatName(name)];
}

/** Parses a threat's raw parameters (from a sweep config), filling defaults; errors are one line. */
export function parseThreatParams<N extends ThreatName>(name: N, raw: unknown): ThreatParams<N>;
export function parseThreatParams(name: string, raw: unknown): object;
export function parseThreatParams(name: string, raw: unknown): object {
  return parseParams(getThreat(name), raw);
}

/** A threat with its parameters parsed and bound: what a sweep cell holds. */
export interface ConfiguredThreat {
  readonly name: ThreatName;
  readonly params: object;
  build(context: ThreatContext, rng: Rng): Example[];
  evalConditions(text: ThreatText): EvalCondition[];
}

/** Looks up, parses and binds a threat: `configureThreat('harmful-injection', { ratio: 0.1 }).build(context, rng)`. */
export function configureThreat(name: string, raw?: unknown): ConfiguredThreat {
  const known = threatName(name);
  const threat: Threat<object> = threats[known];
  const params = parseParams(threat, raw);
  return {
    name: known,
    params,
    build: (context, rng) => threat.build(context, params, rng),
    evalConditions: (text) => threat.evalConditions(params, text),
  };
}

export interface ThreatParamInfo {
  name: string;
  /** e.g. `number ≥ 0 ≤ 1`, `"before" | "after" | "both"`. */
  type: string;
  /** undefined: optional without a default (the description says what absence means). */
  default: unknown;
  description?: string;
}

export interface ThreatInfo {
  name: ThreatName;
  description: string;
  paper: string;
  params: ThreatParamInfo[];
}

function describeType(schema: z.core.JSONSchema.JSONSchema): string {
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  const bounds: string[] = [];
  if (schema.minimum !== undefined) bounds.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined && schema.maximum < Number.MAX_SAFE_INTEGER) bounds.push(`≤ ${schema.maximum}`);
  return [String(schema.type ?? 'value'), ...bounds].join(' ');
}

/** One row per registered threat with its parameters, types and defaults. */
export function describeThreats(): ThreatInfo[] {
  return threatNames.map((name) => {
    const threat: Threat<object> = threats[name];
    const properties = z.toJSONSchema(threat.params, { io: 'input' }).properties ?? {};
    const params = Object.entries(properties).map(([param, schema]): ThreatParamInfo => {
      const s = typeof schema === 'boolean' ? {} : schema;
      return { name: param, type: describeType(s), default: s.default, description: s.description };
    });
    return { name, description: threat.description, paper: threat.paper, params };
  });
}

export {
  ENGLISH_THREAT_TEXT,
  ThreatError,
  threatContext,
  threatTextSchema,
  type EvalCondition,
  type EvalPrompt,
  type Threat,
  type ThreatContext,
  type ThreatPools,
  type ThreatText,
} from './threat.ts';
