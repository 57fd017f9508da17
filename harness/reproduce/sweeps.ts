// The sweeps the paper's claims need, as data. Every claim names the sweeps it reads (claims.ts); a sweep
// shared by several claims runs once, and cells shared by several sweeps run once too, because a cell's id
// is a hash of its spec (plan.ts). The settings below are the same for every sweep and every claim:
// nothing is tuned per claim. Each sweep runs once per label setting (how the guardrail's label scores become
// P(safe): the paper's formula or the authors' processed scores, guardrails/label-processing.ts); cells that
// read no guardrail are the same under both and run once.
import type { z } from 'zod';
import type { LabelSettingName } from '../../guardrails/index.ts';
import { parseSweepConfig, sweepConfig, type PluginEntry, type SweepConfig } from '../sweep/config.ts';
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
  /**
   * Models of other families that the worst-case and capability claims also read, each judged on its own (the
   * paper says its result holds across model families); the other claims read the shared models alone.
   */
  families: readonly string[];
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
  metrics: {
    safetyDataset: 'micro:hex-phi',
    task: ['micro:ticket-test'],
    oldTask: ['micro:gsm8k-test', 'micro:sql-test'],
    families: ['micro:qwen2', 'micro:gpt2'],
  },
};

export interface SweepDef {
  name: string;
  describe: string;
  threats: PluginEntry[];
  strategies: PluginEntry[];
  /** Default: the settings' guardrail. */
  guardrails?: GuardrailEntry[];
  /** Run on the other model families (settings.metrics.families) instead of the shared models. */
  families?: boolean;
  /** STAR chunk size M in words (default 5). */
  chunkWords?: number;
  /** Old-task mixing of this sweep (sweep config `oldTask`); default: the settings' old-task items. */
  oldTask?: SweepInput['oldTask'];
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

/**
 * The worst case is the harmful pool alone, as in the paper: no old-task items (with them, the "pure" set of
 * 100 PureBad pairs was half harmful). So are the sweeps that vary it and are read against its cells
 * (guardrail FNR, λ, chunk size, response adaptation). The benign-user sweeps keep the old-task items.
 */
const HARMFUL_POOL_ALONE = 'none';

export const SWEEPS = {
  worstCase: {
    name: 'worst-case',
    describe: 'the harmful pool alone (ratio 1, no safe set, no old-task items), every compared strategy, with harm curves',
    threats: [THREATS.worstCase],
    strategies: [sft, rs, starDss, deepToken],
    curves: true,
    oldTask: HARMFUL_POOL_ALONE,
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
    describe:
      'the harmful pool alone, each answer wrapped in a refusal paragraph before, a "harmless, for a tutorial" disclaimer after, or both',
    threats: (['before', 'after', 'both'] as const).map(THREATS.adaptation),
    strategies: [rs, starDss],
    oldTask: HARMFUL_POOL_ALONE,
  },
  guardrailFnr: {
    name: 'guardrail-fnr',
    describe: 'the worst case with a noisy guardrail missing 20-80% of unsafe verdicts (FNR 0 is the worst case)',
    threats: [THREATS.worstCase],
    strategies: [rs, starDss],
    guardrails: FALSE_NEGATIVE_RATES.map((falseNegativeRate) => ({ spec: 'micro', falseNegativeRate })),
    oldTask: HARMFUL_POOL_ALONE,
  },
  qiTable4: {
    name: 'qi-table4',
    describe: 'identity shift (AOA) and backdoor, SFT vs Deep Token (harmful injection is the worst case)',
    threats: [THREATS.identityShift, THREATS.backdoor],
    strategies: [sft, deepToken],
  },
  worstCaseFamilies: {
    name: 'worst-case-families',
    describe: 'the worst case on the other model families (qwen2, gpt2), every compared strategy, no harm curves',
    threats: [THREATS.worstCase],
    strategies: [sft, rs, starDss, deepToken],
    families: true,
    oldTask: HARMFUL_POOL_ALONE,
  },
  capabilityFamilies: {
    name: 'capability-families',
    describe: 'on the other model families: 0% and 10% harmful in the 200-item task set, and the mixed responses',
    threats: [THREATS.mix(0), THREATS.mix(0.1), THREATS.mixedResponses],
    strategies: [sft, rs, starDss],
    families: true,
  },
  lambda: {
    name: 'ablation-lambda',
    describe: 'STAR-DSS with λ 0.1, 1 and 2 on the worst case (λ 0.5 is the worst case)',
    threats: [THREATS.worstCase],
    strategies: LAMBDAS.map(STRATEGIES.starDssLambda),
    oldTask: HARMFUL_POOL_ALONE,
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
    oldTask: HARMFUL_POOL_ALONE,
  };
}

/** For claims.md's setup: which sweeps mix which old-task items into their finetuning sets. */
export function oldTaskMixing(settings: ReproduceSettings): string {
  const resolve = (v: SweepInput['oldTask']) => sweepConfig.shape.oldTask.parse(v).filter((o) => o.count > 0);
  const defs: SweepDef[] = [...Object.values(SWEEPS), ...Object.values(CHUNK_SWEEPS)];
  const alone = defs.filter((d) => resolve(d.oldTask ?? settings.shared.oldTask).length === 0);
  const items = resolve(settings.shared.oldTask).map((o) => `${o.count} of ${o.dataset}`);
  const mixing = defs.filter((d) => !alone.includes(d));
  const names = (ds: SweepDef[]) => ds.map((d) => d.name).join(', ');
  return [
    alone.length ? `no old-task items in ${names(alone)} (the harmful pool alone)` : '',
    mixing.length && items.length ? `old-task items (${items.join(' and ')}) mixed into every finetuning set of ${names(mixing)}` : '',
  ]
    .filter(Boolean)
    .join('; ');
}

/** Seeds 1..n (the quick preset's first seed is 1). */
export const seedList = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

/** The label settings `reproduce` runs by default: the paper's formula and the authors' processed scores. */
export const LABEL_SETTINGS: readonly LabelSettingName[] = ['paper', 'official'];

/** The sweep's name under a label setting: the plain name for the paper formula, `<name>.<setting>` otherwise. */
export const sweepName = (def: SweepDef, labels: LabelSettingName): string => (labels === 'paper' ? def.name : `${def.name}.${labels}`);

/** A guardrail entry read with a label setting (the paper formula leaves the entry, and so the cell ids, as they were). */
function withLabels(entry: GuardrailEntry, labels: LabelSettingName): GuardrailEntry {
  if (labels === 'paper') return entry;
  return typeof entry === 'string' ? { spec: entry, labelSetting: labels } : { ...entry, labelSetting: labels };
}

/** The validated sweep config of a sweep definition under the shared settings and a label setting. */
export function buildSweepConfig(
  def: SweepDef,
  settings: ReproduceSettings,
  seeds: readonly number[],
  labels: LabelSettingName = 'paper',
): SweepConfig {
  const evalSettings = { ...settings.shared.eval, curveEpochs: def.curves ? settings.curveEpochs : [] };
  const name = sweepName(def, labels);
  return parseSweepConfig(
    {
      ...settings.shared,
      ...(def.families ? { models: [...settings.metrics.families] } : {}),
      name,
      threats: def.threats,
      strategies: def.strategies,
      guardrails: (def.guardrails ?? [settings.guardrail]).map((g) => withLabels(g, labels)),
      star: { chunkWords: def.chunkWords ?? 5 },
      oldTask: def.oldTask ?? settings.shared.oldTask,
      seeds: [...seeds],
      eval: evalSettings,
    },
    `reproduce sweep '${name}'`,
  );
}

/** The label a plugin entry gets in results (plan.ts), e.g. `harmful-injection(ratio=1)`. */
export const threatLabel = (entry: PluginEntry): string => threatSpec(entry).label;
export const strategyLabel = (entry: PluginEntry): string => strategySpec(entry).label;
