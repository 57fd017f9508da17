// Sweep reliability without running a cell: flag validation (--workers, shards from the environment),
// failed cells retried by default, per-cell locks, `sweep --status`, and reports that cover the current
// plans only. The process-level checks (dead workers, shards, chaos) are in *.slow.test.ts beside this file.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildCli } from '../../harness/cli.ts';
import { resolveShard } from '../../harness/commands/sweep.ts';
import { parseSweepConfig } from '../../harness/sweep/config.ts';
import { planSweep, type Cell } from '../../harness/sweep/plan.ts';
import { cellDir, isCellDone, lockCell, writePlan } from '../../harness/sweep/store.ts';
import { labelsOf } from '../../harness/sweep/run-cell.ts';
import { writeReports } from '../../reports/index.ts';
import { cellResult, type CellResult } from '../../results/result.ts';

const modelDir = mkdtempSync(join(tmpdir(), 'star-dss-model-')); // planning hashes a model directory's files
writeFileSync(join(modelDir, 'config.json'), '{}');

const tinyConfig = (name: string, seeds: number[]) =>
  parseSweepConfig({
    name,
    models: [modelDir],
    tasks: ['micro:ticket'],
    harmful: ['micro:purebad'],
    threats: [{ name: 'harmful-injection', count: 12, total: 24 }],
    strategies: ['sft'],
    seeds,
  });

/** A schema-valid result of a planned cell. */
function resultOf(cell: Cell, status: 'ok' | 'error' = 'ok'): CellResult {
  return cellResult.parse({
    id: cell.id,
    status,
    labels: labelsOf(cell),
    ...(status === 'error' ? { error: { message: 'loss is NaN' } } : {}),
    safety:
      status === 'ok'
        ? [
            {
              condition: 'plain',
              dataset: 'micro:hex-phi',
              judge: 'oracle',
              n: 6,
              safetyScore: 50,
              harmfulRate: 50,
              exactRefusalRate: 50,
              degenerationRate: 0,
              perCategory: {},
            },
          ]
        : [],
    capability: [],
    curve: [],
    samples: [],
    trajectories: [],
    seconds: 1,
  });
}

function writeResult(runDir: string, result: CellResult): void {
  mkdirSync(cellDir(runDir, result.id), { recursive: true });
  writeFileSync(join(cellDir(runDir, result.id), 'result.json'), JSON.stringify(result));
}

const run = (args: string[]) =>
  buildCli(args)
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();

let logged: string[];
beforeEach(() => {
  logged = [];
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logged.push(a.join(' ')));
});
afterEach(() => vi.restoreAllMocks());

describe('sweep --workers', () => {
  it('rejects a value that is not a positive integer, in one line naming the flag', async () => {
    const out = mkdtempSync(join(tmpdir(), 'star-dss-workers-'));
    for (const w of ['abc', '0', '-2', '1.5'])
      await expect(run(['sweep', '--dry-run', '--preset', 'smoke', '--out', out, '--workers', w]), w).rejects.toThrow(
        /^--workers: expected a positive integer/,
      );
    await run(['sweep', '--dry-run', '--preset', 'smoke', '--out', out, '--workers', '2']);
    expect(logged.at(-1)).toMatch(/on 2 \(/);
  });
});

describe('sweep shards from the environment', () => {
  it('reads SLURM_ARRAY_TASK_ID/COUNT (relative to SLURM_ARRAY_TASK_MIN) and JOB_COMPLETION_INDEX with --shard-count', () => {
    expect(resolveShard(undefined, undefined, {})).toBeUndefined();
    expect(resolveShard('2/3', undefined, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '5' })).toEqual({
      shard: { index: 2, count: 3 },
      source: '--shard',
    });
    expect(resolveShard(undefined, undefined, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_COUNT: '4' })?.shard).toEqual({
      index: 1,
      count: 4,
    });
    expect(
      resolveShard(undefined, undefined, { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_COUNT: '4', SLURM_ARRAY_TASK_MIN: '1' })?.shard,
    ).toEqual({ index: 4, count: 4 });
    expect(resolveShard(undefined, 3, { JOB_COMPLETION_INDEX: '2' })).toEqual({
      shard: { index: 3, count: 3 },
      source: 'JOB_COMPLETION_INDEX',
    });
    expect(() => resolveShard(undefined, undefined, { JOB_COMPLETION_INDEX: '2' })).toThrow(/^JOB_COMPLETION_INDEX.*--shard-count/);
    expect(() => resolveShard(undefined, 2, { JOB_COMPLETION_INDEX: '2' })).toThrow(/JOB_COMPLETION_INDEX/);
    expect(() => resolveShard(undefined, undefined, { SLURM_ARRAY_TASK_ID: '5', SLURM_ARRAY_TASK_COUNT: '3' })).toThrow(
      /SLURM_ARRAY_TASK_ID.*contiguous/,
    );
    expect(() => resolveShard(undefined, 1.5, { JOB_COMPLETION_INDEX: '0' })).toThrow(/^--shard-count/);
  });

  it('parses --shard-count and the other new flags', async () => {
    const out = mkdtempSync(join(tmpdir(), 'star-dss-flags-'));
    const argv = await run([
      'sweep',
      '--dry-run',
      '--preset',
      'smoke',
      '--out',
      out,
      '--shard-count',
      '2',
      '--keep-failed',
      '--retry-failed',
    ]);
    expect(argv.shardCount).toBe(2);
    expect(argv.keepFailed).toBe(true);
  });
});

describe('failed cells on resume', () => {
  it('are run again by default; keepFailed keeps them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'star-dss-failed-'));
    const [base, cell] = planSweep(tinyConfig('tiny', [1]));
    writeResult(dir, resultOf(base));
    writeResult(dir, resultOf(cell, 'error'));
    expect(isCellDone(dir, base.id)).toBe(true);
    expect(isCellDone(dir, cell.id)).toBe(false);
    expect(isCellDone(dir, cell.id, { keepFailed: true })).toBe(true);
  });
});

describe('cell locks', () => {
  it('one holder at a time; a lock of a dead process on this host, or an old one from another host, is taken over', () => {
    const dir = mkdtempSync(join(tmpdir(), 'star-dss-lock-'));
    const first = lockCell(dir, 'c1');
    expect(first.ok).toBe(true);
    const second = lockCell(dir, 'c1');
    expect(second.ok).toBe(false);
    if (!second.ok) expect(second.holder).toMatchObject({ pid: process.pid, host: hostname() });
    const file = join(cellDir(dir, 'c1'), '.lock');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    if (first.ok) first.lock.release();
    expect(existsSync(file)).toBe(false);

    const dead = spawnSync(process.execPath, ['-e', '0']).pid!; // exited: its pid names no process now
    writeFileSync(file, JSON.stringify({ pid: dead, host: hostname(), started: new Date().toISOString(), token: 'x' }));
    const taken = lockCell(dir, 'c1');
    expect(taken.ok).toBe(true);
    if (taken.ok) taken.lock.release();

    writeFileSync(file, JSON.stringify({ pid: 1, host: 'elsewhere', started: new Date().toISOString(), token: 'y' }));
    expect(lockCell(dir, 'c1').ok).toBe(false); // another host, fresh: it is running there
    const old = (Date.now() - 3 * 24 * 3600_000) / 1000;
    utimesSync(file, old, old);
    const stale = lockCell(dir, 'c1');
    expect(stale.ok).toBe(true);
    if (stale.ok) stale.lock.release();
    expect(existsSync(file)).toBe(false);
  });
});

describe('sweep --status', () => {
  it('lists planned, done, failed and missing cells per plan, without running anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'star-dss-status-'));
    const a = planSweep(tinyConfig('a', [1, 2]));
    const b = planSweep(tinyConfig('b', [3]));
    writePlan(dir, tinyConfig('a', [1, 2]), a);
    writePlan(dir, tinyConfig('b', [3]), b);
    writeResult(dir, resultOf(a[0])); // the base cell, shared by both plans
    writeResult(dir, resultOf(a[1], 'error'));
    await run(['sweep', '--status', '--out', dir]);
    const text = logged.join('\n');
    expect(text).toContain("plan 'a': 3 planned, 1 done, 1 failed, 1 missing");
    expect(text).toContain("plan 'b': 2 planned, 1 done, 0 failed, 1 missing");
    expect(text).toContain(`failed: ${a[1].id}`);
    expect(text).toContain('loss is NaN');
    expect(text).toContain(`missing: ${a[2].id}`);
    expect(text).toContain(`missing: ${b[1].id}`);
    expect(text).toContain(`${dir}: 4 unique cells over 2 plans, 1 done, 1 failed, 2 missing`);
    expect(existsSync(join(dir, 'results.csv'))).toBe(false);
    await expect(run(['sweep', '--status', '--out', join(dir, 'nothing')])).rejects.toThrow(/plans: no plans/);
  });
});

describe('reports cover the cells of the current plans', () => {
  it('leaves out cells of no plan, and says so in tables.md', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'star-dss-plans-report-'));
    const stale = planSweep(tinyConfig('tiny', [7])); // an earlier run with other settings, same name
    for (const c of stale) writeResult(dir, resultOf(c));
    const now = planSweep(tinyConfig('tiny', [1]));
    writePlan(dir, tinyConfig('tiny', [1]), now);
    for (const c of now) writeResult(dir, resultOf(c));
    const { run: loaded } = await writeReports(dir);
    expect(loaded.cells.map((c) => c.id).sort()).toEqual(now.map((c) => c.id).sort()); // the base cell is shared
    const csv = readFileSync(join(dir, 'results.csv'), 'utf8');
    expect(csv).not.toContain(stale[1].id);
    expect(csv).toContain(now[1].id);
    expect(readFileSync(join(dir, 'tables.md'), 'utf8')).toContain(
      '2 cells of 1 plan (tiny); 1 cell in cells/ belongs to no plan and is left out.',
    );
  });
});
