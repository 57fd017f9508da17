// Shared reading for the loaders: whole-file reads (strictly UTF-8) with one-line errors, JSON Lines and CSV
// parsing that keep 1-based line numbers, so every schema error can name its file, line and field.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse } from 'csv-parse/sync';
import { readTextFile, TextEncodingError } from '../../engine/io.ts';
import { DatasetFormatError } from '../errors.ts';

/**
 * A whole data file as text, strictly UTF-8 (engine/io.ts readTextFile): a byte sequence that is not UTF-8 (a
 * Latin-1 or Windows-1252 export) is a one-line error naming the file, the line and the byte offset, never
 * text with U+FFFD in place of the bytes.
 */
export function readText(file: string): string {
  try {
    return readTextFile(file);
  } catch (error) {
    if (error instanceof TextEncodingError) {
      const line = readFileSync(file)
        .subarray(0, error.offset)
        .reduce((n, b) => (b === 0x0a ? n + 1 : n), 1);
      throw new DatasetFormatError(
        file,
        line,
        undefined,
        `invalid UTF-8 at byte offset ${error.offset}`,
        `convert the file to UTF-8, e.g. iconv -f WINDOWS-1252 -t UTF-8 '${file}' > converted${extname(file)} (name its real encoding after -f)`,
      );
    }
    const code = (error as NodeJS.ErrnoException).code;
    throw new DatasetFormatError(
      file,
      undefined,
      undefined,
      code === 'ENOENT' ? 'file not found' : `cannot read (${code ?? String(error)})`,
    );
  }
}

export type JsonObject = Record<string, unknown>;

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A short rendering of a bad value for error messages. */
export const show = (v: unknown): string => {
  const text = v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v));
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

/** Each non-blank line parsed as a JSON object, with its 1-based line number. */
export function parseJsonl(text: string, file: string): { line: number; value: JsonObject }[] {
  const out: { line: number; value: JsonObject }[] = [];
  text.split('\n').forEach((raw, i) => {
    const body = raw.trim();
    if (body === '') return;
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (error) {
      throw new DatasetFormatError(file, i + 1, undefined, `invalid JSON (${(error as Error).message})`, 'one JSON object per line');
    }
    if (!isObject(value)) throw new DatasetFormatError(file, i + 1, undefined, `expected a JSON object, got ${show(value)}`);
    out.push({ line: i + 1, value });
  });
  return out;
}

/** A required non-empty string field. */
export function stringField(value: JsonObject, field: string, file: string, line: number): string {
  const v = value[field];
  if (typeof v !== 'string' || v.trim() === '')
    throw new DatasetFormatError(file, line, field, `expected a non-empty string, got ${show(v)}`);
  return v;
}

/** CSV records (arrays of cells) with the line each record ends on; empty lines are skipped. */
export function parseCsv(text: string, file: string): { line: number; cells: string[] }[] {
  try {
    const lines: number[] = [];
    const records = parse(text, {
      bom: true,
      skip_empty_lines: true,
      relax_column_count: true,
      on_record: (record: string[], context: { lines: number }) => {
        lines.push(context.lines);
        return record;
      },
    });
    return records.map((cells, i) => ({ line: lines[i], cells }));
  } catch (error) {
    const line = typeof (error as { lines?: unknown }).lines === 'number' ? (error as { lines: number }).lines : undefined;
    throw new DatasetFormatError(file, line, undefined, `invalid CSV (${(error as Error).message})`);
  }
}
