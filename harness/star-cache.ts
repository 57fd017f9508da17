// The on-disk cache of STAR annotations and full-response verdicts. One small JSON file per distinct
// example, written atomically, so an interrupted run keeps everything it finished and a re-run (or another
// sweep cell with the same data) makes zero guardrail calls:
//   <root>/<guardrail>/<chunking>/<example hash>.json   {chunkEnds, scores, verdict, ...}
//   <root>/<guardrail>/verdict/<example hash>.json       {verdict}
// <guardrail> is a readable slug of the guardrail id plus a hash of the whole id (ids may hold URLs and
// slashes); <example hash> hashes the messages (and, in token mode, the response's token ids, so a
// different tokenizer never reuses token chunks). Files are validated on read; a bad file is recomputed.
//
// The guardrail id is the key's guardrail part, so it carries whatever identifies the scores: a local
// checkpoint's weight hashes; for an HTTP guardrail the endpoint, its mode, the model id the server reports
// (GET /v1/models, or the one named; a response naming another model is refused) and the user's optional
// revision string (guardrails/http.ts). A server swapping weights under one model name is invisible here:
// that is what the revision is for.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, contentHash, writeJsonAtomic } from '../engine/io.ts';
import { chunkingKey, type Chunking, type StarAnnotation } from './star-chunks.ts';

const VERSION = 1;

export const defaultStarCacheRoot = (): string => cacheDir('star');

export function guardrailDirName(guardrailId: string): string {
  const slug = guardrailId
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 48);
  return `${slug || 'guardrail'}-${contentHash(guardrailId, 12)}`;
}

const isProbability = (v: unknown): v is number => typeof v === 'number' && v >= 0 && v <= 1;

function readJson(file: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // a torn or foreign file: recompute and overwrite it
  }
}

export class StarCache {
  private readonly dir: string;

  constructor(
    root: string,
    readonly guardrailId: string,
    readonly chunking: Chunking,
  ) {
    this.dir = join(root, guardrailDirName(guardrailId));
  }

  private annotationFile(key: string): string {
    return join(this.dir, chunkingKey(this.chunking), `${key}.json`);
  }

  private verdictFile(key: string): string {
    return join(this.dir, 'verdict', `${key}.json`);
  }

  /** The cached annotation, if present and consistent with the chunk ends this example must have. */
  getAnnotation(key: string, expectedEnds: readonly number[]): StarAnnotation | undefined {
    const v = readJson(this.annotationFile(key));
    if (!v || v.version !== VERSION || v.guardrail !== this.guardrailId || v.unit !== this.chunking.unit) return undefined;
    const { chunkEnds, scores, verdict } = v;
    if (!Array.isArray(chunkEnds) || !Array.isArray(scores) || !isProbability(verdict)) return undefined;
    if (chunkEnds.length !== expectedEnds.length || chunkEnds.some((e, i) => e !== expectedEnds[i])) return undefined;
    if (scores.length !== chunkEnds.length || !scores.every(isProbability)) return undefined;
    return { unit: this.chunking.unit, chunkEnds: [...expectedEnds], scores, verdict };
  }

  putAnnotation(key: string, annotation: StarAnnotation): void {
    writeJsonAtomic(this.annotationFile(key), {
      version: VERSION,
      guardrail: this.guardrailId,
      chunkSize: this.chunking.size,
      ...annotation,
    });
    this.putVerdict(key, annotation.verdict);
  }

  getVerdict(key: string): number | undefined {
    const v = readJson(this.verdictFile(key));
    return v && v.version === VERSION && v.guardrail === this.guardrailId && isProbability(v.verdict) ? v.verdict : undefined;
  }

  putVerdict(key: string, verdict: number): void {
    writeJsonAtomic(this.verdictFile(key), { version: VERSION, guardrail: this.guardrailId, verdict });
  }
}
