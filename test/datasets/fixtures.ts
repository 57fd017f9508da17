// Shared by the dataset tests: fixture files in a temporary directory, and the one-line error check.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { DatasetFormatError } from '../../datasets/errors.ts';

/** A temporary directory for this test file (made before, removed after); `file` writes a fixture into it. */
export function fixtureDir(prefix: string): { file: (name: string, text: string) => string; path: (name: string) => string } {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    path: (name) => join(dir, name),
    file: (name, text) => {
      const path = join(dir, name);
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, text);
      return path;
    },
  };
}

export const jsonl = (...rows: unknown[]) => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';

/** The loader throws ONE DatasetFormatError whose single-line message names file, line and field; nothing is returned. */
export function expectFormatError(
  load: () => unknown,
  path: string,
  line: number | undefined,
  field: string | undefined,
  text?: RegExp,
): void {
  let error: unknown;
  let result: unknown;
  try {
    result = load();
  } catch (e) {
    error = e;
  }
  expect(result).toBeUndefined();
  expect(error).toBeInstanceOf(DatasetFormatError);
  const e = error as DatasetFormatError;
  expect(e.message).not.toContain('\n');
  expect(e.message.startsWith(path)).toBe(true);
  expect(e.line).toBe(line);
  expect(e.field).toBe(field);
  if (line !== undefined) expect(e.message).toContain(`line ${line}`);
  if (field !== undefined) expect(e.message).toContain(`field '${field}'`);
  if (text) expect(e.message).toMatch(text);
}
