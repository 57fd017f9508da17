// `star-dss sweep`: the main job. Plans a grid (a YAML config or a preset; `quick` on the micro-world by
// default), runs its cells (resuming finished ones), and writes results.csv, tables.md and report.html.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Options } from 'yargs';
import { backendRequest, initBackend } from '../../engine/tensor/backend.ts';
import { loadSweepConfig, presetFile, presetNames } from '../sweep/config.ts';
import { parseShard } from '../sweep/plan.ts';
import { assertReferences } from '../sweep/references.ts';
import { runSweep, sweepStatus } from '../sweep/run.ts';
import { writeReports } from '../../reports/index.ts';
import { type CommandArgs, defineCommand, type GlobalArgs } from './define.ts';

const sweepOptions = {
  config: { type: 'string', describe: 'sweep config (YAML)' },
  preset: { type: 'string', choices: presetNames, default: 'quick', describe: 'a built-in config, when --config is absent' },
  out: { type: 'string', describe: 'run directory (default runs/<config name>); a re-run resumes it' },
  workers: {
    type: 'number',
    defaultDescription: 'the number of cores; 1 on a GPU backend (webgpu, tensorflow-gpu)',
    describe: 'cells run in parallel processes (wasm uses one core each)',
  },
  shard: {
    type: 'string',
    describe:
      'run slice i of n (i/n) of the cells; when absent, SLURM_ARRAY_TASK_ID/COUNT or JOB_COMPLETION_INDEX (with --shard-count) give it (docs/distributed.md)',
  },
  'shard-count': { type: 'number', describe: 'number of shards when the slice comes from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)' },
  status: { type: 'boolean', describe: 'list planned, done, failed and missing cells per plan of --out; runs nothing' },
  'dry-run': { type: 'boolean', default: false, describe: 'list the cells and estimate their cost' },
  quiet: { type: 'boolean', default: false, describe: 'only one line per finished cell' },
  'keep-models': {
    type: 'boolean',
    describe: "save each finetuned cell's weights to cells/<id>/model/ (same as eval.keepModels: true)",
  },
  'keep-failed': { type: 'boolean', describe: 'keep cells whose result recorded an error (by default a re-run runs them again)' },
  'retry-failed': { type: 'boolean', default: false, describe: 'no-op, kept for old scripts: failed cells are run again by default' },
} satisfies Record<string, Options>;

export type SweepArgs = CommandArgs<typeof sweepOptions> & GlobalArgs;

/** Runs a sweep from parsed flags and returns the run directory. */
export async function runSweepCommand(args: SweepArgs, log: (line: string) => void = console.log): Promise<string> {
  if (args.status && args.out) return showStatus(resolve(args.out), log); // files only: no config, no backend
  if (args.workers !== undefined && (!Number.isInteger(args.workers) || args.workers < 1))
    throw new Error(
      `--workers: expected a positive integer (worker processes, one core each), got ${Number.isNaN(args.workers) ? 'something that is not a number' : args.workers}. Fix: e.g. --workers 4`,
    );
  const file = args.config ?? presetFile(args.preset);
  const loaded = loadSweepConfig(file);
  const config = args.keepModels ? { ...loaded, eval: { ...loaded.eval, keepModels: true as const } } : loaded;
  if (args.status) return showStatus(resolve(args.out ?? `runs/${config.name}`), log);
  await assertReferences(config, file); // every file, micro: name, guardrail and judge resolves, or nothing runs (dry run too)
  const out = resolve(args.out ?? `runs/${config.name}`);
  const sharding = resolveShard(args.shard, args.shardCount, process.env);
  const shard = sharding?.shard;
  if (sharding && !args.dryRun) log(`shard ${sharding.shard.index}/${sharding.shard.count} (from ${sharding.source})`);
  // The dry run needs the backend too: it times one training step of each model on it for the estimate.
  const backend = await initBackend(args.backend);
  // One GPU is shared by every process on it: a GPU backend runs the cells one at a time unless told otherwise.
  const onGpu = backend === 'webgpu' || (backend === 'tensorflow' && backendRequest() === 'tensorflow-gpu');
  const workers = args.workers ?? (onGpu ? 1 : availableParallelism());
  const summary = await runSweep({
    config,
    out,
    workers,
    shard,
    dryRun: args.dryRun,
    quiet: args.quiet,
    keepFailed: args.keepFailed,
    backend,
    log,
  });
  if (args.dryRun) return out;
  const { files } = await writeReports(out);
  log(`${summary.ran} cells run (${summary.failed} failed), ${summary.skipped} reused, in ${(summary.seconds / 60).toFixed(1)} min`);
  for (const f of files) log(`wrote ${f}`);
  const { lost, elsewhere } = summary;
  if (elsewhere.length > 0)
    log(
      `${elsewhere.length} ${elsewhere.length === 1 ? 'cell was' : 'cells were'} left to another process sharing ${out} (running there, or finished meanwhile)`,
    );
  if (lost.length > 0)
    log(
      `${lost.length} ${lost.length === 1 ? 'cell' : 'cells'} lost (a worker process died mid-cell; no result written): ${lost.map((c) => c.id).join(', ')}. Fix: re-run the same command to resume them`,
    );
  log(`results: ${out}`);
  if (summary.failed > 0 || lost.length > 0) process.exitCode = 1;
  return out;
}

function showStatus(out: string, log: (line: string) => void): string {
  for (const line of sweepStatus(out)) log(line);
  return out;
}

type Env = Record<string, string | undefined>;

/** A non-negative integer from an environment variable, or a one-line error naming it. */
function envIndex(env: Env, name: string): number {
  const value = Number(env[name]);
  if (!/^\d+$/.test(env[name] ?? '') || !Number.isSafeInteger(value))
    throw new Error(`${name}: expected a non-negative integer, got '${env[name]}'. Fix: unset it or pass --shard i/n`);
  return value;
}

/**
 * This process's slice of the cells: `--shard i/n` when given; else a Slurm job array's task
 * (SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT, so --array=0-3 and --array=1-4 both
 * work); else a Kubernetes Indexed Job's JOB_COMPLETION_INDEX (0-based) of --shard-count. Undefined: all cells.
 */
export function resolveShard(
  flag: string | undefined,
  shardCount: number | undefined,
  env: Env,
): { shard: { index: number; count: number }; source: string } | undefined {
  if (shardCount !== undefined && (!Number.isInteger(shardCount) || shardCount < 1))
    throw new Error(`--shard-count: expected a positive integer (the number of shards), got ${shardCount}. Fix: e.g. --shard-count 4`);
  if (flag) {
    const shard = parseShard(flag);
    if (shardCount !== undefined && shardCount !== shard.count)
      throw new Error(`--shard-count ${shardCount} disagrees with --shard ${flag}. Fix: drop --shard-count (--shard i/n names the count)`);
    return { shard, source: '--shard' };
  }
  if (env.SLURM_ARRAY_TASK_ID !== undefined) {
    const id = envIndex(env, 'SLURM_ARRAY_TASK_ID');
    const min = env.SLURM_ARRAY_TASK_MIN !== undefined ? envIndex(env, 'SLURM_ARRAY_TASK_MIN') : 0;
    const count = shardCount ?? (env.SLURM_ARRAY_TASK_COUNT !== undefined ? envIndex(env, 'SLURM_ARRAY_TASK_COUNT') : NaN);
    if (!(count >= 1))
      throw new Error('SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not. Fix: pass --shard-count N (the array size)');
    const index = id - min;
    if (index < 0 || index >= count)
      throw new Error(
        `SLURM_ARRAY_TASK_ID ${id} − SLURM_ARRAY_TASK_MIN ${min} is not below the ${count} shards. Fix: submit a contiguous array (--array=0-${count - 1}) or pass --shard i/n`,
      );
    return { shard: { index: index + 1, count }, source: 'SLURM_ARRAY_TASK_ID' };
  }
  if (env.JOB_COMPLETION_INDEX !== undefined) {
    const index = envIndex(env, 'JOB_COMPLETION_INDEX');
    if (shardCount === undefined)
      throw new Error("JOB_COMPLETION_INDEX is set but --shard-count is not. Fix: pass --shard-count N (the Job's completions)");
    if (index >= shardCount)
      throw new Error(
        `JOB_COMPLETION_INDEX ${index} is not below --shard-count ${shardCount}. Fix: set --shard-count to the Job's completions`,
      );
    return { shard: { index: index + 1, count: shardCount }, source: 'JOB_COMPLETION_INDEX' };
  }
  return undefined;
}

export const sweepCommand = defineCommand({
  command: 'sweep',
  describe: 'run a sweep (default: the quick preset on the micro-world) and write its reports',
  builder: (y) => y.options(sweepOptions),
  handler: async (args) => {
    await runSweepCommand(args);
  },
});
