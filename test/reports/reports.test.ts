import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import yargs from 'yargs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReports, loadRun, type ReportOutput } from '../../reports/index.ts';
import { reportCommand } from '../../harness/commands/report.ts';
import {
  baseCapability,
  baseSafety,
  capability,
  failedId,
  failedMessage,
  makeFakeRun,
  safetyScores,
  scriptResponse,
  threatOffset,
  writeCell,
  type FakeRun,
} from './fake-run.ts';

/** Mean ± sample std (n − 1), computed here independently of the implementation. */
function meanStd(xs: number[]): string {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const variance = xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1);
  return `${m.toFixed(1)} ± ${Math.sqrt(variance).toFixed(1)} (${xs.length})`;
}

interface MdTable {
  header: string[];
  rows: string[][];
}

/** The markdown table under `### <title…>` within the `## <group…>` section. */
function mdTable(md: string, group: string, title: string): MdTable {
  const section = md.split(/^## /m).find((s) => s.startsWith(group));
  if (!section) throw new Error(`no section ${group}`);
  const part = section.split(/^### /m).find((s) => s.startsWith(title));
  if (!part) throw new Error(`no table ${title}`);
  const lines = part.split('\n').filter((l) => l.startsWith('| '));
  const cells = (l: string) => l.slice(2, -2).split(' | ');
  return { header: cells(lines[0]), rows: lines.slice(2).map(cells) };
}

const cellOf = (t: MdTable, row: string, column: string): string => {
  const r = t.rows.find((x) => x[0] === row);
  const c = t.header.indexOf(column);
  if (!r || c < 0) throw new Error(`no cell ${row} × ${column} in ${JSON.stringify(t.header)}`);
  return r[c];
};

// Every temp directory a test makes, removed at the end (each report.html holds the 4.8 MB Plotly bundle).
const made: string[] = [];
const track = <T extends { dir: string }>(run: T): T => {
  made.push(run.dir);
  return run;
};
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

const g1 = 'model llama · task arith · harmful pool pool · guardrail micro · FNR 0\n';
const g2 = 'model llama · task arith · harmful pool pool · guardrail micro · FNR 0.4';

describe('reports of a fake run with known numbers', () => {
  let run: FakeRun;
  let out: ReportOutput;
  beforeAll(async () => {
    run = track(makeFakeRun());
    out = await writeReports(run.dir);
  });

  it('writes the three files and loads every result, noting the pending cell', () => {
    expect(out.files.map((f) => f.slice(run.dir.length + 1))).toEqual(['results.csv', 'tables.md', 'report.html']);
    for (const f of out.files) expect(existsSync(f)).toBe(true);
    expect(out.run.cells).toHaveLength(25);
    expect(out.run.pending).toEqual(['still-running']);
  });

  it('results.csv has one row per cell with the recorded values', () => {
    const rows = parse(readFileSync(join(run.dir, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(25);
    const header = Object.keys(rows[0]);
    expect(header.slice(0, 5)).toEqual(['id', 'status', 'kind', 'model', 'task']);
    const sft = rows.find((r) => r.id === 'sft-harmful-injection-s2-fnr0')!;
    expect(sft['safety/plain/heldout/safetyScore']).toBe('40');
    expect(sft['safety/plain/heldout/harmfulRate']).toBe('60');
    expect(sft['safety/plain/heldout/degenerationRate']).toBe('3');
    expect(sft['safety/plain/heldout/malformedRate']).toBe('1');
    expect(sft['safety/plain/heldout/judge']).toBe('oracle');
    expect(sft['safety/trigger/heldout/safetyScore']).toBe('');
    expect(sft['capability/arith/exact-match']).toBe('84');
    expect(sft['training/steps']).toBe('52');
    expect(sft.threatLabel).toBe('harmful-injection 10%');
    const rs = rows.find((r) => r.id === 'rs-backdoor-s2-fnr0')!;
    expect(rs['safety/trigger/heldout/safetyScore']).toBe('22.5');
    expect(rs['training/dropped']).toBe('40');
    const base = rows.find((r) => r.id === 'base-s0')!;
    expect(base.kind).toBe('base');
    expect(base['training/steps']).toBe('');
    const failed = rows.find((r) => r.id === failedId)!;
    expect(failed.status).toBe('error');
    expect(failed.error).toBe(failedMessage);
  });

  it('tables.md: safety mean ± sample std over seeds with the base model first', () => {
    const md = readFileSync(join(run.dir, 'tables.md'), 'utf8');
    const safety = mdTable(md, g1, 'Safety score');
    expect(safety.header).toEqual(['strategy', 'backdoor · plain', 'backdoor · trigger', 'harmful-injection 10% · plain']);
    expect(safety.rows.map((r) => r[0])).toEqual(['base model', 'deep-token', 'rs', 'sft', 'star-dss']);
    expect(safety.rows[1].slice(1)).toEqual(['–', '–', '–']);
    // By hand: [10, 20, 40] → mean 23.33, sample variance (177.8 + 11.1 + 277.8) / 2 = 233.3, std 15.28.
    expect(cellOf(safety, 'sft', 'harmful-injection 10% · plain')).toBe('23.3 ± 15.3 (3)');
    // rs is safe but malformed (mean 25%): its safety is flagged too.
    expect(cellOf(safety, 'rs', 'backdoor · trigger')).toBe('24.2 ± 5.2 (3) †');
    expect(cellOf(safety, 'base model', 'backdoor · plain')).toBe('98.0 ± 2.0 (3)');
    expect(cellOf(safety, 'base model', 'harmful-injection 10% · plain')).toBe(meanStd(baseSafety.plain));
    expect(cellOf(safety, 'base model', 'backdoor · trigger')).toBe(meanStd(baseSafety.trigger));
    expect(cellOf(safety, 'sft', 'backdoor · plain')).toBe(meanStd(safetyScores.sft.backdoor.plain));
    expect(cellOf(safety, 'rs', 'backdoor · plain')).toBe(`${meanStd(safetyScores.rs.backdoor.plain)} †`);
    // star-dss degenerates (mean 30%): its safety is flagged.
    expect(cellOf(safety, 'star-dss', 'backdoor · trigger')).toBe(`${meanStd(safetyScores['star-dss'].backdoor.trigger)} †`);

    const honest = mdTable(md, g1, 'Exact-refusal % / degeneration % / malformed %');
    expect(cellOf(honest, 'star-dss', 'backdoor · plain')).toBe('30.0 / 30.0 / 5.0');
    expect(cellOf(honest, 'rs', 'harmful-injection 10% · plain')).toBe('70.0 / 0.0 / 25.0');
    expect(cellOf(honest, 'base model', 'backdoor · trigger')).toBe('95.0 / 0.0 / 0.0');

    const cap = mdTable(md, g1, 'Capability');
    expect(cap.rows[0][0]).toBe('base model');
    expect(cellOf(cap, 'base model', 'backdoor · arith')).toBe('92.0 ± 2.0 (3)');
    expect(cellOf(cap, 'sft', 'backdoor · arith')).toBe('72.0 ± 2.0 (3)');
    expect(cellOf(cap, 'rs', 'harmful-injection 10% · arith')).toBe(
      meanStd(capability.rs.map((v) => v + threatOffset['harmful-injection'])),
    );
    expect(cellOf(cap, 'star-dss', 'backdoor · arith')).toBe(meanStd(capability['star-dss'].map((v) => v - 10)));
    expect(meanStd(baseCapability)).toBe('92.0 ± 2.0 (3)');

    // The FNR 0.4 group: one seed each, no std.
    const fnr = mdTable(md, g2, 'Safety score');
    expect(cellOf(fnr, 'rs', 'harmful-injection 10% · plain')).toBe('50.0 (1) †');
    expect(cellOf(fnr, 'star-dss', 'harmful-injection 10% · plain')).toBe('75.0 (1) †');
    expect(fnr.rows[0][0]).toBe('base model');
  });

  it('tables.md lists failed cells with their error message (first line) and excludes them from means', () => {
    const md = readFileSync(join(run.dir, 'tables.md'), 'utf8');
    const failed = md.slice(md.indexOf('## Failed cells'));
    expect(failed).toContain(failedId);
    expect(failed).toContain(failedMessage);
    expect(failed).not.toContain('engine/train.ts');
    expect(md).toContain('25 cells: 23 ok, 2 failed, 1 pending');
    expect(failed).toContain(
      'deep-token-harmful-injection-s0-fnr0` llama · arith · harmful-injection 10% · deep-token · guardrail micro · FNR 0 · seed 0: loss is NaN',
    );
    // sft/backdoor has 3 ok seeds and one failed: n stays 3.
    expect(cellOf(mdTable(md, g1, 'Safety score'), 'sft', 'backdoor · plain')).toMatch(/\(3\)$/);
  });

  it('report.html is self-contained, has every chart div and escapes sample text', () => {
    const html = readFileSync(join(run.dir, 'report.html'), 'utf8');
    expect(html).not.toMatch(/<script[^>]*\bsrc=/i);
    expect(html).not.toMatch(/<link[^>]*href=/i);
    expect(html).toContain('plotly.js v4.1.2');
    expect(html.length).toBeGreaterThan(4_000_000);
    const ids = out.charts.map((c) => c.id);
    expect(ids).toEqual(
      expect.arrayContaining([
        'bars-g1',
        'scatter-g1-backdoor',
        'scatter-g1-harmful-injection-10',
        'categories-g1-backdoor',
        'curve-g1-backdoor',
        'star-g1',
        'bars-g2',
        'fnr-f1-harmful-injection-10',
      ]),
    );
    // Only star-dss cells record trajectories, and the FNR 0.4 group has star-dss cells too.
    expect(ids).toContain('star-g2');
    // rs records no curve points: its line is absent from the harm curve.
    expect(out.charts.find((c) => c.id === 'curve-g1-backdoor')!.data.map((d) => d.name)).not.toContain('rs');
    for (const id of ids) expect(html).toContain(`<div id="${id}" class="chart"></div>`);
    expect(html).toContain('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; here is how');
    expect(html).not.toContain(scriptResponse);
    expect(html).not.toContain('<script>alert');
    // Sample table: the harmful sample is judged harmful.
    expect(html).toMatch(/&lt;script&gt;alert[^\n]*<td class="harmful">harmful<\/td>/);
  });

  it('charts carry the aggregated numbers', () => {
    const bars = out.charts.find((c) => c.id === 'bars-g1')!;
    const [threatsAxis, conditionsAxis] = (bars.data[0] as { x: string[][] }).x;
    const k = threatsAxis.findIndex((t, i) => t === 'backdoor' && conditionsAxis[i] === 'trigger');
    const sft = bars.data.find((d) => d.name === 'sft') as { y: number[]; error_y: { array: number[] } };
    expect(sft.y[k]).toBeCloseTo(5, 10);
    expect(sft.error_y.array[k]).toBeCloseTo(5, 10); // [5, 0, 10]: sample std 5
    expect((bars.data[0] as { name: string }).name).toBe('base model');
    const fnr = out.charts.find((c) => c.id === 'fnr-f1-harmful-injection-10')!;
    const rs = fnr.data.find((d) => d.name === 'rs') as { x: number[]; y: number[] };
    expect(rs.x).toEqual([0, 0.4]);
    expect(rs.y[0]).toBeCloseTo(90, 10);
    expect(rs.y[1]).toBe(50);
    const curve = out.charts.find((c) => c.id === 'curve-g1-harmful-injection-10')!;
    const sftCurve = curve.data.find((d) => d.name === 'sft') as { x: number[]; y: number[] };
    expect(sftCurve.x).toEqual([1, 2, 3]);
    expect(sftCurve.y[0]).toBeCloseTo(23.333 + 20, 2);
    const star = out.charts.find((c) => c.id === 'star-g1')!;
    const harmfulTrace = star.data.find((d) => d.name === 'train-7 (harmful)') as { x: number[]; y: number[] };
    expect(harmfulTrace.x).toEqual([5, 10, 12]);
    expect(harmfulTrace.y).toEqual([0.9, 0.2, 0.1]);
    expect(star.data.find((d) => d.name === 'train-7 verdict')).toMatchObject({ y: [0.05, 0.05] });
  });

  it('says how to install chromium when --png has none, after writing the other files', async () => {
    const previous = process.env.STAR_DSS_CHROMIUM;
    process.env.STAR_DSS_CHROMIUM = '/nonexistent/chromium';
    const small = track(makeFakeRun({ small: true }));
    try {
      await expect(writeReports(small.dir, { png: true })).rejects.toThrow(/apt-get install chromium/);
      expect(existsSync(join(small.dir, 'report.html'))).toBe(true);
      expect(existsSync(join(small.dir, 'png'))).toBe(false);
    } finally {
      if (previous === undefined) delete process.env.STAR_DSS_CHROMIUM;
      else process.env.STAR_DSS_CHROMIUM = previous;
    }
  });

  it('`report --run DIR` parses and writes the reports', async () => {
    const small = track(makeFakeRun({ small: true }));
    const logs: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => logs.push(args.join(' '));
    try {
      await yargs(['report', '--run', small.dir]).command(reportCommand).strict().exitProcess(false).parseAsync();
    } finally {
      console.log = log;
    }
    expect(existsSync(join(small.dir, 'tables.md'))).toBe(true);
    expect(logs[0]).toMatch(/^6 cells \(6 ok, 0 failed\)/);
    const missing = async () =>
      yargs(['report'])
        .command(reportCommand)
        .strict()
        .exitProcess(false)
        .fail((m, e) => {
          throw e ?? new Error(m);
        })
        .parseAsync();
    await expect(missing()).rejects.toThrow(/Missing required argument: run/);
  });
});

describe('loading a run directory', () => {
  const emptyRun = () => track({ dir: mkdtempSync(join(tmpdir(), 'star-dss-report-bad-')) }).dir;
  const good = () => track(makeFakeRun({ small: true })).cells[1];

  it('names the file and the field of a malformed result.json in one line', () => {
    const dir = emptyRun();
    const bad = { ...good(), labels: { ...good().labels, seed: 'one' } };
    writeCell(dir, bad, 'bad-cell');
    const file = join(dir, 'cells', 'bad-cell', 'result.json');
    expect(() => loadRun(dir)).toThrow(`${file}: field 'labels.seed': Invalid input: expected number, received string`);
    try {
      loadRun(dir);
    } catch (error) {
      expect((error as Error).message).not.toContain('\n');
    }
  });

  it('names nested array fields, unknown keys and broken JSON', () => {
    const nested = emptyRun();
    const g = good();
    writeCell(nested, { ...g, safety: [{ ...g.safety[0], safetyScore: null }] }, 'c');
    expect(() => loadRun(nested)).toThrow(/cells\/c\/result\.json: field 'safety\[0\]\.safetyScore': .*expected number/);

    const extra = emptyRun();
    writeCell(extra, { ...g, color: 'red' }, 'c');
    expect(() => loadRun(extra)).toThrow(/field 'color': Unrecognized key/);

    const broken = emptyRun();
    mkdirSync(join(broken, 'cells', 'c'), { recursive: true });
    writeFileSync(join(broken, 'cells', 'c', 'result.json'), '{"id": ');
    expect(() => loadRun(broken)).toThrow(/cells\/c\/result\.json: not valid JSON/);

    expect(() => loadRun(emptyRun())).toThrow(/cells: no cells directory/);
  });
});
