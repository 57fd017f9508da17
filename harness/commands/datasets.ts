// `star-dss datasets verify PATH [--show N] [--json]`: the detected format, item counts (by kind, category
// and harmful label), schema problems (one line each) and duplicate items of a dataset file or a directory
// of HEx-PHI CSVs. Exits 1 when the file has schema problems; duplicates are reported, not fatal.
import type { Argv, CommandModule } from 'yargs';
import { formatVerifyReport, verifyDataset, type VerifyReport } from '../../datasets/verify.ts';

export interface DatasetsVerifyArgs {
  path: string;
  show: number;
  json: boolean;
}

export interface DatasetsVerifyResult {
  report: VerifyReport;
  lines: string[];
  /** True when every record loads (no schema problems). */
  ok: boolean;
}

export function runDatasetsVerify(args: DatasetsVerifyArgs): DatasetsVerifyResult {
  if (!Number.isInteger(args.show) || args.show < 0) throw new Error(`--show must be a non-negative integer, got ${args.show}`);
  const report = verifyDataset(args.path, { show: args.show });
  const lines = args.json ? [JSON.stringify(report, null, 2)] : formatVerifyReport(report);
  return { report, lines, ok: report.problems.count === 0 };
}

const verifyCommand: CommandModule<object, DatasetsVerifyArgs> = {
  command: 'verify <path>',
  describe: 'Check a dataset file (or a HEx-PHI directory): format, counts, schema problems, duplicates',
  builder: (y: Argv) =>
    y
      .positional('path', {
        type: 'string',
        demandOption: true,
        describe: 'a dataset file or a directory of HEx-PHI category_<N>.csv files',
      })
      .option('show', { type: 'number', default: 5, describe: 'problems and duplicates to list' })
      .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' }),
  handler: (args) => {
    const result = runDatasetsVerify({ path: args.path, show: args.show, json: args.json });
    for (const line of result.lines) console.log(line);
    if (!result.ok) process.exitCode = 1;
  },
};

export const datasetsCommand: CommandModule = {
  command: 'datasets',
  describe: 'Dataset files',
  builder: (y: Argv) => y.command(verifyCommand).demandCommand(1, 'Specify a subcommand: verify'),
  handler: () => {},
};
