// The reproduce plan: sweeps shared between claims run once per label setting, cells that read no guardrail are
// shared by the settings, the judges find every cell the sweeps plan (labels cannot drift), the dry run
// counts and estimates the cells, and the command's flags parse.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLAIMS } from '../../harness/reproduce/claims.ts';
import { planReproduce, runReproduce } from '../../harness/reproduce/reproduce.ts';
import { MICRO_SETTINGS, seedList } from '../../harness/reproduce/sweeps.ts';
import { reproduceCommand, type ReproduceArgs } from '../../harness/commands/reproduce.ts';
import { configureThreat } from '../../threats/index.ts';
import { MICRO_THREAT_TEXT } from '../../datasets/micro-world/harm.ts';
import { cellResult, type CellResult } from '../../results/result.ts';
import type { Cell } from '../../harness/sweep/plan.ts';
import { labelsOf } from '../../harness/sweep/run-cell.ts';

const out = '/tmp/never-written';
const sweeps = planReproduce(CLAIMS, MICRO_SETTINGS, seedList(3), out);
const NAMES = [
  'worst-case',
  'worst-case-families',
  'harm-ratio',
  'safe-set',
  'response-adaptation',
  'guardrail-fnr',
  'mixed-responses',
  'capability-families',
  'qi-table4',
  'ablation-lambda',
  'ablation-chunk-1',
  'ablation-chunk-10',
  'ablation-chunk-20',
];
/** Cells of one (directory, id), counted once. */
const unique = (ss: typeof sweeps) => new Set(ss.flatMap((s) => s.cells.map((c) => `${s.dir}:${c.id}`)));

/** A result with the labels run-cell.ts gives a cell (labelsOf), and a value for every eval condition and capability set. */
function resultOf(cell: Cell): CellResult {
  const s = cell.spec;
  const conditions = [
    ...new Set(
      s.conditionsOf.flatMap((t) =>
        configureThreat(t.name, t.params)
          .evalConditions(MICRO_THREAT_TEXT)
          .map((c) => c.name),
      ),
    ),
  ];
  return cellResult.parse({
    id: cell.id,
    status: 'ok',
    labels: labelsOf(cell),
    safety: conditions.flatMap((condition) =>
      s.eval.safety.map((dataset) => ({
        condition,
        dataset,
        judge: 'oracle',
        n: 10,
        safetyScore: 50,
        harmfulRate: 50,
        exactRefusalRate: 50,
        degenerationRate: 0,
        perCategory: {},
      })),
    ),
    capability: s.eval.capability.map((dataset) => ({
      dataset,
      metric: { name: 'exact-match', higherIsBetter: true, version: 1 },
      n: 10,
      value: 50,
    })),
    curve: [],
    samples: [],
    trajectories: [],
    seconds: 1,
  });
}

describe('reproduce plan', () => {
  it('runs each sweep once per label setting, whichever claims share it', () => {
    const names = sweeps.map((s) => s.config.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual([...NAMES, ...NAMES.map((n) => `${n}.official`)]);
    expect(sweeps.map((s) => s.labels)).toEqual([...NAMES.map(() => 'paper'), ...NAMES.map(() => 'official')]);
    // 4 strategies × 3 seeds + base; the harm curve only in the worst case.
    const worst = sweeps[0];
    expect(worst.cells).toHaveLength(13);
    expect(worst.config.eval.curveEpochs).toEqual([2, 4, 6, 8]);
    expect(sweeps[1].config.eval.curveEpochs).toEqual([]);
    expect(sweeps.find((s) => s.def.name === 'ablation-chunk-10')!.config.star.chunkWords).toBe(10);
    expect(sweeps.find((s) => s.def.name === 'ablation-chunk-10')!.dir).toBe(join(out, 'chunk-10'));
  });

  it('shares identical cells: every sweep of one directory plans the same base cell, run once', () => {
    const fnr = sweeps.find((s) => s.def.name === 'guardrail-fnr')!;
    const lambda = sweeps.find((s) => s.def.name === 'ablation-lambda')!;
    const baseOf = (cells: Cell[]) => cells.find((c) => c.spec.kind === 'base')!.id;
    expect(baseOf(fnr.cells)).toBe(baseOf(lambda.cells));
    // Paper formula, llama: 13 + 37 + 10 + 19 + 25 + 10 + 13 + 10 + 3 × 4 = 149 planned; the main directory's
    // sweeps share one base cell, and the worst case (harm curves) has its own: 149 − 6 = 143.
    // Other families: worst case 2 × (4 strategies × 3 seeds) + 2 base = 26; capability 2 × (3 threats × 3 × 3)
    // + the same 2 base = 54 new: 143 + 26 + 54 = 223.
    const paper = sweeps.filter((s) => s.labels === 'paper');
    expect(unique(paper).size).toBe(223);
    // Official scores change only the cells that read the guardrail (rs and star-dss): worst case 6, harm ratio
    // 4 × 6 = 24, safe set 6, response adaptation 18, FNR 24, mixed 6, λ 9, chunks 9, families 12 + 36 = 150.
    expect(unique(sweeps).size).toBe(223 + 150);
  });

  it('gives the official sweeps the label setting in every guardrail entry, and the same cells where no guardrail is read', () => {
    const at = (name: string) => sweeps.find((s) => s.config.name === name)!;
    expect(at('worst-case.official').config.guardrails).toEqual([
      { spec: 'micro', falseNegativeRate: 0, falseNegativesPer: 'response', labelSetting: 'official' },
    ]);
    expect(at('guardrail-fnr.official').config.guardrails.map((g) => typeof g !== 'string' && g.labelSetting)).toEqual([
      'official',
      'official',
      'official',
      'official',
    ]);
    expect(at('worst-case').config.guardrails).toEqual(['micro']);
    const ids = (name: string, strategy: string) =>
      at(name)
        .cells.filter((c) => c.labels.strategyLabel === strategy)
        .map((c) => c.id);
    expect(ids('worst-case.official', 'sft')).toEqual(ids('worst-case', 'sft'));
    expect(ids('worst-case.official', 'deep-token')).toEqual(ids('worst-case', 'deep-token'));
    for (const id of ids('worst-case.official', 'rs')) expect(ids('worst-case', 'rs')).not.toContain(id);
    // The families' sweeps run on qwen2 and gpt2 only.
    expect(at('capability-families').config.models).toEqual(['micro:qwen2', 'micro:gpt2']);
    expect(new Set(at('worst-case-families.official').cells.map((c) => c.spec.model))).toEqual(new Set(['micro:qwen2', 'micro:gpt2']));
  });

  it('every judge finds 3 seeds in every finetuned row of the planned cells, under each label setting', () => {
    for (const labels of ['paper', 'official'] as const) {
      const bySweep = Object.fromEntries(sweeps.filter((s) => s.labels === labels).map((s) => [s.def.name, s.cells.map(resultOf)]));
      for (const claim of CLAIMS) {
        const cells = Object.fromEntries(claim.sweeps.map((d) => [d.name, bySweep[d.name]]));
        const j = claim.judge(cells, MICRO_SETTINGS.metrics);
        for (const row of j.rows) {
          const n = row.method === 'base model' ? 1 : 3;
          const what = `${labels} ${claim.id}: ${row.setting} × ${row.method}`;
          expect(row.safety?.n, what).toBe(n);
          if (MICRO_SETTINGS.metrics.oldTask.length) expect(row.oldTask?.n, what).toBe(n);
          // A row reads the cells of one label setting: official rows of guardrail-reading strategies say so.
          for (const c of row.cells)
            if (c.labels.guardrail !== 'none' && c.labels.kind === 'finetune')
              expect(c.labels.guardrail, what).toBe(labels === 'paper' ? 'micro' : 'micro [official labels]');
        }
        // All scores are equal: no "safer" comparison holds, capability (a "not lower" claim) is preserved, and
        // attacks that never hurt SFT leave the harm-ratio sweep and Qi's table unable to discriminate.
        const expected =
          { capability: 'holds', 'harm-ratio': 'inconclusive', 'deep-token-qi-table4': 'inconclusive' }[claim.id] ?? 'does not hold';
        expect(j.verdict, `${labels} ${claim.id}`).toBe(expected);
      }
      // The worst-case and capability claims read the other families, on their own rows.
      const families = CLAIMS.filter((c) => ['worst-case', 'capability'].includes(c.id)).map((claim) =>
        claim.judge(Object.fromEntries(claim.sweeps.map((d) => [d.name, bySweep[d.name]])), MICRO_SETTINGS.metrics),
      );
      for (const j of families)
        expect(new Set(j.rows.flatMap((r) => r.cells.map((c) => c.labels.model)))).toEqual(
          new Set(['micro:llama', 'micro:qwen2', 'micro:gpt2']),
        );
    }
  });

  it('rejects two different sweeps under one name', () => {
    const twin = { ...CLAIMS[0], sweeps: [{ ...CLAIMS[0].sweeps[0], strategies: ['sft'] }] };
    expect(() => planReproduce([CLAIMS[0], twin], MICRO_SETTINGS, [1], out)).toThrow(/two different sweeps are named 'worst-case'/);
  });
});

describe('reproduce --dry-run', () => {
  beforeAll(() => {
    process.env.STAR_DSS_CACHE = mkdtempSync(join(tmpdir(), 'star-dss-repro-cache-'));
  });

  it('prints the cell count and the estimate of both label settings on 2 workers with 3 seeds', async () => {
    const dryRun = async (labelSettings?: ('paper' | 'official')[]) => {
      const lines: string[] = [];
      const summary = await runReproduce({
        out: mkdtempSync(join(tmpdir(), 'star-dss-repro-')),
        seeds: 3,
        workers: 2,
        backend: 'none',
        dryRun: true,
        quiet: true,
        ...(labelSettings ? { labelSettings } : {}),
        log: (l) => lines.push(l),
      });
      return { summary, lines };
    };
    const { summary, lines } = await dryRun();
    expect(summary.cells).toBe(373);
    expect(summary.pending).toBe(373);
    const total = lines.find((l) => l.startsWith('373 unique cells, 373 to run; estimated '))!;
    expect(total).toContain(`estimated ${(summary.estimateSeconds / 60).toFixed(0)} min on 2 worker(s)`);
    // A fresh cache: three base models and the guardrail, 2 at a time on 2 workers: 2 × 6 min.
    expect(total).toContain(
      '12 min to train base model micro:llama and the micro guardrail and base model micro:qwen2 and base model micro:gpt2 first',
    );
    expect(lines[0]).toContain('26 sweeps (label settings paper, official)');
    expect(lines.some((l) => /worst-case\.official +13 cells \(13 to run\)/.test(l))).toBe(true);
    // The paper formula alone plans the 223 cells of the first setting, for less time.
    const paper = await dryRun(['paper']);
    expect(paper.summary.cells).toBe(223);
    expect(paper.summary.estimateSeconds).toBeLessThan(summary.estimateSeconds);
  });
});

describe('reproduce command flags', () => {
  const parse = (args: string[]): ReproduceArgs => {
    let parsed: ReproduceArgs | undefined;
    yargs(args)
      .command({ ...reproduceCommand, handler: (a) => void (parsed = a) })
      .exitProcess(false)
      .strict()
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseSync();
    if (parsed === undefined) throw new Error('handler not reached');
    return parsed;
  };

  it('parses defaults and flags', () => {
    const d = parse(['reproduce']);
    expect(d.out).toBe('runs/reproduce');
    expect(d.seeds).toBe(3);
    expect(d.dryRun).toBe(false);
    expect(d.claim).toEqual([]);
    expect(d.labelSetting).toEqual(['paper', 'official']);
    expect(parse(['reproduce', '--label-setting', 'official']).labelSetting).toEqual(['official']);
    const a = parse([
      'reproduce',
      '--out',
      'x',
      '--seeds',
      '1',
      '--workers',
      '2',
      '--dry-run',
      '--quiet',
      '--claim',
      'harm-ratio',
      '--claim',
      'worst-case',
    ]);
    expect([a.out, a.seeds, a.workers, a.dryRun, a.quiet]).toEqual(['x', 1, 2, true, true]);
    expect(a.claim).toEqual(['harm-ratio', 'worst-case']);
  });

  it('rejects an unknown claim or label setting', () => {
    expect(() => parse(['reproduce', '--claim', 'worst'])).toThrow(/claim, Given: "worst"/);
    expect(() => parse(['reproduce', '--label-setting', 'authors'])).toThrow(/label-setting, Given: "authors"/);
  });
});
