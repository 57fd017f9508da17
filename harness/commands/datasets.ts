// `star-dss datasets verify PATH [--show N] [--json]`: the detected format, item counts (by kind, category
// and harmful label), schema problems (one line each) and duplicate items of a dataset file or a directory
// of HEx-PHI CSVs. Exits 1 when the file has schema problems; duplicates are reported, not fatal.
import type { Argv, CommandModule, Options, PositionalOptions } from 'yargs';
import { formatVerifyReport, verifyDataset, type VerifyReport } from '../../datasets/verify.ts';
import { type CommandArgs, defineCommand } from './define.ts';

const verifyPositionals = {
  path: {
    type: 'string',
    demandOption: true,
    describe: 'a dataset file or a directory of HEx-PHI category_<N>.csv files',
  },
} satisfies Record<string, PositionalOptions>;

const verifyOptions = {
  show: { type: 'number', default: 5, describe: 'problems and duplicates to list' },
  json: { type: 'boolean', default: false, describe: 'print the report as JSON' },
} satisfies Record<string, Options>;

export type DatasetsVerifyArgs = CommandArgs<typeof verifyPositionals & typeof verifyOptions>;

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

const verifyCommand = defineCommand({
  command: 'verify <path>',
  describe: 'Check a dataset file (or a HEx-PHI directory): format, counts, schema problems, duplicates',
  builder: (y) => y.positional('path', verifyPositionals.path).options(verifyOptions),
  handler: (args) => {
    const result = runDatasetsVerify({ path: args.path, show: args.show, json: args.json });
    for (const line of result.lines) console.log(line);
    if (!result.ok) process.exitCode = 1;
  },
});

export const datasetsCommand: CommandModule = {
  command: 'datasets',
  describe: 'Dataset files',
  builder: (y: Argv) => y.command(verifyCommand).demandCommand(1, 'Specify a subcommand: verify'),
  handler: () => {},
};
