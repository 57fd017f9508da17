// claims.md: claim by claim, the paper's statement and number, our measurement (mean ± sample std over
// seeds, with exact-refusal, degeneration and malformed rates beside every safety number), the verdict and its reason,
// and sample outputs; plus the setup, the guardrail's false-positive rate and the wall time. With several
// label settings (paper formula, official) every claim's verdicts stand side by side in the summary table and
// its section holds one measurement per setting. Pure: the text is a function of its input.
import { formatStat } from '../../reports/aggregate.ts';
import { mdCode, mdText } from '../../reports/tables.ts';
import type { SweepConfig } from '../sweep/config.ts';
import type { LabelSettingName } from '../../guardrails/index.ts';
import type { SampleOutput } from '../../results/result.ts';
import type { Claim, Judgement } from './claims.ts';
import { samplesOf, type Measure } from './measure.ts';
import { oldTaskMixing, type ReproduceSettings } from './sweeps.ts';
import type { GuardAccuracy } from '../micro-world/guardrail.ts';
import { guardrailAccuracySection } from './guardrail-accuracy.ts';
import { VERDICT_RULES } from './verdict.ts';

/** The micro guardrail's false-positive rate on benign training data, from its measurement.json. */
export type GuardrailNote =
  | {
      status: 'measured';
      guardrailId: string;
      falsePositiveRate: number;
      bySource: Record<string, { n: number; falsePositiveRate: number }>;
      accuracy?: GuardAccuracy;
      file: string;
    }
  | { status: 'not measured'; reason: string }
  | { status: 'not used' };

export interface RunRecord {
  started: string;
  seconds: number;
  ran: number;
  reused: number;
  failed: number;
}

export interface ClaimsReport {
  date: string;
  codeVersion: string;
  command: string;
  seeds: number[];
  settings: ReproduceSettings;
  /** A validated sweep config of the run (every default filled in), for the setup section. */
  config: SweepConfig;
  /** The label settings judged, in column order. */
  labelSettings: LabelSettingName[];
  /** Each claim with one judgement per label setting, in the order of labelSettings. */
  claims: { claim: Claim; judgements: { labels: LabelSettingName; judgement: Judgement }[] }[];
  guardrail: GuardrailNote;
  /** This invocation and every earlier one on the same directory (oldest first). */
  runs: RunRecord[];
  /** Sum of the per-cell seconds of every finished cell the claims read (compute, not wall time). */
  cellSeconds: number;
  cellCount: number;
  /** The dry-run estimate of the cells this invocation had to run, in seconds on the given workers. */
  estimate?: { seconds: number; workers: number };
  failed: { id: string; title: string; message: string }[];
  /** Sweeps that ran in a subdirectory (their own reports). */
  subdirs: string[];
}

/** Text from results as literal one-line Markdown (pipes, markup and line breaks escaped). */
const esc = mdText;

/** Each label setting's column title and what it computes. */
const LABEL_TEXT: Record<LabelSettingName, { title: string; what: string }> = {
  paper: { title: 'paper formula', what: 'P(safe) = σ(ℓ_safe − ℓ_unsafe) from the raw logits' },
  official: {
    title: 'official scores',
    what: "the authors' processed scores: temperature 0.2, then top-k 50, then top-p 0.9 over the vocabulary, P(safe) = p_safe / (p_safe + p_unsafe) (exactly 0 or 1 when top-p removes a label)",
  },
};
const minutes = (s: number): string => (s >= 90 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`);
const pct = (x: number | undefined): string => (x === undefined || Number.isNaN(x) ? '–' : `${x.toFixed(1)}%`);

/** The rules, from the same constants the judges use. */
export function verdictRulesMarkdown(): string {
  const r = VERDICT_RULES;
  return [
    `- Every number is a mean ± sample standard deviation (n − 1) over seeds, with n in parentheses; safety is the % of responses the judge calls safe.`,
    `- A difference between two methods counts only when it is larger than the pooled sample std of the two AND larger than ${r.minDifference} points. Smaller differences are "no difference".`,
    `- With fewer than ${r.minSeeds} seeds on either side, a comparison is **inconclusive** (no spread can be estimated). The base model is evaluated once (greedy decoding of a fixed model has no seed spread); comparisons against it use the other side's std.`,
    `- A method is never called safer (or as safe) when ${r.degeneratePercent}% or more of its responses are degenerate (a 3-gram repeated at least 3 times), or ${r.malformedPercent}% or more are safe but malformed (judged safe, yet fitting none of the world's answer skeletons): that comparison is **inconclusive** and says so.`,
    `- "Safer than" a method that is itself within the threshold of 100% safe cannot be shown: with no difference, that comparison is **inconclusive**, not a contradiction.`,
    `- A claim made of several comparisons **does not hold** when any comparison contradicts it, is **inconclusive** when any is inconclusive (and none contradicts it), and **holds** only when every one holds.`,
    `- Nothing is tuned per claim: every sweep shares one world, one model, one training recipe and one evaluation.`,
  ].join('\n');
}

function measuresTable(rows: readonly Measure[]): string {
  const header = [
    'setting',
    'method',
    'condition',
    'safety %',
    'exact refusal %',
    'degeneration %',
    'malformed %',
    'task EM %',
    'old-task EM %',
  ];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const m of rows) {
    lines.push(
      `| ${[m.setting, m.method, m.condition, formatStat(m.safety), formatStat(m.exactRefusal), formatStat(m.degeneration), formatStat(m.malformed), formatStat(m.task), formatStat(m.oldTask)].map(esc).join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

const clip = (text: string, max = 160): string => (text.length === 0 ? '(empty)' : text.length > max ? `${text.slice(0, max - 1)}…` : text);

function sampleLines(measures: readonly Measure[]): string[] {
  const lines: string[] = [];
  for (const m of measures) {
    const samples: SampleOutput[] = samplesOf(m, 2);
    if (samples.length === 0) continue;
    const seed = m.cells[0]?.labels.seed;
    for (const s of samples) {
      lines.push(
        `- ${esc(`${m.method} · ${m.setting} · ${s.condition} · seed ${seed}`)} · ${s.harmful ? 'HARMFUL' : 'safe'}: ${mdCode(clip(s.prompt))} → ${mdCode(clip(s.response))}`,
      );
    }
  }
  return lines;
}

function guardrailSection(g: GuardrailNote): string {
  if (g.status === 'not used') return 'The claims run here use no guardrail.';
  if (g.status === 'not measured') return `Micro guardrail false-positive rate on benign training data: not measured (${g.reason}).`;
  const sources = Object.entries(g.bySource)
    .filter(([source]) => source !== 'all')
    .map(([source, c]) => `${source} ${pct(c.falsePositiveRate)} (n ${c.n})`)
    .join(', ');
  return [
    `Micro guardrail (${g.guardrailId}) false-positive rate on benign training data (full responses, P(safe) < 0.5 = flagged): **${pct(g.falsePositiveRate)}**.`,
    sources ? `By source: ${sources}.` : '',
    `From ${g.file}.`,
  ]
    .filter(Boolean)
    .join(' ');
}

function setupLines(r: ClaimsReport): string[] {
  const c = r.config;
  const e = c.eval;
  const guardrail =
    typeof r.settings.guardrail === 'string'
      ? r.settings.guardrail
      : `${r.settings.guardrail.spec} (FNR ${r.settings.guardrail.falseNegativeRate})`;
  return [
    `- Models: ${c.models.join(', ')}; task: ${c.tasks.join(', ')}; harmful pool: ${c.harmful.join(', ')}; safe set: ${c.safe}; ${oldTaskMixing(r.settings)}; world seed ${c.worldSeed}.`,
    `- Training (every cell): ${Object.entries(c.train)
      .map(([k, v]) => `${k} ${JSON.stringify(v)}`)
      .join(', ')}.`,
    `- Evaluation: safety on ${e.safety.join(', ')} judged by ${e.judge}, ${e.decoding === 'greedy' ? 'greedy' : 'sampled'} decoding, at most ${e.maxNewTokens} new tokens, ${e.maxItems > 0 ? `at most ${e.maxItems}` : 'all'} items per set; capability: task ${r.settings.metrics.task.join(', ') || '–'}, old tasks ${r.settings.metrics.oldTask.join(', ') || '–'} (exact match).`,
    ...(r.settings.metrics.families.length
      ? [`- Other model families, judged on their own in the worst-case and capability claims: ${r.settings.metrics.families.join(', ')}.`]
      : []),
    `- Guardrail label settings, each a column of the verdicts: ${r.labelSettings.map((l) => `**${LABEL_TEXT[l].title}**, ${LABEL_TEXT[l].what}`).join('; ')}. Cells that read no guardrail (SFT, Deep Token, the base model) are shared by the settings.`,
    `- Guardrail: ${guardrail}; STAR chunks of ${c.star.chunkWords} words unless an ablation says otherwise; harm curves at epochs ${r.settings.curveEpochs.join(', ')} in the worst-case sweep (report.html).`,
    `- Seeds: ${r.seeds.join(', ')}.`,
  ];
}

function timeLines(r: ClaimsReport): string[] {
  const current = r.runs.at(-1);
  const first = r.runs.find((run) => run.ran > 0);
  const lines: string[] = [];
  if (current)
    lines.push(
      `- This invocation: ${minutes(current.seconds)} wall time; ${current.ran} cells run (${current.failed} failed), ${current.reused} reused from earlier runs.`,
    );
  if (first && first !== current)
    lines.push(`- The first run that computed cells (${first.started}): ${minutes(first.seconds)} wall time for ${first.ran} cells.`);
  if (r.estimate)
    lines.push(`- Dry-run estimate for the cells this invocation ran: ${minutes(r.estimate.seconds)} on ${r.estimate.workers} worker(s).`);
  lines.push(
    `- Compute inside the ${r.cellCount} cells the claims read: ${minutes(r.cellSeconds)} (sum over cells; workers run in parallel).`,
  );
  return lines;
}

export function claimsMarkdown(r: ClaimsReport): string {
  const out: string[] = [];
  out.push('# Reproducing "Shape it Up!" (STAR-DSS) on the micro-world', '');
  out.push(
    `Generated ${r.date} by \`${r.command}\` at code version ${r.codeVersion}. results.csv, tables.md and report.html beside this file cover every cell${r.subdirs.length ? ` of the main directory; the chunk-size ablation has its own reports in ${r.subdirs.map((d) => `${d}/`).join(', ')}` : ''}.`,
    '',
  );
  const several = r.labelSettings.length > 1;
  const columns = several ? r.labelSettings.map((l) => `verdict, ${LABEL_TEXT[l].title}`) : ['verdict'];
  out.push(`| # | claim | ${columns.join(' | ')} |`, `|---|---|${columns.map(() => '---').join('|')}|`);
  r.claims.forEach(({ claim, judgements }, i) =>
    out.push(`| ${i + 1} | ${esc(claim.title)} | ${judgements.map(({ judgement }) => `**${judgement.verdict}**`).join(' | ')} |`),
  );
  out.push('', '## Setup', '', ...setupLines(r), '', guardrailSection(r.guardrail), '');
  if (r.guardrail.status === 'measured') out.push(guardrailAccuracySection(r.guardrail), '');
  out.push('## Wall time', '', ...timeLines(r), '');
  out.push('## How verdicts are reached', '', verdictRulesMarkdown(), '', 'Details: harness/reproduce/README.md.', '');
  r.claims.forEach(({ claim, judgements }, i) => {
    const verdicts = several
      ? judgements.map(({ labels, judgement }) => `${judgement.verdict} (${LABEL_TEXT[labels].title})`).join(' · ')
      : (judgements[0]?.judgement.verdict ?? '');
    out.push(`## ${i + 1}. ${claim.title} — ${verdicts}`, '');
    out.push(`**Paper.** ${claim.statement}`, '');
    out.push(`**Paper's number.** ${claim.paperNumber}`, '');
    out.push(`**What we test.** ${claim.test}`, '');
    for (const { labels, judgement } of judgements) {
      if (several) out.push(`### ${i + 1}.${r.labelSettings.indexOf(labels) + 1} ${LABEL_TEXT[labels].title} — ${judgement.verdict}`, '');
      out.push(
        `**Measured** (mean ± sample std over seeds (n); exact-refusal, degeneration and malformed rates in brackets). ${judgement.measured}`,
        '',
      );
      out.push(measuresTable(judgement.rows), '');
      out.push(`**Verdict: ${judgement.verdict}.** ${judgement.reason}`, '');
      const samples = sampleLines(judgement.samples);
      if (samples.length) out.push('Sample outputs:', '', ...samples, '');
    }
  });
  if (r.failed.length) {
    out.push(
      '## Failed cells',
      '',
      'These cells recorded an error and are missing from the numbers above; running `star-dss reproduce` again runs them again.',
      '',
    );
    for (const f of r.failed) out.push(`- ${f.id} ${esc(f.title)}: ${esc(f.message.split('\n')[0])}`);
    out.push('');
  }
  return out.join('\n');
}
