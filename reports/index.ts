// The reports of a run directory: results.csv, tables.md and report.html beside cells/, and with
// `png` each chart as png/<chart id>.png. Pure functions build the texts; this file only does the I/O.
import { join } from 'node:path';
import { writeFileAtomic } from '../engine/io.ts';
import { aggregate, type Aggregate } from './aggregate.ts';
import { buildCharts, type Chart } from './charts.ts';
import { resultsCsv } from './csv.ts';
import { reportHtml } from './html.ts';
import { loadRun, type LoadedRun } from './load.ts';
import { exportPngs, findChromium, ChromiumMissingError, type PngOptions } from './png.ts';
import { summaryLine, tablesMarkdown } from './tables.ts';

export type { Aggregate } from './aggregate.ts';
export { loadRun, type LoadedRun } from './load.ts';

export interface ReportOptions {
  png?: boolean;
  pngOptions?: PngOptions;
}

export interface ReportOutput {
  /** Absolute paths of every file written. */
  files: string[];
  run: LoadedRun;
  agg: Aggregate;
  charts: Chart[];
}

/** Which cells the reports cover: the cells of the plans in plans/, and how many under cells/ were left out. */
export function coverageLine(run: LoadedRun): string {
  const n = (k: number, one: string, many: string) => `${k} ${k === 1 ? one : many}`;
  const plans = run.plans ?? [];
  const unplanned = run.unplanned?.length ?? 0;
  if (plans.length === 0) return 'No plans/ in this directory: every cell under cells/ is reported.';
  const left =
    unplanned === 0
      ? 'every cell in cells/ belongs to one'
      : `${n(unplanned, 'cell in cells/ belongs', 'cells in cells/ belong')} to no plan and ${unplanned === 1 ? 'is' : 'are'} left out`;
  return `${n(run.cells.length + run.pending.length, 'cell', 'cells')} of ${n(plans.length, 'plan', 'plans')} (${plans.join(', ')}); ${left}.`;
}

/** tables.md with the coverage line under its summary line. */
function withCoverage(markdown: string, run: LoadedRun, agg: Aggregate): string {
  const summary = summaryLine(run, agg);
  return markdown.replace(`\n${summary}\n`, `\n${summary}\n${coverageLine(run)}\n`);
}

/**
 * Write the reports of a run. With `png` and no chromium, the other three files are still written, then
 * ChromiumMissingError says how to install chromium and which files exist.
 */
export async function writeReports(runDir: string, options: ReportOptions = {}): Promise<ReportOutput> {
  const run = loadRun(runDir);
  const agg = aggregate(run.cells);
  const charts = buildCharts(agg);
  const files = [join(run.dir, 'results.csv'), join(run.dir, 'tables.md'), join(run.dir, 'report.html')];
  writeFileAtomic(files[0], resultsCsv(run.cells));
  writeFileAtomic(files[1], withCoverage(tablesMarkdown(run, agg), run, agg));
  writeFileAtomic(files[2], reportHtml({ run, agg, charts }));
  if (options.png) {
    const chromium = options.pngOptions?.chromium ?? findChromium();
    if (!chromium) throw new ChromiumMissingError(files);
    files.push(...(await exportPngs(charts, join(run.dir, 'png'), { ...options.pngOptions, chromium })));
  }
  return { files, run, agg, charts };
}
