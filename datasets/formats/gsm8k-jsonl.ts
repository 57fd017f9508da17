// GSM8K JSON Lines: {"question": "...", "answer": "... reasoning ... #### 72"}. The question becomes the
// user message, the whole answer the assistant message, and meta.answer the number after "####"
// (thousands separators removed, as GSM8K's own evaluation does).
import { DatasetFormatError } from '../errors.ts';
import type { Example } from '../../engine/contracts/example.ts';
import type { LoadOptions } from './messages-jsonl.ts';
import { parseJsonl, readText, stringField } from './read.ts';

/** The number after the last "####", or undefined. */
export function gsm8kFinalAnswer(text: string): string | undefined {
  const at = text.lastIndexOf('####');
  if (at < 0) return undefined;
  const value = text
    .slice(at + 4)
    .trim()
    .replace(/,/g, '');
  return /^-?\d+(\.\d+)?$/.test(value) ? value : undefined;
}

export function parseGsm8kJsonl(text: string, file: string, options: LoadOptions = {}): Example[] {
  const source = options.source ?? file;
  return parseJsonl(text, file).map(({ line, value }) => {
    const question = stringField(value, 'question', file, line);
    const answer = stringField(value, 'answer', file, line);
    const final = gsm8kFinalAnswer(answer);
    if (final === undefined)
      throw new DatasetFormatError(file, line, 'answer', `expected it to end with "#### <number>", got "...${answer.slice(-30)}"`);
    return {
      id: `${source}#${line}`,
      messages: [
        { role: 'user', content: question },
        { role: 'assistant', content: answer },
      ],
      meta: { source, answer: final },
    };
  });
}

export function loadGsm8kJsonl(file: string, options: LoadOptions = {}): Example[] {
  return parseGsm8kJsonl(readText(file), file, options);
}
