// Reads a sweep run directory: every `cells/<cell-id>/result.json`, each validated against the CellResult
// schema. Reports never trust a file blindly: a bad file stops the report with one line that names the
// file and the field, so the user can fix or delete that one cell and re-run.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cellResult, type CellResult } from '../results/result.ts';

export class ReportInputError extends Error {
  readonly code = 'REPORT_INPUT';
  constructor(
    readonly file: string,
    readonly field: string | undefined,
    readonly problem: string,
    readonly fix?: string,
  ) {
    super(`${file}${field ? `: field '${field}'` : ''}: ${problem}${fix ? `. Fix: ${fix}` : ''}`);
  }
}

export interface LoadedRun {
  /** Absolute run directory. */
  dir: string;
  /** Every cell with a result.json, sorted by id (ok and failed). */
  cells: CellResult[];
  /** Cell directories without a result.json yet (running, killed or not started). */
  pending: string[];
}

/** `labels.seed`, `safety[0].safetyScore`: the path of a zod issue as a reader writes it. */
function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

/** Parse and validate one result.json; throws ReportInputError with a one-line message. */
export function readCellResult(file: string): CellResult {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    const reason = (error as Error).message.split('\n')[0];
    throw new ReportInputError(
      file,
      undefined,
      `not valid JSON (${reason})`,
      'delete the cell directory and resume the sweep to recompute it',
    );
  }
  const parsed = cellResult.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const extra = issue.code === 'unrecognized_keys' ? issue.keys : [];
  const field = fieldPath([...issue.path, ...extra.slice(0, 1)]) || undefined;
  const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problems)` : '';
  throw new ReportInputError(
    file,
    field,
    `${issue.message.replace(/\s+/g, ' ')}${more}`,
    'the file does not match results/result.ts; delete the cell directory and resume the sweep',
  );
}

/** Load every cell result of a run directory. */
export function loadRun(runDir: string): LoadedRun {
  const dir = resolve(runDir);
  const cellsDir = join(dir, 'cells');
  if (!existsSync(cellsDir) || !statSync(cellsDir).isDirectory()) {
    throw new ReportInputError(
      cellsDir,
      undefined,
      'no cells directory',
      'pass the directory a sweep printed (it holds cells/<id>/result.json)',
    );
  }
  const cells: CellResult[] = [];
  const pending: string[] = [];
  for (const name of readdirSync(cellsDir).sort()) {
    const cellDir = join(cellsDir, name);
    if (!statSync(cellDir).isDirectory()) continue;
    const file = join(cellDir, 'result.json');
    if (existsSync(file)) cells.push(readCellResult(file));
    else pending.push(name);
  }
  cells.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { dir, cells, pending };
}
