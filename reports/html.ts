// report.html: one self-contained file (Plotly inlined, no external assets) with the tables of tables.md,
// every chart as a div with its id, a few sample outputs per strategy and condition, and the failed cells.
// All text from result files is escaped; figure JSON is embedded with <, > and & escaped as \u003c etc.,
// so a response containing "</script>" can never close the script element.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import type { CellResult, SampleOutput } from '../results/result.ts';
import { baseRowName, type Aggregate, type Group, type Row } from './aggregate.ts';
import type { Chart } from './charts.ts';
import type { LoadedRun } from './load.ts';
import { failedCellLine, groupTables, summaryLine, type Table } from './tables.ts';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** JSON safe to place inside a <script> element. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

let bundle: string | undefined;

/** The path of plotly.min.js (plotly.js-dist-min cannot be imported in Node: it needs `self`). */
export function plotlyPath(): string {
  return createRequire(import.meta.url).resolve('plotly.js-dist-min');
}

/** The Plotly bundle's text, ready to inline in a <script> element. */
export function plotlyBundle(): string {
  bundle ??= readFileSync(plotlyPath(), 'utf8').replace(/<\/script/gi, '<\\/script');
  return bundle;
}

const plotConfig = { responsive: true, displaylogo: false };

function tableHtml(table: Table): string {
  const head = `<tr>${table.header.map((h, i) => `<th${i ? '' : ' class="left"'}>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = table.rows
    .map((r) => `<tr>${r.map((c, i) => (i ? `<td>${escapeHtml(c)}</td>` : `<th class="left">${escapeHtml(c)}</th>`)).join('')}</tr>`)
    .join('\n');
  const note = table.note ? `<p class="note">${escapeHtml(table.note)}</p>` : '';
  return `<h3>${escapeHtml(table.title)}</h3>\n<div class="scroll"><table>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody></table></div>\n${note}`;
}

function chartHtml(chart: Chart): string {
  return `<figure><div id="${escapeHtml(chart.id)}" class="chart"></div><figcaption>${escapeHtml(chart.id)}</figcaption></figure>`;
}

export interface PickedSample extends SampleOutput {
  seed: number;
}

/**
 * A few sample outputs of a row per eval condition: a harmful one and a safe one when both exist, lowest
 * seed first, so the table shows what a score is made of.
 */
export function pickSamples(row: Row, perCondition = 2): PickedSample[] {
  const all = [...row.cells]
    .sort((a, b) => a.labels.seed - b.labels.seed)
    .flatMap((c: CellResult) => c.samples.map((s) => ({ ...s, seed: c.labels.seed })));
  const out: PickedSample[] = [];
  for (const condition of [...new Set(all.map((s) => s.condition))]) {
    const mine = all.filter((s) => s.condition === condition);
    const harmful = mine.filter((s) => s.harmful);
    const safe = mine.filter((s) => !s.harmful);
    const picked: PickedSample[] = [];
    for (let i = 0; picked.length < perCondition && (i < harmful.length || i < safe.length); i++) {
      if (i < harmful.length) picked.push(harmful[i]);
      if (picked.length < perCondition && i < safe.length) picked.push(safe[i]);
    }
    out.push(...picked);
  }
  return out;
}

const clip = (text: string, max = 600): string =>
  text.length > max ? `${text.slice(0, max)} … (${text.length - max} more characters)` : text;

function samplesHtml(group: Group): string {
  const lines: string[] = [];
  const rowsOf = (row: Row, threat: string, strategy: string) =>
    pickSamples(row).map(
      (s) =>
        `<tr><td>${escapeHtml(threat)}</td><td>${escapeHtml(strategy)}</td><td>${escapeHtml(s.condition)}</td><td>${s.seed}</td>` +
        `<td>${escapeHtml(s.category ?? '')}</td><td class="text">${escapeHtml(clip(s.prompt))}</td><td class="text">${escapeHtml(clip(s.response))}</td>` +
        `<td class="${s.harmful ? 'harmful' : 'safe'}">${s.harmful ? 'harmful' : 'safe'}</td></tr>`,
    );
  if (group.base) lines.push(...rowsOf(group.base, '–', baseRowName(group.base)));
  for (const threat of group.threats) {
    for (const strategy of group.strategies) {
      const row = group.rows.find((r) => r.threat === threat && r.strategy === strategy);
      if (row) lines.push(...rowsOf(row, threat, strategy));
    }
  }
  if (lines.length === 0) return '<p class="note">No sample outputs recorded.</p>';
  return [
    '<div class="scroll"><table class="samples">',
    '<thead><tr><th>threat</th><th>strategy</th><th>condition</th><th>seed</th><th>category</th><th>prompt</th><th>response</th><th>judged</th></tr></thead>',
    `<tbody>\n${lines.join('\n')}\n</tbody></table></div>`,
  ].join('\n');
}

const style = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; } h3 { margin-top: 1.5rem; }
table { border-collapse: collapse; margin: .5rem 0; } th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: right; vertical-align: top; }
th.left, td.text { text-align: left; } thead th { background: #f4f4f4; } .scroll { overflow-x: auto; }
td.text { white-space: pre-wrap; max-width: 28rem; font-family: ui-monospace, monospace; font-size: 12px; }
td.harmful { color: #b00020; font-weight: 600; } td.safe { color: #1b7a2f; }
.note { color: #555; font-size: 13px; } figure { margin: 1rem 0; } figcaption { color: #888; font-size: 12px; }
.chart { width: 100%; height: 520px; } .failed li { font-family: ui-monospace, monospace; font-size: 12px; }
`;

export interface ReportInput {
  run: LoadedRun;
  agg: Aggregate;
  charts: readonly Chart[];
}

export function reportHtml({ run, agg, charts }: ReportInput): string {
  const name = basename(run.dir);
  const body: string[] = [
    `<h1>star-dss report: ${escapeHtml(name)}</h1>`,
    `<p>${escapeHtml(summaryLine(run, agg))} Numbers are % with one decimal: mean ± sample standard deviation (n − 1) over seeds, (n) = seeds. ` +
      'Beside every safety score: the exact-refusal, degeneration and malformed rates of the same responses, and sample outputs below, so a broken model is not read as a safe one.</p>',
    '<nav><ul>',
    ...agg.groups.map((g) => `<li><a href="#group-g${g.index}">${escapeHtml(g.label)}</a></li>`),
    charts.some((c) => c.group === undefined) ? '<li><a href="#fnr">Safety vs guardrail false-negative rate</a></li>' : '',
    '<li><a href="#failed">Failed cells</a></li>',
    '</ul></nav>',
  ];
  for (const group of agg.groups) {
    body.push(`<section id="group-g${group.index}">`, `<h2>${escapeHtml(group.label)}</h2>`);
    body.push(...groupTables(group).map(tableHtml));
    body.push(...charts.filter((c) => c.group === group.index).map(chartHtml));
    body.push('<h3>Sample outputs</h3>', samplesHtml(group), '</section>');
  }
  const across = charts.filter((c) => c.group === undefined);
  if (across.length)
    body.push('<section id="fnr">', '<h2>Safety vs guardrail false-negative rate</h2>', ...across.map(chartHtml), '</section>');
  body.push('<section id="failed">', '<h2>Failed cells</h2>');
  body.push(
    agg.failed.length
      ? `<ul class="failed">${agg.failed.map((c) => `<li>${escapeHtml(failedCellLine(c))}</li>`).join('\n')}</ul>`
      : '<p>None.</p>',
  );
  body.push('</section>');
  const figures = charts.map(({ id, data, layout }) => ({ id, data, layout }));
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>star-dss report: ${escapeHtml(name)}</title>`,
    `<style>${style}</style>`,
    `<script>/* plotly.js (MIT licence), inlined so this report opens offline */\n${plotlyBundle()}\n</script>`,
    '</head><body>',
    ...body,
    `<script>\nconst FIGURES = ${scriptJson(figures)};\nfor (const f of FIGURES) Plotly.newPlot(f.id, f.data, f.layout, ${scriptJson(plotConfig)});\n</script>`,
    '</body></html>',
    '',
  ].join('\n');
}

/** A page holding one chart at a fixed size, for a headless-browser screenshot. */
export function chartPageHtml(chart: Chart, plotlyScriptTag: string, size = { width: 1000, height: 600 }): string {
  const layout = { ...chart.layout, ...size, autosize: false };
  return [
    '<!doctype html><html><head><meta charset="utf-8">',
    `<style>html, body { margin: 0; background: #fff; overflow: hidden; }</style>`,
    plotlyScriptTag,
    `</head><body><div id="${escapeHtml(chart.id)}"></div>`,
    `<script>Plotly.newPlot(${scriptJson(chart.id)}, ${scriptJson(chart.data)}, ${scriptJson(layout)}, ${scriptJson({ staticPlot: true, displayModeBar: false })});</script>`,
    '</body></html>',
    '',
  ].join('\n');
}
