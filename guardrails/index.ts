// Guardrails by spec string. A spec is one of
//   micro                 the micro-world guardrail (its directory comes from options.microGuardrailDir)
//   <preset>:<dir>        a local checkpoint read with a preset, e.g. llama-guard-3:/models/Llama-Guard-3-1B
//   <preset>:<url>        an OpenAI-compatible endpoint read with a preset, e.g. granite-guardian-3:http://h:8000
//   DIR                   a local checkpoint; labels/position from options, else DIR/guardrail.json, else a
//                         preset whose name the directory name contains (Llama-Guard-3-1B → llama-guard-3)
//   http(s)://URL         an endpoint; labels/position from options or the tokenizer directory's guardrail.json
// URL guardrails take options.http (HttpGuardrailOptions: completions or chat mode, model, revision, timeout,
// retries, concurrency, top logprobs, API-key variable); httpResolveOptions maps the config/CLI settings there.
// Several specs are averaged (ensemble); options.labelProcessing sets how every member turns its label scores into
// P(safe) (label-processing.ts); options.noise wraps the result in the noisy guardrail.
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { closest } from '../engine/did-you-mean.ts';
import { ensembleGuardrail } from './ensemble.ts';
import { createHttpGuardrail, type HttpGuardrailOptions, type HttpGuardrailSettings, type TemplateSource } from './http.ts';
import type { LabelProcessing } from './label-processing.ts';
import { loadLmGuardrail, type LmGuardrail } from './lm.ts';
import { noisyGuardrail, type NoiseOptions } from './noisy.ts';
import {
  GuardSpecError,
  guardPreset,
  guardPresetNames,
  isGuardPresetName,
  parseGuardSpec,
  readGuardSpecFile,
  type GuardSpec,
  type GuardSpecOverrides,
} from './presets.ts';
import type { Guardrail } from './types.ts';

export type { Guardrail } from './types.ts';
export { LmGuardrail } from './lm.ts';
export { httpGuardrailSettings, httpModes, type HttpGuardrailSettings } from './http.ts';
export {
  isPaperFormula,
  labelProcessingSettings,
  labelSettingName,
  labelSettingNames,
  resolveLabelProcessing,
  type LabelProcessing,
  type LabelProcessingSettings,
  type LabelSettingName,
} from './label-processing.ts';
export { missUnits, type MissUnit } from './noisy.ts';

export interface ResolveGuardrailOptions extends GuardSpecOverrides {
  /** The micro-world guardrail's directory (or a function that finds or builds it), for the spec `micro`. */
  microGuardrailDir?: string | (() => string | Promise<string>);
  /** Items per forward of a local guardrail. */
  batchSize?: number;
  /**
   * Options of URL guardrails. In completions mode (the default) their chat template comes from `tokenizerDir`
   * or `chatTemplate`; in chat mode the server applies its own, and `tokenizerDir` is optional (labels).
   */
  http?: Omit<HttpGuardrailOptions, 'url' | 'spec' | 'template' | 'labelProcessing'> & { tokenizerDir?: string; chatTemplate?: string };
  /** How label scores become P(safe), for local and URL guardrails alike; default the paper formula. */
  labelProcessing?: LabelProcessing;
  /** Wrap the guardrail so that a seeded fraction of its unsafe verdicts turn safe (per response by default). */
  noise?: NoiseOptions;
}

/** A parsed spec string. */
export type GuardrailTarget =
  | { kind: 'micro' }
  | { kind: 'dir'; dir: string; preset?: string }
  | { kind: 'url'; url: string; preset?: string };

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** Parses `micro | <preset>:<dir|url> | DIR | http(s)://URL`; unknown names teach the nearest one. */
export function parseGuardrailSpec(spec: string): GuardrailTarget {
  const s = spec.trim();
  if (s === 'micro') return { kind: 'micro' };
  if (isUrl(s)) return { kind: 'url', url: s };
  const prefixed = /^([A-Za-z][\w.-]*):(.+)$/.exec(s);
  if (prefixed && !existsSync(s)) {
    const [, name, rest] = prefixed;
    guardPreset(name); // throws "Unknown guardrail preset ... Did you mean"
    return isUrl(rest) ? { kind: 'url', url: rest, preset: name } : { kind: 'dir', dir: rest, preset: name };
  }
  if (existsSync(s) && statSync(s).isDirectory()) return { kind: 'dir', dir: s };
  if (isGuardPresetName(s)) {
    throw new GuardSpecError(`Guardrail preset '${s}' needs a checkpoint directory or URL: write '${s}:DIR' or '${s}:http://HOST:PORT'`);
  }
  const guess = closest(s, ['micro', ...guardPresetNames]);
  throw new GuardSpecError(
    `Unknown guardrail '${spec}': not a directory, a URL or a preset.${guess ? ` Did you mean '${guess}'?` : ''} ` +
      `Expected micro, <preset>:DIR, DIR or http(s)://URL; presets: ${guardPresetNames.join(', ')}.`,
  );
}

/** The preset a directory's name points to, e.g. …/Llama-Guard-3-8B → llama-guard-3. */
function presetFromName(dir: string): string | undefined {
  const name = basename(resolve(dir)).toLowerCase();
  return guardPresetNames.find((p) => p !== 'micro' && name.includes(p));
}

const overrides = (o: ResolveGuardrailOptions): GuardSpecOverrides => ({
  ...(o.preset !== undefined ? { preset: o.preset } : {}),
  ...(o.labels !== undefined ? { labels: o.labels } : {}),
  ...(o.position !== undefined ? { position: o.position } : {}),
  ...(o.extra !== undefined ? { extra: o.extra } : {}),
});

/** The GuardSpec for a target: spec-string preset, then options, then guardrail.json, then the dir name. */
function specFor(preset: string | undefined, options: ResolveGuardrailOptions, dir: string | undefined, what: string): GuardSpec {
  const explicit = overrides(options);
  const fromFile = dir !== undefined && existsSync(dir) ? readGuardSpecFile(dir) : undefined;
  const base = preset ?? explicit.preset;
  if (base !== undefined || (explicit.labels && explicit.position))
    return parseGuardSpec({ ...explicit, ...(base ? { preset: base } : {}) }, `guardrail options for ${what}`);
  if (fromFile) return parseGuardSpec({ ...fromFile, ...explicit }, `${dir}/guardrail.json with options`);
  const named = dir !== undefined ? presetFromName(dir) : undefined;
  if (named) return parseGuardSpec({ ...explicit, preset: named }, `guardrail options for ${what}`);
  throw new GuardSpecError(
    `${what}: unknown labels and position. Fix: write '<preset>:${what}' (presets: ${guardPresetNames.join(', ')}), pass preset or labels+position, or add guardrail.json`,
  );
}

async function microDir(options: ResolveGuardrailOptions): Promise<string> {
  const source = options.microGuardrailDir;
  if (source === undefined) {
    throw new GuardSpecError(
      "guardrail 'micro' needs the micro-world guardrail's directory: pass microGuardrailDir (or give its path as DIR)",
    );
  }
  return typeof source === 'string' ? source : await source();
}

/** A local LM guardrail (micro, <preset>:DIR or DIR); URLs are refused. */
export async function resolveLocalGuardrail(spec: string, options: ResolveGuardrailOptions = {}): Promise<LmGuardrail> {
  const target = parseGuardrailSpec(spec);
  if (target.kind === 'url') throw new GuardSpecError(`'${spec}' is a URL; a local guardrail needs micro, <preset>:DIR or DIR`);
  const batch = {
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    ...(options.labelProcessing !== undefined ? { labelProcessing: options.labelProcessing } : {}),
  };
  if (target.kind === 'micro') {
    const dir = await microDir(options);
    return loadLmGuardrail(dir, specFor('micro', options, dir, dir), batch);
  }
  return loadLmGuardrail(target.dir, specFor(target.preset, options, target.dir, target.dir), batch);
}

/** The resolve options of the sweep config's / CLI's URL-guardrail settings (`tokenizer` → `tokenizerDir`). */
export function httpResolveOptions(settings: Partial<HttpGuardrailSettings>): NonNullable<ResolveGuardrailOptions['http']> {
  const { tokenizer, mode, model, revision, apiKeyEnv, timeoutMs, retries, concurrency, topLogprobs } = settings;
  const picked = { mode, model, revision, apiKeyEnv, timeoutMs, retries, concurrency, topLogprobs, tokenizerDir: tokenizer };
  return Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined)) as NonNullable<ResolveGuardrailOptions['http']>;
}

async function resolveOne(spec: string, options: ResolveGuardrailOptions): Promise<Guardrail> {
  const target = parseGuardrailSpec(spec);
  if (target.kind !== 'url') return resolveLocalGuardrail(spec, options);
  const { tokenizerDir: dirOption, chatTemplate, ...http } = options.http ?? {};
  const chat = http.mode === 'chat';
  // The micro guardrail's own directory holds its template; chat mode needs none (the preset gives the labels).
  const tokenizerDir =
    dirOption ?? (!chat && (target.preset === 'micro' || options.preset === 'micro') ? await microDir(options) : undefined);
  let template: TemplateSource | undefined;
  if (chatTemplate !== undefined) template = { chatTemplate };
  else if (tokenizerDir !== undefined) template = { tokenizerDir };
  else if (!chat) {
    throw new GuardSpecError(
      `${target.url}: the guardrail's chat template is needed to render prompts. Fix: pass http.tokenizerDir (a directory with the guardrail's tokenizer files) or http.chatTemplate, or use chat mode (the server applies its template)`,
    );
  }
  const guardSpec = specFor(target.preset, options, tokenizerDir, target.url);
  const labels = options.labelProcessing !== undefined ? { labelProcessing: options.labelProcessing } : {};
  return createHttpGuardrail({ ...http, ...labels, url: target.url, spec: guardSpec, ...(template ? { template } : {}) });
}

/** Resolves one spec or several (averaged), optionally wrapped in the noisy guardrail. */
export async function resolveGuardrail(spec: string | readonly string[], options: ResolveGuardrailOptions = {}): Promise<Guardrail> {
  const specs = typeof spec === 'string' ? [spec] : [...spec];
  if (specs.length === 0) throw new GuardSpecError('no guardrail given');
  const members: Guardrail[] = [];
  try {
    for (const s of specs) members.push(await resolveOne(s, options));
  } catch (error) {
    for (const m of members) m.dispose?.();
    throw error;
  }
  const guard = members.length === 1 ? members[0] : ensembleGuardrail(members);
  return options.noise ? noisyGuardrail(guard, options.noise) : guard;
}
