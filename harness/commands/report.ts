// `star-dss report --run DIR [--png]`: results.csv, tables.md and report.html (and png/*.png) of a sweep
// run directory. A thin layer over reports/index.ts.
import type { Options } from 'yargs';
import { writeReports } from '../../reports/index.ts';
import { defineCommand } from './define.ts';

const reportOptions = {
  run: { type: 'string', demandOption: true, describe: 'run directory (the one holding cells/<id>/result.json)' },
  png: {
    type: 'boolean',
    default: false,
    describe: 'also write each chart as PNG via headless chromium (apt-get install chromium)',
  },
} satisfies Record<string, Options>;

export const reportCommand = defineCommand({
  command: 'report',
  describe: 'write results.csv, tables.md and report.html (and with --png, png/*.png) for a sweep run directory',
  builder: (y) => y.options(reportOptions),
  handler: async (args) => {
    const { files, run, agg } = await writeReports(args.run, { png: args.png });
    const pending = run.pending.length ? `, ${run.pending.length} pending` : '';
    console.log(`${run.cells.length} cells (${agg.ok} ok, ${agg.failed.length} failed${pending}) in ${run.dir}`);
    for (const file of files) console.log(`  ${file}`);
  },
});
