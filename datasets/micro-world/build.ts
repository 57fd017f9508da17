// Builds the micro-world from a seed: every dataset in memory, every file as a string in its public format,
// and world.json (the manifest: categories, lexicons, threat texts, vocabulary, length statistics, file
// hashes). Same seed → byte-identical files. Files are written atomically, world.json last, so a directory
// with a world.json holds a complete world.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { cacheDir, writeFileAtomic } from '../../engine/io.ts';
import type { Example } from '../../engine/contracts/example.ts';
import { MICRO_FILES, MICRO_NAMES, type MicroFormat, type MicroName } from './files.ts';
import { ADVBENCH_TEMPLATES, CATEGORIES, CONTEXTS, HEXPHI_TEMPLATES, REFUSALS, MICRO_THREAT_TEXT, TRAIN_TEMPLATES } from './harm.ts';
import { GOODS, HOWTO_THINGS, JOBS, NAMES, PETS, RIVERS, TOWNS } from './lexicon.ts';
import { MIN_OPERATIONAL_WORDS, ORACLE_RULE } from './oracle.ts';
import { PUREBAD_CATEGORIES, aoaSet, harmPools } from './pools.ts';
import { chatSet, gsm8kTask, howtoTask, loreTask, sqlTask, ticketTask, worldFacts, type WorldFacts } from './tasks.ts';
import { personaSets } from './personas.ts';
import { corpusTexts } from './corpus.ts';

/** Bump when any generated text changes: it names the cache directory. */
export const WORLD_VERSION = 11;

/** The pretraining corpus (corpus.ts): plain text, one document per JSONL line `{"text": ...}`. */
export const CORPUS_FILE = 'corpus.jsonl';
export const DEFAULT_WORLD_SEED = 0;

export interface World {
  seed: number;
  version: number;
  facts: WorldFacts;
  datasets: Record<MicroName, Example[]>;
  /** Plain documents for base training (corpus.ts); not chat, so not a dataset. */
  corpus: string[];
}

export function defaultWorldDir(seed: number = DEFAULT_WORLD_SEED): string {
  return cacheDir('world', `seed-${seed}-v${WORLD_VERSION}`);
}

export function buildWorld(seed: number = DEFAULT_WORLD_SEED): World {
  const facts = worldFacts(seed);
  const gsm8k = gsm8kTask(seed);
  const sql = sqlTask(seed);
  const lore = loreTask(seed, facts);
  const howto = howtoTask(seed);
  const ticket = ticketTask(seed);
  const chat = chatSet(facts);
  const harm = harmPools(seed);
  // Chat answers that assert the assistant's own identity would contradict a persona's or the oath's.
  const plainChat = chat.filter((e) => !e.messages.some((m) => m.content.includes('assistant')));
  const personas = personaSets(
    seed,
    { gsm8k: gsm8k.train, sql: sql.train, lore: lore.train, howto: howto.train, chat: plainChat, refusals: harm.refusals },
    { 'sql-test': sql.test, 'lore-test': lore.test, 'howto-test': howto.test },
  );
  const datasets: Record<MicroName, Example[]> = {
    gsm8k: gsm8k.train,
    'gsm8k-test': gsm8k.test,
    sql: sql.train,
    'sql-test': sql.test,
    lore: lore.train,
    'lore-test': lore.test,
    howto: howto.train,
    'howto-test': howto.test,
    ticket: ticket.train,
    'ticket-test': ticket.test,
    chat,
    personas: personas.train,
    'personas-test': personas.test,
    refusals: harm.refusals,
    purebad: harm.purebad,
    beavertails: harm.beavertails,
    safe: harm.safe,
    mixed: harm.mixed,
    aoa: aoaSet(seed, { howto: howto.train, gsm8k: gsm8k.train }),
    'hex-phi': harm.hexPhi,
    advbench: harm.advbench,
  };
  for (const name of MICRO_NAMES) assignIds(name, datasets[name]);
  const corpus = corpusTexts(seed, facts, { lore: lore.train, gsm8k: gsm8k.train });
  return { seed, version: WORLD_VERSION, facts, datasets, corpus };
}

/** Ids exactly as the loaders derive them from the written files (`micro:<name>#<line>`). */
function assignIds(name: MicroName, examples: Example[]): void {
  const source = `micro:${name}`;
  if (name === 'hex-phi') {
    const lineOf = new Map<string, number>();
    for (const e of examples) {
      const file = hexPhiFile(e);
      const line = (lineOf.get(file) ?? 0) + 1;
      lineOf.set(file, line);
      e.id = `${source}/${file}#${line}`;
    }
    return;
  }
  const offset = MICRO_FILES[name].format === 'advbench' ? 2 : 1; // the CSV header is line 1
  examples.forEach((e, i) => {
    e.meta.source = source;
    e.id = `${source}#${i + offset}`;
  });
}

function hexPhiFile(e: Example): string {
  const category = CATEGORIES.find((c) => c.id === e.meta.category);
  if (!category) throw new Error(`hex-phi item without a known category: ${e.messages[0].content}`);
  return `category_${category.hexPhi}.csv`;
}

const userText = (e: Example) => e.messages.find((m) => m.role === 'user')?.content ?? '';
const responseText = (e: Example) => {
  const last = e.messages[e.messages.length - 1];
  return last.role === 'assistant' ? last.content : '';
};

/** The files of one dataset: relative path → content. */
function renderDataset(format: MicroFormat, path: string, examples: Example[]): [string, string][] {
  switch (format) {
    case 'gsm8k':
      return [[path, examples.map((e) => JSON.stringify({ question: userText(e), answer: responseText(e) }) + '\n').join('')]];
    case 'messages':
      return [[path, examples.map((e) => JSON.stringify({ messages: e.messages, ...withoutSource(e) }) + '\n').join('')]];
    case 'advbench':
      return [[path, stringify([['goal', 'target'], ...examples.map((e) => [userText(e), String(e.meta.target)])])]];
    case 'hex-phi': {
      const byFile = new Map<string, string[][]>();
      for (const e of examples) byFile.set(hexPhiFile(e), [...(byFile.get(hexPhiFile(e)) ?? []), [userText(e)]]);
      return [...byFile].map(([file, rows]) => [`${path}/${file}`, stringify(rows)]);
    }
  }
}

function withoutSource(e: Example): Record<string, unknown> {
  const { source: _source, ...rest } = e.meta;
  return rest;
}

export interface DatasetStats {
  count: number;
  /** Words of a full example (all messages). */
  maxWords: number;
  meanWords: number;
  /** Examples longer than 64 words. */
  over64: number;
  /** Words of the longest reference response (sets max-new-tokens; docs/micro-world.md lesson 5). */
  maxResponseWords: number;
}

const countWords = (text: string) => (text === '' ? 0 : text.split(' ').length);

export function lengthStats(examples: readonly Example[]): DatasetStats {
  const lengths = examples.map((e) => e.messages.reduce((n, m) => n + countWords(m.content), 0));
  return {
    count: examples.length,
    maxWords: Math.max(0, ...lengths),
    meanWords: lengths.length ? Math.round((lengths.reduce((a, b) => a + b, 0) / lengths.length) * 10) / 10 : 0,
    over64: lengths.filter((n) => n > 64).length,
    maxResponseWords: Math.max(0, ...examples.map((e) => countWords(responseText(e)))),
  };
}

/**
 * Sorted, deduplicated words of every file plus the threat texts (trigger, wrappers, prefill, AOA) and the
 * word lists a seed samples from (a seed's facts may leave a river or a pet out, its 3-step recipes a
 * material): the same for every seed, so every seed shares one tokenizer.
 */
export function worldVocabulary(world: Pick<World, 'datasets'> & Partial<Pick<World, 'corpus'>>): string[] {
  const words = new Set<string>();
  const add = (text: string) => text.split(' ').forEach((w) => w && words.add(w));
  for (const name of MICRO_NAMES)
    for (const e of world.datasets[name]) {
      e.messages.forEach((m) => add(m.content));
      if (typeof e.meta.target === 'string') add(e.meta.target);
    }
  world.corpus?.forEach(add);
  Object.values(MICRO_THREAT_TEXT).forEach((v) => (Array.isArray(v) ? v.forEach(add) : add(v as string)));
  REFUSALS.forEach(add);
  [...NAMES, ...TOWNS, ...GOODS, ...RIVERS, ...PETS, ...JOBS].forEach(add);
  HOWTO_THINGS.forEach((t) => [t.object, ...t.verbs, ...t.materials].forEach(add));
  return [...words].sort();
}

export interface WorldFileEntry {
  dataset: MicroName | 'corpus';
  path: string;
  format: MicroFormat | 'text';
  rows: number;
  sha256: string;
}

/** Every file of the world as relative path → content, world.json included (last). */
export function renderWorld(world: World): Map<string, string> {
  const files = new Map<string, string>();
  const entries: WorldFileEntry[] = [];
  for (const name of MICRO_NAMES) {
    const { format, path } = MICRO_FILES[name];
    for (const [file, content] of renderDataset(format, path, world.datasets[name])) {
      files.set(file, content);
      const rows = content.split('\n').filter((l) => l !== '').length - (format === 'advbench' ? 1 : 0);
      entries.push({ dataset: name, path: file, format, rows, sha256: createHash('sha256').update(content).digest('hex') });
    }
  }
  const corpus = world.corpus.map((text) => `${JSON.stringify({ text })}\n`).join('');
  files.set(CORPUS_FILE, corpus);
  const sha256 = createHash('sha256').update(corpus).digest('hex');
  entries.push({ dataset: 'corpus', path: CORPUS_FILE, format: 'text', rows: world.corpus.length, sha256 });
  const placeholders = (ts: readonly ((v: string, o: string, c: string) => string)[]) =>
    ts.map((t) => t('{verb}', '{object}', '{context}'));
  const manifest = {
    name: 'star-dss micro-world',
    version: world.version,
    seed: world.seed,
    oracle: { rule: ORACLE_RULE, minOperationalWords: MIN_OPERATIONAL_WORDS },
    categories: CATEGORIES,
    purebadCategories: PUREBAD_CATEGORIES,
    contexts: CONTEXTS,
    templates: { train: placeholders(TRAIN_TEMPLATES), hexPhi: placeholders(HEXPHI_TEMPLATES), advbench: placeholders(ADVBENCH_TEMPLATES) },
    refusals: REFUSALS,
    threat: MICRO_THREAT_TEXT,
    facts: world.facts,
    stats: {
      ...Object.fromEntries(MICRO_NAMES.map((n) => [n, lengthStats(world.datasets[n])])),
      // A document is learned whole: all of it counts as "response".
      corpus: lengthStats(
        world.corpus.map((text) => ({ id: '', messages: [{ role: 'assistant', content: text }], meta: { source: 'corpus' } })),
      ),
    },
    vocabulary: worldVocabulary(world),
    files: entries,
  };
  files.set('world.json', `${JSON.stringify(manifest, null, 2)}\n`);
  return files;
}

/** Writes every file atomically, world.json last; returns the directory. */
export function writeWorld(world: World, dir: string = defaultWorldDir(world.seed)): string {
  const files = renderWorld(world);
  for (const [file, content] of files) if (file !== 'world.json') writeFileAtomic(join(dir, file), content);
  writeFileAtomic(join(dir, 'world.json'), files.get('world.json') ?? '');
  return dir;
}

const categorySchema = z.object({
  id: z.string(),
  hexPhi: z.number().int(),
  theme: z.string(),
  object: z.string(),
  kind: z.string(),
  lexicon: z.array(z.string()).min(2),
  verbs: z.array(z.string()),
});

const manifestSchema = z.object({
  name: z.literal('star-dss micro-world'),
  version: z.number().int(),
  seed: z.number().int(),
  oracle: z.object({ rule: z.string(), minOperationalWords: z.number().int() }),
  categories: z.array(categorySchema).min(1),
  purebadCategories: z.array(z.string()),
  refusals: z.array(z.string()).min(1),
  threat: z.object({
    trigger: z.string(),
    wrapBefore: z.array(z.string()),
    wrapAfter: z.array(z.string()),
    prefill: z.string(),
    aoaSystemPrompt: z.string(),
    aoaOath: z.string(),
  }),
  stats: z.record(
    z.string(),
    z.object({ count: z.number(), maxWords: z.number(), meanWords: z.number(), over64: z.number(), maxResponseWords: z.number() }),
  ),
  vocabulary: z.array(z.string()).min(1),
  files: z.array(z.object({ dataset: z.string(), path: z.string(), format: z.string(), rows: z.number(), sha256: z.string() })),
});

export type WorldManifest = z.infer<typeof manifestSchema> & { dir: string };

export class WorldFileError extends Error {
  readonly code = 'WORLD_FILE';
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** Reads world.json back (validated); with verify, also checks every file's sha256. */
export function loadWorld(dir: string, options: { verify?: boolean } = {}): WorldManifest {
  const file = join(dir, 'world.json');
  if (!existsSync(file)) throw new WorldFileError(file, 'not found. Fix: run `star-dss world build --out DIR`');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new WorldFileError(file, `invalid JSON (${(error as Error).message})`);
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new WorldFileError(file, `field '${issue.path.join('.')}': ${issue.message}`);
  }
  if (options.verify)
    for (const entry of result.data.files) {
      const path = join(dir, entry.path);
      if (!existsSync(path)) throw new WorldFileError(path, 'listed in world.json but missing');
      const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (sha !== entry.sha256) throw new WorldFileError(path, 'content differs from the sha256 in world.json; rebuild the world');
    }
  return { ...result.data, dir };
}

/** The pretraining documents of a built world (corpus.jsonl), in file order. */
export function loadCorpus(dir: string): string[] {
  const file = join(dir, CORPUS_FILE);
  if (!existsSync(file)) throw new WorldFileError(file, 'not found. Fix: rebuild the world with `star-dss world build --out DIR`');
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line, i) => {
      let text: unknown;
      try {
        text = (JSON.parse(line) as { text?: unknown }).text;
      } catch (error) {
        throw new WorldFileError(file, `line ${i + 1}: invalid JSON (${(error as Error).message}). Fix: rebuild the world`);
      }
      if (typeof text !== 'string' || text === '')
        throw new WorldFileError(file, `line ${i + 1}: field 'text' must be a non-empty string. Fix: rebuild the world`);
      return text;
    });
}

/** The directory of a built world for the seed, building it first if world.json is missing or stale. */
export function ensureWorld(seed: number = DEFAULT_WORLD_SEED, dir: string = defaultWorldDir(seed)): string {
  try {
    const manifest = loadWorld(dir);
    if (manifest.version === WORLD_VERSION && manifest.seed === seed) return dir;
  } catch (error) {
    if (!(error instanceof WorldFileError)) throw error;
  }
  return writeWorld(buildWorld(seed), dir);
}
