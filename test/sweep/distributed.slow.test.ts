// Several processes on one run folder, with real processes on a tiny random model:
// - two shards of a cluster array (one from SLURM_ARRAY_TASK_ID/COUNT, one from a Kubernetes Indexed
//   Job's JOB_COMPLETION_INDEX with --shard-count) run side by side; `--status` shows every cell done
//   exactly once and `star-dss report --run DIR` merges them;
// - two unsharded sweeps started together on one folder split the cells (per-cell locks) instead of
//   running each cell twice.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSweepConfig } from '../../harness/sweep/config.ts';
import { planSweep, type Cell } from '../../harness/sweep/plan.ts';
import { cellTitle } from '../../harness/sweep/run.ts';
import { doneTitles, finished, starDss, tinySetup } from './tiny-run.ts';

const root = mkdtempSync(join(tmpdir(), 'star-dss-distributed-'));
let configFile: string;
let env: Record<string, string>;
let cells: Cell[];

beforeAll(async () => {
  const setup = await tinySetup(root, [1, 2]);
  configFile = setup.configFile;
  env = { STAR_DSS_CACHE: setup.cache };
  cells = planSweep(loadSweepConfig(configFile));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const sweepArgs = (out: string, ...more: string[]) => [
  'sweep',
  '--config',
  configFile,
  '--out',
  out,
  '--backend',
  'wasm',
  '--workers',
  '1',
  '--quiet',
  ...more,
];

describe('one run folder, several processes', () => {
  it('two cluster shards from the environment fill one folder; --status and report see every cell once', async () => {
    const out = join(root, 'shards');
    const [slurm, k8s] = await Promise.all([
      starDss(sweepArgs(out), { ...env, SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '2', SLURM_ARRAY_TASK_MIN: '0' }).exited,
      starDss(sweepArgs(out, '--shard-count', '2'), { ...env, JOB_COMPLETION_INDEX: '1' }).exited,
    ]);
    expect(slurm.code, slurm.lines.join('\n')).toBe(0);
    expect(k8s.code, k8s.lines.join('\n')).toBe(0);
    const a = doneTitles(slurm.lines);
    const b = doneTitles(k8s.lines);
    expect([...a, ...b].sort()).toEqual(cells.map(cellTitle).sort()); // every cell, each in one shard
    expect(a.length).toBe(Math.ceil(cells.length / 2));
    expect(slurm.lines.join('\n')).toContain('shard 1/2 (from SLURM_ARRAY_TASK_ID)');
    expect(k8s.lines.join('\n')).toContain('shard 2/2 (from JOB_COMPLETION_INDEX)');

    const status = await starDss(['sweep', '--status', '--out', out], env).exited;
    expect(status.code).toBe(0);
    expect(status.lines.join('\n')).toContain(`plan 'tiny': ${cells.length} planned, ${cells.length} done, 0 failed, 0 missing`);
    const report = await starDss(['report', '--run', out], env).exited;
    expect(report.code, report.lines.join('\n')).toBe(0);
    const rows = readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n').slice(1);
    expect(rows).toHaveLength(cells.length);
    for (const c of cells) expect(rows.filter((r) => r.startsWith(`${c.id},`))).toHaveLength(1);
  }, 240_000);

  it('two sweeps started together on one folder split the cells instead of repeating them', async () => {
    const out = join(root, 'twins');
    const [one, two] = await Promise.all([starDss(sweepArgs(out), env).exited, starDss(sweepArgs(out), env).exited]);
    expect(one.code, one.lines.join('\n')).toBe(0);
    expect(two.code, two.lines.join('\n')).toBe(0);
    const titles = [...doneTitles(one.lines), ...doneTitles(two.lines)];
    expect(titles.sort()).toEqual(cells.map(cellTitle).sort()); // each cell run once, by one of them
    expect(finished(out).sort()).toEqual(cells.map((c) => c.id).sort());
  }, 240_000);
});
