// File helpers. Nothing half-written is ever left on disk: write a temporary file beside the target,
// then rename it over the target (atomic on one filesystem).
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createHash } from 'node:crypto';

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/** A text file that is not valid UTF-8: `file` and the byte `offset` of the first invalid sequence. */
export class TextEncodingError extends Error {
  readonly code = 'NOT_UTF8';
  constructor(
    readonly file: string,
    readonly offset: number,
  ) {
    super(
      `${file}: not valid UTF-8 (invalid byte sequence at byte offset ${offset}). Fix: convert it to UTF-8, e.g. iconv -f <encoding> -t utf-8 '${file}' > converted.txt`,
    );
  }
}

/**
 * Reads a text file as strict UTF-8 (a leading byte-order mark is dropped). A file in another encoding is a
 * TextEncodingError naming the file and the byte offset of the first invalid sequence, never silent U+FFFD
 * replacement characters; errors of the read itself (ENOENT, EACCES, ...) are thrown as Node throws them.
 */
export function readTextFile(path: string): string {
  const bytes = readFileSync(path);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new TextEncodingError(path, firstInvalidUtf8(bytes));
  }
}

/** The byte offset of the first invalid UTF-8 sequence in `bytes` (its length if there is none). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i++;
      continue;
    }
    // The sequence length and the allowed range of its second byte (excluding overlongs, surrogates and > U+10FFFF).
    let length = 0;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) lo = 0xa0;
      if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) lo = 0x90;
      if (b === 0xf4) hi = 0x8f;
    } else return i;
    if (i + length > bytes.length) return i;
    for (let k = 1; k < length; k++) {
      const c = bytes[i + k] as number;
      const min = k === 1 ? lo : 0x80;
      const max = k === 1 ? hi : 0xbf;
      if (c < min || c > max) return i;
    }
    i += length;
  }
  return bytes.length;
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

export function writeJsonlAtomic(file: string, rows: readonly unknown[]): void {
  writeFileAtomic(file, rows.map((row) => JSON.stringify(row)).join('\n') + (rows.length ? '\n' : ''));
}

/** The cache root: $STAR_DSS_CACHE, else .star-dss-cache in the working directory. */
export function cacheDir(...parts: string[]): string {
  return resolve(process.env.STAR_DSS_CACHE ?? '.star-dss-cache', ...parts);
}

/** A short content hash (hex) of a string or of the canonical JSON of a value. */
export function contentHash(value: unknown, length = 16): string {
  const text = typeof value === 'string' ? value : canonicalJson(value);
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** JSON with object keys sorted, so equal values give equal strings. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
