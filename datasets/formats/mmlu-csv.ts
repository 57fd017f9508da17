// MMLU CSV, as the real test/dev/val files ship (data/test/<subject>_test.csv): no header, one question
// per row, six columns: question, choice A, B, C, D, answer letter. The user message shows the question
// with lettered choices, the assistant message is the letter; meta {choices, answerIndex, answer} lets an
// evaluator score exact match or the log-likelihood of each choice. meta.category is the subject from the
// file name. A first row that is the bare header `question,A,B,C,D,answer` is skipped.
import { basename } from 'node:path';
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

export function parseMmluCsv(text: string, file: string, options: LoadOptions = {}): Example[] {
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
      id: `${source}#${line}`,
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
