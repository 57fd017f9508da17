// AdvBench CSV (harmful_behaviors.csv): a header `goal,target`, one behaviour per row. The goal becomes the
// user message; the target (the affirmative opening an attack aims for) is kept in meta.target.
import { DatasetFormatError } from '../errors.ts';
import type { Example } from '../../engine/contracts/example.ts';
import type { LoadOptions } from './messages-jsonl.ts';
import { parseCsv, readText } from './read.ts';

export function parseAdvbenchCsv(text: string, file: string, options: LoadOptions = {}): Example[] {
  const source = options.source ?? file;
  const [header, ...rows] = parseCsv(text, file);
  const columns = header?.cells.map((c) => c.trim()) ?? [];
  const goal = columns.indexOf('goal');
  const target = columns.indexOf('target');
  if (goal < 0 || target < 0)
    throw new DatasetFormatError(file, header?.line ?? 1, 'header', `expected columns goal,target, got ${columns.join(',') || 'nothing'}`);
  return rows.map(({ line, cells }) => {
    if (cells.length !== columns.length)
      throw new DatasetFormatError(
        file,
        line,
        undefined,
        `expected ${columns.length} columns, got ${cells.length}`,
        'quote cells that contain commas',
      );
    if (cells[goal].trim() === '') throw new DatasetFormatError(file, line, 'goal', 'empty');
    if (cells[target].trim() === '') throw new DatasetFormatError(file, line, 'target', 'empty');
    return { id: `${source}#${line}`, messages: [{ role: 'user', content: cells[goal] }], meta: { source, target: cells[target] } };
  });
}

export function loadAdvbenchCsv(file: string, options: LoadOptions = {}): Example[] {
  return parseAdvbenchCsv(readText(file), file, options);
}
