// Reads a sweep run directory: the `cells/<cell-id>/result.json` of every cell its plans (plans/*.json) list,
// each validated against the CellResult schema. Cells under cells/ that no current plan lists (left by an
// earlier run with other settings) are left out and counted; a directory without plans/ (written before
// plans existed, or by hand) is read whole. Reports never trust a file blindly: a bad file stops the report
// with one line that names the file and the field, so the user can fix or delete that one cell and re-run.
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
  /** Planned cells without a result.json yet (running, killed or not started); without plans, cell directories. */
  pending: string[];
  /** Names of the plans read (plans/<name>.json); empty when the directory has no plans/. */
  plans?: string[];
  /** Directories under cells/ that no plan lists, left out of the reports. */
  unplanned?: string[];
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

/** The cell ids of every plan in `dir`/plans (by plan name), or undefined when there is no plans/ directory. */
function readPlanIds(dir: string): Map<string, string[]> | undefined {
  const plansDir = join(dir, 'plans');
  if (!existsSync(plansDir)) return undefined;
  const plans = new Map<string, string[]>();
  for (const name of readdirSync(plansDir).sort()) {
    if (!name.endsWith('.json')) continue;
    const file = join(plansDir, name);
    const fix = 'delete the plan file (its cells then leave the reports) or re-run its sweep';
    let cells: unknown;
    try {
      cells = (JSON.parse(readFileSync(file, 'utf8')) as { cells?: unknown }).cells;
    } catch (error) {
      throw new ReportInputError(file, undefined, `not valid JSON (${(error as Error).message.split('\n')[0]})`, fix);
    }
    if (!Array.isArray(cells) || cells.some((c) => typeof (c as { id?: unknown })?.id !== 'string'))
      throw new ReportInputError(file, 'cells', 'expected a list of cells, each with an id', fix);
    plans.set(
      name.slice(0, -'.json'.length),
      (cells as { id: string }[]).map((c) => c.id),
    );
  }
  return plans.size > 0 ? plans : undefined;
}

/** Load the cell results of a run directory: those of its plans, or every cell when it has none. */
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
  const dirs = readdirSync(cellsDir)
    .sort()
    .filter((name) => statSync(join(cellsDir, name)).isDirectory());
  const plans = readPlanIds(dir);
  const planned = plans ? [...new Set([...plans.values()].flat())].sort() : dirs;
  const isPlanned = new Set(planned);
  const cells: CellResult[] = [];
  const pending: string[] = [];
  for (const name of planned) {
    const file = join(cellsDir, name, 'result.json');
    if (existsSync(file)) cells.push(readCellResult(file));
    else pending.push(name);
  }
  cells.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { dir, cells, pending, plans: plans ? [...plans.keys()] : [], unplanned: dirs.filter((name) => !isPlanned.has(name)) };
}
