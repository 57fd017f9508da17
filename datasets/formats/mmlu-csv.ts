// MMLU CSV, as the real test/dev/val files ship (data/test/<subject>_test.csv): no header, one question
// per row, six columns: question, choice A, B, C, D, answer letter. The user message shows the question
// with lettered choices, the assistant message is the letter; meta {choices, answerIndex, answer} lets an
// evaluator score exact match or the log-likelihood of each choice. meta.category is the subject from the
// file name. A first row that is the bare header `question,A,B,C,D,answer` is skipped.
//
// A directory of subject files loads as one set (loadMmlu): its <subject>_test.csv files in name order (the
// _val or _dev files when it has no test files), or those of its test/ folder (the data/ folder of the
// hendrycks tarball, which holds dev/, val/ and test/).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DatasetFormatError } from '../errors.ts';
import type { Example } from '../../engine/contracts/example.ts';
import type { LoadOptions } from './messages-jsonl.ts';
import { parseCsv, readText, show } from './read.ts';

export const MMLU_LETTERS = ['A', 'B', 'C', 'D'] as const;
const COLUMNS = ['question', ...MMLU_LETTERS, 'answer'];
const FILE_NAME = /^(.+)_(test|dev|val)\.csv$/;

/** A multiple-choice prompt: the question, then one `<label>. <choice>` line per choice. */
export function multipleChoicePrompt(question: string, choices: readonly string[], labels: readonly string[]): string {
  return [question, ...choices.map((c, i) => `${labels[i]}. ${c}`)].join('\n');
}

/** True when a CSV record has MMLU's shape: six cells ending in an answer letter, or the bare header. */
export function isMmluRecord(cells: readonly string[]): boolean {
  if (cells.length !== COLUMNS.length) return false;
  const last = cells[cells.length - 1].trim();
  return /^[A-Da-d]$/.test(last) || isHeader(cells);
}

const isHeader = (cells: readonly string[]) => cells.map((c) => c.trim().toLowerCase()).join(',') === COLUMNS.join(',').toLowerCase();

interface MmluOptions extends LoadOptions {
  /** Example ids are `<idPrefix>#<line>`; default: the source. */
  idPrefix?: string;
}

export function parseMmluCsv(text: string, file: string, options: MmluOptions = {}): Example[] {
  const source = options.source ?? file;
  const subject = FILE_NAME.exec(basename(file))?.[1];
  const rows = parseCsv(text, file);
  if (rows.length > 0 && isHeader(rows[0].cells)) rows.shift();
  return rows.map(({ line, cells }) => {
    if (cells.length !== COLUMNS.length)
      throw new DatasetFormatError(
        file,
        line,
        undefined,
        `expected ${COLUMNS.length} columns (${COLUMNS.join(', ')}), got ${cells.length}`,
        'quote cells that contain commas',
      );
    const [question, ...rest] = cells;
    const choices = rest.slice(0, MMLU_LETTERS.length);
    const letter = rest[MMLU_LETTERS.length].trim().toUpperCase();
    if (question.trim() === '') throw new DatasetFormatError(file, line, 'question', 'empty');
    const answerIndex = MMLU_LETTERS.indexOf(letter as (typeof MMLU_LETTERS)[number]);
    if (answerIndex < 0)
      throw new DatasetFormatError(file, line, 'answer', `expected one of A, B, C, D, got ${show(rest[MMLU_LETTERS.length])}`);
    return {
      id: `${options.idPrefix ?? source}#${line}`,
      messages: [
        { role: 'user', content: multipleChoicePrompt(question, choices, MMLU_LETTERS) },
        { role: 'assistant', content: letter },
      ],
      meta: { source, ...(subject ? { category: subject } : {}), answer: letter, choices, answerIndex },
    };
  });
}

export function loadMmluCsv(file: string, options: LoadOptions = {}): Example[] {
  return parseMmluCsv(readText(file), file, options);
}

const SPLITS = ['test', 'val', 'dev'] as const;

/**
 * The subject files an MMLU directory holds (see the top of this file), as paths in name order; empty when
 * it holds none (then it is not an MMLU directory).
 */
export function mmluSubjectFiles(dir: string): string[] {
  const inDir = (folder: string): string[] => {
    const names = readdirSync(folder).filter((n) => FILE_NAME.test(n) && !n.startsWith('.'));
    for (const split of SPLITS) {
      const files = names.filter((n) => FILE_NAME.exec(n)?.[2] === split).sort();
      if (files.length > 0) return files.map((n) => join(folder, n));
    }
    return [];
  };
  const own = inDir(dir);
  if (own.length > 0) return own;
  const test = join(dir, 'test');
  return existsSync(test) && statSync(test).isDirectory() ? inDir(test) : [];
}

/** One MMLU CSV file, or a directory of subject files (ids `<source>/<file name>#<line>`). */
export function loadMmlu(path: string, options: LoadOptions = {}): Example[] {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new DatasetFormatError(path, undefined, undefined, 'file not found');
  }
  if (!isDir) return loadMmluCsv(path, options);
  const files = mmluSubjectFiles(path);
  if (files.length === 0)
    throw new DatasetFormatError(path, undefined, undefined, 'no <subject>_test.csv files in this directory or its test/ folder');
  const source = options.source ?? path;
  return files.flatMap((file) => parseMmluCsv(readText(file), file, { ...options, source, idPrefix: `${source}/${basename(file)}` }));
}
