// The run directory: plans/<name>.json (each sweep's config and cells), then one folder per cell holding manifest.json
// and result.json, each written atomically. A cell is done exactly when its result.json exists and
// validates, so a killed sweep resumes by skipping done cells, and shards sharing one directory never
// write the same file.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../engine/io.ts';
import { cellResult, type CellResult } from '../../results/result.ts';
import type { Cell } from './plan.ts';
import type { SweepConfig } from './config.ts';

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

export function isCellDone(runDir: string, id: string, options: { retryFailed?: boolean } = {}): boolean {
  const result = readCellResult(runDir, id);
  return result !== undefined && !(options.retryFailed && result.status === 'error');
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

/** Writes the manifest, then the result: the result's presence is what marks the cell done. */
export function writeCellResult(runDir: string, result: CellResult, manifest: Manifest): void {
  const dir = cellDir(runDir, result.id);
  writeJsonAtomic(join(dir, 'manifest.json'), manifest);
  writeJsonAtomic(join(dir, 'result.json'), cellResult.parse(result));
}

/** plans/<config name>.json: several sweeps may share one run directory (reproduce does). */
export function writePlan(runDir: string, config: SweepConfig, cells: Cell[]): void {
  writeJsonAtomic(join(runDir, 'plans', `${config.name}.json`), { config, cells });
}
