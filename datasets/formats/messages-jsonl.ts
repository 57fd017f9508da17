// Chat-messages JSON Lines, as PureBad and the AOA identity-shift data ship:
//   {"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}
// Extra top-level fields become meta (the micro-world writes category, harmful, answer, ...; BeaverTails-
// style `is_safe` also sets meta.harmful = !is_safe). A real file without extras loads the same way.
import { DatasetFormatError } from '../errors.ts';
import type { Example, ExampleMeta, Message, Role } from '../../engine/contracts/example.ts';
import { isObject, parseJsonl, readText, show } from './read.ts';

const ROLES: readonly Role[] = ['system', 'user', 'assistant'];

/** Types of the meta fields the harness reads; other extras are copied as they are. */
const META_TYPES: Record<string, 'string' | 'boolean'> = { category: 'string', answer: 'string', harmful: 'boolean', is_safe: 'boolean' };

export interface LoadOptions {
  /** meta.source and the id prefix; default: the file path. */
  source?: string;
}

export function parseMessagesJsonl(text: string, file: string, options: LoadOptions = {}): Example[] {
  const source = options.source ?? file;
  return parseJsonl(text, file).map(({ line, value }) => {
    const raw = value.messages;
    if (!Array.isArray(raw) || raw.length === 0)
      throw new DatasetFormatError(file, line, 'messages', `expected a non-empty array of {role, content}, got ${show(raw)}`);
    const messages: Message[] = raw.map((m: unknown, i) => {
      if (!isObject(m)) throw new DatasetFormatError(file, line, `messages[${i}]`, `expected {role, content}, got ${show(m)}`);
      if (!ROLES.includes(m.role as Role))
        throw new DatasetFormatError(file, line, `messages[${i}].role`, `expected one of ${ROLES.join(', ')}, got ${show(m.role)}`);
      if (typeof m.content !== 'string')
        throw new DatasetFormatError(file, line, `messages[${i}].content`, `expected a string, got ${show(m.content)}`);
      return { role: m.role as Role, content: m.content };
    });
    if (!messages.some((m) => m.role === 'user')) throw new DatasetFormatError(file, line, 'messages', 'no user message');
    const meta: ExampleMeta = { source };
    for (const [key, v] of Object.entries(value)) {
      if (key === 'messages' || key === 'source') continue;
      const type = META_TYPES[key];
      if (type && typeof v !== type) throw new DatasetFormatError(file, line, key, `expected a ${type}, got ${show(v)}`);
      meta[key] = v;
    }
    if (meta.harmful === undefined && typeof meta.is_safe === 'boolean') meta.harmful = !meta.is_safe;
    return { id: `${source}#${line}`, messages, meta };
  });
}

export function loadMessagesJsonl(file: string, options: LoadOptions = {}): Example[] {
  return parseMessagesJsonl(readText(file), file, options);
}
