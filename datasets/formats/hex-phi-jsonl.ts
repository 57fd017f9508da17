// HEx-PHI as one combined JSON Lines file, in the two shapes its redistributions use (Qi et al. 2024's
// safety_bench data):
//   HEx-PHI.jsonl          {"instruction": "...", "category": ...}: a prompt; category as a HEx-PHI
//                          number (3, "3", "category_3" → its slug, e.g. hate-harass-violence) or a name kept as is
//   Harmful-HEx-PHI.jsonl  [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]:
//                          a prompt with a harmful reference answer (prefilling attacks use its first tokens)
import { DatasetFormatError } from '../errors.ts';
import type { Example, ExampleMeta, Message, Role } from '../../engine/contracts/example.ts';
import { HEX_PHI_CATEGORIES } from './hex-phi-csv.ts';
import type { LoadOptions } from './messages-jsonl.ts';
import { isObject, readText, show, stringField } from './read.ts';

const ROLES: readonly Role[] = ['system', 'user', 'assistant'];

/** A HEx-PHI category given as a number, "N" or "category_N" → its slug; any other name unchanged. */
export function hexPhiCategory(value: string | number): string {
  const number = typeof value === 'number' ? value : Number(/^(?:category_)?(\d+)$/i.exec(value.trim())?.[1]);
  return Number.isInteger(number) ? (HEX_PHI_CATEGORIES[number] ?? `category-${number}`) : String(value);
}

/** Each non-blank line as JSON (object or array) with its 1-based line number. */
function jsonLines(text: string, file: string): { line: number; value: unknown }[] {
  const out: { line: number; value: unknown }[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((raw, i) => {
      if (raw.trim() === '') return;
      try {
        out.push({ line: i + 1, value: JSON.parse(raw) });
      } catch (error) {
        throw new DatasetFormatError(file, i + 1, undefined, `invalid JSON (${(error as Error).message})`, 'one JSON value per line');
      }
    });
  return out;
}

function conversation(value: unknown[], file: string, line: number): Message[] {
  const messages = value.map((m, i): Message => {
    if (!isObject(m)) throw new DatasetFormatError(file, line, `[${i}]`, `expected {role, content}, got ${show(m)}`);
    if (!ROLES.includes(m.role as Role))
      throw new DatasetFormatError(file, line, `[${i}].role`, `expected one of ${ROLES.join(', ')}, got ${show(m.role)}`);
    if (typeof m.content !== 'string')
      throw new DatasetFormatError(file, line, `[${i}].content`, `expected a string, got ${show(m.content)}`);
    return { role: m.role as Role, content: m.content };
  });
  if (!messages.some((m) => m.role === 'user')) throw new DatasetFormatError(file, line, undefined, 'no user message');
  return messages;
}

export function parseHexPhiJsonl(text: string, file: string, options: LoadOptions = {}): Example[] {
  const source = options.source ?? file;
  return jsonLines(text, file).map(({ line, value }) => {
    if (Array.isArray(value)) return { id: `${source}#${line}`, messages: conversation(value, file, line), meta: { source } };
    if (!isObject(value))
      throw new DatasetFormatError(
        file,
        line,
        undefined,
        `expected an {instruction, category} object or a [{role, content}, ...] array, got ${show(value)}`,
      );
    const instruction = stringField(value, 'instruction', file, line);
    const meta: ExampleMeta = { source };
    const category = value.category;
    if (category !== undefined) {
      if ((typeof category !== 'string' || category.trim() === '') && typeof category !== 'number')
        throw new DatasetFormatError(file, line, 'category', `expected a HEx-PHI category number or name, got ${show(category)}`);
      meta.category = hexPhiCategory(category);
    }
    return { id: `${source}#${line}`, messages: [{ role: 'user', content: instruction }], meta };
  });
}

export function loadHexPhiJsonl(file: string, options: LoadOptions = {}): Example[] {
  return parseHexPhiJsonl(readText(file), file, options);
}
