// `star-dss reproduce`: the paper's claims on the micro-world, claim by claim (harness/reproduce/). Runs the
// sweeps every claim needs into one run directory (reusing finished cells), writes results.csv, tables.md,
// report.html and claims.md. `--dry-run` prints the sweeps, the cell count and the estimated time.
import { availableParallelism } from 'node:os';
import type { Options } from 'yargs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { labelSettingNames, type LabelSettingName } from '../../guardrails/index.ts';
import { claimIds, selectClaims } from '../reproduce/claims.ts';
import { LABEL_SETTINGS } from '../reproduce/sweeps.ts';
import { runReproduce, type ReproduceSummary } from '../reproduce/reproduce.ts';
import { type CommandArgs, defineCommand, type GlobalArgs } from './define.ts';

const reproduceOptions = {
  out: { type: 'string', default: 'runs/reproduce', describe: 'run directory; a re-run reuses its finished cells' },
  seeds: { type: 'number', default: 3, describe: 'seeds per cell (1..n); fewer than 2 makes every comparison inconclusive' },
  workers: {
    type: 'number',
    default: availableParallelism(),
    describe: 'cells run in parallel processes (wasm uses one core each)',
  },
  claim: {
    type: 'string',
    array: true,
    default: [],
    choices: claimIds,
    describe: 'only these claims (repeatable; default: all)',
  },
  'label-setting': {
    type: 'string',
    array: true,
    default: [...LABEL_SETTINGS],
    choices: labelSettingNames,
    describe:
      "how guardrail label scores become P(safe): paper (σ of the raw logit difference) and/or official (the authors' code: temperature 0.2, top-k 50, top-p 0.9); claims.md shows the verdicts side by side",
  },
  'dry-run': { type: 'boolean', default: false, describe: 'print the sweeps, the cell count and the estimated time' },
  quiet: { type: 'boolean', default: false, describe: 'only one line per finished cell' },
  'keep-failed': {
    type: 'boolean',
    default: false,
    describe: 'keep cells whose result recorded an error (by default a re-run runs them again)',
  },
  'retry-failed': { type: 'boolean', default: false, describe: 'no-op, kept for old scripts: failed cells are run again by default' },
} satisfies Record<string, Options>;

export type ReproduceArgs = CommandArgs<typeof reproduceOptions> & GlobalArgs;

export async function runReproduceCommand(args: ReproduceArgs, log: (line: string) => void = console.log): Promise<ReproduceSummary> {
  if (!Number.isInteger(args.seeds) || args.seeds < 1) throw new Error(`--seeds: expected a whole number ≥ 1, got ${args.seeds}`);
  if (!Number.isInteger(args.workers) || args.workers < 1) throw new Error(`--workers: expected a whole number ≥ 1, got ${args.workers}`);
  const claims = selectClaims(args.claim);
  const backend = args.dryRun ? 'none' : await initBackend(args.backend);
  const command = [
    'star-dss reproduce',
    `--seeds ${args.seeds}`,
    `--workers ${args.workers}`,
    ...args.claim.map((c) => `--claim ${c}`),
    ...args.labelSetting.map((l) => `--label-setting ${l}`),
  ].join(' ');
  const summary = await runReproduce({
    out: args.out,
    seeds: args.seeds,
    workers: args.workers,
    backend,
    dryRun: args.dryRun,
    quiet: args.quiet,
    keepFailed: args.keepFailed,
    claims,
    labelSettings: args.labelSetting as LabelSettingName[],
    command,
    log,
  });
  if (summary.lost.length > 0)
    log(
      `${summary.lost.length} cell(s) lost (a worker process died mid-cell): ${summary.lost.join(', ')}. Fix: re-run the same command to resume them`,
    );
  if (summary.failed > 0 || summary.lost.length > 0) process.exitCode = 1;
  return summary;
}

export const reproduceCommand = defineCommand({
  command: 'reproduce',
  describe: "reproduce the paper's claims on the micro-world and write claims.md beside the sweep reports",
  builder: (y) => y.options(reproduceOptions),
  handler: async (args) => {
    await runReproduceCommand(args);
  },
});
