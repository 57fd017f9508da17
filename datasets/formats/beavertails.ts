// BeaverTails (PKU-Alignment/BeaverTails), as JSON Lines or as one JSON array:
//   {"prompt": "...", "response": "...", "category": {"animal_abuse": false, ..., "violence,aiding_and_abetting,incitement": true}, "is_safe": false}
// The prompt becomes the user message, the response the assistant message. meta.is_safe is kept and
// meta.harmful = !is_safe; meta.categories lists the categories flagged true (in file order) and
// meta.category is the first of them. Category keys are kept verbatim (several contain commas).
import { DatasetFormatError } from '../errors.ts';
import type { Example, ExampleMeta } from '../../engine/contracts/example.ts';
import type { LoadOptions } from './messages-jsonl.ts';
import { isObject, parseJsonl, readText, show, stringField, type JsonObject } from './read.ts';

/**
 * The top-level elements of a JSON array text: start line and character span of each. A plain scan
 * (strings, escapes, nesting); it also works on broken JSON, to locate the element that fails to parse.
 */
function arrayElements(text: string): { line: number; start: number; end: number }[] {
  const out: { line: number; start: number; end: number }[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let open: { line: number; start: number } | undefined;
  let expectValue = false;
  const close = (end: number) => {
    if (open) out.push({ ...open, end });
    open = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') line++;
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === '\\') escaped = true;
      else if (ch === '"') inString = false;
      continue;
    }
    if (depth === 1 && expectValue && !/\s/.test(ch) && ch !== ',' && ch !== ']') {
      open = { line, start: i };
      expectValue = false;
    }
    if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') {
      depth++;
      if (depth === 1) expectValue = true;
    } else if (ch === ']' || ch === '}') {
      depth--;
      if (depth === 0) close(i);
    } else if (depth === 1 && ch === ',') {
      close(i);
      expectValue = true;
    }
  }
  close(text.length);
  return out;
}

const oneLine = (error: unknown) => {
  const text = (error as Error).message.replace(/\s+/g, ' ');
  return text.length > 100 ? `${text.slice(0, 97)}...` : text;
};

const isJsonArrayText = (text: string) =>
  text
    .replace(/^\uFEFF/, '')
    .trimStart()
    .startsWith('[');

/** The first element of a JSON array text, parsed alone (format detection need not parse the whole file). */
export function firstArrayElement(text: string, file: string): { line: number; value: unknown } | undefined {
  const body = text.replace(/^\uFEFF/, '');
  const [first] = arrayElements(body);
  if (!first) return undefined;
  try {
    return { line: first.line, value: JSON.parse(body.slice(first.start, first.end)) };
  } catch (error) {
    throw new DatasetFormatError(
      file,
      first.line,
      undefined,
      `invalid JSON (${oneLine(error)})`,
      'a JSON array of objects, or one JSON object per line',
    );
  }
}

/**
 * Records of a JSON Lines file, or of a file holding one JSON array of objects, each with the line it
 * starts on. A syntax error in an array file is reported at the line of the element that fails to parse.
 */
export function parseJsonRecords(text: string, file: string): { line: number; value: JsonObject }[] {
  if (!isJsonArrayText(text)) return parseJsonl(text, file);
  const body = text.replace(/^\uFEFF/, '');
  const elements = arrayElements(body);
  let values: unknown[];
  try {
    values = JSON.parse(body) as unknown[];
  } catch (error) {
    for (const e of elements)
      try {
        JSON.parse(body.slice(e.start, e.end));
      } catch (inner) {
        throw new DatasetFormatError(
          file,
          e.line,
          undefined,
          `invalid JSON (${oneLine(inner)})`,
          'a JSON array of objects, or one JSON object per line',
        );
      }
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    const line = position === undefined ? undefined : body.slice(0, Number(position)).split('\n').length;
    throw new DatasetFormatError(
      file,
      line,
      undefined,
      `invalid JSON (${oneLine(error)})`,
      'a JSON array of objects, or one JSON object per line',
    );
  }
  return values.map((value, i) => {
    const line = elements[i]?.line ?? 1;
    if (!isObject(value)) throw new DatasetFormatError(file, line, undefined, `expected a JSON object, got ${show(value)}`);
    return { line, value };
  });
}

export function parseBeavertails(text: string, file: string, options: LoadOptions = {}): Example[] {
  const source = options.source ?? file;
  return parseJsonRecords(text, file).map(({ line, value }) => {
    const prompt = stringField(value, 'prompt', file, line);
    const response = stringField(value, 'response', file, line);
    if (typeof value.is_safe !== 'boolean')
      throw new DatasetFormatError(file, line, 'is_safe', `expected true or false, got ${show(value.is_safe)}`);
    const meta: ExampleMeta = { source, is_safe: value.is_safe, harmful: !value.is_safe };
    if (value.category !== undefined) {
      if (!isObject(value.category))
        throw new DatasetFormatError(file, line, 'category', `expected a map of category → true/false, got ${show(value.category)}`);
      const categories: string[] = [];
      for (const [key, flag] of Object.entries(value.category)) {
        if (typeof flag !== 'boolean')
          throw new DatasetFormatError(file, line, `category.${key}`, `expected true or false, got ${show(flag)}`);
        if (flag) categories.push(key);
      }
      meta.categories = categories;
      if (categories.length > 0) meta.category = categories[0];
    }
    return {
      id: `${source}#${line}`,
      messages: [
        { role: 'user', content: prompt },
        { role: 'assistant', content: response },
      ],
      meta,
    };
  });
}

export function loadBeavertails(file: string, options: LoadOptions = {}): Example[] {
  return parseBeavertails(readText(file), file, options);
}
