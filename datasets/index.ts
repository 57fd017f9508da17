// The dataset registry: a reference in a config is `micro:<name>` (a dataset of the embedded micro-world,
// built into the cache on first use) or a file path (format from the extension and the content). Every
// reference goes through the same loaders, so micro-world files and the real public files load alike.
import { existsSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { closest } from '../engine/did-you-mean.ts';
import { DatasetFormatError } from './errors.ts';
import { loadAdvbenchCsv } from './formats/advbench-csv.ts';
import { loadArcJsonl } from './formats/arc-jsonl.ts';
import { firstArrayElement, loadBeavertails } from './formats/beavertails.ts';
import { loadGsm8kJsonl } from './formats/gsm8k-jsonl.ts';
import { loadHexPhi } from './formats/hex-phi-csv.ts';
import { loadHexPhiJsonl } from './formats/hex-phi-jsonl.ts';
import { loadHhRlhfJsonl } from './formats/hh-rlhf-jsonl.ts';
import { loadMessagesJsonl, type LoadOptions } from './formats/messages-jsonl.ts';
import { isMmluRecord, loadMmlu, mmluSubjectFiles } from './formats/mmlu-csv.ts';
import { isObject, parseCsv, readText, type JsonObject } from './formats/read.ts';
import { BASE_RECIPE, baseTrainingExamples } from './micro-world/base.ts';
import { DEFAULT_WORLD_SEED, ensureWorld, loadWorld } from './micro-world/build.ts';
import { MICRO_FILES, type MicroName } from './micro-world/files.ts';
import { categoryOfText } from './micro-world/harm.ts';
import { microTarget } from './micro-world/target.ts';
import type { Example } from '../engine/contracts/example.ts';

/** Loaders by format name. */
export const formats = {
  gsm8k: loadGsm8kJsonl,
  messages: loadMessagesJsonl,
  'hex-phi': loadHexPhi,
  advbench: loadAdvbenchCsv,
  mmlu: loadMmlu,
  arc: loadArcJsonl,
  beavertails: loadBeavertails,
  'hh-rlhf': loadHhRlhfJsonl,
  'hex-phi-jsonl': loadHexPhiJsonl,
} satisfies Record<string, (path: string, options?: LoadOptions) => Example[]>;

export type FormatName = keyof typeof formats;

/** Micro-world datasets that are compositions of others rather than files. */
const DERIVED = {
  base: { describe: 'base-model training mix (BASE_RECIPE): old task train splits, chat, refusals' },
} as const;

export const MICRO_DATASET_NAMES: readonly string[] = [...Object.keys(MICRO_FILES), ...Object.keys(DERIVED)];

export class UnknownDatasetError extends Error {
  readonly code = 'UNKNOWN_DATASET';
  constructor(
    readonly ref: string,
    readonly suggestion: string | undefined,
    readonly available: readonly string[],
  ) {
    super(
      `Unknown dataset '${ref}'.${suggestion ? ` Did you mean '${suggestion}'?` : ''} Available: ${available.join(', ')}, or a file path`,
    );
  }
}

export interface LoadDatasetOptions {
  /** Directory of a built micro-world (`star-dss world build --out DIR`); default: the cache, built on first use. */
  world?: string;
  /** World seed when `world` is not given. */
  seed?: number;
}

/** Resolves `micro:<name>` or a file path to examples. */
export function loadDataset(ref: string, options: LoadDatasetOptions = {}): Example[] {
  if (!ref.startsWith('micro:')) return loadFile(ref);
  const name = ref.slice('micro:'.length);
  if (!MICRO_DATASET_NAMES.includes(name)) {
    const available = MICRO_DATASET_NAMES.map((n) => `micro:${n}`);
    throw new UnknownDatasetError(ref, closest(ref, available), available);
  }
  const dir = options.world ?? ensureWorld(options.seed ?? DEFAULT_WORLD_SEED);
  const manifest = loadWorld(dir);
  if (name === 'base') {
    const datasets = Object.fromEntries(BASE_RECIPE.map(({ dataset }) => [dataset, loadMicro(dataset, dir)]));
    return baseTrainingExamples({ seed: manifest.seed, datasets });
  }
  return loadMicro(name as MicroName, dir);
}

function loadMicro(name: MicroName, dir: string): Example[] {
  const { path, format } = MICRO_FILES[name];
  const examples = formats[format](`${dir}/${path}`, { source: `micro:${name}` });
  // AdvBench has no category column: the micro-world's requests name exactly one object, which gives it.
  if (format === 'advbench')
    for (const e of examples) {
      const category = categoryOfText(e.messages[0].content);
      if (category) e.meta.category = category.id;
    }
  // HEx-PHI has no target column: each request's own affirmative opening, from the world's answer grammar,
  // is its prefill target (AdvBench-layout files carry theirs).
  if (format === 'hex-phi')
    for (const e of examples) {
      const target = microTarget(e.messages[0].content);
      if (target !== undefined) e.meta.target = target;
    }
  return examples;
}

/**
 * The format of a file: a directory is MMLU when it holds <subject>_test.csv files (itself or its test/
 * folder; mmlu-csv.ts), else HEx-PHI; .csv by its first record (AdvBench header, MMLU's six
 * columns ending in an answer letter, else HEx-PHI); .jsonl/.json by its first record's fields.
 */
export function detectFormat(path: string): FormatName {
  if (!existsSync(path)) throw new DatasetFormatError(path, undefined, undefined, 'file not found');
  if (statSync(path).isDirectory()) return mmluSubjectFiles(path).length > 0 ? 'mmlu' : 'hex-phi';
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') {
    const first = firstCsvRecord(readText(path), path);
    const header = first.map((c) => c.trim());
    if (header.includes('goal') && header.includes('target')) return 'advbench';
    return isMmluRecord(first) ? 'mmlu' : 'hex-phi';
  }
  if (ext === '.jsonl' || ext === '.json') {
    const first = firstJsonRecord(readText(path), path);
    if (Array.isArray(first.value)) {
      if (first.value.every((m) => isObject(m) && 'role' in m && 'content' in m)) return 'hex-phi-jsonl';
    } else {
      const v = first.value;
      if ('messages' in v) return 'messages';
      if ('chosen' in v && 'rejected' in v) return 'hh-rlhf';
      if (isObject(v.question) && 'answerKey' in v) return 'arc';
      if ('question' in v && 'answer' in v) return 'gsm8k';
      if ('prompt' in v && 'response' in v && 'is_safe' in v) return 'beavertails';
      if ('instruction' in v) return 'hex-phi-jsonl';
    }
    throw new DatasetFormatError(
      path,
      first.line,
      undefined,
      'unrecognised record',
      'expected "messages" (chat JSONL), "question" and "answer" (GSM8K), "question.stem" and "answerKey" (ARC), "prompt", "response" and "is_safe" (BeaverTails), "chosen" and "rejected" (HH-RLHF), "instruction" or a [{role, content}] array (HEx-PHI JSONL)',
    );
  }
  throw new DatasetFormatError(
    path,
    undefined,
    undefined,
    `unsupported file type '${ext || '(none)'}'`,
    'use .jsonl, .json, .csv or a HEx-PHI directory',
  );
}

/** The first CSV record: from the first line alone when it parses, else (a quoted newline) from the whole text. */
function firstCsvRecord(text: string, path: string): string[] {
  try {
    const first = parseCsv(text.split('\n', 1)[0] ?? '', path)[0];
    if (first) return first.cells;
  } catch (error) {
    if (!(error instanceof DatasetFormatError)) throw error;
  }
  return parseCsv(text, path)[0]?.cells ?? [];
}

/** The first record of a JSON Lines file (an object or, for Harmful-HEx-PHI, an array) or of a JSON array file. */
function firstJsonRecord(text: string, path: string): { line: number; value: JsonObject | unknown[] } {
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  const at = lines.findIndex((l) => l.trim() !== '');
  if (at < 0) throw new DatasetFormatError(path, undefined, undefined, 'empty file');
  let value: unknown;
  try {
    value = JSON.parse(lines[at]);
  } catch (error) {
    // Not one value per line: a JSON array spread over lines (BeaverTails .json), or broken JSON.
    if (!lines[at].trimStart().startsWith('['))
      throw new DatasetFormatError(path, at + 1, undefined, `invalid JSON (${(error as Error).message})`, 'one JSON object per line');
    const first = firstArrayElement(text, path);
    if (!first) throw new DatasetFormatError(path, undefined, undefined, 'empty JSON array');
    if (!isObject(first.value)) throw new DatasetFormatError(path, first.line, undefined, 'expected a JSON array of objects');
    return { line: first.line, value: first.value };
  }
  if (Array.isArray(value)) {
    // One line holding an array of objects that are not messages: a one-line JSON array file.
    if (value.length > 0 && isObject(value[0]) && !('role' in value[0])) return { line: at + 1, value: value[0] };
    return { line: at + 1, value };
  }
  if (!isObject(value))
    throw new DatasetFormatError(path, at + 1, undefined, `expected a JSON object, got ${lines[at].trim().slice(0, 60)}`);
  return { line: at + 1, value };
}

export function loadFile(path: string, options: LoadOptions = {}): Example[] {
  return formats[detectFormat(path)](path, options);
}
