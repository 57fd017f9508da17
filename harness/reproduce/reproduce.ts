// `star-dss reproduce`: runs the sweeps every claim needs into ONE run directory (a cell shared by several
// claims or sweeps has one content-addressed id, so it runs once and a second invocation reuses it), writes
// the usual reports once over every cell, then judges each claim and writes claims.md. Every sweep is planned
// once per label setting (paper formula, official); a cell that reads no guardrail is the same cell under
// both, and a claim is judged under each setting on that setting's cells.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ensureWorld, loadWorld } from '../../datasets/micro-world/build.ts';
import { baseModelDir, baseRecipe, isCompleteModelDir } from '../micro-world/base-model.ts';
import {
  ensureMicroGuardrail,
  measureMicroGuardrail,
  microGuardDir,
  MICRO_GUARD_RECIPE,
  type GuardAccuracy,
} from '../micro-world/guardrail.ts';
import { writeReports } from '../../reports/index.ts';
import { writeFileAtomic, writeJsonAtomic } from '../../engine/io.ts';
import { estimateCells } from '../sweep/estimate.ts';
import { planSweep, type Cell } from '../sweep/plan.ts';
import { cellTitle, prerequisites, runSweep } from '../sweep/run.ts';
import { codeVersion } from '../sweep/run-cell.ts';
import { isCellDone, readCellResult } from '../sweep/store.ts';
import type { Prerequisite } from '../sweep/prepare.ts';
import type { SweepConfig } from '../sweep/config.ts';
import type { CellResult } from '../../results/result.ts';
import type { LabelSettingName } from '../../guardrails/index.ts';
import { CLAIMS, type Claim, type Judgement } from './claims.ts';
import { claimsMarkdown, type GuardrailNote, type RunRecord } from './claims-md.ts';
import { buildSweepConfig, LABEL_SETTINGS, MICRO_SETTINGS, seedList, type ReproduceSettings, type SweepDef } from './sweeps.ts';

export interface ReproduceOptions {
  out: string;
  /** Number of seeds (1..n). */
  seeds: number;
  workers: number;
  backend: string;
  dryRun?: boolean;
  quiet?: boolean;
  /** Count cells whose result recorded an error as done (by default a re-run runs them again). */
  keepFailed?: boolean;
  claims?: readonly Claim[];
  settings?: ReproduceSettings;
  /** Label settings to run and judge under, in claims.md's column order (default: paper, official). */
  labelSettings?: readonly LabelSettingName[];
  /** Measure the micro guardrail (about a minute) when a claim used it and it has no measurement.json. Default true. */
  measureGuardrail?: boolean;
  /** The command line, recorded in claims.md. */
  command?: string;
  log?: (line: string) => void;
}

export interface PlannedSweep {
  def: SweepDef;
  /** The label setting its guardrails read with. */
  labels: LabelSettingName;
  config: SweepConfig;
  /** The run directory its cells go to. */
  dir: string;
  cells: Cell[];
}

export interface ReproduceSummary {
  out: string;
  sweeps: PlannedSweep[];
  /** Unique cells over every sweep. */
  cells: number;
  /** Unique cells not yet done before this invocation. */
  pending: number;
  estimateSeconds: number;
  claimsFile?: string;
  judgements: { id: string; labels: LabelSettingName; verdict: Judgement['verdict'] }[];
  ran: number;
  failed: number;
  /** Cells whose worker process died mid-cell (no result written; a re-run resumes them). */
  lost: string[];
  seconds: number;
}

/** Every sweep of the claims once (by name) per label setting, in the order the claims name them, setting by setting. */
export function planReproduce(
  claims: readonly Claim[],
  settings: ReproduceSettings,
  seeds: readonly number[],
  out: string,
  labelSettings: readonly LabelSettingName[] = LABEL_SETTINGS,
): PlannedSweep[] {
  if (labelSettings.length === 0) throw new Error('reproduce needs at least one label setting (paper, official)');
  const byName = new Map<string, SweepDef>();
  for (const def of claims.flatMap((c) => c.sweeps)) {
    const seen = byName.get(def.name);
    if (seen && seen !== def) throw new Error(`two different sweeps are named '${def.name}'; give each sweep of the claims a unique name`);
    byName.set(def.name, def);
  }
  return [...new Set(labelSettings)].flatMap((labels) =>
    [...byName.values()].map((def) => {
      const config = buildSweepConfig(def, settings, seeds, labels);
      return { def, labels, config, dir: def.subdir ? join(out, def.subdir) : out, cells: planSweep(config) };
    }),
  );
}

const key = (dir: string, id: string) => `${dir}\u0000${id}`;

/** The unique (directory, cell) pairs of the planned sweeps. */
function uniqueCells(sweeps: readonly PlannedSweep[]): { dir: string; cell: Cell }[] {
  const seen = new Map<string, { dir: string; cell: Cell }>();
  for (const s of sweeps)
    for (const cell of s.cells) if (!seen.has(key(s.dir, cell.id))) seen.set(key(s.dir, cell.id), { dir: s.dir, cell });
  return [...seen.values()];
}

/** A harm-curve evaluation costs what a plain-condition safety evaluation costs (estimate.ts has no term for it). */
function curveSeconds(cell: Cell): number {
  const s = cell.spec;
  const extra = s.kind === 'finetune' && s.train ? s.eval.curveEpochs.filter((e) => e < s.train!.epochs).length : 0;
  if (extra === 0) return 0;
  const plainOnly: Cell = {
    id: cell.id,
    labels: cell.labels,
    spec: {
      kind: 'base',
      worldSeed: s.worldSeed,
      model: s.model,
      conditionsOf: [{ name: 'harmful-injection', params: {} }],
      eval: { ...s.eval, capability: [] },
    },
  };
  return extra * estimateCells([plainOnly]).total;
}

/** Training a base model or the micro guardrail (their training.json files record 330-370 s each here). */
const PREREQUISITE_SECONDS = 360;

function prerequisiteCached(p: Prerequisite): boolean {
  try {
    const manifest = loadWorld(ensureWorld(p.worldSeed));
    return p.kind === 'base'
      ? isCompleteModelDir(baseModelDir(baseRecipe(p.family), manifest, 0))
      : existsSync(join(microGuardDir(MICRO_GUARD_RECIPE, manifest, 0), 'model.safetensors'));
  } catch {
    return false;
  }
}

export interface Estimate {
  seconds: number;
  cellSeconds: number;
  curveSeconds: number;
  prerequisiteSeconds: number;
  missing: Prerequisite[];
  basis: string;
}

/** Wall-time estimate of the pending cells on `workers` processes, plus untrained prerequisites. */
export function estimateReproduce(pending: readonly Cell[], workers: number): Estimate {
  const cells = estimateCells([...pending]);
  const curves = pending.reduce((t, c) => t + curveSeconds(c), 0);
  const missing = prerequisites([...pending]).filter((p) => !prerequisiteCached(p));
  const w = Math.max(1, workers);
  // Prerequisites train side by side, one per worker, before any cell runs.
  const prerequisiteSeconds = Math.ceil(missing.length / w) * PREREQUISITE_SECONDS;
  return {
    seconds: (cells.total + curves) / w + prerequisiteSeconds,
    cellSeconds: cells.total,
    curveSeconds: curves,
    prerequisiteSeconds,
    missing,
    basis: cells.basis,
  };
}

/** The cells a claim reads under a label setting, by sweep name (only finished cells; a missing one shows as fewer seeds). */
function claimCells(claim: Claim, sweeps: readonly PlannedSweep[], labels: LabelSettingName): Record<string, CellResult[]> {
  const out: Record<string, CellResult[]> = {};
  for (const def of claim.sweeps) {
    const s = sweeps.find((x) => x.def.name === def.name && x.labels === labels)!;
    out[def.name] = s.cells.flatMap((c) => readCellResult(s.dir, c.id) ?? []);
  }
  return out;
}

/** The micro guardrail's FPR on benign training data, from its measurement.json (measured now if allowed). */
async function guardrailNote(used: boolean, worldSeed: number, measure: boolean, log: (line: string) => void): Promise<GuardrailNote> {
  if (!used) return { status: 'not used' };
  const world = ensureWorld(worldSeed);
  const dir = microGuardDir(MICRO_GUARD_RECIPE, loadWorld(world), 0);
  const file = join(dir, 'measurement.json');
  if (!existsSync(file) && measure) {
    log('measuring the micro guardrail (false-positive and false-negative rates; about a minute)');
    await measureMicroGuardrail(await ensureMicroGuardrail({ world }), { world });
  }
  if (!existsSync(file)) return { status: 'not measured', reason: `no ${file}; \`star-dss base guardrail\` measures it` };
  const m = JSON.parse(readFileSync(file, 'utf8')) as {
    guardrailId: string;
    benign: Record<string, { n: number; falsePositiveRate: number }>;
    accuracy?: GuardAccuracy;
  };
  const all = m.benign?.all;
  if (!all) return { status: 'not measured', reason: `${file} has no benign.all entry` };
  return {
    status: 'measured',
    guardrailId: m.guardrailId,
    falsePositiveRate: all.falsePositiveRate,
    bySource: m.benign,
    accuracy: m.accuracy,
    file,
  };
}

function readRuns(file: string): RunRecord[] {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { runs?: RunRecord[] };
    return Array.isArray(parsed.runs) ? parsed.runs : [];
  } catch {
    return [];
  }
}

/** What one invocation works on: the planned sweeps, their unique cells, and those not yet done. */
interface ReproducePlan {
  out: string;
  claims: readonly Claim[];
  settings: ReproduceSettings;
  seeds: number[];
  labelSettings: LabelSettingName[];
  sweeps: PlannedSweep[];
  cells: { dir: string; cell: Cell }[];
  pending: { dir: string; cell: Cell }[];
  estimate: Estimate;
}

function planRun(options: ReproduceOptions): ReproducePlan {
  const out = resolve(options.out);
  const claims = options.claims ?? CLAIMS;
  const settings = options.settings ?? MICRO_SETTINGS;
  const seeds = seedList(options.seeds);
  const labelSettings = [...new Set(options.labelSettings ?? LABEL_SETTINGS)];
  const sweeps = planReproduce(claims, settings, seeds, out, labelSettings);
  const cells = uniqueCells(sweeps);
  const pending = cells.filter(({ dir, cell }) => !isCellDone(dir, cell.id, { keepFailed: options.keepFailed }));
  const estimate = estimateReproduce(
    pending.map((p) => p.cell),
    options.workers,
  );
  return { out, claims, settings, seeds, labelSettings, sweeps, cells, pending, estimate };
}

/** The plan, sweep by sweep, and the wall-time estimate (the whole output of a dry run, less its cell list). */
function logPlan(plan: ReproducePlan, workers: number, log: (line: string) => void): void {
  const { out, claims, seeds, labelSettings, sweeps, cells, pending, estimate } = plan;
  log(
    `reproduce: ${claims.length} claims, ${sweeps.length} sweeps (label settings ${labelSettings.join(', ')}), ${seeds.length} seed(s) → ${out}`,
  );
  for (const s of sweeps) {
    const todo = s.cells.filter((c) => pending.some((p) => p.dir === s.dir && p.cell.id === c.id)).length;
    log(
      `  ${s.config.name.padEnd(31)} ${String(s.cells.length).padStart(3)} cells (${todo} to run)${s.def.subdir ? ` in ${s.def.subdir}/` : ''}: ${s.def.describe}`,
    );
  }
  const prereq = estimate.missing.length
    ? `${Math.round(estimate.prerequisiteSeconds / 60)} min to train ${estimate.missing.map((p) => (p.kind === 'base' ? `base model micro:${p.family}` : 'the micro guardrail')).join(' and ')} first`
    : 'no base model or guardrail to train';
  log(
    `${cells.length} unique cells, ${pending.length} to run; estimated ${(estimate.seconds / 60).toFixed(0)} min on ${workers} worker(s): ` +
      `cells ${(estimate.cellSeconds / 60).toFixed(0)} min + harm curves ${(estimate.curveSeconds / 60).toFixed(0)} min of one worker, shared by the workers; ${prereq}`,
  );
  log(`  (per-cell estimate: ${estimate.basis}; STAR annotation, cached per example, is not counted)`);
}

/** The sweeps, each resuming its finished cells; shared cells are found done by later sweeps. */
async function runSweeps(
  sweeps: readonly PlannedSweep[],
  options: ReproduceOptions,
  log: (line: string) => void,
): Promise<{ ran: number; failed: number; lost: string[] }> {
  let ran = 0;
  let failed = 0;
  const lost: string[] = [];
  for (const s of sweeps) {
    const result = await runSweep({
      config: s.config,
      out: s.dir,
      workers: options.workers,
      quiet: options.quiet,
      keepFailed: options.keepFailed,
      backend: options.backend,
      log,
    });
    ran += result.ran;
    failed += result.failed;
    lost.push(...result.lost.map((c) => c.id));
  }
  return { ran, failed, lost };
}

async function writeRunReports(sweeps: readonly PlannedSweep[], log: (line: string) => void): Promise<void> {
  const dirs = [...new Set(sweeps.map((s) => s.dir))];
  for (const dir of dirs) {
    const { files } = await writeReports(dir);
    for (const f of files) log(`wrote ${f}`);
  }
}

/** Appends this invocation to reproduce.json (the earlier ones kept) and returns every run recorded. */
function recordRun(plan: ReproducePlan, summary: ReproduceSummary, started: Date): RunRecord[] {
  const runsFile = join(plan.out, 'reproduce.json');
  const runs = [
    ...readRuns(runsFile),
    {
      started: started.toISOString(),
      seconds: summary.seconds,
      ran: summary.ran,
      reused: plan.cells.length - plan.pending.length,
      failed: summary.failed,
    },
  ];
  writeJsonAtomic(runsFile, {
    runs,
    sweeps: plan.sweeps.map((s) => ({
      name: s.config.name,
      labels: s.labels,
      dir: s.dir,
      config: s.config,
      cells: s.cells.map((c) => c.id),
    })),
  });
  return runs;
}

interface ClaimsInputs {
  judged: { claim: Claim; judgements: { labels: LabelSettingName; judgement: Judgement }[] }[];
  /** Every finished cell the claims read (a cell read by several claims more than once). */
  all: CellResult[];
  guardrail: GuardrailNote;
  runs: RunRecord[];
}

function claimsFileText(plan: ReproducePlan, options: ReproduceOptions, inputs: ClaimsInputs): string {
  const { seeds, settings, labelSettings, sweeps, cells, pending, estimate } = plan;
  const unique = new Map(inputs.all.map((c) => [c.id, c]));
  const failed = [...unique.values()].filter((c) => c.status === 'error');
  const titleOf = new Map(cells.map(({ cell }) => [cell.id, cellTitle(cell)]));
  return claimsMarkdown({
    date: new Date().toISOString(),
    codeVersion: codeVersion(),
    command: options.command ?? 'star-dss reproduce',
    seeds,
    settings,
    labelSettings,
    config: sweeps[0].config,
    claims: inputs.judged,
    guardrail: inputs.guardrail,
    runs: inputs.runs,
    cellSeconds: [...unique.values()].reduce((t, c) => t + c.seconds, 0),
    cellCount: unique.size,
    ...(pending.length ? { estimate: { seconds: estimate.seconds, workers: options.workers } } : {}),
    failed: failed.map((c) => ({ id: c.id, title: titleOf.get(c.id) ?? c.id, message: c.error?.message ?? 'error' })),
    subdirs: [...new Set(sweeps.filter((s) => s.def.subdir).map((s) => s.def.subdir!))],
  });
}

export async function runReproduce(options: ReproduceOptions): Promise<ReproduceSummary> {
  const log = options.log ?? ((line: string) => console.log(line));
  const started = new Date();
  const t0 = performance.now();
  const plan = planRun(options);
  const { out, claims, settings, sweeps, pending } = plan;
  const summary: ReproduceSummary = {
    out,
    sweeps,
    cells: plan.cells.length,
    pending: pending.length,
    estimateSeconds: plan.estimate.seconds,
    judgements: [],
    ran: 0,
    failed: 0,
    lost: [],
    seconds: 0,
  };
  logPlan(plan, options.workers, log);
  if (options.dryRun) {
    if (!options.quiet)
      for (const { dir, cell } of pending) log(`  ${cell.id}  ${cellTitle(cell)}${dir === out ? '' : `  [${dir.slice(out.length + 1)}/]`}`);
    return summary;
  }

  // 1. The sweeps.
  const { ran, failed, lost } = await runSweeps(sweeps, options, log);
  summary.ran = ran;
  summary.failed = failed;
  summary.lost = lost;
  // 2. The guardrail's measured error rates, then the reports over every cell of each run directory.
  const results = claims.map((claim) => ({
    claim,
    bySetting: plan.labelSettings.map((labels) => ({ labels, cells: claimCells(claim, sweeps, labels) })),
  }));
  const all = results.flatMap((r) => r.bySetting.flatMap((b) => Object.values(b.cells).flat()));
  const usesMicro = sweeps.some((s) => s.cells.some((c) => c.spec.kind === 'finetune' && c.spec.guardrail.spec === 'micro'));
  const guardrail = await guardrailNote(usesMicro, settings.shared.worldSeed ?? 0, options.measureGuardrail ?? true, log);
  await writeRunReports(sweeps, log);
  // 3. Judge every claim, record this run and write claims.md.
  const judged = results.map(({ claim, bySetting }) => ({
    claim,
    judgements: bySetting.map(({ labels, cells: byName }) => ({ labels, judgement: claim.judge(byName, settings.metrics) })),
  }));
  summary.judgements = judged.flatMap(({ claim, judgements }) =>
    judgements.map(({ labels, judgement }) => ({ id: claim.id, labels, verdict: judgement.verdict })),
  );
  summary.seconds = (performance.now() - t0) / 1000;
  const runs = recordRun(plan, summary, started);
  summary.claimsFile = join(out, 'claims.md');
  writeFileAtomic(summary.claimsFile, claimsFileText(plan, options, { judged, all, guardrail, runs }));
  for (const { claim, judgements } of judged)
    log(`${claim.id}: ${judgements.map(({ labels, judgement }) => `${judgement.verdict} (${labels})`).join(', ')}`);
  log(`wrote ${summary.claimsFile} (${(summary.seconds / 60).toFixed(1)} min)`);
  return summary;
}
