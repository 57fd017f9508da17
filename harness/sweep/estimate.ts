// The dry run's cost: tokens each cell trains on and generates, divided by each model's speeds as measured on
// the chosen backend (measure-speed.ts: one timed step of a random-init model at its real size). A model that
// could not be measured falls back to the micro model's speeds from `npm run bench` (wasm, one worker per core),
// scaled by its parameter count from config.json (FLOPs per token ∝ parameters), and the basis says so. The
// memory plan lives in engine/memory-plan.ts.
import { loadDataset } from '../../datasets/index.ts';
import { readConfigFile } from '../../engine/model/checkpoint.ts';
import { makeConfig, parseConfig } from '../../engine/model/config.ts';
import { configParameterCount } from '../../engine/memory-plan.ts';
import { configureStrategy } from '../../strategies/index.ts';
import { configureThreat } from '../../threats/index.ts';
import { threatContext } from '../../threats/threat.ts';
import { Rng } from '../../engine/random.ts';
import type { Cell } from './plan.ts';
import { threatTextFor } from '../threat-text.ts';
import type { SpeedMeasurement } from './measure-speed.ts';

/** The model bench/index.ts measures the speeds below on: llama d128, 2 layers, 4 heads, MLP 512, vocab 512. */
const CALIBRATION_SIZES = { hidden: 128, layers: 2, heads: 4, intermediate: 512, vocab: 512, maxPositions: 128 };
/** Training tokens/s of a micro model (bench: llama d128, CE + k2 against a frozen reference). */
const TRAIN_TOKENS_PER_SECOND = 1600;
/** Generation tokens/s with the KV cache, batched (bench). */
const GENERATE_TOKENS_PER_SECOND = 1450;
/** Chat-template tokens around a message (role tokens, end token). */
const TEMPLATE_TOKENS = 4;

const words = (text: string) => text.split(/\s+/).filter(Boolean).length;

/** The number of parameters of a model from its config (engine/memory-plan.ts, tied embeddings once). */
export const parameterCount = configParameterCount;

/** 1.2 B, 340 M, 660 k. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} M`;
  return n >= 1e3 ? `${(n / 1e3).toFixed(0)} k` : String(n);
}

/**
 * How many times slower than the micro model each cell's model runs: 1 for `micro:` models, parameters ÷ the
 * calibration model's for a checkpoint whose config.json parses; 1 (with a note) for one whose does not.
 */
function modelScales(cells: readonly Cell[]): { scale: Map<string, number>; notes: string[]; micro: number } {
  const micro = parameterCount(parseConfig(makeConfig('llama', CALIBRATION_SIZES)));
  const scale = new Map<string, number>();
  const notes: string[] = [];
  for (const ref of new Set(cells.map((c) => c.spec.model))) {
    if (ref.startsWith('micro:')) {
      scale.set(ref, 1);
      continue;
    }
    try {
      const n = parameterCount(readConfigFile(ref));
      scale.set(ref, n / micro);
      notes.push(`${ref} ${formatCount(n)} parameters (${((micro / n) * TRAIN_TOKENS_PER_SECOND).toPrecision(2)} train tokens/s)`);
    } catch (error) {
      scale.set(ref, 1);
      notes.push(`${ref}: config.json not read (${String((error as Error).message).split('\n')[0]}), counted at the micro model's speed`);
    }
  }
  return { scale, notes, micro };
}

/** Each model's training and generation speed: measured when it could be, else the scaled bench constants. */
function modelSpeeds(
  cells: readonly Cell[],
  measured: ReadonlyMap<string, SpeedMeasurement>,
): { speed: (ref: string) => { train: number; generate: number }; basis: string } {
  const models = modelScales(cells);
  const measuredNotes: string[] = [];
  const fallback: string[] = [];
  for (const ref of new Set(cells.map((c) => c.spec.model))) {
    const m = measured.get(ref);
    if (m?.ok)
      measuredNotes.push(
        `${ref}: ${m.speed.train.toFixed(0)} train tokens/s (micro-batch ${m.speed.batch} × ${m.speed.seqLen}), ${m.speed.generate.toFixed(0)} generated tokens/s`,
      );
    else if (m) fallback.push(`${ref} ${m.reason}`);
  }
  const speed = (ref: string) => {
    const m = measured.get(ref);
    if (m?.ok) return { train: m.speed.train, generate: m.speed.generate };
    const scale = models.scale.get(ref) ?? 1;
    return { train: TRAIN_TOKENS_PER_SECOND / scale, generate: GENERATE_TOKENS_PER_SECOND / scale };
  };
  const bench = `the micro model's speeds from npm run bench (wasm, one worker: ${TRAIN_TOKENS_PER_SECOND} train and ${GENERATE_TOKENS_PER_SECOND} generated tokens/s at ${formatCount(models.micro)} parameters)${
    models.notes.length > 0 ? `, divided by each checkpoint's parameters ÷ the micro model's: ${models.notes.join('; ')}` : ''
  }`;
  const basis =
    measuredNotes.length > 0
      ? `an estimate from one measured step per model on this backend (${measuredNotes.join('; ')})${fallback.length > 0 ? `; not measured, so from ${bench}: ${fallback.join('; ')}` : ''}`
      : `an estimate, not a measurement: ${bench}${fallback.length > 0 ? ` (${fallback.join('; ')})` : ''}`;
  return { speed, basis };
}

export function estimateCells(
  cells: Cell[],
  measured: ReadonlyMap<string, SpeedMeasurement> = new Map(),
): { perCell: number[]; total: number; basis: string } {
  const models = modelSpeeds(cells, measured);
  const sizes = new Map<string, { n: number; words: number }>();
  const load = (ref: string, worldSeed: number) => {
    const key = `${worldSeed}:${ref}`;
    if (!sizes.has(key)) {
      // No fallback: the references were resolved before (references.ts), so a load that fails now is an
      // error to show, not an empty set that makes the estimate look cheap.
      const examples = loadDataset(ref, { seed: worldSeed });
      sizes.set(key, {
        n: examples.length,
        words: examples.reduce((s, e) => s + e.messages.reduce((t, m) => t + words(m.content) + TEMPLATE_TOKENS, 0), 0),
      });
    }
    return sizes.get(key)!;
  };
  const perCell = cells.map((cell) => {
    const s = cell.spec;
    const evalItems = (ref: string) => {
      const n = load(ref, s.worldSeed).n;
      return s.eval.maxItems > 0 ? Math.min(n, s.eval.maxItems) : n;
    };
    const text = threatTextFor(s.kind === 'finetune' ? s.harmful : s.eval.safety[0]);
    const conditions = s.conditionsOf.reduce((n, t) => n + configureThreat(t.name, t.params).evalConditions(text).length, 0);
    // Greedy answers average about half the cap: refusals are short, harmful answers long.
    const safetyTokens = conditions * s.eval.safety.reduce((n, ref) => n + evalItems(ref), 0) * (s.eval.maxNewTokens / 2);
    const capabilityTokens = s.eval.capability.reduce((n, ref) => n + evalItems(ref), 0) * 20;
    const speed = models.speed(s.model);
    let seconds = (safetyTokens + capabilityTokens) / speed.generate;
    if (s.kind === 'finetune') {
      const pools = {
        task: loadDataset(s.task, { seed: s.worldSeed }),
        harmful: loadDataset(s.harmful, { seed: s.worldSeed }),
        safe: loadDataset(s.safe, { seed: s.worldSeed }),
        text,
      };
      let trainWords: number;
      try {
        const examples = configureThreat(s.threat.name, s.threat.params).build(threatContext(pools), new Rng(`${s.seed}:threat`));
        trainWords =
          examples.reduce((t, e) => t + e.messages.reduce((u, m) => u + words(m.content) + TEMPLATE_TOKENS, 0), 0) +
          s.oldTask.reduce((n, o) => n + o.count, 0) * 35;
      } catch {
        // The threat cannot build its set from these pools (the cell would fail too): count the task set.
        trainWords = load(s.task, s.worldSeed).words;
      }
      const needs = configureStrategy(s.strategy.name, s.strategy.params).needs;
      // A reference forward costs about a third of a training step (forward + backward).
      seconds += ((trainWords * s.train.epochs) / speed.train) * (needs.reference ? 1.3 : 1);
    }
    return seconds;
  });
  return {
    perCell,
    total: perCell.reduce((a, b) => a + b, 0),
    basis: `${models.basis}; base model and guardrail training not included`,
  };
}
