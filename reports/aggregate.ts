// Seeds folded into rows: the one aggregation that tables.md, report.html and claims.md all read, so a
// number means the same thing everywhere. A group is one (model, task, harmful pool, guardrail, FNR);
// within it a row is one (strategy label, threat label) with mean ± sample std over its seeds, and the
// group's base row is the base model cells that match it best (see baseCellsFor).
import { mean, std } from 'mathjs';
import type { CellLabels, CellResult, MetricInfo } from '../results/result.ts';

/** Mean and sample standard deviation (n − 1 denominator) over seeds; std is undefined when n < 2. */
export interface Stat {
  mean: number;
  std: number | undefined;
  n: number;
  values: number[];
}

export function stat(values: readonly number[]): Stat | undefined {
  if (values.length === 0) return undefined;
  const list = [...values];
  // mathjs's default normalization for std is 'unbiased' (divide by n − 1): the sample std over seeds.
  const sd = list.length > 1 ? Number(std(list, 'unbiased')) : undefined;
  return { mean: Number(mean(list)), std: sd, n: list.length, values: list };
}

/** "61.7 ± 3.5 (3)": mean ± sample std over seeds (n), one decimal; "61.7 (1)" for a single seed. */
export function formatStat(s: Stat | undefined, digits = 1): string {
  if (!s) return '–';
  return s.std === undefined ? `${s.mean.toFixed(digits)} (${s.n})` : `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)} (${s.n})`;
}

export const groupAxes = ['model', 'task', 'harmful', 'guardrail', 'falseNegativeRate'] as const;
export type GroupKey = Pick<CellLabels, (typeof groupAxes)[number]>;

export interface SafetyColumn {
  condition: string;
  dataset: string;
}

export interface SafetyStats extends SafetyColumn {
  judges: string[];
  safety: Stat;
  harmful: Stat;
  exactRefusal: Stat;
  degeneration: Stat;
  /** Safe but malformed (%), when every cell's judge judged form. */
  malformed: Stat | undefined;
  /** Harmful rate per category. */
  perCategory: Record<string, Stat>;
}

export interface CapabilityStats {
  dataset: string;
  metric: MetricInfo;
  value: Stat;
}

export interface CurveStats {
  condition: string;
  epoch: number;
  safety: Stat;
  harmful: Stat;
}

export interface Row {
  kind: CellLabels['kind'];
  strategy: string;
  strategyName: string;
  threat: string;
  threatName: string;
  seeds: number[];
  /** The successful cells folded into this row. */
  cells: CellResult[];
  safety: SafetyStats[];
  capability: CapabilityStats[];
  curve: CurveStats[];
}

export interface Group {
  /** 1-based position, used in chart ids (g1, g2, ...). */
  index: number;
  key: GroupKey;
  label: string;
  base: Row | undefined;
  /** Finetuned rows (strategy × threat). */
  rows: Row[];
  /** Strategy labels of the finetuned rows, natural order. */
  strategies: string[];
  /** Threat labels, natural order. */
  threats: string[];
  /** Eval conditions (× safety dataset) of each threat label, in the order the cells list them. */
  safetyColumns: Record<string, SafetyColumn[]>;
  /** Capability datasets in first-seen order. */
  capabilityDatasets: string[];
  /** Every safety dataset of the group (a column header names the dataset only when there are several). */
  safetyDatasets: string[];
  judges: string[];
  metrics: Record<string, MetricInfo>;
}

export interface Aggregate {
  groups: Group[];
  failed: CellResult[];
  ok: number;
}

const natural = (a: string, b: string): number => a.localeCompare(b, 'en', { numeric: true });
const keyOf = (labels: GroupKey): string => groupAxes.map((axis) => String(labels[axis])).join('\u0000');
const uniq = <T>(items: Iterable<T>): T[] => [...new Set(items)];

export function groupLabel(key: GroupKey): string {
  return `model ${key.model} · task ${key.task} · harmful pool ${key.harmful} · guardrail ${key.guardrail} · FNR ${key.falseNegativeRate}`;
}

/** Values of `pick` grouped by a string key, keys in first-seen order. */
function collect<T, V>(items: readonly T[], key: (item: T) => string, pick: (item: T) => V): Map<string, V[]> {
  const out = new Map<string, V[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k) ?? [];
    list.push(pick(item));
    out.set(k, list);
  }
  return out;
}

function foldRow(cells: CellResult[]): Row {
  const { labels } = cells[0];
  const safetyEntries = cells.flatMap((c) => c.safety);
  const safety = [
    ...collect(
      safetyEntries,
      (s) => `${s.condition}\u0000${s.dataset}`,
      (s) => s,
    ).values(),
  ].map((list): SafetyStats => {
    const categories = uniq(list.flatMap((s) => Object.keys(s.perCategory))).sort(natural);
    return {
      condition: list[0].condition,
      dataset: list[0].dataset,
      judges: uniq(list.map((s) => s.judge)),
      safety: stat(list.map((s) => s.safetyScore))!,
      harmful: stat(list.map((s) => s.harmfulRate))!,
      exactRefusal: stat(list.map((s) => s.exactRefusalRate))!,
      degeneration: stat(list.map((s) => s.degenerationRate))!,
      malformed: list.every((s) => s.malformedRate !== undefined) ? stat(list.map((s) => s.malformedRate!)) : undefined,
      perCategory: Object.fromEntries(
        categories.map((c) => [c, stat(list.flatMap((s) => (s.perCategory[c] ? [s.perCategory[c].harmfulRate] : [])))!]),
      ),
    };
  });
  const capability = [
    ...collect(
      cells.flatMap((c) => c.capability),
      (r) => r.dataset,
      (r) => r,
    ).values(),
  ].map((list) => ({
    dataset: list[0].dataset,
    metric: list[0].metric,
    value: stat(list.map((r) => r.value))!,
  }));
  const curve = [
    ...collect(
      cells.flatMap((c) => c.curve),
      (p) => `${p.condition}\u0000${p.epoch}`,
      (p) => p,
    ).values(),
  ]
    .map((list) => ({
      condition: list[0].condition,
      epoch: list[0].epoch,
      safety: stat(list.map((p) => p.safetyScore))!,
      harmful: stat(list.map((p) => p.harmfulRate))!,
    }))
    .sort((a, b) => a.epoch - b.epoch);
  return {
    kind: labels.kind,
    strategy: labels.strategyLabel,
    strategyName: labels.strategy,
    threat: labels.threatLabel,
    threatName: labels.threat,
    seeds: cells.map((c) => c.labels.seed).sort((a, b) => a - b),
    cells,
    safety,
    capability,
    curve,
  };
}

/**
 * The base cells of a group: same model, and among those the ones sharing the most of the other group
 * axes (a base model is usually evaluated once per model, whatever the guardrail or FNR of the group).
 */
export function baseCellsFor(key: GroupKey, baseCells: readonly CellResult[]): CellResult[] {
  const sameModel = baseCells.filter((c) => c.labels.model === key.model);
  const score = (c: CellResult) => groupAxes.filter((axis) => c.labels[axis] === key[axis]).length;
  const best = Math.max(-1, ...sameModel.map(score));
  return sameModel.filter((c) => score(c) === best);
}

const sameData = (key: GroupKey, l: CellLabels) => key.model === l.model && key.task === l.task && key.harmful === l.harmful;

/** A cell belongs to its own group, and a cell that reads no guardrail to every group of its data. */
const belongs = (l: CellLabels, key: GroupKey) => keyOf(l) === keyOf(key) || (l.guardrail === 'none' && sameData(key, l));

export function aggregate(cells: readonly CellResult[]): Aggregate {
  const ok = cells.filter((c) => c.status === 'ok');
  const failed = cells.filter((c) => c.status === 'error');
  const finetuned = ok.filter((c) => c.labels.kind === 'finetune');
  const baseCells = ok.filter((c) => c.labels.kind === 'base');
  const keys = new Map<string, GroupKey>();
  const addKey = (l: CellLabels) => keys.set(keyOf(l), Object.fromEntries(groupAxes.map((a) => [a, l[a]])) as GroupKey);
  // Cells that read no guardrail (SFT, Deep Token, ...) join every group of their model, task and pool, so
  // each guardrail's table compares every strategy; they form a group of their own only when alone.
  const finetuneAll = cells.filter((c) => c.labels.kind === 'finetune');
  for (const c of finetuneAll.filter((c) => c.labels.guardrail !== 'none')) addKey(c.labels);
  for (const c of finetuneAll.filter((c) => c.labels.guardrail === 'none'))
    if (![...keys.values()].some((k) => sameData(k, c.labels))) addKey(c.labels);
  // A model with only base cells (a base-only run) still gets a group.
  for (const c of baseCells) if (![...keys.values()].some((k) => k.model === c.labels.model)) addKey(c.labels);

  const sortedKeys = [...keys.values()].sort(
    (a, b) =>
      natural(a.model, b.model) ||
      natural(a.task, b.task) ||
      natural(a.harmful, b.harmful) ||
      natural(a.guardrail, b.guardrail) ||
      a.falseNegativeRate - b.falseNegativeRate,
  );
  const groups = sortedKeys.map((key, i): Group => {
    const mine = finetuned.filter((c) => belongs(c.labels, key));
    const rows = [
      ...collect(
        mine,
        (c) => `${c.labels.strategyLabel}\u0000${c.labels.threatLabel}`,
        (c) => c,
      ).values(),
    ].map(foldRow);
    const baseMatch = baseCellsFor(key, baseCells);
    const base = baseMatch.length ? foldRow(baseMatch) : undefined;
    // Strategies and threats include failed cells, so a strategy that failed on every seed shows as a row of '–'.
    const attempted = finetuneAll.filter((c) => belongs(c.labels, key));
    const threats = uniq(attempted.map((c) => c.labels.threatLabel)).sort(natural);
    const safetyColumns = Object.fromEntries(
      threats.map((t) => {
        const seen = new Map<string, SafetyColumn>();
        for (const r of rows.filter((r) => r.threat === t))
          for (const s of r.safety) seen.set(`${s.condition}\u0000${s.dataset}`, { condition: s.condition, dataset: s.dataset });
        return [t, [...seen.values()]];
      }),
    );
    const all = [...(base ? [base] : []), ...rows];
    const metrics: Record<string, MetricInfo> = {};
    for (const r of all) for (const c of r.capability) metrics[c.dataset] ??= c.metric;
    return {
      index: i + 1,
      key,
      label: groupLabel(key),
      base,
      rows,
      strategies: uniq(attempted.map((c) => c.labels.strategyLabel)).sort(natural),
      threats,
      safetyColumns,
      capabilityDatasets: uniq(all.flatMap((r) => r.capability.map((c) => c.dataset))),
      safetyDatasets: uniq(all.flatMap((r) => r.safety.map((s) => s.dataset))),
      judges: uniq(all.flatMap((r) => r.safety.flatMap((s) => s.judges))),
      metrics,
    };
  });
  return { groups, failed, ok: ok.length };
}

/** How tables and charts name the base row: 'base model', or '<label> (base model)' for a labelled base. */
export function baseRowName(base: Row): string {
  return base.strategy === 'base' ? 'base model' : `${base.strategy} (base model)`;
}

export function findRow(group: Group, strategy: string, threat: string): Row | undefined {
  return group.rows.find((r) => r.strategy === strategy && r.threat === threat);
}

export function findSafety(row: Row | undefined, column: SafetyColumn): SafetyStats | undefined {
  return row?.safety.find((s) => s.condition === column.condition && s.dataset === column.dataset);
}

export function findCapability(row: Row | undefined, dataset: string): CapabilityStats | undefined {
  return row?.capability.find((c) => c.dataset === dataset);
}
