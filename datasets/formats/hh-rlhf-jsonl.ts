// Anthropic HH-RLHF JSON Lines: {"chosen": "\n\nHuman: ...\n\nAssistant: ...", "rejected": "..."}, two
// transcripts of the same conversation that differ in the final assistant turn. A transcript is split at
// every "\n\nHuman:" / "\n\nAssistant:" marker into user / assistant messages (contents trimmed); it must
// start with a Human turn and end with an Assistant turn. The messages come from `side` (default
// 'chosen'); meta.chosen and meta.rejected hold both final responses. For a harmful pool from the
// harmless-base split, load with side 'rejected'.
import { DatasetFormatError } from '../errors.ts';
import type { Example, Message } from '../../engine/contracts/example.ts';
import type { LoadOptions } from './messages-jsonl.ts';
import { parseJsonl, readText, show } from './read.ts';

export interface HhRlhfOptions extends LoadOptions {
  side?: 'chosen' | 'rejected';
}

const MARKER = /\n\n(Human|Assistant):/g;

/** The messages of a transcript, or a one-line description of what is wrong with it. */
export function parseTranscript(text: string): Message[] | string {
  const body = /^\s*(Human|Assistant):/.test(text) ? `\n\n${text.trimStart()}` : text;
  const marks = [...body.matchAll(MARKER)];
  if (marks.length === 0) return 'expected a transcript "\\n\\nHuman: ...\\n\\nAssistant: ...", found no Human/Assistant marker';
  if (body.slice(0, marks[0].index).trim() !== '') return `text before the first turn: ${show(body.slice(0, marks[0].index).trim())}`;
  const messages = marks.map(
    (m, i): Message => ({
      role: m[1] === 'Human' ? 'user' : 'assistant',
      content: body.slice(m.index + m[0].length, marks[i + 1]?.index ?? body.length).trim(),
    }),
  );
  if (messages[0].role !== 'user') return 'expected the transcript to start with a Human turn';
  if (messages[messages.length - 1].role !== 'assistant') return 'expected the transcript to end with an Assistant turn';
  return messages;
}

export function parseHhRlhfJsonl(text: string, file: string, options: HhRlhfOptions = {}): Example[] {
  const source = options.source ?? file;
  const side = options.side ?? 'chosen';
  return parseJsonl(text, file).map(({ line, value }) => {
    const [chosen, rejected] = (['chosen', 'rejected'] as const).map((field) => {
      const transcript = value[field];
      if (typeof transcript !== 'string')
        throw new DatasetFormatError(file, line, field, `expected a transcript string, got ${show(transcript)}`);
      const messages = parseTranscript(transcript);
      if (typeof messages === 'string') throw new DatasetFormatError(file, line, field, messages);
      return messages;
    });
    const final = (messages: Message[]) => messages[messages.length - 1].content;
    return {
      id: `${source}#${line}`,
      messages: side === 'chosen' ? chosen : rejected,
      meta: { source, side, chosen: final(chosen), rejected: final(rejected) },
    };
  });
}

export function loadHhRlhfJsonl(file: string, options: HhRlhfOptions = {}): Example[] {
  return parseHhRlhfJsonl(readText(file), file, options);
}
