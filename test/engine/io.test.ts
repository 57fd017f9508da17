// readTextFile: strict UTF-8, with the file and the byte offset of the first invalid sequence in the error;
// the checkpoint's JSON files (config.json, tokenizer.json, tokenizer_config.json) are read through it.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readTextFile, TextEncodingError } from '../../engine/io.ts';
import { initBackend } from '../../engine/tensor/index.ts';
import { loadModel } from '../../engine/model/checkpoint.ts';
import { loadTokenizer } from '../../engine/model/tokenizer.ts';
import { initCheckpoint } from '../../harness/commands/model.ts';

const tempDir = () => mkdtempSync(join(tmpdir(), 'io-test-'));
const latin1 = (text: string) => Buffer.from(text, 'latin1');

describe('readTextFile', () => {
  it('returns valid UTF-8 text, without a byte-order mark', () => {
    const file = join(tempDir(), 'ok.txt');
    writeFileSync(file, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('café € 😀\n', 'utf8')]));
    expect(readTextFile(file)).toBe('café € 😀\n');
  });

  for (const [label, bytes, offset] of [
    ['Latin-1 é', latin1('{"name": "café"}'), 13],
    ['a truncated sequence at the end', Buffer.from([0x61, 0x62, 0xe2, 0x82]), 2],
    ['an overlong encoding', Buffer.from([0x41, 0xc0, 0xaf]), 1],
    ['a UTF-16 surrogate', Buffer.from([0x41, 0x42, 0x43, 0xed, 0xa0, 0x80]), 3],
    ['a continuation byte alone', Buffer.from([0x61, 0x80]), 1],
  ] as const) {
    it(`${label}: one line naming the file, the byte offset and iconv`, () => {
      const file = join(tempDir(), 'bad.jsonl');
      writeFileSync(file, bytes);
      let error: unknown;
      try {
        readTextFile(file);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(TextEncodingError);
      const e = error as TextEncodingError;
      expect(e.offset).toBe(offset);
      expect(e.message).toContain(`${file}: not valid UTF-8`);
      expect(e.message).toContain(`byte offset ${offset}`);
      expect(e.message).toContain('iconv -f <encoding> -t utf-8');
      expect(e.message).not.toContain('\n');
    });
  }

  it('passes read errors through (a missing file is ENOENT)', () => {
    expect(() => readTextFile(join(tempDir(), 'missing.txt'))).toThrow(/ENOENT/);
  });
});

describe('checkpoint JSON files in another encoding', () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });

  /** A tiny checkpoint whose `file` gets a Latin-1 "café" in a string value (still valid JSON). */
  async function checkpointWithLatin1(file: string): Promise<string> {
    const dir = join(tempDir(), 'm');
    await initCheckpoint({ family: 'gpt2', out: dir, hidden: 16, layers: 1, heads: 2, vocab: 20, maxPositions: 16, tied: true, seed: 0 });
    const json = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Record<string, unknown>;
    json.comment = 'café';
    writeFileSync(join(dir, file), latin1(JSON.stringify(json)));
    return dir;
  }

  for (const file of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
    it(`${file}: loading names the file and the offset instead of reading mojibake`, async () => {
      const dir = await checkpointWithLatin1(file);
      expect(() => loadModel(dir)).toThrow(new RegExp(`${file}: not valid UTF-8 \\(invalid byte sequence at byte offset \\d+\\).*iconv`));
      if (file !== 'config.json') expect(() => loadTokenizer(dir)).toThrow(/not valid UTF-8/);
    });
  }
});
