// `star-dss star --data FILE.jsonl --guardrail SPEC --out FILE.jsonl [--html FILE.html]`: STAR-annotate a
// messages JSONL file. Each output line is the input line plus `star: {unit, chunkEnds, scores, verdict}`.
// A thin layer over harness/star.ts (annotateFile); guardrail specs are resolved by guardrails/index.ts
// (several --guardrail flags are averaged, as the authors' ensemble does).
import type { Options } from 'yargs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { loadTokenizer } from '../../engine/model/tokenizer.ts';
import { annotateFile, readStarInput, type StarFileOptions } from '../star.ts';
import { resolveGuardrail, type ResolveGuardrailOptions } from '../../guardrails/index.ts';
import type { Guardrail } from '../../guardrails/types.ts';
import { type CommandArgs, defineCommand, type GlobalArgs } from './define.ts';

const starOptions = {
  data: { type: 'string', demandOption: true, describe: 'messages JSONL to annotate' },
  /** One spec, or several whose P(safe) are averaged. */
  guardrail: {
    type: 'string',
    array: true,
    demandOption: true,
    describe: 'micro, <preset>:DIR, DIR or http(s)://URL; repeat to average several guardrails',
  },
  'guardrail-tokenizer': { type: 'string', describe: "directory with a URL guardrail's tokenizer files (its chat template)" },
  'chunk-words': { type: 'number', describe: 'M: words per chunk (default 5)' },
  'chunk-tokens': { type: 'number', describe: 'M in tokens of --tokenizer instead of words' },
  out: { type: 'string', demandOption: true, describe: 'annotated JSONL to write' },
  html: { type: 'string', describe: 'also write an HTML page with responses coloured by STAR weight' },
  tokenizer: {
    type: 'string',
    describe: 'finetuned model DIR: colour tokens by training weight; needed by --chunk-tokens',
  },
  'cache-dir': { type: 'string', describe: 'cache root (default $STAR_DSS_CACHE/star)' },
  cache: { type: 'boolean', default: true, describe: 'read and write the annotation cache (--no-cache to rescore)' },
  'batch-size': { type: 'number', default: 64, describe: 'items per guardrail call' },
} satisfies Record<string, Options>;

export type StarArgs = CommandArgs<typeof starOptions> & GlobalArgs;

export interface StarDeps {
  /** Where the micro-world guardrail lives (for `--guardrail micro`). */
  microGuardrailDir?: ResolveGuardrailOptions['microGuardrailDir'];
  /** Default: guardrails/index.ts's resolveGuardrail (tests inject their own guardrail). */
  resolve?: (spec: string[], options: ResolveGuardrailOptions) => Promise<Guardrail>;
  log?: (line: string) => void;
}

/** The library options of parsed flags (loads --tokenizer). */
export function starFileOptions(args: StarArgs): StarFileOptions {
  if (args.chunkTokens !== undefined && !args.tokenizer)
    throw new Error("--chunk-tokens needs --tokenizer DIR (the finetuned model's tokenizer)");
  return {
    data: args.data,
    out: args.out,
    html: args.html,
    chunkWords: args.chunkTokens === undefined ? (args.chunkWords ?? 5) : undefined,
    chunkTokens: args.chunkTokens,
    tokenizer: args.tokenizer ? loadTokenizer(args.tokenizer) : undefined,
    cacheDir: args.cache ? args.cacheDir : false,
    batchSize: args.batchSize,
  };
}

/** Resolves the guardrail, annotates the file and prints a one-line summary. */
export async function runStar(args: StarArgs, deps: StarDeps = {}): Promise<void> {
  await initBackend(args.backend);
  const options = starFileOptions(args);
  // Read and check the data before resolving the guardrail (which may train one): no examples, no work.
  const input = readStarInput(options.data);
  const resolveOptions: ResolveGuardrailOptions = {
    microGuardrailDir: deps.microGuardrailDir,
    ...(args.guardrailTokenizer ? { http: { tokenizerDir: args.guardrailTokenizer } } : {}),
  };
  const guardrail = await (deps.resolve ?? resolveGuardrail)(args.guardrail, resolveOptions);
  const log = deps.log ?? console.log;
  try {
    const started = performance.now();
    const summary = await annotateFile(guardrail, options, input);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    log(
      `annotated ${summary.examples} examples with ${guardrail.id} in ${seconds} s (${summary.calls} guardrail evaluations) → ${args.out}`,
    );
    if (args.html) log(`HTML: ${args.html}`);
  } finally {
    guardrail.dispose?.();
  }
}

export function makeStarCommand(deps: StarDeps = {}) {
  return defineCommand({
    command: 'star',
    describe: 'score response prefixes with a guardrail (STAR) and write per-chunk P(safe) next to the data',
    builder: (y) => y.options(starOptions).conflicts('chunk-words', 'chunk-tokens'),
    handler: (args) => runStar(args, deps),
  });
}

export const starCommand = makeStarCommand();
