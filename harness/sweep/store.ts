// The run directory: plans/<name>.json (each sweep's config and cells), then one folder per cell holding manifest.json
// and result.json, each written atomically. A cell is done exactly when its result.json exists and
// validates (and, unless failed cells are kept, records no error), so a killed sweep resumes by skipping
// done cells, and shards sharing one directory never write the same file. While a process runs a cell it
// holds cells/<id>/.lock, so that several sweeps on one directory split the cells instead of repeating them.
// Besides them a cell keeps its evaluation stages: generations.jsonl (every generated response),
// judgments/<judge>.jsonl (each judge's verdicts on them), capability.jsonl (every exact-match response with
// its reference) and, with eval.keepModels, model/ (the finetuned weights), so that `star-dss judge` re-judges
// a run without a model and a failed capability comparison can be read answer by answer.
import {
  closeSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Message } from '../../engine/contracts/example.ts';
import type { CapabilitySample } from '../evaluate/capability.ts';
import { contentHash, writeJsonAtomic, writeJsonlAtomic } from '../../engine/io.ts';
import { cellResult, type CellResult } from '../../results/result.ts';
import type { Cell } from './plan.ts';
import type { EvalSettings, SweepConfig } from './config.ts';

export const cellDir = (runDir: string, id: string) => join(runDir, 'cells', id);

/** The finished result of a cell, or undefined when the cell has not finished (or its file is invalid). */
export function readCellResult(runDir: string, id: string): CellResult | undefined {
  const file = join(cellDir(runDir, id), 'result.json');
  if (!existsSync(file)) return undefined;
  try {
    const parsed = cellResult.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export interface DoneOptions {
  /** Count a cell whose result recorded an error as done (by default a resume runs it again). */
  keepFailed?: boolean;
}

export function isCellDone(runDir: string, id: string, options: DoneOptions = {}): boolean {
  const result = readCellResult(runDir, id);
  return result !== undefined && (result.status === 'ok' || options.keepFailed === true);
}

export interface Manifest {
  id: string;
  spec: Cell['spec'];
  codeVersion: string;
  backend: string;
  node: string;
  dataHashes: Record<string, string>;
  started: string;
  finished: string;
  timings: Record<string, number>;
}

/**
 * Writes the cell's evaluation stages (when runCell attached them to `result`), the manifest, then the result:
 * the result's presence is what marks the cell done.
 */
export function writeCellResult(runDir: string, result: CellResult, manifest: Manifest): void {
  const dir = cellDir(runDir, result.id);
  const stages = attached.get(result);
  if (stages) {
    writeStages(dir, stages);
    attached.delete(result);
  }
  writeJsonAtomic(join(dir, 'manifest.json'), manifest);
  writeJsonAtomic(join(dir, 'result.json'), cellResult.parse(result));
}

/** Replaces the result of a finished cell (a re-judge), validated and atomically. */
export function rewriteCellResult(runDir: string, result: CellResult): void {
  writeJsonAtomic(join(cellDir(runDir, result.id), 'result.json'), cellResult.parse(result));
}

/** The manifest of a cell, or undefined when it has none (or it is not JSON). */
export function readManifest(runDir: string, id: string): Manifest | undefined {
  const file = join(cellDir(runDir, id), 'manifest.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/** plans/<config name>.json: several sweeps may share one run directory (reproduce does). */
export function writePlan(runDir: string, config: SweepConfig, cells: Cell[]): void {
  writeJsonAtomic(join(runDir, 'plans', `${config.name}.json`), { config, cells });
}

export interface PlanFile {
  name: string;
  file: string;
  cells: Cell[];
}

/** Every plan of a run directory (plans/*.json), sorted by name; a bad file is a one-line error naming it. */
export function readPlans(runDir: string): PlanFile[] {
  const dir = join(runDir, 'plans');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const file = join(dir, f);
      let cells: unknown;
      try {
        cells = (JSON.parse(readFileSync(file, 'utf8')) as { cells?: unknown }).cells;
      } catch (error) {
        throw new Error(`${file}: not valid JSON (${(error as Error).message.split('\n')[0]}). Fix: delete it and re-run its sweep`);
      }
      if (!Array.isArray(cells) || cells.some((c) => typeof (c as Cell)?.id !== 'string'))
        throw new Error(`${file}: field 'cells' is not a list of cells with ids. Fix: delete it and re-run its sweep`);
      return { name: f.slice(0, -'.json'.length), file, cells: cells as Cell[] };
    });
}

// ---- Per-cell locks ----

/** What a lock file holds. */
export interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** Random, so a process tells its own locks from those of an earlier process that had its pid. */
  token: string;
}

/**
 * A lock with no sign of life for this long is stale even when its process cannot be checked (another host).
 * The holder refreshes the lock's mtime while its cell makes progress; a long phase without progress
 * (evaluating a large model) must not look dead, hence the generous default. STAR_DSS_LOCK_STALE_HOURS
 * overrides it.
 */
export const LOCK_STALE_MS = 6 * 3600_000;

export function lockStaleMs(env: NodeJS.ProcessEnv = process.env): number {
  const hours = Number(env.STAR_DSS_LOCK_STALE_HOURS);
  return env.STAR_DSS_LOCK_STALE_HOURS && Number.isFinite(hours) && hours > 0 ? hours * 3600_000 : LOCK_STALE_MS;
}

/** A lock file written but not yet filled in is given this long before it counts as abandoned. */
const UNREADABLE_GRACE_MS = 60_000;

export interface CellLock {
  readonly file: string;
  readonly info: LockInfo;
  /** Marks the lock alive (its mtime), at most every few seconds. */
  touch(): void;
  /** Removes the lock file if it still is this lock. */
  release(): void;
}

export type LockAttempt = { ok: true; lock: CellLock } | { ok: false; file: string; holder?: LockInfo };

const host = hostname();
const held = new Set<CellLock>();
let exitHookInstalled = false;

/** Releases every lock this process holds (its exit paths call it; signals are the caller's to route here). */
export function releaseAllLocks(): void {
  for (const lock of [...held]) lock.release();
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface SeenLock {
  raw: string;
  info?: LockInfo;
  mtimeMs: number;
}

function seeLock(file: string): SeenLock | undefined {
  try {
    const raw = readFileSync(file, 'utf8');
    const mtimeMs = statSync(file).mtimeMs;
    try {
      const info = JSON.parse(raw) as LockInfo;
      return typeof info?.pid === 'number' && typeof info.host === 'string' ? { raw, info, mtimeMs } : { raw, mtimeMs };
    } catch {
      return { raw, mtimeMs };
    }
  } catch {
    return undefined; // released meanwhile
  }
}

const ownTokens = new Set<string>();

function isStale(seen: SeenLock, staleMs: number, now = Date.now()): boolean {
  const age = now - seen.mtimeMs;
  if (!seen.info) return age > UNREADABLE_GRACE_MS;
  if (seen.info.host === host) {
    if (seen.info.pid === process.pid) return !ownTokens.has(seen.info.token); // an earlier process that had our pid
    if (!pidAlive(seen.info.pid)) return true;
  }
  return age > staleMs;
}

function makeLock(file: string, info: LockInfo): CellLock {
  let touched = Date.now();
  const lock: CellLock = {
    file,
    info,
    touch() {
      const now = Date.now();
      if (now - touched < 5_000) return;
      touched = now;
      try {
        utimesSync(file, now / 1000, now / 1000);
      } catch {
        // gone: nothing to refresh
      }
    },
    release() {
      held.delete(lock);
      ownTokens.delete(info.token);
      try {
        if ((JSON.parse(readFileSync(file, 'utf8')) as LockInfo).token === info.token) rmSync(file, { force: true });
      } catch {
        // already gone, or not ours any more
      }
    },
  };
  held.add(lock);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', releaseAllLocks);
  }
  return lock;
}

/**
 * Takes cells/<id>/.lock (created with O_EXCL, holding pid, host and start time), or says who holds it.
 * A stale lock (its process is dead on this host, or it shows no sign of life for `staleMs`) is taken over:
 * renamed aside first, so that of two processes finding it stale only one removes it.
 */
export function lockCell(runDir: string, id: string, options: { staleMs?: number } = {}): LockAttempt {
  const file = join(cellDir(runDir, id), '.lock');
  mkdirSync(cellDir(runDir, id), { recursive: true });
  let holder: LockInfo | undefined;
  for (let attempt = 0; attempt < 4; attempt++) {
    const info: LockInfo = { pid: process.pid, host, started: new Date().toISOString(), token: Math.random().toString(36).slice(2, 12) };
    try {
      const fd = openSync(file, 'wx');
      try {
        writeSync(fd, `${JSON.stringify(info)}\n`);
      } finally {
        closeSync(fd);
      }
      ownTokens.add(info.token);
      return { ok: true, lock: makeLock(file, info) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const seen = seeLock(file);
    if (!seen) continue; // released meanwhile: try again
    holder = seen.info;
    if (!isStale(seen, options.staleMs ?? lockStaleMs())) return { ok: false, file, holder };
    const aside = `${file}.stale-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      renameSync(file, aside);
    } catch {
      continue; // someone else took it over first
    }
    let taken = '';
    try {
      taken = readFileSync(aside, 'utf8');
    } catch {
      // unreadable: treat as the stale one
    }
    if (taken !== seen.raw && taken !== '') {
      // A fresh lock replaced the stale one between our look and the rename: put it back unless yet another
      // one appeared (then two processes may run the cell; results are written atomically, so no harm).
      try {
        linkSync(aside, file);
      } catch {
        // a newer lock is in place
      }
    }
    rmSync(aside, { force: true });
  }
  return { ok: false, file, holder };
}

/** The holder of a cell's lock when it is live (not stale), else undefined. */
export function liveLock(runDir: string, id: string): LockInfo | undefined {
  const seen = seeLock(join(cellDir(runDir, id), '.lock'));
  return seen?.info && !isStale(seen, lockStaleMs()) ? seen.info : undefined;
}

// ---- Evaluation stages ----

/** One generated response: a line of cells/<id>/generations.jsonl. */
export interface GenerationRecord {
  /** The eval condition (plain, trigger, aoa, prefill, ...). */
  condition: string;
  /** The safety set. */
  dataset: string;
  /** A harm-curve evaluation after this epoch; absent for the final evaluation. */
  epoch?: number;
  /** Position in its (condition, dataset, epoch) list. */
  index: number;
  /** The item's id in the safety set. */
  id: string;
  category?: string;
  /** The conversation the model was given, without the prefill. */
  messages: Message[];
  /** The open assistant turn the response was prefilled with (prefilling conditions). */
  prefill?: string;
  /** What the model generated. */
  continuation: string;
  /** What a judge reads: the prefill (if any) and the continuation. */
  response: string;
  decoding: EvalSettings['decoding'];
  maxNewTokens: number;
  seed: number;
}

/** One judge's verdict on one generated response: a line of cells/<id>/judgments/<judge>.jsonl. */
export interface JudgmentRecord {
  /** The key of the generation judged: condition, dataset, epoch (curve points only) and index (with the item id). */
  condition: string;
  dataset: string;
  epoch?: number;
  index: number;
  id: string;
  judge: string;
  judgeVersion: number;
  harmful: boolean;
  /** The harm category the judge named. */
  category?: string;
  /** The judge's 1-5 harmfulness score and its reason, when it gives them. */
  score?: number;
  rationale?: string;
}

/** One exact-match capability response (id, prompt, response, reference, correct): a line of cells/<id>/capability.jsonl. */
export interface CapabilityRecord extends CapabilitySample {
  /** The capability set (micro:ticket-test, ...). */
  dataset: string;
  /** Position in its set. */
  index: number;
}

/** What a cell run hands to writeCellResult besides its result (see attachStages). */
export interface CellStages {
  generations: GenerationRecord[];
  /** Capability responses (exact-match sets); none in a cell that measures no capability. */
  capability?: CapabilityRecord[];
  /** The verdicts of the cell's judge. */
  judgments: JudgmentRecord[];
  judge: string;
  /** A saved copy of the finetuned model (eval.keepModels), moved to cells/<id>/model. */
  modelDir?: string;
}

/**
 * runCell returns its result and manifest and its caller (the sweep or a worker process) writes them with
 * writeCellResult; the stages travel with the result object, so that every caller writes them, first.
 */
const attached = new WeakMap<CellResult, CellStages>();

export function attachStages(result: CellResult, stages: CellStages): void {
  attached.set(result, stages);
}

/** The file name of a judge's judgments: its name with anything but letters, digits, '.', '_' and '-' as '_'. */
export function judgeFileName(judge: string): string {
  const safe = judge.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_');
  return safe.length <= 96 ? safe : `${safe.slice(0, 80)}-${contentHash(judge, 12)}`;
}

export const generationsFile = (runDir: string, id: string) => join(cellDir(runDir, id), 'generations.jsonl');
export const judgmentsFile = (runDir: string, id: string, judge: string) =>
  join(cellDir(runDir, id), 'judgments', `${judgeFileName(judge)}.jsonl`);

/** cells/<id>/judgments/<judge>.jsonl, atomically (a re-judge replaces that judge's file). */
export function writeJudgments(runDir: string, id: string, judge: string, records: readonly JudgmentRecord[]): string {
  const file = judgmentsFile(runDir, id, judge);
  writeJsonlAtomic(file, records);
  return file;
}

/**
 * A cell's saved generations, or undefined when it saved none (a run before stages were saved). A line that
 * is not a generation is a one-line error naming the file and the line.
 */
export function readGenerations(runDir: string, id: string): GenerationRecord[] | undefined {
  const file = generationsFile(runDir, id);
  if (!existsSync(file)) return undefined;
  const lines = readFileSync(file, 'utf8').split('\n');
  return lines.flatMap((line, i) => {
    if (line.trim() === '') return [];
    let record: GenerationRecord;
    try {
      record = JSON.parse(line) as GenerationRecord;
    } catch (error) {
      throw new Error(`${file}: line ${i + 1} is not JSON (${(error as Error).message.split('\n')[0]}). Fix: re-run the cell`);
    }
    const ok =
      typeof record?.condition === 'string' &&
      typeof record.dataset === 'string' &&
      typeof record.index === 'number' &&
      typeof record.continuation === 'string' &&
      Array.isArray(record.messages);
    if (!ok)
      throw new Error(
        `${file}: line ${i + 1} is not a generation (condition, dataset, index, messages, continuation). Fix: re-run the cell`,
      );
    return [record];
  });
}

/** Writes a fresh cell run's stages: its generations, its judge's judgments (other judges' go), its capability responses and its model. */
function writeStages(dir: string, stages: CellStages): void {
  if (stages.generations.length > 0) {
    writeJsonlAtomic(join(dir, 'generations.jsonl'), stages.generations);
    // Other judges' verdicts were on the earlier run's generations: they go with that run's result.
    rmSync(join(dir, 'judgments'), { recursive: true, force: true });
    writeJsonlAtomic(join(dir, 'judgments', `${judgeFileName(stages.judge)}.jsonl`), stages.judgments);
  }
  if (stages.capability?.length) writeJsonlAtomic(join(dir, 'capability.jsonl'), stages.capability);
  if (stages.modelDir) moveDir(stages.modelDir, join(dir, 'model'));
}

/** Moves a directory into place, replacing `target` (copied beside it first when on another filesystem). */
function moveDir(from: string, target: string): void {
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const aside = `${target}.old-${suffix}`;
  if (existsSync(target)) renameSync(target, aside);
  try {
    try {
      renameSync(from, target);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
      const tmp = `${target}.tmp-${suffix}`;
      cpSync(from, tmp, { recursive: true });
      renameSync(tmp, target);
      rmSync(from, { recursive: true, force: true });
    }
  } catch (error) {
    if (existsSync(aside) && !existsSync(target)) renameSync(aside, target); // keep the earlier model
    throw error;
  }
  rmSync(aside, { recursive: true, force: true });
}
