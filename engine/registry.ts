// One registry-and-parameters helper for the plug-in folders that declare typed parameters (strategies,
// threats): name lookup that suggests the nearest name, parameter parsing with one-line errors that list
// every parameter and its default, and a description of every entry for the CLI and the docs.
import { z } from 'zod';
import { closest } from './did-you-mean.ts';

/** What every registered plug-in declares next to its code. */
export interface PluginSpec<P extends object = object> {
  /** The registry key, used as the label in results. */
  readonly name: string;
  readonly description: string;
  /** Citation and the equation or section the file implements. */
  readonly paper: string;
  /** Parses raw config into P, filling defaults and rejecting unknown keys (z.strictObject). */
  readonly params: z.ZodType<P>;
}

export interface ParamInfo {
  name: string;
  /** e.g. `number ≥ 0 ≤ 1`, `"k2" | "kl"`, `boolean`. */
  type: string;
  /** undefined: optional without a default (the description says what absence means). */
  default: unknown;
  description?: string;
}

export interface PluginInfo<N extends string = string> {
  name: N;
  description: string;
  paper: string;
  params: ParamInfo[];
}

/** The two failures a registry reports; each plug-in folder maps them onto its own typed error. */
export type RegistryFailure = 'unknown-name' | 'invalid-params';

export interface Registry<R extends Record<string, PluginSpec>> {
  readonly entries: R;
  /** Registered names, in registry order. */
  readonly names: readonly (keyof R & string)[];
  has(name: string): name is keyof R & string;
  /** `name` as a registered name, or the folder's error suggesting the nearest one. */
  resolve(name: string): keyof R & string;
  /** The raw parameters parsed with the entry's schema (undefined = all defaults). */
  parse(name: string, raw: unknown): object;
  /** One row per entry with its parameters, types and defaults. */
  describe(): PluginInfo<keyof R & string>[];
}

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

function describeType(schema: z.core.JSONSchema.JSONSchema): string {
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  // A union (`count: integer ≥ 1 | "all"`): each member in turn.
  const members = schema.anyOf ?? schema.oneOf;
  if (members) return members.map((m) => (typeof m === 'boolean' ? 'value' : describeType(m))).join(' | ');
  const bounds: string[] = [];
  if (schema.minimum !== undefined) bounds.push(`≥ ${schema.minimum}`);
  if (schema.exclusiveMinimum !== undefined) bounds.push(`> ${schema.exclusiveMinimum}`);
  if (schema.maximum !== undefined && schema.maximum < Number.MAX_SAFE_INTEGER) bounds.push(`≤ ${schema.maximum}`);
  if (schema.exclusiveMaximum !== undefined) bounds.push(`< ${schema.exclusiveMaximum}`);
  return [String(schema.type ?? 'value'), ...bounds].join(' ');
}

/** The parameters of a spec as the JSON schema of its input sees them. */
function paramInfo(spec: PluginSpec): ParamInfo[] {
  const properties = z.toJSONSchema(spec.params, { io: 'input' }).properties ?? {};
  return Object.entries(properties).map(([name, schema]) => {
    const s = typeof schema === 'boolean' ? {} : schema;
    return { name, type: describeType(s), default: s.default, description: s.description };
  });
}

/**
 * A registry over `entries`. `kind` names the plug-in in messages ('strategy' → "Unknown strategy 'x'",
 * "Strategy 'x' has no parameter 'y'"); `fail` builds the folder's typed error.
 */
export function createRegistry<R extends Record<string, PluginSpec>>(
  kind: string,
  entries: R,
  fail: (failure: RegistryFailure, message: string) => Error,
): Registry<R> {
  type Name = keyof R & string;
  const names = Object.keys(entries) as Name[];
  const Kind = kind[0].toUpperCase() + kind.slice(1);
  const has = (name: string): name is Name => Object.hasOwn(entries, name);
  const resolve = (name: string): Name => {
    if (has(name)) return name;
    const guess = closest(name, names);
    throw fail('unknown-name', `Unknown ${kind} '${name}'.${guess ? ` Did you mean '${guess}'?` : ''} Available: ${names.join(', ')}.`);
  };
  const parse = (name: string, raw: unknown): object => {
    const spec = entries[resolve(name)];
    const result = spec.params.safeParse(raw ?? {});
    if (result.success) return result.data;
    const params = paramInfo(spec);
    const defaultOf = (p: ParamInfo | undefined) => (p?.default === undefined ? undefined : showValue(p.default));
    const listing = params.length
      ? `Parameters of '${spec.name}': ${params.map((p) => `${p.name} (${defaultOf(p) ? `default ${defaultOf(p)}` : 'optional'})`).join(', ')}.`
      : `'${spec.name}' takes no parameters.`;
    const issue = result.error.issues[0];
    const key = issue.path[0];
    const invalid = (message: string) => fail('invalid-params', message);
    if (issue.code === 'unrecognized_keys') {
      const guess = closest(
        issue.keys[0],
        params.map((p) => p.name),
      );
      throw invalid(`${Kind} '${spec.name}' has no parameter '${issue.keys[0]}'.${guess ? ` Did you mean '${guess}'?` : ''} ${listing}`);
    }
    if (issue.code === 'custom') throw invalid(`${Kind} '${spec.name}': ${issue.message}. ${listing}`);
    if (typeof key !== 'string') throw invalid(`${Kind} '${spec.name}' parameters must be an object, got ${showValue(raw)}. ${listing}`);
    const given = (raw as Record<string, unknown>)[key];
    const fallback = defaultOf(params.find((p) => p.name === key));
    throw invalid(
      `${Kind} '${spec.name}': parameter '${key}' must be ${expectedValue(issue)}, got ${showValue(given)}. ` +
        `Fix: set '${key}' to ${expectedValue(issue)} or leave it out${fallback ? ` for the default ${fallback}` : ' (it is optional)'}.`,
    );
  };
  const describe = () =>
    names.map((name) => ({ name, description: entries[name].description, paper: entries[name].paper, params: paramInfo(entries[name]) }));
  return { entries, names, has, resolve, parse, describe };
}
