// Plan: the grid of a sweep config as a list of cells with content-addressed ids. A cell's spec holds every
// parameter with its defaults filled in, so equal work gets an equal id across sweeps and re-runs.
import { canonicalJson, contentHash } from '../../engine/io.ts';
import { configureStrategy } from '../../strategies/index.ts';
import { configureThreat, threatNames } from '../../threats/index.ts';
import type { TrainSettings } from '../../engine/train.ts';
import type { EvalSettings, PluginEntry, SweepConfig } from './config.ts';

export interface PluginSpec {
  name: string;
  params: Record<string, unknown>;
}

export interface GuardrailSpec {
  spec: string;
  falseNegativeRate: number;
}

interface CellCommon {
  worldSeed: number;
  model: string;
  /** Threats whose eval conditions are measured (a base cell measures those of every threat in the sweep). */
  conditionsOf: PluginSpec[];
  eval: EvalSettings;
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

export function guardrailSpec(entry: SweepConfig['guardrails'][number]): GuardrailSpec {
  return typeof entry === 'string'
    ? { spec: entry, falseNegativeRate: 0 }
    : { spec: entry.spec, falseNegativeRate: entry.falseNegativeRate };
}

export function cellId(spec: CellSpec): string {
  return contentHash(spec, 12);
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
  const cells: Cell[] = [];
  const seen = new Set<string>();
  const push = (spec: CellSpec, labels: Cell['labels']) => {
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
