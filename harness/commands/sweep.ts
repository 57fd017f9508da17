// `star-dss sweep`: the main job. Plans a grid (a YAML config or a preset; `quick` on the micro-world by
// default), runs its cells (resuming finished ones), and writes results.csv, tables.md and report.html.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Options } from 'yargs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { loadSweepConfig, presetFile, presetNames } from '../sweep/config.ts';
import { parseShard } from '../sweep/plan.ts';
import { runSweep } from '../sweep/run.ts';
import { writeReports } from '../../reports/index.ts';
import { type CommandArgs, defineCommand, type GlobalArgs } from './define.ts';

const sweepOptions = {
  config: { type: 'string', describe: 'sweep config (YAML)' },
  preset: { type: 'string', choices: presetNames, default: 'quick', describe: 'a built-in config, when --config is absent' },
  out: { type: 'string', describe: 'run directory (default runs/<config name>); a re-run resumes it' },
  workers: {
    type: 'number',
    default: availableParallelism(),
    describe: 'cells run in parallel processes (wasm uses one core each)',
  },
  shard: { type: 'string', describe: 'run slice i of n (i/n), e.g. for a Slurm job array sharing --out' },
  'dry-run': { type: 'boolean', default: false, describe: 'list the cells and estimate their cost' },
  quiet: { type: 'boolean', default: false, describe: 'only one line per finished cell' },
  'retry-failed': { type: 'boolean', default: false, describe: 'run cells whose result recorded an error again' },
} satisfies Record<string, Options>;

export type SweepArgs = CommandArgs<typeof sweepOptions> & GlobalArgs;

/** Runs a sweep from parsed flags and returns the run directory. */
export async function runSweepCommand(args: SweepArgs, log: (line: string) => void = console.log): Promise<string> {
  const file = args.config ?? presetFile(args.preset);
  const config = loadSweepConfig(file);
  const out = resolve(args.out ?? `runs/${config.name}`);
  const backend = args.dryRun ? 'none' : await initBackend(args.backend);
  const shard = args.shard ? parseShard(args.shard) : undefined;
  const summary = await runSweep({
    config,
    out,
    workers: args.workers,
    shard,
    dryRun: args.dryRun,
    quiet: args.quiet,
    retryFailed: args.retryFailed,
    backend,
    log,
  });
  if (args.dryRun) return out;
  const { files } = await writeReports(out);
  log(`${summary.ran} cells run (${summary.failed} failed), ${summary.skipped} reused, in ${(summary.seconds / 60).toFixed(1)} min`);
  for (const f of files) log(`wrote ${f}`);
  log(`results: ${out}`);
  if (summary.failed > 0) process.exitCode = 1;
  return out;
}

export const sweepCommand = defineCommand({
  command: 'sweep',
  describe: 'run a sweep (default: the quick preset on the micro-world) and write its reports',
  builder: (y) => y.options(sweepOptions),
  handler: async (args) => {
    await runSweepCommand(args);
  },
});
