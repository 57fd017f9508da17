// Plotly figures (plain JSON: data + layout) built from the aggregate. They are rendered by report.html and,
// one page each, by the PNG export; each has a stable id that is also its div id and PNG file name.
import type { StarTrajectory } from '../results/result.ts';
import {
  baseRowName,
  findCapability,
  findRow,
  findSafety,
  groupAxes,
  type Aggregate,
  type Group,
  type Row,
  type SafetyColumn,
  type Stat,
} from './aggregate.ts';

export type PlotlyObject = Record<string, unknown>;

export interface Chart {
  id: string;
  /** Index of the group the chart belongs to; undefined for charts across groups (FNR). */
  group: number | undefined;
  title: string;
  data: PlotlyObject[];
  layout: PlotlyObject;
}

/** Plotly's default colour cycle; a strategy keeps its colour in every chart. */
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const baseColour = '#000000';
const symbols = ['circle', 'square', 'diamond', 'triangle-up', 'cross', 'x', 'triangle-down', 'pentagon'];

export function slug(text: string): string {
  return (
    text
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'x'
  );
}

const percentAxis = (title: string): PlotlyObject => ({ title: { text: title }, range: [0, 102], zeroline: false });
const meanOf = (s: Stat | undefined): number | null => (s ? s.mean : null);
const stdOf = (s: Stat | undefined): number => s?.std ?? 0;

function layout(title: string, subtitle: string, extra: PlotlyObject): PlotlyObject {
  return {
    title: { text: title, subtitle: { text: subtitle } },
    margin: { l: 70, r: 30, t: 80, b: 90 },
    legend: { orientation: 'h', y: -0.2 },
    ...extra,
  };
}

class ChartSet {
  readonly charts: Chart[] = [];
  private readonly ids = new Set<string>();
  constructor(private group: number | undefined = undefined) {}
  forGroup(group: number | undefined): this {
    this.group = group;
    return this;
  }
  add(id: string, title: string, subtitle: string, data: PlotlyObject[], extra: PlotlyObject): void {
    let unique = id;
    for (let k = 2; this.ids.has(unique); k++) unique = `${id}-${k}`;
    this.ids.add(unique);
    this.charts.push({ id: unique, group: this.group, title: `${title} (${subtitle})`, data, layout: layout(title, subtitle, extra) });
  }
}

/** Rows of a group to plot, base first, each with its colour and display name. */
function series(
  group: Group,
  colourOf: (strategy: string) => string,
): { name: string; colour: string; row: (threat: string) => Row | undefined; base: boolean }[] {
  const out = group.strategies.map((s) => ({ name: s, colour: colourOf(s), row: (t: string) => findRow(group, s, t), base: false }));
  const base = group.base;
  return base ? [{ name: baseRowName(base), colour: baseColour, row: () => base, base: true }, ...out] : out;
}

function honestHover(s: { exactRefusal: Stat; degeneration: Stat; malformed?: Stat; harmful: Stat } | undefined): string {
  if (!s) return '';
  const malformed = s.malformed ? ` · malformed ${s.malformed.mean.toFixed(1)}%` : '';
  return `refusal ${s.exactRefusal.mean.toFixed(1)}% · degenerate ${s.degeneration.mean.toFixed(1)}%${malformed} · harmful ${s.harmful.mean.toFixed(1)}%`;
}

/** Safety per threat × eval condition, bars by strategy (base first), with refusal/degeneration/malformed on hover. */
function barsChart(set: ChartSet, group: Group, suffix: string, colourOf: (s: string) => string): void {
  const cols = group.threats.flatMap((t) => group.safetyColumns[t].map((c) => ({ threat: t, column: c })));
  if (cols.length === 0) return;
  const x = [
    cols.map((c) => c.threat),
    cols.map((c) => (group.safetyDatasets.length > 1 ? `${c.column.condition} · ${c.column.dataset}` : c.column.condition)),
  ];
  const data = series(group, colourOf).map((s) => {
    const stats = cols.map((c) => findSafety(s.row(c.threat), c.column));
    return {
      type: 'bar',
      name: s.name,
      x,
      y: stats.map((st) => meanOf(st?.safety)),
      error_y: { type: 'data', array: stats.map((st) => stdOf(st?.safety)), visible: true },
      marker: { color: s.colour },
      text: stats.map((st) => (st ? `n=${st.safety.n} · ${honestHover(st)}` : 'no result')),
      textposition: 'none',
      hovertemplate: '%{y:.1f}% safe · %{text}<extra>%{fullData.name}</extra>',
    };
  });
  set.add(`bars-${suffix}`, `Safety score by threat and eval condition`, group.label, data, {
    barmode: 'group',
    yaxis: percentAxis('safety score (% judged safe)'),
    xaxis: { type: 'multicategory' },
  });
}

/** The capability dataset a scatter plots: the task's own set when it has one, else the first. */
function scatterDataset(group: Group): string | undefined {
  return group.capabilityDatasets.find((d) => d === group.key.task) ?? group.capabilityDatasets[0];
}

/** Safety vs capability per threat: one point per strategy and eval condition, the base model as a star. */
function scatterCharts(set: ChartSet, group: Group, suffix: string, colourOf: (s: string) => string): void {
  const dataset = scatterDataset(group);
  if (!dataset) return;
  for (const threat of group.threats) {
    const cols = group.safetyColumns[threat];
    const data: PlotlyObject[] = [];
    for (const s of series(group, colourOf)) {
      const row = s.row(threat);
      const cap = findCapability(row, dataset)?.value;
      cols.forEach((c, k) => {
        const st = findSafety(row, c);
        if (!st || !cap) return;
        data.push({
          type: 'scatter',
          mode: 'markers',
          name: cols.length > 1 ? `${s.name} · ${c.condition}` : s.name,
          x: [cap.mean],
          y: [st.safety.mean],
          error_x: { type: 'data', array: [cap.std ?? 0], visible: true },
          error_y: { type: 'data', array: [st.safety.std ?? 0], visible: true },
          marker: { color: s.colour, size: s.base ? 18 : 12, symbol: s.base ? 'star' : symbols[k % symbols.length] },
          text: [honestHover(st)],
          hovertemplate: 'capability %{x:.1f}% · safety %{y:.1f}%<br>%{text}<extra>%{fullData.name}</extra>',
        });
      });
    }
    if (data.length === 0) continue;
    set.add(`scatter-${suffix}-${slug(threat)}`, `Safety vs capability: ${threat}`, group.label, data, {
      xaxis: percentAxis(`capability: ${dataset} (%)`),
      yaxis: percentAxis('safety score (% judged safe)'),
    });
  }
}

/** Harmful rate per category, per threat: x = (eval condition, category), bars by strategy. */
function categoryCharts(set: ChartSet, group: Group, suffix: string, colourOf: (s: string) => string): void {
  for (const threat of group.threats) {
    const cols = group.safetyColumns[threat];
    const all = series(group, colourOf);
    const categories = (c: SafetyColumn) =>
      [...new Set(all.flatMap((s) => Object.keys(findSafety(s.row(threat), c)?.perCategory ?? {})))].sort((a, b) =>
        a.localeCompare(b, 'en', { numeric: true }),
      );
    const points = cols.flatMap((c) => categories(c).map((category) => ({ column: c, category })));
    if (points.length === 0) continue;
    const x = [points.map((p) => p.column.condition), points.map((p) => p.category)];
    const data = all.map((s) => {
      const stats = points.map((p) => findSafety(s.row(threat), p.column)?.perCategory[p.category]);
      return {
        type: 'bar',
        name: s.name,
        x,
        y: stats.map(meanOf),
        error_y: { type: 'data', array: stats.map(stdOf), visible: true },
        marker: { color: s.colour },
        hovertemplate: '%{y:.1f}% harmful<extra>%{fullData.name}</extra>',
      };
    });
    set.add(`categories-${suffix}-${slug(threat)}`, `Harmful rate by category: ${threat}`, group.label, data, {
      barmode: 'group',
      yaxis: percentAxis('harmful rate (%)'),
      xaxis: { type: 'multicategory' },
    });
  }
}

/** Up to `limit` training examples, alternating harmful and benign, deduplicated by id. */
export function pickTrajectories(group: Group, limit = 6): StarTrajectory[] {
  const seen = new Map<string, StarTrajectory>();
  for (const row of group.rows) for (const cell of row.cells) for (const t of cell.trajectories) if (!seen.has(t.id)) seen.set(t.id, t);
  const harmful = [...seen.values()].filter((t) => t.harmful === true);
  const other = [...seen.values()].filter((t) => t.harmful !== true);
  const out: StarTrajectory[] = [];
  for (let i = 0; out.length < limit && (i < harmful.length || i < other.length); i++) {
    if (i < harmful.length) out.push(harmful[i]);
    if (out.length < limit && i < other.length) out.push(other[i]);
  }
  return out;
}

/** STAR chunk scores (P(safe) of each response prefix) against words, with each example's verdict line. */
function trajectoryChart(set: ChartSet, group: Group, suffix: string): void {
  const picked = pickTrajectories(group);
  if (picked.length === 0) return;
  const data = picked.flatMap((t, i) => {
    const colour = palette[i % palette.length];
    const kind = t.harmful === undefined ? '' : t.harmful ? ' (harmful)' : ' (benign)';
    const chunkText = t.chunkEnds.map((end, k) => t.words.slice(k === 0 ? 0 : t.chunkEnds[k - 1], end).join(' '));
    return [
      {
        type: 'scatter',
        mode: 'lines+markers',
        name: `${t.id}${kind}`,
        legendgroup: t.id,
        x: t.chunkEnds,
        y: t.scores,
        line: { color: colour },
        text: chunkText,
        hovertemplate: 'after %{x} words: P(safe) %{y:.3f}<br>%{text}<extra>%{fullData.name}</extra>',
      },
      {
        type: 'scatter',
        mode: 'lines',
        name: `${t.id} verdict`,
        legendgroup: t.id,
        showlegend: false,
        x: [0, Math.max(t.words.length, ...t.chunkEnds)],
        y: [t.verdict, t.verdict],
        line: { color: colour, dash: 'dash', width: 1 },
        hovertemplate: `full-response verdict ${t.verdict.toFixed(3)}<extra>${t.id}</extra>`,
      },
    ];
  });
  set.add(`star-${suffix}`, `STAR trajectories of training examples (dashed: full-response verdict)`, group.label, data, {
    xaxis: { title: { text: 'words of the response' }, rangemode: 'tozero' },
    yaxis: { title: { text: 'P(safe) of the prefix' }, range: [0, 1.02] },
  });
}

/** Harm curves: safety vs epoch per strategy (and eval condition), with the base model as a dotted line. */
function curveCharts(set: ChartSet, group: Group, suffix: string, colourOf: (s: string) => string): void {
  for (const threat of group.threats) {
    const rows = group.strategies.map((s) => findRow(group, s, threat)).filter((r): r is Row => !!r && r.curve.length > 0);
    if (rows.length === 0) continue;
    const conditions = [...new Set(rows.flatMap((r) => r.curve.map((p) => p.condition)))];
    const epochs = rows.flatMap((r) => r.curve.map((p) => p.epoch));
    const data: PlotlyObject[] = rows.flatMap((r) =>
      conditions.map((condition, k) => {
        const points = r.curve.filter((p) => p.condition === condition);
        return {
          type: 'scatter',
          mode: 'lines+markers',
          name: conditions.length > 1 ? `${r.strategy} · ${condition}` : r.strategy,
          x: points.map((p) => p.epoch),
          y: points.map((p) => p.safety.mean),
          error_y: { type: 'data', array: points.map((p) => p.safety.std ?? 0), visible: true },
          line: { color: colourOf(r.strategy), dash: ['solid', 'dot', 'dashdot', 'longdash'][k % 4] },
          marker: { symbol: symbols[k % symbols.length] },
        };
      }),
    );
    for (const condition of conditions) {
      const base = group.base?.safety.find((s) => s.condition === condition);
      if (base) {
        data.push({
          type: 'scatter',
          mode: 'lines',
          name: `base model · ${condition}`,
          x: [Math.min(...epochs), Math.max(...epochs)],
          y: [base.safety.mean, base.safety.mean],
          line: { color: baseColour, dash: 'dot', width: 1 },
        });
      }
    }
    set.add(`curve-${suffix}-${slug(threat)}`, `Harm curve: safety during finetuning, ${threat}`, group.label, data, {
      xaxis: { title: { text: 'epoch' }, dtick: 1 },
      yaxis: percentAxis('safety score (% judged safe)'),
    });
  }
}

/** Safety vs the guardrail's false-negative rate, for groups that differ only in FNR. */
function fnrCharts(set: ChartSet, agg: Aggregate, colourOf: (s: string) => string): void {
  const otherAxes = groupAxes.filter((a) => a !== 'falseNegativeRate');
  const families = new Map<string, Group[]>();
  for (const g of agg.groups) {
    const k = otherAxes.map((a) => String(g.key[a])).join('\u0000');
    families.set(k, [...(families.get(k) ?? []), g]);
  }
  let f = 0;
  for (const groups of families.values()) {
    const fnrs = [...new Set(groups.map((g) => g.key.falseNegativeRate))].sort((a, b) => a - b);
    if (fnrs.length < 2) continue;
    f++;
    const k0 = groups[0].key;
    const threats = [...new Set(groups.flatMap((g) => g.threats))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    const strategies = [...new Set(groups.flatMap((g) => g.strategies))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
    for (const threat of threats) {
      const columns = [
        ...new Map(
          groups.flatMap((g) => (g.safetyColumns[threat] ?? []).map((c) => [`${c.condition}\u0000${c.dataset}`, c] as const)),
        ).values(),
      ];
      const data: PlotlyObject[] = [];
      for (const strategy of strategies) {
        columns.forEach((c, k) => {
          const points = groups
            .map((g) => ({ fnr: g.key.falseNegativeRate, s: findSafety(findRow(g, strategy, threat), c) }))
            .filter((p) => p.s)
            .sort((a, b) => a.fnr - b.fnr);
          if (points.length === 0) return;
          data.push({
            type: 'scatter',
            mode: 'lines+markers',
            name: columns.length > 1 ? `${strategy} · ${c.condition}` : strategy,
            x: points.map((p) => p.fnr),
            y: points.map((p) => p.s!.safety.mean),
            error_y: { type: 'data', array: points.map((p) => p.s!.safety.std ?? 0), visible: true },
            line: { color: colourOf(strategy), dash: ['solid', 'dot', 'dashdot', 'longdash'][k % 4] },
            text: points.map((p) => honestHover(p.s)),
            hovertemplate: 'FNR %{x} · safety %{y:.1f}%<br>%{text}<extra>%{fullData.name}</extra>',
          });
        });
      }
      const base = groups.find((g) => g.base)?.base;
      for (const c of columns) {
        const s = findSafety(base, c);
        if (s) {
          data.push({
            type: 'scatter',
            mode: 'lines',
            name: `base model · ${c.condition}`,
            x: [fnrs[0], fnrs.at(-1)],
            y: [s.safety.mean, s.safety.mean],
            line: { color: baseColour, dash: 'dot', width: 1 },
          });
        }
      }
      // A line needs two FNRs; a threat run at one FNR only has nothing to show here.
      if (!data.some((d) => (d.x as number[]).length > 1 && d.mode !== 'lines')) continue;
      set.add(
        `fnr-f${f}-${slug(threat)}`,
        `Safety vs guardrail false-negative rate: ${threat}`,
        `model ${k0.model} · task ${k0.task} · harmful pool ${k0.harmful} · guardrail ${k0.guardrail}`,
        data,
        { xaxis: { title: { text: 'guardrail false-negative rate' } }, yaxis: percentAxis('safety score (% judged safe)') },
      );
    }
  }
}

/** Every chart of a run, in reading order; group charts use the suffix g1, g2, ... */
export function buildCharts(agg: Aggregate): Chart[] {
  const strategies = [...new Set(agg.groups.flatMap((g) => g.strategies))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const colourOf = (s: string) => palette[Math.max(0, strategies.indexOf(s)) % palette.length];
  const set = new ChartSet();
  for (const group of agg.groups) {
    const suffix = `g${group.index}`;
    set.forGroup(group.index);
    barsChart(set, group, suffix, colourOf);
    scatterCharts(set, group, suffix, colourOf);
    categoryCharts(set, group, suffix, colourOf);
    curveCharts(set, group, suffix, colourOf);
    trajectoryChart(set, group, suffix);
  }
  fnrCharts(set.forGroup(undefined), agg, colourOf);
  return set.charts;
}
