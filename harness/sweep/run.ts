// Running a sweep: plan the cells, take this shard's slice, skip finished cells (resume), prepare the
// shared prerequisites once (world, base models, guardrail: so workers never race to train them), then
// run the rest in-process or in N worker processes, with progress and an ETA, and finally write reports.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { configureStrategy } from '../../strategies/index.ts';
import type { SweepConfig } from './config.ts';
import { planSweep, shardCells, type Cell } from './plan.ts';
import { isCellDone, writeCellResult, writePlan } from './store.ts';
import { runCell, type CellProgress } from './run-cell.ts';
import type { FromWorker, ToWorker } from './worker.ts';
import { estimateCells } from './estimate.ts';
import { prepareAll, type Prerequisite } from './prepare.ts';

export interface SweepOptions {
  config: SweepConfig;
  out: string;
  workers: number;
  shard?: { index: number; count: number };
  dryRun?: boolean;
  quiet?: boolean;
  retryFailed?: boolean;
  backend: string;
  log?: (line: string) => void;
}

export interface SweepSummary {
  cells: Cell[];
  ran: number;
  skipped: number;
  failed: number;
  seconds: number;
}

export function cellTitle(cell: Cell): string {
  const s = cell.spec;
  if (s.kind === 'base') return `base ${s.model}`;
  const fnr = s.guardrail && s.guardrail.falseNegativeRate > 0 ? ` fnr=${s.guardrail.falseNegativeRate}` : '';
  return `${s.model} ${cell.labels.threatLabel} × ${cell.labels.strategyLabel}${fnr} seed ${s.seed}`;
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
    private readonly total: number,
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

  private eta(): string {
    if (this.done === 0 || this.done === this.total) return '';
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

function startWorker(): ChildProcess {
  const runner = fileURLToPath(new URL('../../bin/run-ts.mjs', import.meta.url));
  const worker = fileURLToPath(new URL('./worker.ts', import.meta.url));
  return fork(runner, [worker], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

async function runInWorkers(cells: Cell[], runDir: string, workers: number, progress: Progress): Promise<number> {
  const queue = [...cells];
  let failed = 0;
  const byId = new Map(cells.map((c) => [c.id, c]));
  await Promise.all(
    Array.from({ length: Math.min(workers, cells.length) }, () => {
      const child = startWorker();
      return new Promise<void>((resolve, reject) => {
        const next = () => {
          const cell = queue.shift();
          if (!cell) {
            child.disconnect();
            return;
          }
          progress.start(cell);
          child.send({ type: 'run', cell, runDir } satisfies ToWorker);
        };
        child.on('message', (m: FromWorker) => {
          if (m.type === 'ready') next();
          else if (m.type === 'progress') progress.update(m.id, m.progress);
          else if (m.type === 'done') {
            if (m.status !== 'ok') failed++;
            progress.finish(byId.get(m.id)!, m.status, m.seconds, m.error);
            next();
          }
        });
        child.on('exit', (code, signal) =>
          code === 0 || queue.length === 0 ? resolve() : reject(new Error(`a sweep worker exited with ${signal ?? `code ${code}`}`)),
        );
      });
    }),
  );
  return failed;
}

export async function runSweep(options: SweepOptions): Promise<SweepSummary> {
  const log = options.log ?? ((line: string) => console.log(line));
  const started = performance.now();
  const all = planSweep(options.config);
  const cells = options.shard ? shardCells(all, options.shard) : all;
  if (options.dryRun) {
    const estimates = estimateCells(cells);
    for (const [i, cell] of cells.entries()) {
      const done = isCellDone(options.out, cell.id) ? ' (done)' : '';
      log(`${cell.id}  ${cellTitle(cell)}  ~${estimates.perCell[i].toFixed(0)} s${done}`);
    }
    log(
      `${cells.length} cells${options.shard ? ` (shard ${options.shard.index}/${options.shard.count} of ${all.length})` : ''}; estimated ${(estimates.total / 60).toFixed(0)} min on one worker, ${(estimates.total / 60 / Math.max(1, options.workers)).toFixed(0)} min on ${options.workers} (${estimates.basis})`,
    );
    return { cells, ran: 0, skipped: 0, failed: 0, seconds: 0 };
  }
  writePlan(options.out, options.config, all);
  const pending = cells.filter((c) => !isCellDone(options.out, c.id, { retryFailed: options.retryFailed }));
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
  let failed = 0;
  if (options.workers <= 1) {
    for (const cell of pending) {
      progress.start(cell);
      const { result, manifest } = await runCell(cell, { backend: options.backend, onProgress: (p) => progress.update(cell.id, p) });
      writeCellResult(options.out, result, manifest);
      if (result.status !== 'ok') failed++;
      progress.finish(cell, result.status, result.seconds, result.error?.message);
    }
  } else {
    failed = await runInWorkers(pending, options.out, options.workers, progress);
  }
  return { cells, ran: pending.length, skipped, failed, seconds: (performance.now() - started) / 1000 };
}
