// `star-dss doctor --config F`: everything a sweep on real checkpoints and data needs, checked before hours
// of work: every reference resolves (files exist and parse, micro: names, threats and strategies; the same
// checks as a plan, harness/sweep/references.ts), every checkpoint's config.json is one the engine supports,
// every endpoint (URL guardrails, LLM judges) answers GET /v1/models, and a memory plan per model and
// backend (engine/memory-plan.ts: an estimate from config.json, the same plan a cell checks before it loads
// a model). Prints every problem, one line each,
// and exits 1 when there is any.
import { createRequire } from 'node:module';
import type { Options } from 'yargs';
import { configureStrategy } from '../../strategies/index.ts';
import { loadSweepConfig, presetFile, presetNames, type PluginEntry, type SweepConfig } from '../sweep/config.ts';
import { formatCount } from '../sweep/estimate.ts';
import { backendLimits, formatBytes, memoryPlan, memoryRefusal, type MemoryPlan } from '../../engine/memory-plan.ts';
import { checkReferences, modelDirectories, probeEndpoint, readModelConfig, sweepEndpoints, sweepReferences } from '../sweep/references.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type CommandArgs, defineCommand, type GlobalArgs } from './define.ts';

const doctorOptions = {
  config: { type: 'string', describe: 'sweep config (YAML)' },
  preset: { type: 'string', choices: presetNames, describe: 'a built-in config, when --config is absent' },
  'seq-len': {
    type: 'number',
    default: 512,
    describe: 'training sequence length (tokens) the memory plan assumes',
  },
  timeout: { type: 'number', default: 3000, describe: 'ms to wait for each endpoint to answer GET /v1/models' },
} satisfies Record<string, Options>;

export type DoctorArgs = CommandArgs<typeof doctorOptions> & GlobalArgs;

const split = (entry: PluginEntry) =>
  typeof entry === 'string' ? { name: entry, params: {} } : (({ name, ...params }) => ({ name, params }))(entry);

/** The strategies of the config whose loss needs a frozen reference copy of the model (or full log-prob rows). */
function referenceStrategies(config: SweepConfig, need: 'reference' | 'fullLogProbs' = 'reference'): string[] {
  return config.strategies.flatMap((entry) => {
    const { name, params } = split(entry);
    try {
      return configureStrategy(name, params).needs[need] ? [name] : [];
    } catch {
      return []; // an unknown strategy is already a problem
    }
  });
}

/** The backend a run with `--backend requested` would use; `auto` takes what is installed, as initBackend does. */
export function plannedBackend(requested: string | undefined): string {
  if (requested && requested !== 'auto') return requested;
  const require = createRequire(import.meta.url);
  for (const [pkg, name] of [
    ['@tensorflow/tfjs-node-gpu', 'tensorflow-gpu'],
    ['@tensorflow/tfjs-node', 'tensorflow'],
  ] as const) {
    try {
      require.resolve(pkg);
      return name;
    } catch {
      // not installed
    }
  }
  return 'wasm';
}

/** A fixed-width table: the first column left-aligned, the others right-aligned. */
function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c])))
      .join('  ')
      .trimEnd(),
  );
}

/** Runs the checks, prints the report through `log`, and returns the problems (the handler exits 1 on any). */
export async function runDoctor(args: DoctorArgs, log: (line: string) => void = console.log): Promise<string[]> {
  if (!args.config && !args.preset) throw new Error('doctor: pass --config FILE.yaml or --preset quick|smoke|paper');
  if (!(Number.isInteger(args.seqLen) && args.seqLen > 0)) throw new Error(`--seq-len: expected a positive integer, got ${args.seqLen}`);
  if (!(args.timeout > 0)) throw new Error(`--timeout: expected a positive number of ms, got ${args.timeout}`);
  const file = args.config ?? presetFile(args.preset!);
  const config = loadSweepConfig(file);
  log(`star-dss doctor: ${file}`);

  // 1. References, as a plan resolves them.
  const problems = await checkReferences(config, file);
  const references = sweepReferences(config);
  log(
    `references: ${references.length} (${['model', 'dataset', 'guardrail', 'judge'].map((k) => `${references.filter((r) => r.kind === k).length} ${k}`).join(', ')}), resolved as a plan resolves them`,
  );
  const say = (field: string, problem: string) => problems.push(`${file}: field '${field}': ${problem}`);
  const reported = (field: string) => problems.some((p) => p.includes(`field '${field}'`));

  // 2. Checkpoint directories: config.json supported by the engine; a guardrail directory holds a model.
  const plans: { field: string; dir: string; role: string; plan?: MemoryPlan; weights?: number; problem?: string }[] = [];
  const reference = referenceStrategies(config);
  const chunked = referenceStrategies(config, 'fullLogProbs').length === 0;
  const backend = plannedBackend(args.backend);
  const microBatch = Math.max(1, Math.floor(config.train.batchSize / config.train.gradAccum));
  for (const { field, dir, role } of modelDirectories(config)) {
    const read = readModelConfig(dir);
    if ('problem' in read) {
      if (!reported(field)) say(field, read.problem);
      plans.push({ field, dir, role, problem: 'config.json not supported' });
      continue;
    }
    if (role === 'guardrail') {
      const layout = 'Fix: give the guardrail checkpoint directory in Hugging Face layout';
      if (!existsSync(join(dir, 'tokenizer.json'))) say(field, `'${dir}' has no tokenizer.json. ${layout}`);
      if (!existsSync(join(dir, 'model.safetensors')) && !existsSync(join(dir, 'model.safetensors.index.json')))
        say(field, `'${dir}' has neither model.safetensors nor model.safetensors.index.json. ${layout}`);
    }
    const plan = memoryPlan(read.config, {
      backend,
      batch: microBatch,
      seqLen: args.seqLen,
      trainable: 'full',
      reference: reference.length > 0 ? 'copy' : 'none',
      chunked,
    });
    plans.push({ field, dir, role, ...(role === 'model' ? { plan } : { weights: plan.weights }) });
  }

  // 3. Endpoints answer.
  const endpoints = sweepEndpoints(config);
  if (endpoints.length > 0) {
    log('');
    log(`endpoints (GET /v1/models, ${args.timeout} ms timeout):`);
    const answers = await Promise.all(endpoints.map((e) => probeEndpoint(e, args.timeout)));
    endpoints.forEach((e, i) => {
      const a = answers[i];
      if (a.ok) {
        log(`  ${e.field}  ${e.url}  answers; serves ${a.models.length ? a.models.join(', ') : 'no listed model'}`);
        if (e.model && a.models.length > 0 && !a.models.includes(e.model))
          say(e.field, `${e.url} does not serve '${e.model}' (it serves ${a.models.join(', ')}). Fix: name a served model`);
      } else {
        log(`  ${e.field}  ${e.url}  does not answer`);
        say(e.field, a.problem);
      }
    });
  }

  // 4. Memory plan per model × backend.
  const limits = backendLimits();
  const guardrailWeights = Math.max(0, ...plans.filter((p) => p.role === 'guardrail').map((p) => p.weights ?? 0));
  log('');
  log(
    `memory plan (an estimate from config.json, not a measurement): float32 weights (4 B per parameter); full finetuning adds gradients (4 B) and AdamW moments (8 B); ${reference.length ? `a frozen reference copy (4 B) for ${[...new Set(reference)].join(', ')}` : 'no reference copy (no strategy needs one)'}; activations for micro-batch ${microBatch} × ${args.seqLen} tokens by a rough per-layer formula (engine/memory-plan.ts), the vocabulary rows ${chunked ? 'of one chunk (label log-probs computed in chunks)' : 'of the whole micro-batch (a strategy needs full log-prob rows)'}; peak = the runtime plus the larger of loading (2 × weights), a training step and, while annotating, the model's and the largest guardrail's weights; on wasm a step must fit its 4 GiB heap`,
  );
  const rows: string[][] = [
    [
      'model',
      'params',
      'weights',
      'grads+AdamW',
      'reference',
      'activations',
      'peak',
      ...limits.map((l) => `${l.backend} (${formatBytes(l.bytes)})`),
    ],
  ];
  const unplanned: string[] = [];
  for (const ref of config.models) {
    const entry = plans.find((p) => p.role === 'model' && p.dir === ref);
    if (ref.startsWith('micro:')) {
      unplanned.push(`${ref}: a micro-world model, well under 1 GiB on every backend`);
      continue;
    }
    if (!entry?.plan) {
      unplanned.push(
        `${ref}: no plan (${entry?.problem ?? (existsSync(ref) ? 'no readable config.json' : 'the directory does not exist')})`,
      );
      continue;
    }
    const p = entry.plan;
    const peak = Math.max(p.total, p.weights + guardrailWeights);
    // wasm's limit is its heap: what a step holds there (the host's copy of a loading checkpoint is outside it).
    const need = (b: string) => (b === 'wasm' ? Math.max(p.step, p.weights + guardrailWeights) : peak);
    rows.push([
      ref,
      formatCount(p.parameters),
      formatBytes(p.weights),
      formatBytes(p.gradients + p.optimizer),
      p.reference ? formatBytes(p.reference) : '-',
      formatBytes(p.activations),
      formatBytes(peak),
      ...limits.map((l) => (need(l.backend) <= l.bytes ? 'fits' : 'too big')),
    ]);
    const limit = limits.find((l) => l.backend === backend);
    if (limit && need(backend) > limit.bytes)
      say(entry.field, memoryRefusal({ ...p, total: peak, fits: false }, `'${ref}'`) ?? `'${ref}' does not fit the ${backend} backend`);
  }
  if (rows.length > 1) for (const line of table(rows)) log(`  ${line}`);
  for (const line of unplanned) log(`  ${line}`);
  for (const g of plans.filter((p) => p.role === 'guardrail'))
    log(
      `  guardrail ${g.dir}: ${g.weights !== undefined ? `${formatBytes(g.weights)} of weights (inference only)` : `no plan: ${g.problem}`}`,
    );
  log(
    `  backend of this run: ${backend}${backend === 'tensorflow-gpu' ? ' (GPU memory is not known here: compare the peak with your card)' : ''}; ${limits.map((l) => `${l.backend}: ${l.source}`).join(', ')}`,
  );

  log('');
  if (problems.length === 0) log('no problems found');
  else {
    log(`${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}:`);
    for (const p of problems) log(`  ${p}`);
  }
  return problems;
}

export const doctorCommand = defineCommand({
  command: 'doctor',
  describe: 'check a sweep config before running it: references, model configs, endpoints, and a memory plan',
  builder: (y) => y.options(doctorOptions),
  handler: async (args) => {
    const problems = await runDoctor(args);
    if (problems.length > 0) process.exitCode = 1;
  },
});
