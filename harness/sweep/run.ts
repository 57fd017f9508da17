// Running a sweep: plan the cells, take this shard's slice, skip finished cells (resume), prepare the
// shared prerequisites once (world, base models, guardrail: so workers never race to train them), then
// run the rest in-process or in N worker processes, with progress and an ETA, and finally write reports.
// Just before a cell runs it is checked again and locked (cells/<id>/.lock), so that several sweeps on one
// run directory split the cells; a worker that dies mid-cell is reported, its cell stays pending, and a
// fresh worker takes over the rest of the queue.
import { fork, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configureStrategy } from '../../strategies/index.ts';
import { labelSettingName } from '../../guardrails/index.ts';
import type { SweepConfig } from './config.ts';
import { planSweep, shardCells, type Cell } from './plan.ts';
import { cellDir, isCellDone, liveLock, lockCell, readCellResult, readPlans, writeCellResult, writePlan, type CellLock } from './store.ts';
import { runCell, type CellProgress } from './run-cell.ts';
import type { FromWorker, ToWorker } from './worker.ts';
import { estimateCells } from './estimate.ts';
import { measureModels } from './measure-speed.ts';
import { prepareAll, type Prerequisite } from './prepare.ts';
import type { CellResult } from '../../results/result.ts';
import { backendRequest } from '../../engine/tensor/backend.ts';

export interface SweepOptions {
  config: SweepConfig;
  out: string;
  workers: number;
  shard?: { index: number; count: number };
  dryRun?: boolean;
  quiet?: boolean;
  /** Keep cells whose result recorded an error; by default a resume runs them again. */
  keepFailed?: boolean;
  backend: string;
  log?: (line: string) => void;
}

export interface SweepSummary {
  cells: Cell[];
  /** Results this invocation wrote (ok or failed). */
  ran: number;
  skipped: number;
  failed: number;
  /** Cells whose worker process died mid-cell: no result, still pending, so a re-run resumes them. */
  lost: Cell[];
  /** Cells that another process sharing the run directory was running, or finished meanwhile. */
  elsewhere: Cell[];
  seconds: number;
}

export function cellTitle(cell: Cell): string {
  const s = cell.spec;
  if (s.kind === 'base') return `base ${s.model}`;
  const fnr = s.guardrail && s.guardrail.falseNegativeRate > 0 ? ` fnr=${s.guardrail.falseNegativeRate}` : '';
  const labels = s.guardrail?.labelProcessing ? ` labels=${labelSettingName(s.guardrail.labelProcessing)}` : '';
  return `${s.model} ${cell.labels.threatLabel} × ${cell.labels.strategyLabel}${fnr}${labels} seed ${s.seed}`;
}

/** What the cells share and must exist before they run: base models of micro families, the micro guardrail. */
export function prerequisites(cells: Cell[]): Prerequisite[] {
  const out = new Map<string, Prerequisite>();
  for (const { spec } of cells) {
    if (spec.model.startsWith('micro:')) {
      const family = spec.model.slice('micro:'.length);
      out.set(`base:${family}:${spec.worldSeed}`, { kind: 'base', family, worldSeed: spec.worldSeed });
    }
    if (spec.kind === 'finetune' && spec.guardrail.spec === 'micro') {
      const needs = configureStrategy(spec.strategy.name, spec.strategy.params).needs;
      if (needs.star || needs.verdict) out.set(`guardrail:${spec.worldSeed}`, { kind: 'guardrail', worldSeed: spec.worldSeed });
    }
    if (spec.eval.judge === 'guardrail:micro') out.set(`guardrail:${spec.worldSeed}`, { kind: 'guardrail', worldSeed: spec.worldSeed });
  }
  return [...out.values()];
}

/** One progress line: cells done of total, the running cells' phase and step, tokens/s, and an ETA. */
class Progress {
  private readonly started = performance.now();
  private readonly running = new Map<string, { title: string; progress?: CellProgress }>();
  private done = 0;
  private lastPrint = 0;

  constructor(
    private total: number,
    private readonly log: (line: string) => void,
    private readonly quiet: boolean,
  ) {}

  start(cell: Cell): void {
    this.running.set(cell.id, { title: cellTitle(cell) });
    this.print(true);
  }

  update(id: string, progress: CellProgress): void {
    const entry = this.running.get(id);
    if (entry) entry.progress = progress;
    this.print(false);
  }

  finish(cell: Cell, status: string, seconds: number, error?: string): void {
    this.running.delete(cell.id);
    this.done++;
    const eta = this.eta();
    this.log(
      `[${this.done}/${this.total}] ${status === 'ok' ? 'done' : 'FAILED'} ${cellTitle(cell)} in ${seconds.toFixed(0)} s${error ? `: ${error}` : ''}${eta}`,
    );
  }

  /** A cell whose worker died: it counts as handled here, and stays pending on disk. */
  lost(cell: Cell, reason: string): void {
    this.running.delete(cell.id);
    this.done++;
    this.log(`[${this.done}/${this.total}] LOST ${cellTitle(cell)} (${cell.id}): ${reason}; no result written, a re-run resumes it`);
  }

  /** A cell left to another process: it leaves the total. */
  skip(): void {
    this.total--;
  }

  private eta(): string {
    if (this.done === 0 || this.done >= this.total) return '';
    const elapsed = (performance.now() - this.started) / 1000;
    return ` (ETA ${Math.round(((this.total - this.done) * elapsed) / this.done / 60)} min)`;
  }

  private print(force: boolean): void {
    if (this.quiet) return;
    const now = performance.now();
    if (!force && now - this.lastPrint < 10_000) return;
    this.lastPrint = now;
    for (const { title, progress } of this.running.values()) {
      const p = progress;
      const step = p?.step ? ` step ${p.step}/${p.totalSteps}` : '';
      const speed = p?.tokensPerSecond ? ` ${Math.round(p.tokensPerSecond)} tokens/s` : '';
      this.log(`  [${this.done}/${this.total}] ${title}: ${p?.phase ?? 'starting'}${step}${speed}${this.eta()}`);
    }
  }
}

/** A valid result.json of the cell written at or after `since` (ms since the epoch; 2 s of slack for coarse mtimes), if any. */
function resultSince(runDir: string, id: string, since: number): CellResult | undefined {
  try {
    if (statSync(join(cellDir(runDir, id), 'result.json')).mtimeMs < since - 2000) return undefined;
  } catch {
    return undefined;
  }
  return readCellResult(runDir, id);
}

/**
 * Hands out the pending cells one at a time. Each is checked again just before it runs (another process
 * sharing the run directory may have finished it) and locked; a cell locked by a live process is left to it.
 */
class Scheduler {
  private readonly queue: Cell[];
  private readonly locks = new Map<string, CellLock>();
  readonly elsewhere: Cell[] = [];

  constructor(
    cells: Cell[],
    private readonly runDir: string,
    private readonly keepFailed: boolean,
    private readonly since: number,
    private readonly progress: Progress,
    private readonly log: (line: string) => void,
  ) {
    this.queue = [...cells];
  }

  get remaining(): number {
    return this.queue.length;
  }

  next(): Cell | undefined {
    for (let cell = this.queue.shift(); cell; cell = this.queue.shift()) {
      if (this.finished(cell)) {
        this.leave(cell);
        continue;
      }
      const attempt = lockCell(this.runDir, cell.id);
      if (!attempt.ok) {
        const h = attempt.holder;
        this.log(
          `left to another process: ${cellTitle(cell)} (${cell.id}) is locked${h ? ` by pid ${h.pid} on ${h.host} since ${h.started}` : ''}. If that process is gone, delete ${attempt.file} and re-run`,
        );
        this.leave(cell);
        continue;
      }
      if (this.finished(cell)) {
        attempt.lock.release();
        this.leave(cell);
        continue;
      }
      this.locks.set(cell.id, attempt.lock);
      return cell;
    }
    return undefined;
  }

  /** The cell made progress: its lock is alive. */
  alive(id: string): void {
    this.locks.get(id)?.touch();
  }

  aliveAll(): void {
    for (const lock of this.locks.values()) lock.touch();
  }

  release(id: string): void {
    this.locks.get(id)?.release();
    this.locks.delete(id);
  }

  releaseAll(): void {
    for (const id of [...this.locks.keys()]) this.release(id);
  }

  /** Done by the resume rule, or given a result (even a failed one) by another process since this sweep began. */
  private finished(cell: Cell): boolean {
    return isCellDone(this.runDir, cell.id, { keepFailed: this.keepFailed }) || resultSince(this.runDir, cell.id, this.since) !== undefined;
  }

  private leave(cell: Cell): void {
    this.elsewhere.push(cell);
    this.progress.skip();
  }
}

interface Tally {
  ran: number;
  failed: number;
  lost: Cell[];
}

/** The environment of a child process: this one's, with STAR_DSS_BACKEND set to the backend in use. */
function childEnv(): NodeJS.ProcessEnv {
  const backend = backendRequest();
  return backend ? { ...process.env, STAR_DSS_BACKEND: backend } : process.env;
}

function startWorker(): ChildProcess {
  const runner = fileURLToPath(new URL('../../bin/run-ts.mjs', import.meta.url));
  const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
  // The backend this process initialised (from --backend or STAR_DSS_BACKEND, auto resolved) reaches the workers.
  return fork(runner, [worker], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: childEnv() });
}

/**
 * Runs the scheduler's cells in `workers` processes. A worker that dies with a cell in flight loses that
 * cell (reported, left pending) and a fresh worker takes the rest of the queue; a worker that fails before
 * it is ready stops the sweep.
 */
function runInWorkers(s: Scheduler, runDir: string, workers: number, progress: Progress, tally: Tally): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let running = 0;
    let deathsBeforeReady = 0;
    let fatal: Error | undefined;
    const launch = () => {
      running++;
      const child = startWorker();
      let ready = false;
      let current: { cell: Cell; since: number } | undefined;
      const give = () => {
        const cell = s.next();
        current = cell ? { cell, since: Date.now() } : undefined;
        if (!cell) {
          if (child.connected) child.disconnect();
          return;
        }
        progress.start(cell);
        child.send({ type: 'run', cell, runDir } satisfies ToWorker);
      };
      child.on('error', () => {}); // a message to a worker that just died: its 'exit' reports the cell
      child.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          ready = true;
          deathsBeforeReady = 0;
          give();
        } else if (m.type === 'progress') {
          progress.update(m.id, m.progress);
          s.alive(m.id);
        } else if (m.type === 'done' && current?.cell.id === m.id) {
          s.release(m.id);
          tally.ran++;
          if (m.status !== 'ok') tally.failed++;
          progress.finish(current.cell, m.status, m.seconds, m.error);
          give();
        }
      });
      child.on('exit', (code, signal) => {
        running--;
        const how = signal ?? `exit code ${code}`;
        if (current) {
          const { cell, since } = current;
          current = undefined;
          s.release(cell.id);
          const written = resultSince(runDir, cell.id, since); // it wrote the result, then died before saying so
          if (written) {
            tally.ran++;
            if (written.status !== 'ok') tally.failed++;
            progress.finish(cell, written.status, written.seconds, written.error?.message);
          } else {
            tally.lost.push(cell);
            progress.lost(cell, `its worker process died (${how})`);
          }
        } else if (!ready) {
          if (signal === null && code !== 0)
            fatal ??= new Error(
              `a sweep worker exited with ${how} before it was ready; --workers 1 runs the cells in this process and shows the error`,
            );
          else if (++deathsBeforeReady > workers + 2) fatal ??= new Error(`sweep workers keep dying before they are ready (last: ${how})`);
        }
        if (!fatal && s.remaining > 0) launch();
        else if (running === 0) fatal ? reject(fatal) : resolve();
      });
    };
    for (let i = 0; i < Math.min(workers, s.remaining); i++) launch();
    if (running === 0) resolve();
  });
}

export async function runSweep(options: SweepOptions): Promise<SweepSummary> {
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const since = Date.now();
  const all = planSweep(options.config);
  const cells = options.shard ? shardCells(all, options.shard) : all;
  const keepFailed = options.keepFailed ?? false;
  if (options.dryRun) {
    // Speeds measured on the run's backend (one step per model), unless there is none (a plain planning call).
    const measured = options.backend === 'none' ? new Map() : await measureModels(cells, options.backend);
    const estimates = estimateCells(cells, measured);
    for (const [i, cell] of cells.entries()) {
      const done = isCellDone(options.out, cell.id, { keepFailed }) ? ' (done)' : '';
      log(`${cell.id}  ${cellTitle(cell)}  ~${estimates.perCell[i].toFixed(0)} s${done}`);
    }
    log(
      `${cells.length} cells${options.shard ? ` (shard ${options.shard.index}/${options.shard.count} of ${all.length})` : ''}; estimated ${(estimates.total / 60).toFixed(0)} min on one worker, ${(estimates.total / 60 / Math.max(1, options.workers)).toFixed(0)} min on ${options.workers} (${estimates.basis})`,
    );
    return { cells, ran: 0, skipped: 0, failed: 0, lost: [], elsewhere: [], seconds: 0 };
  }
  writePlan(options.out, options.config, all);
  const pending = cells.filter((c) => !isCellDone(options.out, c.id, { keepFailed }));
  const skipped = cells.length - pending.length;
  log(`sweep '${options.config.name}': ${cells.length} cells, ${skipped} already done, ${pending.length} to run → ${options.out}`);
  const needed = prerequisites(pending);
  if (needed.length > 0) {
    log(
      `preparing ${needed.map((p) => (p.kind === 'base' ? `base model micro:${p.family}` : 'micro guardrail')).join(', ')} (cached after the first run)`,
    );
    await prepareAll(needed, options.workers, log);
  }
  const progress = new Progress(pending.length, log, options.quiet ?? false);
  const scheduler = new Scheduler(pending, options.out, keepFailed, since, progress, log);
  const tally: Tally = { ran: 0, failed: 0, lost: [] };
  // Locks are released on every way out this process controls: the end, an exception, and with worker
  // processes SIGINT and SIGTERM (then the signal is raised again). In-process, a cell keeps the event loop
  // busy, so a handler would only run after the cell: there the signal keeps its default (the process dies
  // at once) and, like a SIGKILLed sweep, leaves locks whose pid is dead: stale at once on this host.
  const onSignal = (signal: NodeJS.Signals) => {
    scheduler.releaseAll();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    process.kill(process.pid, signal);
    // As PID 1 of a container a re-raised signal with no handler is ignored: exit as a shell would report it.
    setTimeout(() => process.exit(signal === 'SIGINT' ? 130 : 143), 1000);
  };
  if (options.workers > 1) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  const heartbeat = setInterval(() => scheduler.aliveAll(), 60_000);
  heartbeat.unref();
  try {
    if (options.workers <= 1) {
      for (let cell = scheduler.next(); cell; cell = scheduler.next()) {
        progress.start(cell);
        const id = cell.id;
        const { result, manifest } = await runCell(cell, {
          backend: options.backend,
          onProgress: (p) => {
            progress.update(id, p);
            scheduler.alive(id);
          },
        });
        writeCellResult(options.out, result, manifest);
        scheduler.release(id);
        tally.ran++;
        if (result.status !== 'ok') tally.failed++;
        progress.finish(cell, result.status, result.seconds, result.error?.message);
      }
    } else {
      await runInWorkers(scheduler, options.out, options.workers, progress, tally);
    }
  } finally {
    clearInterval(heartbeat);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    scheduler.releaseAll();
  }
  return {
    cells,
    ran: tally.ran,
    skipped,
    failed: tally.failed,
    lost: tally.lost,
    elsewhere: scheduler.elsewhere,
    seconds: (performance.now() - started) / 1000,
  };
}

/**
 * `sweep --status`: per plan of the run directory (plans/*.json), the planned, done, failed and missing
 * cells, with the ids of the failed and missing ones (and who runs a missing one now). Reads files only.
 */
export function sweepStatus(runDir: string): string[] {
  const plans = readPlans(runDir);
  if (plans.length === 0)
    throw new Error(
      `${join(runDir, 'plans')}: no plans. Fix: pass the --out of a sweep that has started (it writes plans/<name>.json first)`,
    );
  const lines: string[] = [];
  const unique = new Map<string, CellResult | undefined>();
  for (const plan of plans) {
    const failed: string[] = [];
    const missing: string[] = [];
    let done = 0;
    for (const cell of plan.cells) {
      const result = readCellResult(runDir, cell.id);
      unique.set(cell.id, result);
      if (result?.status === 'ok') done++;
      else if (result) failed.push(`  failed: ${cell.id}  ${cellTitle(cell)}: ${result.error?.message.split('\n')[0] ?? 'error'}`);
      else {
        const holder = liveLock(runDir, cell.id);
        missing.push(
          `  missing: ${cell.id}  ${cellTitle(cell)}${holder ? ` (running: pid ${holder.pid} on ${holder.host} since ${holder.started})` : ''}`,
        );
      }
    }
    lines.push(
      `plan '${plan.name}': ${plan.cells.length} planned, ${done} done, ${failed.length} failed, ${missing.length} missing`,
      ...failed,
      ...missing,
    );
  }
  if (plans.length > 1) {
    const results = [...unique.values()];
    const ok = results.filter((r) => r?.status === 'ok').length;
    const failed = results.filter((r) => r?.status === 'error').length;
    lines.push(
      `${runDir}: ${unique.size} unique cells over ${plans.length} plans, ${ok} done, ${failed} failed, ${unique.size - ok - failed} missing`,
    );
  }
  return lines;
}
