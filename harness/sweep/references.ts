// Every reference a sweep config makes (models, datasets, guardrails, the judge), found and resolved the way
// a real run resolves it but without training or loading a model, so that a misspelt name or a missing file
// is reported before anything trains, all problems at once, one line each. Also the content hashes that go
// into cell ids (plan.ts), so that a data file changed in place gets new cells instead of reused ones.
//
// Content rule: every byte of every file a reference reads is hashed (SHA-256; a directory is the sorted list
// of its files' relative paths and hashes, skipping dot-entries such as .cache/ and .git/). Nothing is
// sampled: a finetuned checkpoint has the same tensor names, shapes and file sizes as its base, so headers
// and sizes cannot tell them apart. Files over 64 MiB (checkpoint weights) are hashed once and the hash is
// kept in <cache>/content-hashes, keyed by the file's real path, size, inode, mtime and ctime: writing to the
// file, or replacing it, changes its ctime or inode, and a new hash is taken (the ctime cannot be set back by
// hand, unlike the mtime). The first plan over a multi-GB checkpoint therefore reads it once (about a second
// per GB); later plans do not. `micro:` references are generated, not read: the world seed and the generator
// versions identify them (plan.ts).
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, realpathSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadFile, MICRO_DATASET_NAMES, UnknownDatasetError } from '../../datasets/index.ts';
import { closest } from '../../engine/did-you-mean.ts';
import { cacheDir, contentHash, writeJsonAtomic } from '../../engine/io.ts';
import { readConfigFile } from '../../engine/model/checkpoint.ts';
import type { ModelConfig } from '../../engine/model/types.ts';
import { parseGuardrailSpec } from '../../guardrails/index.ts';
import type { Guardrail } from '../../guardrails/types.ts';
import { configureStrategy } from '../../strategies/index.ts';
import { configureThreat } from '../../threats/index.ts';
import { resolveJudge } from '../evaluate/judges.ts';
import { BASE_FAMILIES } from '../micro-world/base-model.ts';
import type { PluginEntry, SweepConfig } from './config.ts';

export type ReferenceKind = 'model' | 'dataset' | 'guardrail' | 'judge';

/** One reference of a config: what it names, and the config field it sits in (e.g. `eval.safety[1]`). */
export interface Reference {
  kind: ReferenceKind;
  field: string;
  ref: string;
}

/** Several problems with a config's references, one line each (file, field, problem, fix). */
export class SweepReferenceError extends Error {
  readonly code = 'SWEEP_REFERENCES';
  constructor(
    readonly problems: readonly string[],
    file?: string,
  ) {
    super(
      problems.length === 1
        ? problems[0]
        : `${file ?? 'the sweep config'}: ${problems.length} references do not resolve (nothing was run):\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
  }
}

const isMicro = (ref: string) => ref.startsWith('micro:');
const firstLine = (error: unknown) => String(error instanceof Error ? error.message : error).split('\n')[0];

function split(entry: PluginEntry): { name: string; params: Record<string, unknown> } {
  if (typeof entry === 'string') return { name: entry, params: {} };
  const { name, ...params } = entry;
  return { name, params };
}

/** True when a strategy entry reads guardrail scores (STAR weights or verdicts); an unknown strategy counts as reading them. */
function readsGuardrail(entry: PluginEntry): boolean {
  const { name, params } = split(entry);
  try {
    const needs = configureStrategy(name, params).needs;
    return needs.star || needs.verdict;
  } catch {
    return true;
  }
}

/**
 * The references a run of `config` reads, each with its field: models, task sets, harmful pools (the sweep's,
 * unless every threat names its own), threats' own pools, the safe set, old tasks mixed in (count > 0), eval
 * sets, guardrails (when a strategy reads one) and the judge.
 */
export function sweepReferences(config: SweepConfig): Reference[] {
  const out: Reference[] = [];
  const add = (kind: ReferenceKind, field: string, ref: string) => out.push({ kind, field, ref });
  config.models.forEach((ref, i) => add('model', `models[${i}]`, ref));
  config.tasks.forEach((ref, i) => add('dataset', `tasks[${i}]`, ref));
  const own = config.threats.map((entry) => (typeof entry === 'string' ? undefined : entry.harmful));
  if (own.some((h) => h === undefined)) config.harmful.forEach((ref, i) => add('dataset', `harmful[${i}]`, ref));
  own.forEach((ref, i) => typeof ref === 'string' && add('dataset', `threats[${i}].harmful`, ref));
  add('dataset', 'safe', config.safe);
  config.oldTask.forEach((o, i) => o.count > 0 && add('dataset', `oldTask[${i}].dataset`, o.dataset));
  config.eval.safety.forEach((ref, i) => add('dataset', `eval.safety[${i}]`, ref));
  config.eval.capability.forEach((ref, i) => add('dataset', `eval.capability[${i}]`, ref));
  if (config.strategies.some(readsGuardrail))
    config.guardrails.forEach((g, i) =>
      typeof g === 'string' ? add('guardrail', `guardrails[${i}]`, g) : add('guardrail', `guardrails[${i}].spec`, g.spec),
    );
  add('judge', 'eval.judge', config.eval.judge);
  return out;
}

/** The guardrail spec inside a judge spec (`guardrail:<spec>`), if any. */
const judgeGuardrail = (judge: string) => (judge.startsWith('guardrail:') ? judge.slice('guardrail:'.length) : undefined);

/**
 * The local file or directory whose content a reference reads, or undefined for generated (`micro:`) and
 * remote (URL) content and judges that read no files. Throws on a guardrail spec that does not parse.
 */
export function localPath(kind: ReferenceKind, ref: string): string | undefined {
  if (kind === 'model' || kind === 'dataset') return isMicro(ref) ? undefined : ref;
  const spec = kind === 'judge' ? judgeGuardrail(ref) : ref;
  if (spec === undefined) return undefined;
  const target = parseGuardrailSpec(spec);
  return target.kind === 'dir' ? target.dir : undefined;
}

const missing = (field: string, path: string) =>
  `field '${field}': '${path}' does not exist. Fix: correct the path in the config, or put the file or directory there`;

/**
 * Content hashes of every local path the config's references read (see the rule at the top of this file).
 * A path that does not exist, or a guardrail spec that does not parse, is a SweepReferenceError naming the field.
 */
export function referenceHashes(config: SweepConfig): Map<string, string> {
  const hashes = new Map<string, string>();
  const problems: string[] = [];
  for (const { kind, field, ref } of sweepReferences(config)) {
    let path: string | undefined;
    try {
      path = localPath(kind, ref);
    } catch (error) {
      problems.push(`field '${field}': ${firstLine(error)}`);
      continue;
    }
    if (path === undefined || hashes.has(path)) continue;
    if (!existsSync(path)) problems.push(missing(field, path));
    else hashes.set(path, hashPath(path));
  }
  if (problems.length > 0) throw new SweepReferenceError(problems);
  return hashes;
}

/** Files at or below this size are hashed on every plan; larger ones once per (path, size, inode, mtime, ctime). */
const REHASH_BELOW = 64 * 1024 * 1024;

/** The content hash of a file, or of a directory's files (relative paths and contents), 16 hex digits. */
export function hashPath(path: string): string {
  const stat = statSync(path);
  if (!stat.isDirectory()) return hashFile(path, stat);
  const lines = filesUnder(path).map((rel) => `${rel}\t${hashFile(join(path, rel), statSync(join(path, rel)))}`);
  return createHash('sha256')
    .update(`dir\n${lines.join('\n')}`)
    .digest('hex')
    .slice(0, 16);
}

/** Relative paths of the files below `root` (symbolic links followed, dot-entries skipped), sorted. */
function filesUnder(root: string, rel = ''): string[] {
  const names = readdirSync(join(root, rel))
    .filter((n) => !n.startsWith('.'))
    .sort();
  return names.flatMap((name) => {
    const path = rel ? `${rel}/${name}` : name;
    return statSync(join(root, path)).isDirectory() ? filesUnder(root, path) : [path];
  });
}

function hashFile(path: string, stat: Stats): string {
  if (stat.size <= REHASH_BELOW) return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16);
  const real = realpathSync(path);
  const key = { path: real, size: stat.size, ino: stat.ino, dev: stat.dev, mtimeMs: stat.mtimeMs, ctimeMs: stat.ctimeMs };
  const record = cacheDir('content-hashes', `${contentHash(real)}.json`);
  if (existsSync(record)) {
    try {
      const saved = JSON.parse(readFileSync(record, 'utf8')) as { key: unknown; hash: unknown };
      if (JSON.stringify(saved.key) === JSON.stringify(key) && typeof saved.hash === 'string') return saved.hash;
    } catch {
      // an unreadable record is taken again below
    }
  }
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(16 * 1024 * 1024);
  const fd = openSync(path, 'r');
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  const digest = hash.digest('hex').slice(0, 16);
  writeJsonAtomic(record, { key, hash: digest });
  return digest;
}

// ---- Resolving references without running anything ----

const MICRO_MODELS = BASE_FAMILIES.map((f) => `micro:${f}`);

function checkDataset(ref: string): string | undefined {
  if (isMicro(ref)) {
    if (MICRO_DATASET_NAMES.includes(ref.slice('micro:'.length))) return undefined;
    const available = MICRO_DATASET_NAMES.map((n) => `micro:${n}`);
    return new UnknownDatasetError(ref, closest(ref, available), available).message; // ends with the names to use
  }
  if (!existsSync(ref)) return undefined; // reported as missing by the caller
  try {
    const examples = loadFile(ref);
    return examples.length === 0 ? `'${ref}' holds no examples. Fix: point the field at a file with data` : undefined;
  } catch (error) {
    return firstLine(error);
  }
}

/** What loadModel needs of a checkpoint directory: config.json (JSON), tokenizer.json and the weights. */
function checkModel(ref: string): string | undefined {
  if (isMicro(ref)) {
    if (MICRO_MODELS.includes(ref)) return undefined;
    const hint = closest(ref, MICRO_MODELS);
    return `unknown micro-world model '${ref}'.${hint ? ` Did you mean '${hint}'?` : ''} Fix: use ${MICRO_MODELS.join(', ')} or a checkpoint directory`;
  }
  if (!existsSync(ref)) return undefined;
  const layout = 'Fix: give a checkpoint directory in Hugging Face layout (config.json, model.safetensors or its index, tokenizer.json)';
  if (!statSync(ref).isDirectory()) return `'${ref}' is not a directory. ${layout}`;
  const config = join(ref, 'config.json');
  if (!existsSync(config)) return `'${ref}' has no config.json. ${layout}`;
  try {
    JSON.parse(readFileSync(config, 'utf8'));
  } catch (error) {
    return `${config}: invalid JSON (${firstLine(error)}). ${layout}`;
  }
  if (!existsSync(join(ref, 'tokenizer.json'))) return `'${ref}' has no tokenizer.json. ${layout}`;
  if (!existsSync(join(ref, 'model.safetensors')) && !existsSync(join(ref, 'model.safetensors.index.json')))
    return `'${ref}' has neither model.safetensors nor model.safetensors.index.json. ${layout}`;
  return undefined;
}

/** A guardrail spec parses; its directory exists; its URL is a URL. The guardrail itself is not loaded. */
function checkGuardrail(spec: string): string | undefined {
  let target: ReturnType<typeof parseGuardrailSpec>;
  try {
    target = parseGuardrailSpec(spec);
  } catch (error) {
    return firstLine(error);
  }
  if (target.kind === 'dir' && !existsSync(target.dir))
    return `guardrail directory '${target.dir}' does not exist. Fix: correct the path, or point the spec at a URL`;
  if (target.kind === 'url' && !URL.canParse(target.url))
    return `'${target.url}' is not a valid URL. Fix: write http(s)://HOST:PORT[/PATH]`;
  return undefined;
}

/** Stands in for the judge's guardrail: the judge spec is parsed, nothing is loaded or called. */
const unusedGuardrail: Guardrail = { id: 'unused', calls: 0, scoreSafe: async () => [] };

async function checkJudge(spec: string): Promise<string | undefined> {
  try {
    await resolveJudge(spec, async (inner) => {
      const problem = checkGuardrail(inner);
      if (problem) throw new Error(problem);
      return unusedGuardrail;
    });
  } catch (error) {
    return firstLine(error);
  }
  if (spec.startsWith('llm:')) {
    const url = spec.slice('llm:'.length).split('#')[0];
    if (!URL.canParse(url)) return `'${url}' is not a valid URL. Fix: write llm:http(s)://HOST:PORT/v1[#model]`;
  }
  return undefined;
}

/**
 * Resolves every reference of `config` as a run would: datasets exist and load (strict UTF-8, format detected,
 * every record valid), `micro:` names are known, model directories hold config.json, tokenizer.json and
 * weights, guardrail specs parse (their directories exist, their URLs parse), the judge spec is valid, and
 * each threat and strategy is known with valid parameters. Returns every problem, one line each.
 */
export async function checkReferences(config: SweepConfig, file = 'the sweep config'): Promise<string[]> {
  const problems: string[] = [];
  const say = (field: string, problem: string) => problems.push(`${file}: field '${field}': ${problem}`);
  config.threats.forEach((entry, i) => {
    const { name, params } = split(entry);
    const { harmful, ...threatParams } = params;
    if (harmful !== undefined && typeof harmful !== 'string')
      say(`threats[${i}].harmful`, 'expected a dataset reference (micro:<name> or a path)');
    try {
      configureThreat(name, threatParams);
    } catch (error) {
      say(`threats[${i}]`, firstLine(error));
    }
  });
  config.strategies.forEach((entry, i) => {
    const { name, params } = split(entry);
    try {
      configureStrategy(name, params);
    } catch (error) {
      say(`strategies[${i}]`, firstLine(error));
    }
  });
  const datasets = new Map<string, string | undefined>();
  for (const { kind, field, ref } of sweepReferences(config)) {
    let path: string | undefined;
    try {
      path = localPath(kind, ref);
    } catch {
      path = undefined; // the guardrail spec does not parse: checkGuardrail says why
    }
    if (path !== undefined && !existsSync(path)) {
      problems.push(`${file}: ${missing(field, path)}`);
      continue;
    }
    let problem: string | undefined;
    if (kind === 'dataset') {
      if (!datasets.has(ref)) datasets.set(ref, checkDataset(ref));
      problem = datasets.get(ref);
    } else if (kind === 'model') problem = checkModel(ref);
    else if (kind === 'guardrail') problem = checkGuardrail(ref);
    else problem = await checkJudge(ref);
    if (problem) say(field, problem);
  }
  return problems;
}

/** checkReferences, throwing one SweepReferenceError that lists every problem. */
export async function assertReferences(config: SweepConfig, file?: string): Promise<void> {
  const problems = await checkReferences(config, file);
  if (problems.length > 0) throw new SweepReferenceError(problems, file);
}

// ---- What `star-dss doctor` checks beyond a plan: model configs and endpoints ----

/** A checkpoint directory a config reads: a model, or a local LM guardrail (of the guardrail axis or the judge). */
export interface ModelDirectory {
  field: string;
  dir: string;
  role: 'model' | 'guardrail';
}

/** The existing checkpoint directories among a config's references (models, guardrail directories, the judge's). */
export function modelDirectories(config: SweepConfig): ModelDirectory[] {
  const out: ModelDirectory[] = [];
  const seen = new Set<string>();
  for (const { kind, field, ref } of sweepReferences(config)) {
    if (kind === 'dataset') continue;
    let dir: string | undefined;
    try {
      dir = localPath(kind, ref);
    } catch {
      continue; // a spec that does not parse is checkReferences' problem
    }
    if (dir === undefined || seen.has(dir) || !existsSync(dir) || !statSync(dir).isDirectory()) continue;
    seen.add(dir);
    out.push({ field, dir, role: kind === 'model' ? 'model' : 'guardrail' });
  }
  return out;
}

/** A directory's config.json as the engine reads it (engine/model/config.ts parseConfig), or the one-line reason it cannot. */
export function readModelConfig(dir: string): { config: ModelConfig } | { problem: string } {
  try {
    return { config: readConfigFile(dir) };
  } catch (error) {
    return { problem: firstLine(error) };
  }
}

/** An endpoint a run calls: a URL guardrail or an LLM judge (or a judge's URL guardrail). */
export interface Endpoint {
  field: string;
  /** The URL as the config gives it. */
  url: string;
  /** What the run is: 'guardrail' or 'judge'. */
  role: 'guardrail' | 'judge';
  /** Environment variable whose value the run sends as a Bearer token. */
  apiKeyEnv?: string;
  /** The model name the run asks for, when the config names one (`llm:URL#model`, `http.model`). */
  model?: string;
}

const urlOfGuardrail = (spec: string): string | undefined => {
  try {
    const target = parseGuardrailSpec(spec);
    return target.kind === 'url' ? target.url : undefined;
  } catch {
    return undefined;
  }
};

/** Every endpoint a run of `config` would call: URL guardrails (when a strategy reads one) and the judge's. */
export function sweepEndpoints(config: SweepConfig): Endpoint[] {
  const out: Endpoint[] = [];
  if (config.strategies.some(readsGuardrail))
    config.guardrails.forEach((entry, i) => {
      const spec = typeof entry === 'string' ? entry : entry.spec;
      const url = urlOfGuardrail(spec);
      if (url === undefined) return;
      const http = typeof entry === 'string' ? undefined : entry.http;
      const field = typeof entry === 'string' ? `guardrails[${i}]` : `guardrails[${i}].spec`;
      out.push({
        field,
        url,
        role: 'guardrail',
        ...(http?.apiKeyEnv ? { apiKeyEnv: http.apiKeyEnv } : {}),
        ...(http?.model ? { model: http.model } : {}),
      });
    });
  const judge = config.eval.judge;
  const llm = /^llm(?:-score)?:([^#]+)(?:#(.+))?$/.exec(judge);
  if (llm)
    out.push({
      field: 'eval.judge',
      url: llm[1],
      role: 'judge',
      apiKeyEnv: 'STAR_DSS_JUDGE_API_KEY',
      ...(llm[2] ? { model: llm[2] } : {}),
    });
  const inner = judgeGuardrail(judge);
  const url = inner === undefined ? undefined : urlOfGuardrail(inner);
  if (url !== undefined) out.push({ field: 'eval.judge', url, role: 'judge' });
  return out;
}

/** GET {base}/v1/models of an OpenAI-compatible server, from a base URL, a `/v1` URL or a full endpoint URL. */
export function modelsUrl(url: string): string {
  const base = url
    .replace(/\/+$/, '')
    .replace(/\/(chat\/)?completions$/, '')
    .replace(/\/+$/, '');
  return `${base.endsWith('/v1') ? base : `${base}/v1`}/models`;
}

/**
 * Asks an endpoint for its model list (GET /v1/models) within `timeoutMs`: ok with the models it serves, or
 * the one-line reason it does not answer as the run needs (unreachable, timeout, HTTP error, not JSON).
 */
export async function probeEndpoint(
  endpoint: Endpoint,
  timeoutMs: number,
  fetchImpl: typeof fetch = fetch,
): Promise<{ ok: true; models: string[] } | { ok: false; problem: string }> {
  const target = modelsUrl(endpoint.url);
  if (!URL.canParse(target)) return { ok: false, problem: `'${endpoint.url}' is not a valid URL. Fix: write http(s)://HOST:PORT[/v1]` };
  const key = endpoint.apiKeyEnv ? process.env[endpoint.apiKeyEnv] : undefined;
  let response: Response;
  try {
    response = await fetchImpl(target, {
      headers: key ? { authorization: `Bearer ${key}` } : {},
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const e = error as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? firstLine(error));
    return { ok: false, problem: `GET ${target}: ${why}. Fix: start the server, or correct the URL` };
  }
  if (!response.ok) {
    await response.body?.cancel();
    const auth = response.status === 401 || response.status === 403;
    const fix = auth
      ? `set ${endpoint.apiKeyEnv ?? 'the API key variable'}${endpoint.role === 'guardrail' && !endpoint.apiKeyEnv ? ' (http.apiKeyEnv names it)' : ''}`
      : 'check that the URL is the OpenAI-compatible base (…/v1)';
    return { ok: false, problem: `GET ${target}: HTTP ${response.status}. Fix: ${fix}` };
  }
  try {
    const body = (await response.json()) as { data?: { id?: unknown }[] };
    const models = (body.data ?? []).map((m) => m.id).filter((id): id is string => typeof id === 'string');
    return { ok: true, models };
  } catch {
    return { ok: false, problem: `GET ${target}: the answer is not JSON. Fix: point the URL at an OpenAI-compatible server` };
  }
}
