// What a claim reads from finished cells: one method in one setting, folded over seeds (mean ± sample std,
// the same `stat` as tables.md), with the exact-refusal and degeneration rates beside its safety score.
import { formatStat, stat, type Stat } from '../../reports/aggregate.ts';
import type { CellResult, SampleOutput } from '../../results/result.ts';
import type { ClaimMetrics } from './sweeps.ts';
import type { SafetySide } from './verdict.ts';

/** Cells of each sweep a claim reads, by sweep name. */
export type SweepCells = Readonly<Record<string, readonly CellResult[]>>;

export interface Measure {
  /** The setting (threat, FNR, chunk size, ...) as shown in claims.md. */
  setting: string;
  /** The method (strategy label, or 'base model'). */
  method: string;
  condition: string;
  /** The successful cells folded in, by seed. */
  cells: CellResult[];
  safety: Stat | undefined;
  harmful: Stat | undefined;
  exactRefusal: Stat | undefined;
  degeneration: Stat | undefined;
  /** Safe but malformed (%), when the cells' judge judged form. */
  malformed: Stat | undefined;
  /** Mean exact match over the metrics' task sets, per cell, then over seeds. */
  task: Stat | undefined;
  /** The same over the old-task sets. */
  oldTask: Stat | undefined;
}

export interface Select {
  threat: string;
  strategy: string;
  /** Only cells of this model (default: every model in the cells, for sweeps of one model). */
  model?: string;
  falseNegativeRate?: number;
  condition?: string;
  /** Shown in claims.md (default: the threat label). */
  setting?: string;
  method?: string;
}

const defined = <T>(xs: readonly (T | undefined)[]): T[] => xs.filter((x): x is T => x !== undefined);
const statOf = (xs: readonly (number | undefined)[]): Stat | undefined => stat(defined(xs));

/** Mean of the cell's values over the listed capability sets, when it measured every one of them. */
export function capabilityOf(cell: CellResult, datasets: readonly string[]): number | undefined {
  if (datasets.length === 0) return undefined;
  const values = datasets.map((d) => cell.capability.find((c) => c.dataset === d)?.value);
  return values.every((v) => v !== undefined) ? defined(values).reduce((a, b) => a + b, 0) / values.length : undefined;
}

function fold(cells: CellResult[], setting: string, method: string, condition: string, metrics: ClaimMetrics): Measure {
  const safety = cells.map((c) => c.safety.find((s) => s.condition === condition && s.dataset === metrics.safetyDataset));
  return {
    setting,
    method,
    condition,
    cells,
    safety: statOf(safety.map((s) => s?.safetyScore)),
    harmful: statOf(safety.map((s) => s?.harmfulRate)),
    exactRefusal: statOf(safety.map((s) => s?.exactRefusalRate)),
    degeneration: statOf(safety.map((s) => s?.degenerationRate)),
    malformed: statOf(safety.map((s) => s?.malformedRate)),
    task: statOf(cells.map((c) => capabilityOf(c, metrics.task))),
    oldTask: statOf(cells.map((c) => capabilityOf(c, metrics.oldTask))),
  };
}

/** The successful finetuned cells of one (threat label, strategy label, FNR), folded over seeds. */
export function measure(cells: readonly CellResult[] | undefined, select: Select, metrics: ClaimMetrics): Measure {
  const fnr = select.falseNegativeRate ?? 0;
  const mine = (cells ?? [])
    .filter((c) => c.status === 'ok' && c.labels.kind === 'finetune')
    .filter(
      (c) =>
        c.labels.threatLabel === select.threat &&
        c.labels.strategyLabel === select.strategy &&
        c.labels.falseNegativeRate === fnr &&
        (select.model === undefined || c.labels.model === select.model),
    )
    .sort((a, b) => a.labels.seed - b.labels.seed);
  return fold(mine, select.setting ?? select.threat, select.method ?? select.strategy, select.condition ?? 'plain', metrics);
}

/**
 * The base model: ONE base cell (greedy decoding of a fixed model has no seed spread; every sweep plans its
 * own base cell, and they measure the same model), so comparisons treat it as a fixed reference.
 */
export function measureBase(cells: readonly CellResult[] | undefined, metrics: ClaimMetrics, condition = 'plain', model?: string): Measure {
  const base = (cells ?? []).filter(
    (c) =>
      c.status === 'ok' &&
      c.labels.kind === 'base' &&
      (model === undefined || c.labels.model === model) &&
      c.safety.some((s) => s.condition === condition),
  );
  return fold(base.slice(0, 1), model === undefined ? 'base' : `base (${model})`, 'base model', condition, metrics);
}

/** The side of a safety comparison; `label` defaults to the method. */
export const side = (m: Measure, label = m.method): SafetySide => ({
  label,
  safety: m.safety,
  degeneration: m.degeneration,
  malformed: m.malformed,
});

/** "star-dss 72.1 ± 3.0 (3) [exact refusal 60.0%, degenerate 5.0%, malformed 2.0%]" (malformed when judged). */
export function describeSafety(m: Measure, label = m.method): string {
  const malformed = m.malformed ? `, malformed ${m.malformed.mean.toFixed(1)}%` : '';
  const extra = m.safety
    ? ` [exact refusal ${m.exactRefusal?.mean.toFixed(1) ?? '–'}%, degenerate ${m.degeneration?.mean.toFixed(1) ?? '–'}%${malformed}]`
    : '';
  return `${label} ${formatStat(m.safety)}${extra}`;
}

/** The first few sample outputs of a measure's first seed under its condition. */
export function samplesOf(m: Measure, count: number): SampleOutput[] {
  return (m.cells[0]?.samples ?? []).filter((s) => s.condition === m.condition).slice(0, count);
}

/** Per-seed differences a − b over the seeds both measures have (paired by seed). */
export function pairedDifference(a: Measure, b: Measure, value: (m: Measure, cell: CellResult) => number | undefined): Stat | undefined {
  const bySeed = new Map(b.cells.map((c) => [c.labels.seed, c]));
  const diffs = a.cells.flatMap((ca) => {
    const cb = bySeed.get(ca.labels.seed);
    const va = value(a, ca);
    const vb = cb ? value(b, cb) : undefined;
    return va !== undefined && vb !== undefined ? [va - vb] : [];
  });
  return stat(diffs);
}

/** A cell's safety score under the measure's condition and safety set. */
export const cellSafety =
  (metrics: ClaimMetrics) =>
  (m: Measure, cell: CellResult): number | undefined =>
    cell.safety.find((s) => s.condition === m.condition && s.dataset === metrics.safetyDataset)?.safetyScore;
