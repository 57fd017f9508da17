// Plan: the grid of a sweep config as a list of cells with content-addressed ids. A cell's spec holds every
// parameter with its defaults filled in, and the content hashes of the files it reads, so equal work gets an
// equal id across sweeps and re-runs, and a data file changed in place gets new cells (resume never reuses
// a cell computed from other bytes).
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { WORLD_VERSION } from '../../datasets/micro-world/build.ts';
import { canonicalJson, contentHash } from '../../engine/io.ts';
import { BASE_MODEL_CODE_VERSION } from '../micro-world/base-model.ts';
import { MICRO_GUARD_CODE_VERSION } from '../micro-world/guardrail.ts';
import { hashPath, localPath, referenceHashes, type ReferenceKind } from './references.ts';
import { threatTextFor, threatTextHash } from '../threat-text.ts';
import { configureStrategy } from '../../strategies/index.ts';
import { configureThreat, threatNames } from '../../threats/index.ts';
import type { TrainSettings } from '../../engine/train.ts';
import {
  isPaperFormula,
  labelSettingName,
  resolveLabelProcessing,
  type HttpGuardrailSettings,
  type LabelProcessing,
  type MissUnit,
} from '../../guardrails/index.ts';
import type { EvalSettings, PluginEntry, SweepConfig } from './config.ts';

export interface PluginSpec {
  name: string;
  params: Record<string, unknown>;
}

export interface GuardrailSpec {
  spec: string;
  falseNegativeRate: number;
  /**
   * A URL guardrail's settings, defaults filled in (present only when the config entry has `http`, so older
   * cell ids stay valid). The API key is not here, only the name of its environment variable; `tokenizerHash`
   * identifies the tokenizer files (the chat template) by content.
   */
  http?: HttpGuardrailSettings & { tokenizerHash?: string };
  /** What one miss of the noisy guardrail covers; present only when falseNegativeRate > 0. */
  falseNegativesPer?: MissUnit;
  /**
   * How label scores become P(safe) (guardrails/label-processing.ts), as numbers (`labelSetting: official` and
   * its three numbers give one id); absent for the paper formula, so older cell ids stay valid.
   */
  labelProcessing?: LabelProcessing;
}

interface CellCommon {
  worldSeed: number;
  model: string;
  /** Threats whose eval conditions are measured (a base cell measures those of every threat in the sweep). */
  conditionsOf: PluginSpec[];
  eval: EvalSettings;
  /**
   * Content hash of every local file or directory the cell reads (model, data, eval sets, guardrail), by path;
   * absent when it reads none (micro-world cells). The rule is in references.ts.
   */
  contents?: Record<string, string>;
  /**
   * Versions of the micro-world generators behind the cell's `micro:` references, where they differ from
   * MICRO_ID_BASELINE; absent otherwise.
   */
  microVersions?: Partial<typeof MICRO_ID_BASELINE>;
  /**
   * Content hash of the threat-text fields the cell's threats read (wrappers, trigger, AOA prompt, prefill
   * opening; harness/threat-text.ts), so new texts give new ids; absent when they read none.
   */
  threatText?: string;
}

/** A base cell evaluates the unmodified model. */
export interface BaseCellSpec extends CellCommon {
  kind: 'base';
}

/** A finetuning cell: every axis and setting resolved, defaults filled in. */
export interface FinetuneCellSpec extends CellCommon {
  kind: 'finetune';
  task: string;
  harmful: string;
  safe: string;
  oldTask: { dataset: string; count: number }[];
  threat: PluginSpec;
  strategy: PluginSpec;
  /** `{ spec: 'none' }` for strategies that read no guardrail. */
  guardrail: GuardrailSpec;
  star: { chunkWords: number };
  seed: number;
  train: TrainSettings;
}

export type CellSpec = BaseCellSpec | FinetuneCellSpec;

export interface Cell {
  id: string;
  spec: CellSpec;
  /** Display labels, derived from the spec (not part of the id). */
  labels: { threatLabel: string; strategyLabel: string };
}

function split(entry: PluginEntry): { name: string; raw: Record<string, unknown> } {
  if (typeof entry === 'string') return { name: entry, raw: {} };
  const { name, ...raw } = entry;
  return { name, raw };
}

/** `star-dss(lambda=1)`: the name plus every parameter that differs from its default. */
export function pluginLabel(name: string, params: Record<string, unknown>, defaults: Record<string, unknown>): string {
  const changed = Object.keys(params)
    .sort()
    .filter((k) => canonicalJson(params[k]) !== canonicalJson(defaults[k]))
    .map((k) => `${k}=${typeof params[k] === 'string' ? params[k] : canonicalJson(params[k])}`);
  return changed.length ? `${name}(${changed.join(',')})` : name;
}

/**
 * A threat entry may name its own harmful pool (`{ name: identity-shift, harmful: micro:aoa }`): that pool
 * replaces the sweep's harmful axis for this threat.
 */
export function threatSpec(entry: PluginEntry): PluginSpec & { label: string; harmful?: string } {
  const { name, raw } = split(entry);
  const { harmful, ...threatParams } = raw;
  if (harmful !== undefined && typeof harmful !== 'string')
    throw new Error(`threat '${name}': 'harmful' must be a dataset reference (micro:<name> or a path)`);
  const configured = configureThreat(name, threatParams);
  const params = configured.params as Record<string, unknown>;
  const label = pluginLabel(configured.name, params, configureThreat(name).params as Record<string, unknown>);
  return { name: configured.name, params, label: harmful ? `${label}[${harmful}]` : label, ...(harmful ? { harmful } : {}) };
}

export function strategySpec(entry: PluginEntry): PluginSpec & { label: string } {
  const { name, raw } = split(entry);
  const configured = configureStrategy(name, raw);
  const params = configured.params as Record<string, unknown>;
  return {
    name: configured.name,
    params,
    label: pluginLabel(configured.name, params, configureStrategy(name).params as Record<string, unknown>),
  };
}

/** The files of a tokenizer directory that shape a URL guardrail's prompts or labels. */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'guardrail.json'];

/** Content hash of a URL guardrail's tokenizer files; a missing directory is a one-line error naming the field. */
function tokenizerHash(dir: string, spec: string): string {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new Error(
      `guardrail '${spec}': field 'http.tokenizer': directory '${dir}' does not exist. Fix: point it at the guardrail's tokenizer files, or drop it in chat mode`,
    );
  const files = TOKENIZER_FILES.filter((f) => existsSync(join(dir, f)));
  return contentHash(Object.fromEntries(files.map((f) => [f, hashPath(join(dir, f))])));
}

export function guardrailSpec(entry: SweepConfig['guardrails'][number]): GuardrailSpec {
  if (typeof entry === 'string') return { spec: entry, falseNegativeRate: 0 };
  const { spec, falseNegativeRate, falseNegativesPer, http, ...labelSettings } = entry;
  const processing = resolveLabelProcessing(labelSettings);
  // Optional fields appear only when they change something, so cells from before them keep their ids.
  const per = falseNegativeRate > 0 ? { falseNegativesPer } : {};
  const labels = isPaperFormula(processing) ? {} : { labelProcessing: processing };
  if (http === undefined) return { spec, falseNegativeRate, ...per, ...labels };
  const files = http.tokenizer !== undefined ? { tokenizerHash: tokenizerHash(http.tokenizer, spec) } : {};
  return { spec, falseNegativeRate, ...per, http: { ...http, ...files }, ...labels };
}

/**
 * The guardrail as results and reports name it: its spec, plus the label setting and per-prefix misses when they
 * are not the defaults (`micro [official labels]`), so that cells read under different settings stay apart.
 */
export function guardrailLabel(g: GuardrailSpec): string {
  const notes = [
    ...(g.labelProcessing ? [`${labelSettingName(g.labelProcessing)} labels`] : []),
    ...(g.falseNegativesPer === 'prefix' ? ['misses per prefix'] : []),
  ];
  return notes.length > 0 ? `${g.spec} [${notes.join(', ')}]` : g.spec;
}

export function cellId(spec: CellSpec): string {
  return contentHash(spec, 12);
}

/**
 * `micro:` data is generated from the world seed (in every spec) by generators with versions: the world
 * (datasets/micro-world/build.ts), the base models' training code and the micro guardrail's. A version other
 * than these enters the spec of each cell it concerns (so bumping one gives those cells new ids); at these
 * versions, the ones current when ids were first made, the spec leaves them out and the ids made before
 * versions were hashed stay valid.
 */
const MICRO_ID_BASELINE = { world: 2, baseModel: 1, guardrail: 2 };

/** The references a cell reads, by kind. */
function cellReads(spec: CellSpec): [ReferenceKind, string][] {
  const reads: [ReferenceKind, string][] = [
    ['model', spec.model],
    ...spec.eval.safety.map((r): [ReferenceKind, string] => ['dataset', r]),
    ...spec.eval.capability.map((r): [ReferenceKind, string] => ['dataset', r]),
    ['judge', spec.eval.judge],
  ];
  if (spec.kind === 'finetune') {
    reads.push(['dataset', spec.task], ['dataset', spec.harmful], ['dataset', spec.safe]);
    for (const o of spec.oldTask) if (o.count > 0) reads.push(['dataset', o.dataset]);
    if (spec.guardrail.spec !== 'none') reads.push(['guardrail', spec.guardrail.spec]);
  }
  return reads;
}

/** The spec with what identifies the content it reads: file hashes, the micro-world generator versions and the threat texts. */
function withContents(spec: CellSpec, hashes: Map<string, string>): CellSpec {
  const reads = cellReads(spec);
  const paths = [...new Set(reads.map(([kind, ref]) => localPath(kind, ref)).filter((p) => p !== undefined))].sort();
  const contents = Object.fromEntries(
    paths.map((p) => {
      let hash = hashes.get(p);
      if (hash === undefined) hashes.set(p, (hash = hashPath(p)));
      return [p, hash];
    }),
  );
  const micro = (kind: ReferenceKind) => reads.some(([k, ref]) => k === kind && ref.startsWith('micro:'));
  const guardrail = reads.some(
    ([kind, ref]) => (kind === 'guardrail' && ref === 'micro') || (kind === 'judge' && ref === 'guardrail:micro'),
  );
  const current = { world: WORLD_VERSION, baseModel: BASE_MODEL_CODE_VERSION, guardrail: MICRO_GUARD_CODE_VERSION };
  const used = { world: micro('dataset') || micro('model') || guardrail, baseModel: micro('model'), guardrail };
  const versions = Object.fromEntries(
    (Object.keys(current) as (keyof typeof current)[])
      .filter((k) => used[k] && current[k] !== MICRO_ID_BASELINE[k])
      .map((k) => [k, current[k]]),
  );
  const textHash = threatTextHash(
    threatTextFor(spec.kind === 'finetune' ? spec.harmful : spec.eval.safety[0], spec.model),
    spec.conditionsOf.flatMap((t) => configureThreat(t.name, t.params).texts),
  );
  return {
    ...spec,
    ...(paths.length > 0 ? { contents } : {}),
    ...(Object.keys(versions).length > 0 ? { microVersions: versions } : {}),
    ...(textHash !== undefined ? { threatText: textHash } : {}),
  };
}

/**
 * Every cell of the grid: one base cell per model, then models × tasks × harmful pools × threats ×
 * strategies × guardrails × seeds. Guardrails only matter to strategies that read them; for the others
 * the guardrail axis collapses to its first entry (no duplicate cells that differ by an unused field).
 */
export function planSweep(config: SweepConfig): Cell[] {
  const threats = config.threats.map(threatSpec);
  const strategies = config.strategies.map(strategySpec);
  const guardrails = config.guardrails.map(guardrailSpec);
  const hashes = referenceHashes(config);
  const cells: Cell[] = [];
  const seen = new Set<string>();
  const push = (plain: CellSpec, labels: Cell['labels']) => {
    const spec = withContents(plain, hashes);
    const id = cellId(spec);
    if (!seen.has(id)) {
      seen.add(id);
      cells.push({ id, spec, labels });
    }
  };
  // A base cell measures every registered threat's eval conditions (plain, trigger, aoa, prefill, ...), so its
  // id does not depend on the sweep's threats and sweeps sharing a run directory share one base cell.
  const allConditions = threatNames.map((name) => ({ name, params: configureThreat(name).params as Record<string, unknown> }));
  for (const model of config.models) {
    push(
      { kind: 'base', worldSeed: config.worldSeed, model, conditionsOf: allConditions, eval: config.eval },
      { threatLabel: 'base', strategyLabel: 'base' },
    );
  }
  for (const model of config.models)
    for (const task of config.tasks)
      for (const harmful of config.harmful)
        for (const threat of threats)
          for (const strategy of strategies) {
            const needs = configureStrategy(strategy.name, strategy.params).needs;
            const usesGuardrail = needs.star || needs.verdict;
            for (const guardrail of usesGuardrail ? guardrails : guardrails.slice(0, 1))
              for (const seed of config.seeds)
                push(
                  {
                    kind: 'finetune',
                    worldSeed: config.worldSeed,
                    model,
                    task,
                    harmful: threat.harmful ?? harmful,
                    safe: config.safe,
                    oldTask: config.oldTask,
                    threat: { name: threat.name, params: threat.params },
                    strategy: { name: strategy.name, params: strategy.params },
                    guardrail: usesGuardrail ? guardrail : { spec: 'none', falseNegativeRate: 0 },
                    star: config.star,
                    seed,
                    train: config.train,
                    conditionsOf: [{ name: threat.name, params: threat.params }],
                    eval: config.eval,
                  },
                  { threatLabel: threat.label, strategyLabel: strategy.label },
                );
          }
  return cells;
}

/** Cells of slice i of n (1-based i), for schedulers that spread a sweep over machines. */
export function shardCells(cells: Cell[], shard: { index: number; count: number }): Cell[] {
  return cells.filter((_, i) => i % shard.count === shard.index - 1);
}

export function parseShard(text: string): { index: number; count: number } {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = match ? Number(match[1]) : NaN;
  const count = match ? Number(match[2]) : NaN;
  if (!match || count < 1 || index < 1 || index > count) throw new Error(`--shard: expected i/n with 1 ≤ i ≤ n (e.g. 2/4), got '${text}'`);
  return { index, count };
}
