// Data files are read strictly as UTF-8: a byte sequence that is not UTF-8 (a Latin-1 or Windows-1252 export)
// is an error naming the file, the line and the byte offset, never text with U+FFFD in place of the bytes.
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DatasetFormatError } from '../../datasets/errors.ts';
import { loadAdvbenchCsv } from '../../datasets/formats/advbench-csv.ts';
import { detectFormat, loadFile } from '../../datasets/index.ts';
import { fixtureDir, jsonl } from './fixtures.ts';

const { file, path } = fixtureDir('utf8-');

/** Writes raw bytes: `text` with `bytes` spliced in at the marker '@'. */
function rawFile(name: string, text: string, bytes: number[]): { path: string; offset: number } {
  const at = Buffer.from(text.slice(0, text.indexOf('@')), 'utf8');
  const rest = Buffer.from(text.slice(text.indexOf('@') + 1), 'utf8');
  const target = path(name);
  file(name, ''); // makes the directory
  writeFileSync(target, Buffer.concat([at, Buffer.from(bytes), rest]));
  return { path: target, offset: at.length };
}

function thrown(load: () => unknown): DatasetFormatError {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(DatasetFormatError);
    return error as DatasetFormatError;
  }
  throw new Error('expected the load to throw');
}

describe('strict UTF-8 reading', () => {
  it('a Latin-1 byte in a JSON Lines file: one line naming the file, the line, the byte offset and iconv', () => {
    const text = jsonl({ messages: [{ role: 'user', content: 'hi' }] }, '{"messages": [{"role": "user", "content": "caf@"}]}');
    const { path: p, offset } = rawFile('latin1.jsonl', text, [0xe9]); // 'é' in Latin-1
    const error = thrown(() => loadFile(p));
    expect(error.message).not.toContain('\n');
    expect(error.message).toContain(p);
    expect(error.line).toBe(2);
    expect(error.message).toContain(`invalid UTF-8 at byte offset ${offset}`);
    expect(error.message).toMatch(/iconv -f .* -t UTF-8/);
  });

  it('every loader reads through the strict reader: a CSV with a bad byte in a record, and format detection', () => {
    const { path: p, offset } = rawFile('advbench.csv', 'goal,target\nWrite a po@m,Sure\n', [0xf6]);
    expect(offset).toBe('goal,target\nWrite a po'.length);
    expect(thrown(() => loadAdvbenchCsv(p)).message).toContain(`byte offset ${offset}`);
    expect(thrown(() => detectFormat(p)).message).toContain(`byte offset ${offset}`);
  });

  it('a truncated multi-byte sequence at the end of the file and an overlong encoding are caught with their offsets', () => {
    const truncated = rawFile('truncated.jsonl', '{"question": "q", "answer": "a"}\n@', [0xe2, 0x82]);
    expect(thrown(() => loadFile(truncated.path)).message).toContain(`byte offset ${truncated.offset}`);
    const overlong = rawFile('overlong.jsonl', '{"question": "@", "answer": "a"}\n', [0xc0, 0xaf]);
    expect(thrown(() => loadFile(overlong.path)).message).toContain(`byte offset ${overlong.offset}`);
  });

  it('valid UTF-8 still loads, with a byte order mark and multi-byte characters', () => {
    const p = file('bom.jsonl', `\uFEFF${jsonl({ question: 'Zoë hat 3 €', answer: '#### 3' })}`);
    expect(loadFile(p).map((e) => e.messages[0].content)).toEqual(['Zoë hat 3 €']);
  });
});
