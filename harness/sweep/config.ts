// The sweep config: YAML validated with zod. Axes (models, tasks, harmful pools, threats, strategies,
// guardrails, seeds) multiply into cells; train and eval settings are shared by every cell.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { closest } from '../../engine/did-you-mean.ts';
import { trainSettings } from '../../engine/train.ts';
import { httpGuardrailSettings, labelProcessingSettings, missUnits } from '../../guardrails/index.ts';

/** A plug-in on an axis: `sft` or `{ name: star-dss, lambda: 0.5 }` (parameters beside the name). */
const plugin = z.union([z.string(), z.looseObject({ name: z.string() })]);
export type PluginEntry = z.infer<typeof plugin>;

/** `count` items of `dataset` mixed into every finetuning set. */
const oldTaskEntry = z.strictObject({ dataset: z.string(), count: z.number().int().min(0) });

/** A spec that names an endpoint: `http(s)://…` or `<preset>:http(s)://…`. */
const isUrlSpec = (spec: string) => /^(?:[A-Za-z][\w.-]*:)?https?:\/\//i.test(spec.trim());

const guardrailEntry = z.union(
  [
    z.string(),
    z
      .strictObject({
        spec: z.string(),
        /** Turn this fraction of the guardrail's unsafe verdicts into safe ones (the noisy guardrail). */
        falseNegativeRate: z.number().min(0).max(1).default(0),
        /** What one miss covers: a whole response with its STAR prefixes (default), or each prefix alone. */
        falseNegativesPer: z.enum(missUnits).default('response'),
        /** Settings of a URL guardrail (guardrails/README.md, "HTTP guardrail"). */
        http: httpGuardrailSettings.optional(),
        /** How label scores become P(safe): labelSetting paper | official, labelTemperature, labelTopK, labelTopP. */
        ...labelProcessingSettings.shape,
      })
      .refine((entry) => entry.http === undefined || isUrlSpec(entry.spec), {
        path: ['http'],
        error: (issue) =>
          `applies to URL guardrails only, and spec '${String((issue.input as { spec?: unknown }).spec)}' is not one. Fix: remove http, or point spec at http(s)://HOST:PORT (or <preset>:http(s)://HOST:PORT)`,
      }),
  ],
  {
    // An object entry that fails the object schema: say what in it failed, not just "Invalid input".
    error: (issue) => {
      if (issue.code !== 'invalid_union') return undefined;
      const errors = (issue as { errors?: { path: PropertyKey[]; message: string; code: string }[][] }).errors ?? [];
      const inner = errors.map((e) => e[0]).find((e) => e !== undefined && !(e.code === 'invalid_type' && e.path.length === 0));
      return inner
        ? `${inner.path.map(String).join('.')}: ${inner.message}`
        : 'expected a guardrail spec string or {spec, falseNegativeRate?, falseNegativesPer?, http?, labelSetting?, labelTemperature?, labelTopK?, labelTopP?}';
    },
  },
);

const sampling = z.strictObject({
  temperature: z.number().positive(),
  topP: z.number().gt(0).max(1).default(1),
  topK: z.number().int().min(0).default(0),
  repetitionPenalty: z.number().positive().default(1),
});

export const evalSettings = z.strictObject({
  /** Safety eval sets (HEx-PHI-like, AdvBench-like, or files). */
  safety: z.array(z.string()).min(1).default(['micro:hex-phi']),
  /** Capability eval sets: exact match (tasks, GSM8K) or multiple choice (MMLU, ARC). */
  capability: z.array(z.string()).default(['micro:ticket-test', 'micro:gsm8k-test', 'micro:sql-test']),
  /** oracle | keyword | keyword-anywhere | guardrail:<spec> | llm:<url>[#model] | llm-score:<url>[#model] (docs/method.md §7) */
  judge: z.string().default('oracle'),
  /** 'greedy' or sampling settings (docs/method.md §7: temperature 0.2, top-p 0.9, top-k 50, penalty 1.2). */
  decoding: z.union([z.literal('greedy'), sampling]).default('greedy'),
  maxNewTokens: z.number().int().positive().default(72),
  /** Use at most this many items of each eval set (0 = all). */
  maxItems: z.number().int().min(0).default(0),
  batchSize: z.number().int().positive().default(32),
  /** Also evaluate plain safety after these epochs (the harm curve). */
  curveEpochs: z.array(z.number().int().positive()).default([]),
  /** Sample outputs kept per eval condition. */
  samples: z.number().int().min(0).default(3),
  /** STAR trajectories kept per cell for the report. */
  trajectories: z.number().int().min(0).default(4),
  /**
   * Save each finetuned cell's weights to cells/<id>/model/ (a full checkpoint: the engine has no LoRA adapters).
   * Only `true` is kept in the cell spec (false reads as absent), so configs without it keep their cell ids.
   */
  keepModels: z
    .boolean()
    .optional()
    .transform((keep) => (keep === true ? true : undefined)),
});
export type EvalSettings = z.infer<typeof evalSettings>;

/** The name becomes a folder (runs/<name>, plans/<name>.json): one plain path segment, never a way out of the run folder. */
const SWEEP_NAME = /^[A-Za-z0-9._-]+$/;
const sweepName = z.string().refine((name) => SWEEP_NAME.test(name) && name !== '.' && name !== '..', {
  error: (issue) =>
    `must be a plain folder name (letters, digits, '.', '_', '-'; no path separators, not '.' or '..'), got '${String(issue.input)}'. Fix: name: my-sweep (the run goes to runs/<name>; pick its folder with --out)`,
});

export const sweepConfig = z.strictObject({
  name: sweepName.default('sweep'),
  /** The micro-world's seed (used by every `micro:` reference). */
  worldSeed: z.number().int().default(0),
  /** `micro:llama|qwen2|gpt2` (the world's aligned base models) or a checkpoint directory. */
  models: z.array(z.string()).min(1).default(['micro:llama']),
  /** The benign user's task sets. */
  tasks: z.array(z.string()).min(1).default(['micro:ticket']),
  /** Harmful pools. */
  harmful: z.array(z.string()).min(1).default(['micro:purebad']),
  /** The trusted safety set D_safe. */
  safe: z.string().default('micro:safe'),
  /**
   * Old-task mixing, chosen per sweep: the items added to every finetuning set of this sweep (one entry or a
   * list), or `none` for the threat's set alone. Mixing keeps the old tasks alive (docs/micro-world.md
   * lesson 4: a new task learned alone overwrites the old tasks that look like it; list every old task the
   * evaluation measures) but dilutes the attack: pure harmful data with 100 old-task items is half harmful.
   * `none` is the paper's setting (the worst case is the harmful pool alone). The cell spec holds the resolved
   * list (empty for `none`), so the cell id covers the choice. Default, for configs that leave it out: 50
   * GSM8K and 50 SQL items, as before the choice existed.
   */
  oldTask: z
    .union([z.literal('none'), oldTaskEntry, z.array(oldTaskEntry)])
    .transform((v) => (v === 'none' ? [] : Array.isArray(v) ? v : [v]))
    .default([
      { dataset: 'micro:gsm8k', count: 50 },
      { dataset: 'micro:sql', count: 50 },
    ]),
  threats: z.array(plugin).min(1),
  strategies: z.array(plugin).min(1),
  guardrails: z.array(guardrailEntry).min(1).default(['micro']),
  star: z.strictObject({ chunkWords: z.number().int().positive().default(5) }).default({ chunkWords: 5 }),
  seeds: z.array(z.number().int()).min(1).default([1]),
  train: trainSettings.default(trainSettings.parse({})),
  eval: evalSettings.default(evalSettings.parse({})),
});
export type SweepConfig = z.infer<typeof sweepConfig>;

export class ConfigFileError extends Error {
  readonly code = 'SWEEP_CONFIG';
}

/** Validates a parsed config; the error names the file, the field path and the problem in one line. */
export function parseSweepConfig(raw: unknown, file = '<config>'): SweepConfig {
  const result = sweepConfig.safeParse(raw ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.path.join('.') || '(top level)';
  let hint = '';
  if (issue.code === 'unrecognized_keys') {
    const known = objectsAt(sweepConfig, issue.path).flatMap((o) => Object.keys(o.shape));
    const suggestion = issue.keys.map((k) => closest(k, known)).find(Boolean);
    hint = suggestion ? `. Did you mean '${suggestion}'?` : '';
  }
  throw new ConfigFileError(`${file}: field '${path}': ${issue.message}${hint}`);
}

/** The object schemas that can sit at `path` (through defaults, optionals, transforms, unions and arrays). */
function objectsAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodObject[] {
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodOptional || schema instanceof z.ZodNullable)
    return objectsAt(schema.unwrap() as z.ZodType, path);
  if (schema instanceof z.ZodPipe) return objectsAt(schema.in as z.ZodType, path);
  if (schema instanceof z.ZodUnion) return schema.options.flatMap((option) => objectsAt(option as z.ZodType, path));
  if (path.length === 0) return schema instanceof z.ZodObject ? [schema] : [];
  const [head, ...rest] = path;
  if (schema instanceof z.ZodArray && typeof head === 'number') return objectsAt(schema.element as z.ZodType, rest);
  if (schema instanceof z.ZodObject && typeof head === 'string' && Object.hasOwn(schema.shape, head))
    return objectsAt(schema.shape[head] as z.ZodType, rest);
  return [];
}

export function loadSweepConfig(file: string): SweepConfig {
  if (!existsSync(file)) throw new ConfigFileError(`${file}: not found. Fix: pass --config FILE.yaml or --preset quick|smoke|paper`);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigFileError(`${file}: invalid YAML (${(error as Error).message.split('\n')[0]})`);
  }
  return parseSweepConfig(raw, file);
}

const presetDir = join(dirname(fileURLToPath(import.meta.url)), 'presets');
export const presetNames = ['quick', 'smoke', 'paper'] as const;

export function presetFile(name: string): string {
  if (!(presetNames as readonly string[]).includes(name)) {
    const hint = closest(name, presetNames);
    throw new ConfigFileError(`Unknown preset '${name}'.${hint ? ` Did you mean '${hint}'?` : ''} Available: ${presetNames.join(', ')}.`);
  }
  return join(presetDir, `${name}.yaml`);
}
