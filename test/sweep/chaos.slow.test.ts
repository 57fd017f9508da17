// Dead workers and chaos, with real processes on a tiny random model (a cell takes a second or two):
// - workers SIGKILLed with cells in flight: the sweep counts only the results it wrote, names the lost
//   cells, exits non-zero, and leaves them pending for a resume;
// - workers (and once the whole sweep) SIGKILLed at random moments, then resumed: every planned cell ends
//   with exactly one result, never run twice, with metrics equal to an uninterrupted run's.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSweepConfig } from '../../harness/sweep/config.ts';
import { planSweep, type Cell } from '../../harness/sweep/plan.ts';
import { cellTitle } from '../../harness/sweep/run.ts';
import { readCellResult } from '../../harness/sweep/store.ts';
import { workerPids, doneTitles, finished, sleep, starDss, tinySetup } from './tiny-run.ts';

const root = mkdtempSync(join(tmpdir(), 'star-dss-chaos-'));
let configFile: string;
let env: Record<string, string>;
let cells: Cell[];

beforeAll(async () => {
  const setup = await tinySetup(root, [1, 2, 3, 4], 2); // 9 cells of a second or two
  configFile = setup.configFile;
  env = { STAR_DSS_CACHE: setup.cache };
  cells = planSweep(loadSweepConfig(configFile));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const sweepArgs = (out: string, ...more: string[]) => ['sweep', '--config', configFile, '--out', out, '--backend', 'wasm', ...more];

describe('sweep workers killed mid-cell', () => {
  it('counts only the results written, names the lost cells, exits non-zero; a resume runs them', async () => {
    const out = join(root, 'dead-workers');
    const started = new Set<string>();
    const done = new Set<string>();
    let killed = false;
    const sweep = starDss(sweepArgs(out, '--workers', '2'), env, (line) => {
      const start = /^ {2}\[\d+\/\d+\] (.+): starting/.exec(line);
      if (start) started.add(start[1]);
      for (const t of doneTitles([line])) done.add(t);
      // The queue is empty and both workers hold a cell: kill them both.
      if (!killed && started.size === cells.length && started.size - done.size === 2) {
        killed = true;
        for (const pid of workerPids(sweep.pid)) process.kill(pid, 'SIGKILL');
      }
    });
    const exit = await sweep.exited;
    const text = exit.lines.join('\n');
    expect(killed, text).toBe(true);
    const written = finished(out);
    expect(written.length).toBeLessThan(cells.length);
    expect(text).toContain(`${written.length} cells run (0 failed)`);
    const lost = cells.filter((c) => !written.includes(c.id));
    expect(text).toMatch(new RegExp(`${lost.length} cells? lost`));
    for (const c of lost) expect(text).toContain(c.id);
    expect(exit.code).toBe(1);

    const resumed = await starDss(sweepArgs(out, '--workers', '1', '--quiet'), env).exited;
    expect(resumed.code, resumed.lines.join('\n')).toBe(0);
    expect(resumed.lines.join('\n')).toContain(`${lost.length} cells run (0 failed), ${written.length} reused`);
    expect(finished(out).sort()).toEqual(cells.map((c) => c.id).sort());
  }, 240_000);
});

/** What a cell measured, without the timings. */
function metrics(runDir: string, id: string) {
  const r = readCellResult(runDir, id)!;
  const { seconds: _s, ...training } = r.training ?? { seconds: 0 };
  return { status: r.status, safety: r.safety, capability: r.capability, training, curve: r.curve, samples: r.samples };
}

describe('chaos: workers killed at random, the sweep killed once, then resumed', () => {
  it('ends with every planned cell exactly once and the metrics of an uninterrupted run', async () => {
    const out = join(root, 'chaos');
    const reference = join(root, 'reference');
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const outputs: string[][] = [];

    // 1. Workers killed at random moments (mid-cell, or while starting); the sweep goes on with fresh workers.
    const first = starDss(sweepArgs(out, '--workers', '2', '--quiet'), env);
    let kills = 0;
    let over = false;
    void first.exited.then(() => (over = true));
    while (!over && workerPids(first.pid).length === 0) await sleep(100);
    while (!over && kills < 4) {
      await sleep(300 + random() * 1500);
      const workers = workerPids(first.pid);
      if (workers.length === 0 || over) continue;
      process.kill(workers[Math.floor(random() * workers.length)], 'SIGKILL');
      kills++;
    }
    const one = await first.exited;
    outputs.push(one.lines);
    expect(kills, one.lines.join('\n')).toBeGreaterThan(0);
    expect([0, 1]).toContain(one.code); // 1 when a kill hit a cell in flight

    // 2. The whole sweep (parent and workers) killed at a random moment after a cell started, as a lost node would be.
    if (finished(out).length < cells.length) {
      let startedCell: () => void = () => {};
      const cellStarted = new Promise<void>((resolve) => (startedCell = resolve));
      const second = starDss(sweepArgs(out, '--workers', '2'), env, (line) => {
        if (/: starting/.test(line)) startedCell();
      });
      await Promise.race([cellStarted, second.exited]);
      await Promise.race([sleep(random() * 800), second.exited]);
      second.killGroup();
      outputs.push((await second.exited).lines);
    }

    // 3. Resumed to the end.
    const last = await starDss(sweepArgs(out, '--workers', '2', '--quiet'), env).exited;
    outputs.push(last.lines);
    expect(last.code, last.lines.join('\n')).toBe(0);

    // Every planned cell exactly once: one result each, no cell reported done twice over the runs, no
    // leftover lock or temporary file, and `sweep --status` agrees.
    const ids = cells.map((c) => c.id).sort();
    expect(finished(out).sort()).toEqual(ids);
    expect(readdirSync(join(out, 'cells')).sort()).toEqual(ids);
    const titles = outputs.flatMap(doneTitles);
    expect(new Set(titles).size, titles.join('\n')).toBe(titles.length);
    for (const t of titles) expect(cells.map(cellTitle)).toContain(t);
    const leftovers = (readdirSync(out, { recursive: true }) as string[]).filter((f) => /\.lock|\.tmp/.test(f));
    expect(leftovers).toEqual([]);
    const status = await starDss(['sweep', '--status', '--out', out], env).exited;
    expect(status.lines.join('\n')).toContain(`plan 'tiny': ${cells.length} planned, ${cells.length} done, 0 failed, 0 missing`);

    // The same numbers as a sweep that was never interrupted.
    const clean = await starDss(sweepArgs(reference, '--workers', '2', '--quiet'), env).exited;
    expect(clean.code, clean.lines.join('\n')).toBe(0);
    for (const id of ids) expect(metrics(out, id), id).toEqual(metrics(reference, id));
    expect(existsSync(join(out, 'results.csv'))).toBe(true);
  }, 300_000);
});
