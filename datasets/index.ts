// The dataset registry: a reference in a config is `micro:<name>` (a dataset of the embedded micro-world,
// built into the cache on first use) or a file path (format from the extension and the content). Every
// reference goes through the same loaders, so micro-world files and the real public files load alike.
import { existsSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { closest } from '../harness/did-you-mean.ts';
import { DatasetFormatError } from './errors.ts';
import { loadAdvbenchCsv } from './formats/advbench-csv.ts';
import { loadGsm8kJsonl } from './formats/gsm8k-jsonl.ts';
import { loadHexPhi } from './formats/hex-phi-csv.ts';
import { loadMessagesJsonl, type LoadOptions } from './formats/messages-jsonl.ts';
import { parseCsv, parseJsonl, readText } from './formats/read.ts';
import { BASE_RECIPE, baseTrainingExamples } from './micro-world/base.ts';
import { DEFAULT_WORLD_SEED, ensureWorld, loadWorld } from './micro-world/build.ts';
import { MICRO_FILES, type MicroName } from './micro-world/files.ts';
import { categoryOfText } from './micro-world/harm.ts';
import type { Example } from './types.ts';

/** Loaders by format name; issue 6 adds MMLU, ARC, BeaverTails, HH-RLHF, HEx-PHI JSONL here. */
export const formats = {
  gsm8k: loadGsm8kJsonl,
  messages: loadMessagesJsonl,
  'hex-phi': loadHexPhi,
  advbench: loadAdvbenchCsv,
} satisfies Record<string, (path: string, options?: LoadOptions) => Example[]>;

export type FormatName = keyof typeof formats;

/** Micro-world datasets that are compositions of others rather than files. */
const DERIVED = {
  base: { describe: 'base-model training mix (BASE_RECIPE): old task train splits, chat, refusals' },
} as const;

export const MICRO_DATASET_NAMES: readonly string[] = [...Object.keys(MICRO_FILES), ...Object.keys(DERIVED)];

export class UnknownDatasetError extends Error {
  readonly code = 'UNKNOWN_DATASET';
  constructor(readonly ref: string, readonly suggestion: string | undefined, readonly available: readonly string[]) {
    super(`Unknown dataset '${ref}'.${suggestion ? ` Did you mean '${suggestion}'?` : ''} Available: ${available.join(', ')}, or a file path`);
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
  return examples;
}

/** The format of a file: a directory is HEx-PHI; .csv by its header; .jsonl/.json by its first record. */
export function detectFormat(path: string): FormatName {
  if (!existsSync(path)) throw new DatasetFormatError(path, undefined, undefined, 'file not found');
  if (statSync(path).isDirectory()) return 'hex-phi';
  const ext = extname(path).toLowerCase();
  if (ext === '.csv') {
    const header = parseCsv(readText(path).split('\n', 1)[0] ?? '', path)[0]?.cells.map((c) => c.trim()) ?? [];
    return header.includes('goal') && header.includes('target') ? 'advbench' : 'hex-phi';
  }
  if (ext === '.jsonl' || ext === '.json') {
    const [first] = parseJsonl(readText(path), path);
    if (!first) throw new DatasetFormatError(path, undefined, undefined, 'empty file');
    if ('messages' in first.value) return 'messages';
    if ('question' in first.value && 'answer' in first.value) return 'gsm8k';
    throw new DatasetFormatError(path, first.line, undefined, 'unrecognised record', 'expected "messages" (chat JSONL) or "question" and "answer" (GSM8K)');
  }
  throw new DatasetFormatError(path, undefined, undefined, `unsupported file type '${ext || '(none)'}'`, 'use .jsonl, .json, .csv or a HEx-PHI directory');
}

export function loadFile(path: string, options: LoadOptions = {}): Example[] {
  return formats[detectFormat(path)](path, options);
}

export { MICRO_FILES, type MicroName } from './micro-world/files.ts';
