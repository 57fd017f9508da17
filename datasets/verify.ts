// `star-dss datasets verify PATH`: what a dataset file holds and what is wrong with it, without stopping at
// the first problem as the loaders do. The checks are the loaders' own:
// - JSON Lines (and BeaverTails JSON arrays, element by element): every record is parsed alone with its
//   format's parser, so every bad record is found and counted;
// - CSV (MMLU, HEx-PHI, AdvBench): the loader runs on the whole file; a bad record is blanked out (line
//   numbers kept) and the loader runs again, up to MAX_CSV_PROBLEMS problems or a CSV syntax error.
// Then: item counts (by kind, category and harmful label) and duplicate items (same messages and choices).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson } from '../engine/io.ts';
import { DatasetFormatError } from './errors.ts';
import { detectFormat, type FormatName } from './index.ts';
import { mmluSubjectFiles } from './formats/mmlu-csv.ts';
import { parseAdvbenchCsv } from './formats/advbench-csv.ts';
import { parseArcJsonl } from './formats/arc-jsonl.ts';
import { parseBeavertails, parseJsonRecords } from './formats/beavertails.ts';
import { parseGsm8kJsonl } from './formats/gsm8k-jsonl.ts';
import { parseHexPhiCsv } from './formats/hex-phi-csv.ts';
import { parseHexPhiJsonl } from './formats/hex-phi-jsonl.ts';
import { parseHhRlhfJsonl } from './formats/hh-rlhf-jsonl.ts';
import { parseMessagesJsonl } from './formats/messages-jsonl.ts';
import { parseMmluCsv } from './formats/mmlu-csv.ts';
import { parseCsv, readText } from './formats/read.ts';
import type { Example } from '../engine/contracts/example.ts';

/** CSV files are re-read once per problem; past this many the report says it stopped. */
export const MAX_CSV_PROBLEMS = 50;

type Parse = (text: string, file: string) => Example[];

/** How each format is checked; `satisfies` makes a new format in the registry need an entry here. */
const checks = {
  gsm8k: { layout: 'lines', parse: parseGsm8kJsonl },
  messages: { layout: 'lines', parse: parseMessagesJsonl },
  arc: { layout: 'lines', parse: parseArcJsonl },
  beavertails: { layout: 'lines', parse: parseBeavertails },
  'hh-rlhf': { layout: 'lines', parse: parseHhRlhfJsonl },
  'hex-phi-jsonl': { layout: 'lines', parse: parseHexPhiJsonl },
  mmlu: { layout: 'csv', parse: parseMmluCsv },
  'hex-phi': { layout: 'csv', parse: parseHexPhiCsv },
  advbench: { layout: 'csv', parse: parseAdvbenchCsv },
} satisfies Record<FormatName, { layout: 'lines' | 'csv'; parse: Parse }>;

interface Item {
  file: string;
  line: number;
  example: Example;
}

interface FileCheck {
  items: Item[];
  problems: DatasetFormatError[];
  /** False when checking stopped early (CSV syntax error, a bad header, too many problems). */
  complete: boolean;
}

export interface VerifyReport {
  path: string;
  format: FormatName;
  files: string[];
  items: number;
  /** 'prompt only', 'prompt + response', 'multiple choice'. */
  kinds: Record<string, number>;
  /** By meta.categories or meta.category; '(none)' for items without; empty when no item has one. */
  categories: Record<string, number>;
  /** By meta.harmful: true, false, absent. */
  labels: { harmful: number; harmless: number; unlabelled: number };
  problems: { count: number; complete: boolean; shown: string[] };
  duplicates: { count: number; shown: string[] };
}

const lineOf = (e: Example) => Number(/#(\d+)$/.exec(e.id)?.[1] ?? 0);

/** JSON Lines, or a JSON array file, one record at a time: every bad record becomes one problem. */
function checkLines(file: string, parse: Parse): FileCheck {
  const text = readText(file);
  const items: Item[] = [];
  const problems: DatasetFormatError[] = [];
  let records: { line: number; text: string }[];
  if (
    text
      .replace(/^\uFEFF/, '')
      .trimStart()
      .startsWith('[') &&
    !isJsonLine(text)
  ) {
    try {
      records = parseJsonRecords(text, file).map(({ line, value }) => ({ line, text: JSON.stringify(value) }));
    } catch (error) {
      if (!(error instanceof DatasetFormatError)) throw error;
      return { items, problems: [error], complete: false };
    }
  } else
    records = text
      .replace(/^\uFEFF/, '')
      .split('\n')
      .map((body, i) => ({ line: i + 1, text: body }))
      .filter((r) => r.text.trim() !== '');
  for (const record of records) {
    try {
      for (const example of parse(record.text, file))
        items.push({ file, line: record.line, example: { ...example, id: `${file}#${record.line}` } });
    } catch (error) {
      if (!(error instanceof DatasetFormatError)) throw error;
      problems.push(new DatasetFormatError(error.file, record.line, error.field, error.problem, error.fix));
    }
  }
  return { items, problems, complete: true };
}

/** True when the first non-blank line is a whole JSON value (JSON Lines of arrays, e.g. Harmful-HEx-PHI). */
function isJsonLine(text: string): boolean {
  const first =
    text
      .replace(/^\uFEFF/, '')
      .split('\n')
      .find((l) => l.trim() !== '') ?? '';
  try {
    const value: unknown = JSON.parse(first);
    return Array.isArray(value) && value.every((m) => typeof m === 'object' && m !== null && 'role' in m);
  } catch {
    return false;
  }
}

/** The text with the CSV record that ends on `line` blanked out (lines kept), or undefined if it cannot be found. */
function blankCsvRecord(text: string, file: string, line: number): string | undefined {
  let records: { line: number }[];
  try {
    records = parseCsv(text, file);
  } catch {
    return undefined;
  }
  const at = records.findIndex((r) => r.line === line);
  if (at < 0) return undefined;
  const from = at > 0 ? records[at - 1].line + 1 : 1;
  const lines = text.split('\n');
  for (let l = from; l <= line; l++) lines[l - 1] = '';
  return lines.join('\n');
}

/** A CSV file through its loader, blanking each bad record and retrying. */
function checkCsv(file: string, parse: Parse): FileCheck {
  let text = readText(file);
  const problems: DatasetFormatError[] = [];
  while (problems.length < MAX_CSV_PROBLEMS) {
    try {
      return { items: parse(text, file).map((example) => ({ file, line: lineOf(example), example })), problems, complete: true };
    } catch (error) {
      if (!(error instanceof DatasetFormatError)) throw error;
      problems.push(error);
      const next = error.line === undefined || error.field === 'header' ? undefined : blankCsvRecord(text, file, error.line);
      if (next === undefined) break;
      text = next;
    }
  }
  return { items: [], problems, complete: false };
}

const HEX_PHI_FILE = /^category_(\d+)\.csv$/;

function countBy(keys: Iterable<string>, into: Record<string, number>): void {
  for (const key of keys) into[key] = (into[key] ?? 0) + 1;
}

/** The files of a dataset directory: MMLU's subject CSVs, or HEx-PHI's category files in category order. */
function directoryFiles(path: string, format: FormatName): string[] {
  if (format === 'mmlu') return mmluSubjectFiles(path);
  return readdirSync(path)
    .filter((name) => HEX_PHI_FILE.test(name))
    .sort((a, b) => Number(HEX_PHI_FILE.exec(a)?.[1]) - Number(HEX_PHI_FILE.exec(b)?.[1]))
    .map((name) => join(path, name));
}

/** Checks a dataset file (or a directory of HEx-PHI or MMLU CSVs); `show` limits the problems and duplicates listed. */
export function verifyDataset(path: string, options: { show?: number } = {}): VerifyReport {
  const show = options.show ?? 5;
  const format = detectFormat(path);
  const check = checks[format];
  const files = statSync(path).isDirectory() ? directoryFiles(path, format) : [path];
  const results = files.map((file) => (check.layout === 'lines' ? checkLines(file, check.parse) : checkCsv(file, check.parse)));
  const items = results.flatMap((r) => r.items);
  const problems = results.flatMap((r) => r.problems);

  const kinds: Record<string, number> = {};
  const categories: Record<string, number> = {};
  const labels = { harmful: 0, harmless: 0, unlabelled: 0 };
  for (const { example: e } of items) {
    const last = e.messages[e.messages.length - 1];
    countBy([Array.isArray(e.meta.choices) ? 'multiple choice' : last.role === 'assistant' ? 'prompt + response' : 'prompt only'], kinds);
    const cats = Array.isArray(e.meta.categories)
      ? e.meta.categories.map(String)
      : typeof e.meta.category === 'string'
        ? [e.meta.category]
        : [];
    countBy(cats.length ? cats : ['(none)'], categories);
    if (e.meta.harmful === true) labels.harmful++;
    else if (e.meta.harmful === false) labels.harmless++;
    else labels.unlabelled++;
  }
  if (Object.keys(categories).length === 1 && categories['(none)'] !== undefined) delete categories['(none)'];

  const seen = new Map<string, Item>();
  const duplicates: string[] = [];
  for (const item of items) {
    const key = canonicalJson({ messages: item.example.messages, choices: item.example.meta.choices ?? null });
    const first = seen.get(key);
    if (!first) seen.set(key, item);
    else duplicates.push(`${item.file}, line ${item.line}: repeats ${first.file === item.file ? '' : `${first.file}, `}line ${first.line}`);
  }

  return {
    path,
    format,
    files,
    items: items.length,
    kinds,
    categories,
    labels,
    problems: { count: problems.length, complete: results.every((r) => r.complete), shown: problems.slice(0, show).map((p) => p.message) },
    duplicates: { count: duplicates.length, shown: duplicates.slice(0, show) },
  };
}

/** The report as printable lines. */
export function formatVerifyReport(r: VerifyReport): string[] {
  // Largest first, then by name; items without a category last.
  const list = (counts: Record<string, number>) =>
    Object.entries(counts)
      .sort(([a, m], [b, n]) => Number(a === '(none)') - Number(b === '(none)') || n - m || a.localeCompare(b))
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
  const lines = [
    `${r.path}: format ${r.format}${r.files.length > 1 ? ` (${r.files.length} files)` : ''}`,
    `items: ${r.items}${Object.keys(r.kinds).length ? ` (${list(r.kinds)})` : ''}`,
  ];
  if (Object.keys(r.categories).length) lines.push(`categories: ${list(r.categories)}`);
  if (r.labels.harmful + r.labels.harmless > 0)
    lines.push(`labels: harmful ${r.labels.harmful}, harmless ${r.labels.harmless}, unlabelled ${r.labels.unlabelled}`);
  const more = (count: number, shown: number) => (count > shown ? [`  ... and ${count - shown} more`] : []);
  lines.push(`problems: ${r.problems.count}${r.problems.complete ? '' : ' (checking stopped early; fix these and run again)'}`);
  lines.push(...r.problems.shown.map((p) => `  ${p}`), ...more(r.problems.count, r.problems.shown.length));
  lines.push(`duplicates: ${r.duplicates.count}`);
  lines.push(...r.duplicates.shown.map((d) => `  ${d}`), ...more(r.duplicates.count, r.duplicates.shown.length));
  return lines;
}
