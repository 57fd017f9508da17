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
import { tablesMarkdown } from './tables.ts';

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
  writeFileAtomic(files[1], tablesMarkdown(run, agg));
  writeFileAtomic(files[2], reportHtml({ run, agg, charts }));
  if (options.png) {
    const chromium = options.pngOptions?.chromium ?? findChromium();
    if (!chromium) throw new ChromiumMissingError(files);
    files.push(...(await exportPngs(charts, join(run.dir, 'png'), { ...options.pngOptions, chromium })));
  }
  return { files, run, agg, charts };
}
