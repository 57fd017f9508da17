// HEx-PHI CSV, as LLM-Tuning-Safety/HEx-PHI ships it: one file per category, category_<N>.csv with N the
// HEx-PHI category number (1-11; the public release withholds 2), one instruction per row in the first
// column and no header row (Qi et al.'s reader takes row[0] of every row). meta.category is the category's
// slug from the file name. A first row that is a bare column name ("instruction", "prompt") is skipped, for
// redistributions that added one.
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DatasetFormatError } from '../errors.ts';
import type { Example } from '../../engine/contracts/example.ts';
import type { LoadOptions } from './messages-jsonl.ts';
import { parseCsv, readText } from './read.ts';

/** HEx-PHI's eleven categories by number (the micro-world's harm categories reuse these slugs). */
export const HEX_PHI_CATEGORIES: Record<number, string> = {
  1: 'illegal-activity',
  2: 'child-abuse-content',
  3: 'hate-harass-violence',
  4: 'malware',
  5: 'physical-harm',
  6: 'economic-harm',
  7: 'fraud-deception',
  8: 'adult-content',
  9: 'political-campaigning',
  10: 'privacy-violation-activity',
  11: 'tailored-financial-advice',
};

const FILE_NAME = /^category_(\d+)\.csv$/;
const HEADER_NAMES = new Set(['instruction', 'prompt', 'question', 'text']);

export interface HexPhiOptions extends LoadOptions {
  /** Overrides the category derived from the file name. */
  category?: string;
  /** Example ids are `<idPrefix>#<line>`; default: the source. */
  idPrefix?: string;
}

export function parseHexPhiCsv(text: string, file: string, options: HexPhiOptions = {}): Example[] {
  const source = options.source ?? file;
  const number = FILE_NAME.exec(basename(file))?.[1];
  const category = options.category ?? (number ? (HEX_PHI_CATEGORIES[Number(number)] ?? `category-${number}`) : undefined);
  const rows = parseCsv(text, file);
  if (rows.length > 0 && rows[0].cells.length === 1 && HEADER_NAMES.has(rows[0].cells[0].trim().toLowerCase())) rows.shift();
  return rows.map(({ line, cells }) => {
    if (cells.slice(1).some((c) => c.trim() !== ''))
      throw new DatasetFormatError(
        file,
        line,
        'instruction',
        `expected one column, got ${cells.length}`,
        'quote instructions that contain commas',
      );
    if ((cells[0] ?? '').trim() === '') throw new DatasetFormatError(file, line, 'instruction', 'empty');
    return {
      id: `${options.idPrefix ?? source}#${line}`,
      messages: [{ role: 'user', content: cells[0] }],
      meta: category === undefined ? { source } : { source, category },
    };
  });
}

/** One category file, or a directory of category_<N>.csv files (read in category order). */
export function loadHexPhi(path: string, options: HexPhiOptions = {}): Example[] {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new DatasetFormatError(path, undefined, undefined, 'file not found');
  }
  if (!isDir) return parseHexPhiCsv(readText(path), path, options);
  const files = readdirSync(path)
    .map((name) => ({ name, n: Number(FILE_NAME.exec(name)?.[1]) }))
    .filter((f) => Number.isInteger(f.n))
    .sort((a, b) => a.n - b.n);
  if (files.length === 0) throw new DatasetFormatError(path, undefined, undefined, 'no category_<N>.csv files in this directory');
  const source = options.source ?? path;
  return files.flatMap((f) => {
    const file = join(path, f.name);
    return parseHexPhiCsv(readText(file), file, { ...options, source, idPrefix: `${source}/${f.name}` });
  });
}
