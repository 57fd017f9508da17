// One sweep cell, end to end (docs/architecture.md §2): base model → threat data → guardrail annotations
// (STAR weights, verdicts) → training with the strategy's loss → evaluation under each eval condition → result.
import { execSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { loadDataset } from '../../datasets/index.ts';
import type { Example, Message } from '../../engine/contracts/example.ts';
import { ensureBaseModel } from '../micro-world/base-model.ts';
import { ensureWorld } from '../../datasets/micro-world/build.ts';
import { ensureMicroGuardrail } from '../micro-world/guardrail.ts';
import { resolveGuardrail } from '../../guardrails/index.ts';
import { noisyGuardrail } from '../../guardrails/noisy.ts';
import type { Guardrail } from '../../guardrails/types.ts';
import { configureStrategy, type ConfiguredStrategy } from '../../strategies/index.ts';
import type { LossNeeds } from '../../engine/contracts/loss.ts';
import { configureThreat } from '../../threats/index.ts';
import { threatContext, type EvalCondition, type ThreatText } from '../../threats/threat.ts';
import { threatTextFor } from '../threat-text.ts';
import { annotate, scoreVerdicts } from '../star.ts';
import type { StarAnnotation } from '../star.ts';
import { toTrainExample } from '../tokenize-example.ts';
import { loadModel } from '../../engine/model/checkpoint.ts';
import type { CausalLM } from '../../engine/model/types.ts';
import type { Tokenizer } from '../../engine/model/tokenizer.ts';
import { train, type StepInfo, type TrainExample } from '../../engine/train.ts';
import { Rng } from '../../engine/random.ts';
import { contentHash } from '../../engine/io.ts';
import { evaluateSafety, exactMatch, type Judge, type SafetyItem } from '../evaluate/index.ts';
import { resolveJudge } from '../evaluate/judges.ts';
import { isMultipleChoice, multipleChoiceAccuracy } from '../evaluate/multiple-choice.ts';
import type { Cell, CellSpec, FinetuneCellSpec } from './plan.ts';
import type { CapabilityResult, CellResult, SafetyResult, SampleOutput, StarTrajectory } from '../../results/result.ts';
import type { Manifest } from './store.ts';

export interface CellProgress {
  phase: 'prepare' | 'annotate' | 'train' | 'evaluate';
  step?: number;
  totalSteps?: number;
  tokensPerSecond?: number;
}

export interface CellRunOptions {
  backend: string;
  onProgress?: (progress: CellProgress) => void;
}

const isMicro = (ref: string) => ref.startsWith('micro:');

/** A model reference as a directory: `micro:<family>` is the world's aligned base model (trained on first use). */
export async function modelDir(ref: string, worldSeed: number): Promise<string> {
  return isMicro(ref) ? ensureBaseModel(ref.slice('micro:'.length), { worldSeed }) : ref;
}

/** A guardrail from a cell's spec; `micro` is the world's guardrail, and a false-negative rate wraps it. */
export async function cellGuardrail(spec: string, falseNegativeRate: number, seed: number, worldSeed: number): Promise<Guardrail> {
  const inner = await resolveGuardrail(spec, { microGuardrailDir: () => ensureMicroGuardrail({ world: ensureWorld(worldSeed) }) });
  return falseNegativeRate > 0 ? noisyGuardrail(inner, { rate: falseNegativeRate, seed }) : inner;
}

function loadRef(ref: string, worldSeed: number): Example[] {
  return loadDataset(ref, { seed: worldSeed });
}

function take(examples: Example[], count: number, rng: Rng): Example[] {
  return count >= examples.length ? examples : rng.shuffle(examples).slice(0, count);
}

/** At most `maxItems` items, evenly spaced through the set (eval sets are often ordered by category). */
export function cap<T>(examples: T[], maxItems: number): T[] {
  if (maxItems <= 0 || maxItems >= examples.length) return examples;
  return Array.from({ length: maxItems }, (_, j) => examples[Math.floor((j * examples.length) / maxItems)]);
}

/** The eval conditions of the cell's threats, de-duplicated by name (a base cell measures all of them). */
function conditionsOf(spec: CellSpec, text: ThreatText): EvalCondition[] {
  const byName = new Map<string, EvalCondition>();
  for (const t of spec.conditionsOf)
    for (const c of configureThreat(t.name, t.params).evalConditions(text)) if (!byName.has(c.name)) byName.set(c.name, c);
  return [...byName.values()];
}

/** A safety item under a condition: the transformed conversation, with the prefill as an open assistant turn. */
function conditionItem(example: Example, condition: EvalCondition): SafetyItem {
  const prompt = example.messages.at(-1)?.role === 'assistant' ? example.messages.slice(0, -1) : example.messages;
  const { messages, prefill } = condition.transform(prompt);
  const conversation: Message[] = prefill ? [...messages, { role: 'assistant', content: prefill }] : messages;
  return { id: example.id, messages: conversation, ...(example.meta.category ? { category: String(example.meta.category) } : {}) };
}

interface Evaluation {
  safety: SafetyResult[];
  capability: CapabilityResult[];
  samples: SampleOutput[];
}

async function evaluateModel(
  model: CausalLM,
  tokenizer: Tokenizer,
  spec: CellSpec,
  text: ThreatText,
  judge: Judge,
  only?: string[],
): Promise<Evaluation> {
  const settings = spec.eval;
  const generation = {
    maxNewTokens: settings.maxNewTokens,
    batchSize: settings.batchSize,
    seed: spec.kind === 'finetune' ? spec.seed : 0,
    ...(settings.decoding === 'greedy'
      ? {}
      : {
          sampling: { temperature: settings.decoding.temperature, topP: settings.decoding.topP, topK: settings.decoding.topK },
          repetitionPenalty: settings.decoding.repetitionPenalty,
        }),
  };
  const safety: SafetyResult[] = [];
  const samples: SampleOutput[] = [];
  for (const condition of conditionsOf(spec, text).filter((c) => !only || only.includes(c.name))) {
    for (const dataset of settings.safety) {
      const items = cap(loadRef(dataset, spec.worldSeed), settings.maxItems).map((e) => conditionItem(e, condition));
      const result = await evaluateSafety(model, tokenizer, items, { generation, judge });
      safety.push({
        condition: condition.name,
        dataset,
        judge: result.judge,
        judgeVersion: result.judgeVersion,
        n: result.n,
        safetyScore: result.safetyScore,
        harmfulRate: result.harmfulRate,
        exactRefusalRate: result.exactRefusalRate,
        degenerationRate: result.degenerationRate,
        perCategory: Object.fromEntries(Object.entries(result.perCategory).map(([k, v]) => [k, { n: v.n, harmfulRate: v.harmfulRate }])),
        metrics: result.metrics,
      });
      for (const s of result.samples.slice(0, settings.samples)) {
        samples.push({
          condition: condition.name,
          prompt: s.prompt,
          response: s.response,
          harmful: s.harmful,
          ...(s.category ? { category: s.category } : {}),
        });
      }
    }
  }
  const capability: CapabilityResult[] = [];
  if (!only) {
    for (const dataset of settings.capability) {
      const examples = cap(loadRef(dataset, spec.worldSeed), settings.maxItems);
      if (examples.length > 0 && examples.every(isMultipleChoice)) {
        const r = multipleChoiceAccuracy(model, tokenizer, examples, dataset);
        capability.push({ dataset, metric: r.metric, n: r.n, value: r.accuracy });
      } else {
        const r = exactMatch(model, tokenizer, examples, { dataset, generation: { batchSize: settings.batchSize } });
        capability.push({ dataset, metric: r.metric, n: r.n, value: r.exactMatch });
      }
    }
  }
  return { safety, capability, samples };
}

function trajectory(example: Example, annotation: StarAnnotation): StarTrajectory {
  const response = example.messages.at(-1)?.content ?? '';
  const words = response.split(/\s+/).filter(Boolean);
  return {
    id: example.id,
    ...(typeof example.meta.harmful === 'boolean' ? { harmful: example.meta.harmful } : {}),
    chunkEnds: annotation.chunkEnds,
    scores: annotation.scores,
    verdict: annotation.verdict,
    words,
  };
}

export function codeVersion(): string {
  try {
    return execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'], cwd: new URL('../..', import.meta.url).pathname })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

/** The labels a cell's result carries (base cells say 'base' on the axes they do not have). */
export function labelsOf(cell: Cell): CellResult['labels'] {
  const { spec } = cell;
  const finetune = spec.kind === 'finetune' ? spec : undefined;
  return {
    kind: spec.kind,
    model: spec.model,
    task: finetune?.task ?? 'base',
    harmful: finetune?.harmful ?? 'base',
    threat: finetune?.threat.name ?? 'base',
    threatLabel: cell.labels.threatLabel,
    strategy: finetune?.strategy.name ?? 'base',
    strategyLabel: cell.labels.strategyLabel,
    guardrail: finetune?.guardrail.spec ?? 'none',
    falseNegativeRate: finetune?.guardrail.falseNegativeRate ?? 0,
    seed: finetune?.seed ?? 0,
  };
}

/** Seconds per phase of a cell, measured back to back. */
class PhaseClock {
  readonly timings: Record<string, number> = {};
  private start = performance.now();

  /** Closes the running phase under `name` and starts the next one. */
  end(name: string): void {
    const now = performance.now();
    this.timings[name] = (this.timings[name] ?? 0) + (now - this.start) / 1000;
    this.start = now;
  }

  /** Books `seconds` spent inside the running phase under `name` instead (harm-curve evaluations during training). */
  moveOut(name: string, seconds: number): void {
    this.start += seconds * 1000;
    this.timings[name] = (this.timings[name] ?? 0) + seconds;
  }
}

/** Step 1: the finetuning set the threat builds from the cell's pools, and a hash of every pool. */
function buildTrainingData(spec: FinetuneCellSpec, text: ThreatText): { examples: Example[]; dataHashes: Record<string, string> } {
  const pools = {
    task: loadRef(spec.task, spec.worldSeed),
    harmful: loadRef(spec.harmful, spec.worldSeed),
    safe: loadRef(spec.safe, spec.worldSeed),
    oldTask: spec.oldTask.flatMap((o) =>
      o.count > 0 ? take(loadRef(o.dataset, spec.worldSeed), o.count, new Rng(`${spec.seed}:old-task:${o.dataset}`)) : [],
    ),
    text,
  };
  const dataHashes: Record<string, string> = {};
  for (const [k, v] of Object.entries(pools)) if (Array.isArray(v)) dataHashes[k] = contentHash(v.map((e) => e.messages));
  const examples = configureThreat(spec.threat.name, spec.threat.params).build(threatContext(pools), new Rng(`${spec.seed}:threat`));
  return { examples, dataHashes };
}

interface Annotations {
  /** STAR chunk scores per example (only when the strategy reads them). */
  star: (StarAnnotation | undefined)[];
  /** Full-response P(safe) per example (1 when the strategy reads no guardrail). */
  verdicts: number[];
  /** A few STAR trajectories for the report, harmful examples first. */
  trajectories: StarTrajectory[];
}

/** Step 2: guardrail annotations, STAR chunk scores (which include the verdict) or verdicts alone. */
async function annotateExamples(spec: FinetuneCellSpec, examples: Example[], needs: LossNeeds): Promise<Annotations> {
  const none: Annotations = { star: examples.map(() => undefined), verdicts: examples.map(() => 1), trajectories: [] };
  if (!needs.star && !needs.verdict) return none;
  const guardrail = await cellGuardrail(spec.guardrail.spec, spec.guardrail.falseNegativeRate, spec.seed, spec.worldSeed);
  try {
    if (!needs.star) return { ...none, verdicts: await scoreVerdicts(examples, guardrail, {}) };
    const star = await annotate(examples, guardrail, { chunkWords: spec.star.chunkWords });
    const harmfulFirst = examples
      .map((e, i) => ({ e, a: star[i] }))
      .sort((x, y) => Number(y.e.meta.harmful === true) - Number(x.e.meta.harmful === true));
    return {
      star,
      verdicts: star.map((a) => a.verdict),
      trajectories: harmfulFirst.slice(0, spec.eval.trajectories).map(({ e, a }) => trajectory(e, a)),
    };
  } finally {
    guardrail.dispose?.();
  }
}

/** Step 3: the strategy's filter (RS drops examples), then tokens, masks and weights of the kept ones. */
function trainingSet(
  examples: Example[],
  annotations: Annotations,
  strategy: ConfiguredStrategy,
  tokenizer: Tokenizer,
): { trainSet: TrainExample[]; dropped: number } {
  const { keep, dropped } = strategy.filter(annotations.verdicts.map((verdict) => ({ verdict })));
  const trainSet: TrainExample[] = [];
  examples.forEach((e, i) => {
    if (!keep[i]) return;
    const t = toTrainExample(e, tokenizer, strategy.needs.star ? annotations.star[i] : undefined);
    trainSet.push({ ...t, verdict: annotations.verdicts[i] });
  });
  if (trainSet.length === 0) throw new Error(`the strategy kept none of the ${examples.length} training examples`);
  return { trainSet, dropped };
}

/** Everything a finetuning cell needs besides its spec. */
interface FinetuneContext {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** The base model's directory (the frozen reference is loaded from it again). */
  dir: string;
  text: ThreatText;
  judge: Judge;
  clock: PhaseClock;
  disposables: CausalLM[];
  options: CellRunOptions;
}

/** Steps 1-4 of a finetuning cell: data, annotations, the training set, and training with harm-curve points. */
async function finetune(
  spec: FinetuneCellSpec,
  context: FinetuneContext,
  result: CellResult,
  dataHashes: Record<string, string>,
): Promise<void> {
  const { model, tokenizer, clock, options } = context;
  const { examples, dataHashes: hashes } = buildTrainingData(spec, context.text);
  Object.assign(dataHashes, hashes);
  const strategy = configureStrategy(spec.strategy.name, spec.strategy.params);
  const needs = strategy.needs;
  if (needs.star || needs.verdict) options.onProgress?.({ phase: 'annotate' });
  const annotations = await annotateExamples(spec, examples, needs);
  result.trajectories = annotations.trajectories;
  clock.end('annotate');
  const { trainSet, dropped } = trainingSet(examples, annotations, strategy, tokenizer);
  // 4. Train, with the frozen reference when the loss needs it, and harm-curve evaluations.
  const reference = needs.reference ? loadModel(context.dir).model : undefined;
  if (reference) context.disposables.push(reference);
  const onStep = (info: StepInfo) =>
    options.onProgress?.({
      phase: 'train',
      step: info.step,
      totalSteps: info.totalSteps,
      tokensPerSecond: info.tokens / Math.max(info.seconds, 1e-9),
    });
  const trained = await train(model, trainSet, {
    loss: strategy.loss,
    needs,
    reference,
    config: { ...spec.train, seed: spec.seed, padId: tokenizer.padTokenId ?? model.config.padTokenId ?? 0 },
    onStep,
    onEpoch: async (epoch) => {
      if (!spec.eval.curveEpochs.includes(epoch) || epoch === spec.train.epochs) return;
      const t0 = performance.now();
      const point = await evaluateModel(model, tokenizer, spec, context.text, context.judge, ['plain']);
      for (const s of point.safety)
        result.curve.push({ epoch, condition: s.condition, safetyScore: s.safetyScore, harmfulRate: s.harmfulRate });
      clock.moveOut('curve', (performance.now() - t0) / 1000); // curve time is evaluation, not training
    },
  });
  result.training = {
    examples: examples.length,
    dropped,
    steps: trained.steps,
    tokens: trained.tokens,
    seconds: trained.seconds,
    firstLoss: trained.losses[0],
    finalLoss: trained.losses.at(-1) ?? Number.NaN,
  };
  clock.end('train');
}

/** Runs one cell and returns its result and manifest (the caller writes them). Never throws for cell errors. */
export async function runCell(cell: Cell, options: CellRunOptions): Promise<{ result: CellResult; manifest: Manifest }> {
  const { spec } = cell;
  const started = new Date();
  const clock = new PhaseClock();
  const dataHashes: Record<string, string> = {};
  const result: CellResult = {
    id: cell.id,
    status: 'ok',
    labels: labelsOf(cell),
    safety: [],
    capability: [],
    curve: [],
    samples: [],
    trajectories: [],
    seconds: 0,
  };
  const disposables: CausalLM[] = [];
  try {
    options.onProgress?.({ phase: 'prepare' });
    if (isMicro(spec.model)) ensureWorld(spec.worldSeed);
    const dir = await modelDir(spec.model, spec.worldSeed);
    const { model, tokenizer } = loadModel(dir);
    disposables.push(model);
    const text = threatTextFor(spec.kind === 'finetune' ? spec.harmful : spec.eval.safety[0]);
    const judge = await resolveJudge(spec.eval.judge, (s) => cellGuardrail(s, 0, 0, spec.worldSeed));
    clock.end('prepare');

    if (spec.kind === 'finetune')
      await finetune(spec, { model, tokenizer, dir, text, judge, clock, disposables, options }, result, dataHashes);

    // 5. Evaluation under every eval condition, and capability.
    options.onProgress?.({ phase: 'evaluate' });
    const evaluation = await evaluateModel(model, tokenizer, spec, text, judge);
    result.safety = evaluation.safety;
    result.capability = evaluation.capability;
    result.samples = evaluation.samples;
    if (spec.kind === 'finetune' && spec.eval.curveEpochs.length > 0) {
      for (const s of evaluation.safety.filter((x) => x.condition === 'plain'))
        result.curve.push({ epoch: spec.train.epochs, condition: s.condition, safetyScore: s.safetyScore, harmfulRate: s.harmfulRate });
    }
    clock.end('evaluate');
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    // The stack is kept (its frames say where the cell failed), with paths made portable: relative to the
    // repository root, and ~ for the home directory, so result.json names no absolute path of this machine.
    const root = decodeURIComponent(new URL('../..', import.meta.url).pathname);
    const home = (process.env.HOME ?? process.env.USERPROFILE ?? '').replace(/\/+$/, '');
    const portable = (text: string): string => {
      const relative = root.length > 1 ? text.split(`file://${root}`).join('').split(root).join('') : text;
      return home ? relative.split(`file://${home}/`).join('~/').split(`${home}/`).join('~/') : relative;
    };
    result.status = 'error';
    result.error = { message: portable(e.message), ...(e.stack ? { stack: portable(e.stack) } : {}) };
  } finally {
    for (const m of disposables) m.dispose();
  }
  const finished = new Date();
  result.seconds = (finished.getTime() - started.getTime()) / 1000;
  const manifest: Manifest = {
    id: cell.id,
    spec,
    codeVersion: codeVersion(),
    backend: options.backend,
    node: process.version,
    dataHashes,
    started: started.toISOString(),
    finished: finished.toISOString(),
    timings: clock.timings,
  };
  if (tf.memory().numTensors > 10_000) console.warn(`cell ${cell.id}: ${tf.memory().numTensors} tensors alive after the cell`);
  return { result, manifest };
}
