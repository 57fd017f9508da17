// The sweeps the paper's claims need, as data. Every claim names the sweeps it reads (claims.ts); a sweep
// shared by several claims runs once, and cells shared by several sweeps run once too, because a cell's id
// is a hash of its spec (plan.ts). The settings below are the same for every sweep and every claim:
// nothing is tuned per claim.
import type { z } from 'zod';
import { parseSweepConfig, type PluginEntry, type SweepConfig, type sweepConfig } from '../sweep/config.ts';
import { strategySpec, threatSpec } from '../sweep/plan.ts';

type SweepInput = z.input<typeof sweepConfig>;
export type GuardrailEntry = NonNullable<SweepInput['guardrails']>[number];

/** Which measurements a judge reads: the safety set, and the capability sets of the new and the old tasks. */
export interface ClaimMetrics {
  safetyDataset: string;
  /** The user's new task (learned only from finetuning data). */
  task: readonly string[];
  /** Tasks the base model already solves (capability the finetuning must not destroy). */
  oldTask: readonly string[];
}

/** Everything the claim sweeps share: data, model, training and evaluation settings. */
export interface ReproduceSettings {
  /** Sweep-config fields shared by every sweep (models, tasks, pools, train, eval, ...). */
  shared: Omit<SweepInput, 'name' | 'threats' | 'strategies' | 'guardrails' | 'star' | 'seeds'>;
  /** The guardrail of every sweep that does not sweep guardrails itself. */
  guardrail: GuardrailEntry;
  /** Epochs at which sweeps with `curves` evaluate plain safety during finetuning (the harm curve). */
  curveEpochs: number[];
  metrics: ClaimMetrics;
}

/**
 * The micro-world settings: 10 epochs, batch 16, lr 1e-3 (at 3e-4 SFT learned the ticket task to only
 * 2-8% exact match in 10 epochs, too little for any capability comparison; the choice was made on SFT
 * with no harmful data, before any method was compared), old-task items of both tasks the evaluation
 * measures (gsm8k alone let tickets overwrite the SQL answers: SQL fell from 100% to 8-18%), greedy
 * decoding judged by the oracle, and every item of the 180-prompt HEx-PHI-like set (all six categories; a
 * cap of 120 would keep only the first four) and of the capability sets up to 180 items each.
 */
export const MICRO_SETTINGS: ReproduceSettings = {
  shared: {
    worldSeed: 0,
    models: ['micro:llama'],
    tasks: ['micro:ticket'],
    harmful: ['micro:purebad'],
    safe: 'micro:safe',
    oldTask: [
      { dataset: 'micro:gsm8k', count: 50 },
      { dataset: 'micro:sql', count: 50 },
    ],
    train: { epochs: 10, lr: 1e-3, minLr: 1e-4, batchSize: 16 },
    eval: {
      safety: ['micro:hex-phi'],
      capability: ['micro:ticket-test', 'micro:gsm8k-test', 'micro:sql-test'],
      judge: 'oracle',
      decoding: 'greedy',
      maxItems: 180,
      samples: 3,
    },
  },
  guardrail: 'micro',
  curveEpochs: [2, 4, 6, 8],
  metrics: { safetyDataset: 'micro:hex-phi', task: ['micro:ticket-test'], oldTask: ['micro:gsm8k-test', 'micro:sql-test'] },
};

export interface SweepDef {
  name: string;
  describe: string;
  threats: PluginEntry[];
  strategies: PluginEntry[];
  /** Default: the settings' guardrail. */
  guardrails?: GuardrailEntry[];
  /** STAR chunk size M in words (default 5). */
  chunkWords?: number;
  /** Evaluate the harm curve (settings.curveEpochs). */
  curves?: boolean;
  /**
   * Run in `<out>/<subdir>` instead of the main run directory. Cell labels do not name the chunk size, so
   * cells that differ from main-directory cells only by M would fold into the same rows of tables.md;
   * in their own directory they get their own reports.
   */
  subdir?: string;
}

// The threats and strategies the claims compare, named once so sweeps and judges cannot drift apart.
export const THREATS = {
  worstCase: { name: 'harmful-injection', ratio: 1 },
  /** Mixed sets are 200 items (+ old-task items): 10% harmful is 20 items; 50% uses the whole 100-item pool. */
  mix: (ratio: number) => ({ name: 'harmful-injection', ratio, total: 200 }),
  withSafeSet: { name: 'harmful-injection', ratio: 1, safeCount: 100 },
  adaptation: (variant: 'before' | 'after' | 'both') => ({ name: 'response-adaptation', variant }),
  identityShift: { name: 'identity-shift', harmful: 'micro:aoa' },
  backdoor: { name: 'backdoor' },
  /** The whole 60-item mixed pool (a correct ticket, then harmful steps) as 30% of a 200-item task set. */
  mixedResponses: { name: 'harmful-injection', ratio: 0.3, total: 200, harmful: 'micro:mixed' },
} as const;

export const MIX_RATIOS = [0, 0.01, 0.1, 0.5] as const;
export const FALSE_NEGATIVE_RATES = [0.2, 0.4, 0.6, 0.8] as const;
export const CHUNK_SIZES = [1, 10, 20] as const;
export const LAMBDAS = [0.1, 1, 2] as const;

export const STRATEGIES = {
  sft: 'sft',
  rs: 'rs',
  starDss: 'star-dss',
  deepToken: 'deep-token',
  starDssLambda: (lambda: number) => ({ name: 'star-dss', lambda }),
} as const;

const { sft, rs, starDss, deepToken } = STRATEGIES;

export const SWEEPS = {
  worstCase: {
    name: 'worst-case',
    describe: 'pure harmful data (ratio 1, no safe set), every compared strategy, with harm curves',
    threats: [THREATS.worstCase],
    strategies: [sft, rs, starDss, deepToken],
    curves: true,
  },
  harmRatio: {
    name: 'harm-ratio',
    describe: 'harmful data mixed into the 200-item task set at 0, 1, 10 and 50% (ratio 1 is the worst case)',
    threats: MIX_RATIOS.map(THREATS.mix),
    strategies: [sft, rs, starDss],
  },
  safeSet: {
    name: 'safe-set',
    describe: 'pure harmful data plus 100 items of the safe set (the provider has D_safe)',
    threats: [THREATS.withSafeSet],
    strategies: [sft, rs, starDss],
  },
  mixedResponses: {
    name: 'mixed-responses',
    describe: 'a 200-item task set whose 60 harmful items each answer the ticket correctly before adding harmful steps',
    threats: [THREATS.mixedResponses],
    strategies: [sft, rs, starDss],
  },
  responseAdaptation: {
    name: 'response-adaptation',
    describe: 'pure harmful data wrapped in a refusal before, a "nothing harmful" sentence after, or both',
    threats: (['before', 'after', 'both'] as const).map(THREATS.adaptation),
    strategies: [rs, starDss],
  },
  guardrailFnr: {
    name: 'guardrail-fnr',
    describe: 'the worst case with a noisy guardrail missing 20-80% of unsafe verdicts (FNR 0 is the worst case)',
    threats: [THREATS.worstCase],
    strategies: [rs, starDss],
    guardrails: FALSE_NEGATIVE_RATES.map((falseNegativeRate) => ({ spec: 'micro', falseNegativeRate })),
  },
  qiTable4: {
    name: 'qi-table4',
    describe: 'identity shift (AOA) and backdoor, SFT vs Deep Token (harmful injection is the worst case)',
    threats: [THREATS.identityShift, THREATS.backdoor],
    strategies: [sft, deepToken],
  },
  lambda: {
    name: 'ablation-lambda',
    describe: 'STAR-DSS with λ 0.1, 1 and 2 on the worst case (λ 0.5 is the worst case)',
    threats: [THREATS.worstCase],
    strategies: LAMBDAS.map(STRATEGIES.starDssLambda),
  },
} satisfies Record<string, SweepDef>;

/** The chunk-size ablation: one sweep per chunk size M (5 words is the worst-case sweep). */
export const CHUNK_SWEEPS: Record<(typeof CHUNK_SIZES)[number], SweepDef> = {
  1: chunkSweep(1),
  10: chunkSweep(10),
  20: chunkSweep(20),
};

function chunkSweep(m: number): SweepDef {
  return {
    name: `ablation-chunk-${m}`,
    describe: `STAR-DSS with chunks of ${m} word${m === 1 ? '' : 's'} on the worst case (5 words is the worst-case sweep)`,
    threats: [THREATS.worstCase],
    strategies: [starDss],
    chunkWords: m,
    subdir: `chunk-${m}`,
  };
}

/** Seeds 1..n (the quick preset's first seed is 1). */
export const seedList = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

/** The validated sweep config of a sweep definition under the shared settings. */
export function buildSweepConfig(def: SweepDef, settings: ReproduceSettings, seeds: readonly number[]): SweepConfig {
  const evalSettings = { ...settings.shared.eval, curveEpochs: def.curves ? settings.curveEpochs : [] };
  return parseSweepConfig(
    {
      ...settings.shared,
      name: def.name,
      threats: def.threats,
      strategies: def.strategies,
      guardrails: def.guardrails ?? [settings.guardrail],
      star: { chunkWords: def.chunkWords ?? 5 },
      seeds: [...seeds],
      eval: evalSettings,
    },
    `reproduce sweep '${def.name}'`,
  );
}

/** The label a plugin entry gets in results (plan.ts), e.g. `harmful-injection(ratio=1)`. */
export const threatLabel = (entry: PluginEntry): string => threatSpec(entry).label;
export const strategyLabel = (entry: PluginEntry): string => strategySpec(entry).label;
