// `star-dss star --data FILE.jsonl --guardrail SPEC --out FILE.jsonl [--html FILE.html]`: STAR-annotate a
// messages JSONL file. Each output line is the input line plus `star: {unit, chunkEnds, scores, verdict}`.
// A thin layer over harness/star.ts (annotateFile); guardrail specs are resolved by guardrails/index.ts
// (several --guardrail flags are averaged, as the authors' ensemble does). --label-* flags choose how label
// scores become P(safe) (guardrails/label-processing.ts); the setting is part of the guardrail id, and so of
// the STAR cache key.
import type { Options } from 'yargs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { loadTokenizer } from '../../engine/model/tokenizer.ts';
import { annotateFile, readStarInput, type StarFileOptions } from '../star.ts';
import {
  httpGuardrailSettings,
  httpModes,
  httpResolveOptions,
  labelProcessingSettings,
  labelSettingNames,
  resolveGuardrail,
  resolveLabelProcessing,
  type HttpGuardrailSettings,
  type LabelProcessing,
  type LabelProcessingSettings,
  type ResolveGuardrailOptions,
} from '../../guardrails/index.ts';
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
  'guardrail-mode': {
    type: 'string',
    choices: httpModes,
    describe: 'URL guardrails: completions (render locally, POST /v1/completions; default) or chat (POST /v1/chat/completions)',
  },
  'guardrail-model': { type: 'string', describe: 'URL guardrails: served model name (default: the first of GET /v1/models)' },
  'guardrail-revision': { type: 'string', describe: "URL guardrails: a revision label kept in the guardrail's id and STAR cache key" },
  'guardrail-api-key-env': { type: 'string', describe: 'URL guardrails: environment variable holding the API key (sent as Bearer)' },
  'guardrail-timeout-ms': { type: 'number', describe: 'URL guardrails: per-attempt timeout in ms (default 60000)' },
  'guardrail-retries': { type: 'number', describe: 'URL guardrails: extra attempts on network errors, timeouts, 429, 5xx (default 3)' },
  'guardrail-concurrency': { type: 'number', describe: 'URL guardrails: most requests in flight at once (default 4)' },
  'guardrail-top-logprobs': { type: 'number', describe: 'URL guardrails: top logprobs requested per position (default 20)' },
  'label-setting': {
    type: 'string',
    choices: labelSettingNames,
    describe:
      "P(safe) from label scores: paper (σ of the raw logit difference; default) or official (the authors' code: temperature 0.2, top-k 50, top-p 0.9)",
  },
  'label-temperature': { type: 'number', describe: 'temperature applied to the label scores (overrides --label-setting)' },
  'label-top-k': { type: 'number', describe: 'top-k before reading the labels; 0 = off (overrides --label-setting)' },
  'label-top-p': { type: 'number', describe: 'top-p before reading the labels; 1 = off (overrides --label-setting)' },
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

/** The --guardrail-* flag of each URL-guardrail setting. */
const httpFlags = {
  tokenizer: 'guardrailTokenizer',
  mode: 'guardrailMode',
  model: 'guardrailModel',
  revision: 'guardrailRevision',
  apiKeyEnv: 'guardrailApiKeyEnv',
  timeoutMs: 'guardrailTimeoutMs',
  retries: 'guardrailRetries',
  concurrency: 'guardrailConcurrency',
  topLogprobs: 'guardrailTopLogprobs',
} as const satisfies Record<keyof HttpGuardrailSettings, keyof StarArgs>;

const kebab = (camel: string) => camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/**
 * The URL-guardrail options of the --guardrail-* flags (validated like a sweep config's `http:`), or undefined
 * when none is given. A one-line error names the flag.
 */
export function starHttpOptions(args: StarArgs): ResolveGuardrailOptions['http'] {
  const given = Object.entries(httpFlags).filter(([, flag]) => args[flag] !== undefined);
  if (given.length === 0) return undefined;
  if (!args.guardrail.some((spec) => /^(?:[A-Za-z][\w.-]*:)?https?:\/\//i.test(spec.trim()))) {
    throw new Error(
      `--${kebab(given[0][1])} applies to URL guardrails only; no --guardrail is a URL (http(s)://… or <preset>:http(s)://…)`,
    );
  }
  const parsed = httpGuardrailSettings.safeParse(Object.fromEntries(given.map(([field, flag]) => [field, args[flag]])));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue.path[0]) as keyof typeof httpFlags;
    const value = args[httpFlags[field]];
    throw new Error(`--${kebab(httpFlags[field])}: ${issue.message}, got ${JSON.stringify(value)}`);
  }
  return httpResolveOptions(parsed.data);
}

/** The --label-* flag of each label-processing setting. */
const labelFlags = {
  labelSetting: 'labelSetting',
  labelTemperature: 'labelTemperature',
  labelTopK: 'labelTopK',
  labelTopP: 'labelTopP',
} as const satisfies Record<keyof LabelProcessingSettings, keyof StarArgs>;

/** The label processing of the --label-* flags (validated like a sweep config's), or undefined when none is given. */
export function starLabelProcessing(args: StarArgs): LabelProcessing | undefined {
  const given = Object.entries(labelFlags).filter(([, flag]) => args[flag] !== undefined);
  if (given.length === 0) return undefined;
  const parsed = labelProcessingSettings.safeParse(Object.fromEntries(given.map(([field, flag]) => [field, args[flag]])));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue.path[0]) as keyof typeof labelFlags;
    throw new Error(`--${kebab(labelFlags[field])}: ${issue.message}, got ${JSON.stringify(args[labelFlags[field]])}`);
  }
  return resolveLabelProcessing(parsed.data);
}

/** Resolves the guardrail, annotates the file and prints a one-line summary. */
export async function runStar(args: StarArgs, deps: StarDeps = {}): Promise<void> {
  await initBackend(args.backend);
  const options = starFileOptions(args);
  // Read and check the data before resolving the guardrail (which may train one): no examples, no work.
  const input = readStarInput(options.data);
  const http = starHttpOptions(args);
  const labelProcessing = starLabelProcessing(args);
  const resolveOptions: ResolveGuardrailOptions = {
    microGuardrailDir: deps.microGuardrailDir,
    ...(http ? { http } : {}),
    ...(labelProcessing ? { labelProcessing } : {}),
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
