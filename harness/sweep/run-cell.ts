// One sweep cell, end to end (docs/architecture.md §2): base model → threat data → guardrail annotations
// (STAR weights, verdicts) → training with the strategy's loss → evaluation under each eval condition → result.
// Evaluation is staged: every generated response is kept (generations.jsonl) and judged apart from its
// generation (judgments/<judge>.jsonl), by the function a re-judge of saved generations uses too
// (judgeGenerations, then assembleSafety), so `star-dss judge` gives what a sweep with that judge gives.
import { execSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { loadDataset } from '../../datasets/index.ts';
import type { Example, Message } from '../../engine/contracts/example.ts';
import { ensureBaseModel } from '../micro-world/base-model.ts';
import { ensureWorld } from '../../datasets/micro-world/build.ts';
import { ensureMicroGuardrail } from '../micro-world/guardrail.ts';
import { httpResolveOptions, resolveGuardrail } from '../../guardrails/index.ts';
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
import { loadModel, saveModel } from '../../engine/model/checkpoint.ts';
import { createLora, isLora } from '../../engine/model/lora.ts';
import { checkCheckpointMemory, type MemoryPlan, type MemoryPlanOptions } from '../../engine/memory-plan.ts';
import { saveAdapter } from '../../engine/model/peft.ts';
import type { CausalLM } from '../../engine/model/types.ts';
import type { Tokenizer } from '../../engine/model/tokenizer.ts';
import { train, type StepInfo, type TrainExample } from '../../engine/train.ts';
import { Rng } from '../../engine/random.ts';
import { backendAdapter, type AdapterInfo } from '../../engine/tensor/backend.ts';
import { cacheDir, contentHash } from '../../engine/io.ts';
import { exactMatch, judgeAndAggregate, judgedResponse, type Judge, type SafetyItem } from '../evaluate/index.ts';
import { generateResponses, type GenerationSettings } from '../evaluate/generate-responses.ts';
import { resolveJudge } from '../evaluate/judges.ts';
import { isMultipleChoice, multipleChoiceAccuracy } from '../evaluate/multiple-choice.ts';
import { guardrailLabel, type Cell, type CellSpec, type FinetuneCellSpec, type GuardrailSpec } from './plan.ts';
import type { CapabilityResult, CellResult, SafetyResult, SampleOutput, StarTrajectory } from '../../results/result.ts';
import {
  attachStages,
  readCellResult,
  readGenerations,
  readManifest,
  rewriteCellResult,
  writeJudgments,
  type CapabilityRecord,
  type GenerationRecord,
  type JudgmentRecord,
  type Manifest,
} from './store.ts';

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

/**
 * A guardrail from a cell's spec (a judge's spec string, or the cell's GuardrailSpec, whose `http` settings and
 * label processing reach resolveGuardrail); `micro` is the world's guardrail, and a false-negative rate wraps it
 * (misses per response unless the spec says per prefix).
 */
export async function cellGuardrail(
  guard: string | GuardrailSpec,
  falseNegativeRate: number,
  seed: number,
  worldSeed: number,
): Promise<Guardrail> {
  const { spec, http, labelProcessing, falseNegativesPer } = typeof guard === 'string' ? { spec: guard } : guard;
  const inner = await resolveGuardrail(spec, {
    microGuardrailDir: () => ensureMicroGuardrail({ world: ensureWorld(worldSeed) }),
    ...(http !== undefined ? { http: httpResolveOptions(http) } : {}),
    ...(labelProcessing !== undefined ? { labelProcessing } : {}),
  });
  return falseNegativeRate > 0 ? noisyGuardrail(inner, { rate: falseNegativeRate, seed, per: falseNegativesPer ?? 'response' }) : inner;
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
  const { messages, prefill } = condition.transform(prompt, typeof example.meta.target === 'string' ? { target: example.meta.target } : {});
  const conversation: Message[] = prefill ? [...messages, { role: 'assistant', content: prefill }] : messages;
  return { id: example.id, messages: conversation, ...(example.meta.category ? { category: String(example.meta.category) } : {}) };
}

/** The decoding settings of a cell's evaluation (the sampling seed is the cell's seed; 0 for a base cell). */
function generationSettings(spec: CellSpec): GenerationSettings {
  const settings = spec.eval;
  return {
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
}

/** Which generations a judged group covers: one eval condition on one safety set, at the end or after an epoch. */
interface GroupKey {
  condition: string;
  dataset: string;
  /** A harm-curve evaluation after this epoch; absent for the final evaluation. */
  epoch?: number;
}

/** One group of generations judged: its safety entry, its first samples and every verdict. */
interface JudgedGroup extends GroupKey {
  entry: SafetyResult;
  samples: SampleOutput[];
  judgments: JudgmentRecord[];
}

/** What a cell's evaluations produce as they go (the harm curve's and the final one). */
interface EvalStages {
  generations: GenerationRecord[];
  groups: JudgedGroup[];
  /** Every capability response with its reference and whether it matched (exact-match sets). */
  capability: CapabilityRecord[];
}

/** The conversation a generation was made from: its messages, and the prefill as an open assistant turn. */
const conversationOf = (r: GenerationRecord): Message[] =>
  r.prefill !== undefined ? [...r.messages, { role: 'assistant', content: r.prefill }] : r.messages;

/**
 * Judges one group of generations, fresh from a cell or read back from generations.jsonl, with
 * judgeAndAggregate (what evaluateSafety runs): the group's entry in result.json, its first `sampleCount`
 * samples and one judgment per response.
 */
async function judgeGenerations(
  key: GroupKey,
  records: readonly GenerationRecord[],
  judge: Judge,
  sampleCount: number,
): Promise<JudgedGroup> {
  const { condition, dataset, epoch } = key;
  const items: SafetyItem[] = records.map((r) => ({
    id: r.id,
    messages: conversationOf(r),
    ...(r.category !== undefined ? { category: r.category } : {}),
  }));
  const result = await judgeAndAggregate(
    items,
    records.map((r) => r.continuation),
    judge,
  );
  const entry: SafetyResult = {
    condition,
    dataset,
    judge: result.judge,
    judgeVersion: result.judgeVersion,
    n: result.n,
    safetyScore: result.safetyScore,
    harmfulRate: result.harmfulRate,
    exactRefusalRate: result.exactRefusalRate,
    degenerationRate: result.degenerationRate,
    ...(result.malformedRate !== undefined ? { malformedRate: result.malformedRate } : {}),
    ...(result.harmfulnessScore !== undefined ? { harmfulnessScore: result.harmfulnessScore } : {}),
    ...(result.harmfulnessRate !== undefined ? { harmfulnessRate: result.harmfulnessRate } : {}),
    perCategory: Object.fromEntries(Object.entries(result.perCategory).map(([k, v]) => [k, { n: v.n, harmfulRate: v.harmfulRate }])),
    metrics: result.metrics,
  };
  const samples = result.samples.slice(0, sampleCount).map(
    (s): SampleOutput => ({
      condition,
      prompt: s.prompt,
      response: s.response,
      harmful: s.harmful,
      ...(s.category ? { category: s.category } : {}),
    }),
  );
  const judgments = result.samples.map(
    (s, i): JudgmentRecord => ({
      condition,
      dataset,
      ...(epoch !== undefined ? { epoch } : {}),
      index: records[i].index,
      id: records[i].id,
      judge: judge.name,
      judgeVersion: judge.version,
      harmful: s.harmful,
      ...(s.judgeCategory !== undefined ? { category: s.judgeCategory } : {}),
      ...(s.score !== undefined ? { score: s.score } : {}),
      ...(s.rationale !== undefined ? { rationale: s.rationale } : {}),
    }),
  );
  return { ...key, entry, samples, judgments };
}

/**
 * Safety, samples and harm curve of a result from its judged groups, in the order they were evaluated: the
 * final groups give the safety entries and samples; the curve has a point per curve group, then (when the
 * config asks for a curve) the final plain groups at the last epoch.
 */
function assembleSafety(groups: readonly JudgedGroup[], spec: CellSpec): Pick<CellResult, 'safety' | 'samples' | 'curve'> {
  const final = groups.filter((g) => g.epoch === undefined);
  const point = (epoch: number, s: SafetyResult) => ({
    epoch,
    condition: s.condition,
    safetyScore: s.safetyScore,
    harmfulRate: s.harmfulRate,
  });
  const curve = groups.flatMap((g) => (g.epoch !== undefined ? [point(g.epoch, g.entry)] : []));
  if (spec.kind === 'finetune' && spec.eval.curveEpochs.length > 0)
    for (const g of final.filter((x) => x.condition === 'plain')) curve.push(point(spec.train.epochs, g.entry));
  return { safety: final.map((g) => g.entry), samples: final.flatMap((g) => g.samples), curve };
}

/** A safety item's generation as a record of generations.jsonl (the prefill, if any, apart from the messages). */
function generationRecord(
  key: GroupKey,
  index: number,
  item: SafetyItem,
  continuation: string,
  spec: CellSpec,
  seed: number,
): GenerationRecord {
  const last = item.messages.at(-1);
  const prefill = last?.role === 'assistant' ? last.content : undefined;
  return {
    ...key,
    index,
    id: item.id,
    ...(item.category !== undefined ? { category: item.category } : {}),
    messages: prefill !== undefined ? item.messages.slice(0, -1) : item.messages,
    ...(prefill !== undefined ? { prefill } : {}),
    continuation,
    response: judgedResponse(item.messages, continuation),
    decoding: spec.eval.decoding,
    maxNewTokens: spec.eval.maxNewTokens,
    seed,
  };
}

/**
 * Generates and judges under every eval condition (only those of `curve`, for a harm-curve point after an
 * epoch), adding the generations and the judged groups to `stages`; then capability, for the final evaluation.
 */
async function evaluateModel(
  model: CausalLM,
  tokenizer: Tokenizer,
  spec: CellSpec,
  text: ThreatText,
  judge: Judge,
  stages: EvalStages,
  curve?: { epoch: number; only: string[] },
): Promise<CapabilityResult[]> {
  const settings = spec.eval;
  const generation = generationSettings(spec);
  for (const condition of conditionsOf(spec, text).filter((c) => !curve || curve.only.includes(c.name))) {
    for (const dataset of settings.safety) {
      const key: GroupKey = { condition: condition.name, dataset, ...(curve ? { epoch: curve.epoch } : {}) };
      const items = cap(loadRef(dataset, spec.worldSeed), settings.maxItems).map((e) => conditionItem(e, condition));
      const continuations = await generateResponses(
        model,
        tokenizer,
        items.map((i) => i.messages),
        generation,
      );
      const records = items.map((item, i) => generationRecord(key, i, item, continuations[i], spec, generation.seed ?? 0));
      stages.generations.push(...records);
      stages.groups.push(await judgeGenerations(key, records, judge, settings.samples));
    }
  }
  const capability: CapabilityResult[] = [];
  if (!curve) {
    for (const dataset of settings.capability) {
      const examples = cap(loadRef(dataset, spec.worldSeed), settings.maxItems);
      if (examples.length > 0 && examples.every(isMultipleChoice)) {
        const r = await multipleChoiceAccuracy(model, tokenizer, examples, dataset);
        capability.push({ dataset, metric: r.metric, n: r.n, value: r.accuracy });
      } else {
        const r = await exactMatch(model, tokenizer, examples, { dataset, generation: { batchSize: settings.batchSize } });
        capability.push({ dataset, metric: r.metric, n: r.n, value: r.exactMatch });
        stages.capability.push(...r.samples.map((sample, index) => ({ dataset, index, ...sample })));
      }
    }
  }
  return capability;
}

/**
 * Whether a training example is harmful: its data's own label (the micro-world's, BeaverTails' is_safe), else
 * true when the threat drew it from the harmful pool (meta.part), since real pools such as PureBad carry no
 * label; undefined when unknown.
 */
function isHarmful(example: Example): boolean | undefined {
  if (typeof example.meta.harmful === 'boolean') return example.meta.harmful;
  return example.meta.part === 'harmful' ? true : undefined;
}

function trajectory(example: Example, annotation: StarAnnotation): StarTrajectory {
  const response = example.messages.at(-1)?.content ?? '';
  const words = response.split(/\s+/).filter(Boolean);
  const harmful = isHarmful(example);
  return {
    id: example.id,
    ...(harmful !== undefined ? { harmful } : {}),
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
    guardrail: finetune ? guardrailLabel(finetune.guardrail) : 'none',
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
  const guardrail = await cellGuardrail(spec.guardrail, spec.guardrail.falseNegativeRate, spec.seed, spec.worldSeed);
  try {
    if (!needs.star) return { ...none, verdicts: await scoreVerdicts(examples, guardrail, {}) };
    const star = await annotate(examples, guardrail, { chunkWords: spec.star.chunkWords });
    const harmfulFirst = examples
      .map((e, i) => ({ e, a: star[i] }))
      .sort((x, y) => Number(isHarmful(y.e) === true) - Number(isHarmful(x.e) === true));
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
  /** Where the harm curve's generations and judged groups go. */
  stages: EvalStages;
  /** The memory plan training used (recorded in the manifest). */
  memory: { plan?: MemoryPlan };
}

/** What a finetuning cell trains and holds beside its weights, for the memory plan (engine/memory-plan.ts). */
function memoryOptions(spec: FinetuneCellSpec): Pick<MemoryPlanOptions, 'trainable' | 'reference' | 'chunked'> {
  const needs = configureStrategy(spec.strategy.name, spec.strategy.params).needs;
  const lora = spec.train.lora;
  return {
    trainable: lora ? { loraRank: lora.rank } : 'full',
    reference: needs.reference ? (lora ? 'adapters-off' : 'copy') : 'none',
    chunked: !needs.fullLogProbs,
  };
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
  // With LoRA the reference is the same base with adapters off: no second copy of the weights.
  const reference = needs.reference ? (isLora(model) ? model.reference : loadModel(context.dir).model) : undefined;
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
    memory: { backend: options.backend, ...memoryOptions(spec) },
    onEpoch: async (epoch) => {
      if (!spec.eval.curveEpochs.includes(epoch) || epoch === spec.train.epochs) return;
      const t0 = performance.now();
      await evaluateModel(model, tokenizer, spec, context.text, context.judge, context.stages, { epoch, only: ['plain'] });
      clock.moveOut('curve', (performance.now() - t0) / 1000); // curve time is evaluation, not training
    },
  });
  context.memory.plan = trained.memoryPlan;
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

/**
 * A copy of a finetuned model for cells/<id>/model (eval.keepModels), saved under the cache until
 * writeCellResult moves it into the cell's folder (runCell does not know the run directory). A full
 * checkpoint, or with train.lora the adapter alone in PEFT's layout (adapter_config.json and
 * adapter_model.safetensors; `star-dss model merge` folds it into the base).
 */
async function stageModel(id: string, model: CausalLM, baseDir: string): Promise<string> {
  const staging = cacheDir('kept-models', `${id}-${process.pid}-${Date.now().toString(36)}`);
  if (isLora(model)) await saveAdapter(staging, model, baseDir);
  else await saveModel(staging, model, { dir: baseDir });
  return staging;
}

/**
 * Runs one cell and returns its result and manifest (the caller writes them, with writeCellResult, which
 * also writes the evaluation stages attached to the result). Never throws for cell errors.
 */
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
  const stages: EvalStages = { generations: [], groups: [], capability: [] };
  let judge: Judge | undefined;
  let keptModel: string | undefined;
  const memory: { plan?: MemoryPlan } = {};
  try {
    options.onProgress?.({ phase: 'prepare' });
    if (isMicro(spec.model)) ensureWorld(spec.worldSeed);
    const dir = await modelDir(spec.model, spec.worldSeed);
    // Refused before any weight is loaded when not even one short sequence (batch 1 × 128 tokens) fits.
    if (spec.kind === 'finetune')
      memory.plan = checkCheckpointMemory(dir, { backend: options.backend, batch: 1, seqLen: 128, ...memoryOptions(spec) });
    const loaded = loadModel(dir);
    const { tokenizer } = loaded;
    disposables.push(loaded.model);
    // train.lora: the cell trains, evaluates and keeps adapters on the frozen base.
    const model =
      spec.kind === 'finetune' && spec.train.lora ? createLora(loaded.model, spec.train.lora, { seed: spec.seed }) : loaded.model;
    if (model !== loaded.model) disposables.push(model);
    const text = threatTextFor(spec.kind === 'finetune' ? spec.harmful : spec.eval.safety[0], spec.model);
    judge = await resolveJudge(spec.eval.judge, (s) => cellGuardrail(s, 0, 0, spec.worldSeed));
    clock.end('prepare');

    if (spec.kind === 'finetune') {
      await finetune(spec, { model, tokenizer, dir, text, judge, clock, disposables, options, stages, memory }, result, dataHashes);
      if (spec.eval.keepModels) {
        keptModel = await stageModel(cell.id, model, dir);
        clock.end('save');
      }
    }

    // 5. Evaluation under every eval condition (generate, then judge), and capability.
    options.onProgress?.({ phase: 'evaluate' });
    result.capability = await evaluateModel(model, tokenizer, spec, text, judge, stages);
    Object.assign(result, assembleSafety(stages.groups, spec));
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
    result.curve = assembleSafety(
      stages.groups.filter((g) => g.epoch !== undefined),
      spec,
    ).curve; // the harm-curve points measured before the error
  } finally {
    for (const m of disposables) m.dispose();
    judge?.dispose?.();
  }
  if (stages.generations.length > 0 || stages.capability.length > 0 || keptModel)
    attachStages(result, {
      generations: stages.generations,
      capability: stages.capability,
      judgments: stages.groups.flatMap((g) => g.judgments),
      judge: judge?.name ?? spec.eval.judge,
      ...(keptModel ? { modelDir: keptModel } : {}),
    });
  const finished = new Date();
  result.seconds = (finished.getTime() - started.getTime()) / 1000;
  const webgpuAdapter = backendAdapter(); // on webgpu: the adapter (vendor, architecture, hardware or software)
  const manifest: Manifest & { webgpuAdapter?: AdapterInfo; memoryPlan?: MemoryPlan } = {
    id: cell.id,
    spec,
    codeVersion: codeVersion(),
    backend: options.backend,
    ...(webgpuAdapter ? { webgpuAdapter } : {}),
    ...(memory.plan ? { memoryPlan: memory.plan } : {}),
    node: process.version,
    dataHashes,
    started: started.toISOString(),
    finished: finished.toISOString(),
    timings: clock.timings,
  };
  if (tf.memory().numTensors > 10_000) console.warn(`cell ${cell.id}: ${tf.memory().numTensors} tensors alive after the cell`);
  return { result, manifest };
}

// ---- Re-judging saved generations (`star-dss judge`) ----

export interface RejudgeOptions {
  /**
   * Make this judge the one result.json's `safety` (and so the reports, the curve and the samples) shows; the
   * judge it replaces moves to `otherJudges`. When false its entries go to `otherJudges` only (unless it already
   * is the reported judge, which is then refreshed in place).
   */
  primary: boolean;
}

export interface RejudgeOutcome {
  id: string;
  /** Judged, or skipped with the reason (no generations saved, the cell failed, ...). */
  judged: boolean;
  reason?: string;
  responses: number;
  /** The judge's entries (final evaluation), as written to result.json. */
  safety: SafetyResult[];
  /** The judgments file written. */
  file?: string;
}

const sameKey = (a: SafetyResult, b: SafetyResult) => a.condition === b.condition && a.dataset === b.dataset && a.judge === b.judge;

/**
 * Judges the generations a finished cell saved (cells/<id>/generations.jsonl) with the judge `judgeFor` gives
 * for the cell's spec: no model is loaded and nothing is trained. Writes judgments/<judge>.jsonl and the
 * cell's result.json with that judge's safety entries (see RejudgeOptions), computed as runCell computes them.
 */
export async function rejudgeCell(
  runDir: string,
  id: string,
  judgeFor: (spec: CellSpec) => Promise<Judge>,
  options: RejudgeOptions,
): Promise<RejudgeOutcome> {
  const skip = (reason: string): RejudgeOutcome => ({ id, judged: false, reason, responses: 0, safety: [] });
  const result = readCellResult(runDir, id);
  if (!result) return skip('no valid result.json');
  if (result.status !== 'ok') return skip('the cell failed; re-run it with star-dss sweep');
  const spec = readManifest(runDir, id)?.spec;
  if (!spec) return skip('no manifest.json (the cell spec)');
  const generations = readGenerations(runDir, id);
  if (!generations) return skip('no generations.jsonl (written before evaluation stages were saved; re-run the cell to save them)');
  const judge = await judgeFor(spec);
  // The groups in the order the cell evaluated them: curve points first, then the final (condition, dataset)
  // pairs of the result (a pair with no items still gets its entry).
  const keyOf = (g: GroupKey) => JSON.stringify([g.epoch ?? null, g.condition, g.dataset]);
  const byKey = new Map<string, { key: GroupKey; records: GenerationRecord[] }>();
  for (const r of generations.filter((g) => g.epoch !== undefined)) {
    const key: GroupKey = { condition: r.condition, dataset: r.dataset, epoch: r.epoch };
    const group = byKey.get(keyOf(key)) ?? { key, records: [] };
    group.records.push(r);
    byKey.set(keyOf(group.key), group);
  }
  for (const s of result.safety) {
    const key: GroupKey = { condition: s.condition, dataset: s.dataset };
    byKey.set(keyOf(key), {
      key,
      records: generations.filter((g) => g.epoch === undefined && g.condition === s.condition && g.dataset === s.dataset),
    });
  }
  const groups: JudgedGroup[] = [];
  for (const { key, records } of byKey.values())
    groups.push(
      await judgeGenerations(
        key,
        [...records].sort((a, b) => a.index - b.index),
        judge,
        spec.eval.samples,
      ),
    );
  const file = writeJudgments(
    runDir,
    id,
    judge.name,
    groups.flatMap((g) => g.judgments),
  );
  const parts = assembleSafety(groups, spec);
  const others = (result.otherJudges ?? []).filter((s) => s.judge !== judge.name);
  if (options.primary || result.safety.every((s) => s.judge === judge.name)) {
    const replaced = result.safety.filter((s) => s.judge !== judge.name);
    result.otherJudges = [...others.filter((o) => !replaced.some((r) => sameKey(o, r))), ...replaced];
    Object.assign(result, parts);
  } else {
    result.otherJudges = [...others, ...parts.safety];
  }
  if (result.otherJudges.length === 0) delete result.otherJudges;
  rewriteCellResult(runDir, result);
  return { id, judged: true, responses: generations.length, safety: parts.safety, file };
}
