// The reproduce plan: sweeps shared between claims run once, the judges find every cell the sweeps plan
// (labels cannot drift), the dry run fits the 3-hour budget, and the command's flags parse.
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
  it('runs each sweep once, whichever claims share it', () => {
    const names = sweeps.map((s) => s.def.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual([
      'worst-case',
      'harm-ratio',
      'safe-set',
      'response-adaptation',
      'guardrail-fnr',
      'mixed-responses',
      'qi-table4',
      'ablation-lambda',
      'ablation-chunk-1',
      'ablation-chunk-10',
      'ablation-chunk-20',
    ]);
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
    const unique = new Set(sweeps.flatMap((s) => s.cells.map((c) => `${s.dir}:${c.id}`)));
    // 13 + 37 + 10 + 19 + 25 + 10 + 13 + 10 + 3 × 4 planned; the 8 sweeps of the main directory share one base cell.
    expect(unique.size).toBe(143);
  });

  it('every judge finds 3 seeds in every finetuned row of the planned cells', () => {
    const bySweep = Object.fromEntries(sweeps.map((s) => [s.def.name, s.cells.map(resultOf)]));
    for (const claim of CLAIMS) {
      const cells = Object.fromEntries(claim.sweeps.map((d) => [d.name, bySweep[d.name]]));
      const j = claim.judge(cells, MICRO_SETTINGS.metrics);
      for (const row of j.rows) {
        const n = row.method === 'base model' ? 1 : 3;
        expect(row.safety?.n, `${claim.id}: ${row.setting} × ${row.method}`).toBe(n);
        if (MICRO_SETTINGS.metrics.oldTask.length) expect(row.oldTask?.n, `${claim.id}: ${row.setting} × ${row.method}`).toBe(n);
      }
      // All scores are equal: no "safer" comparison holds, capability (a "not lower" claim) is preserved, and
      // attacks that never hurt SFT leave the harm-ratio sweep and Qi's table unable to discriminate.
      const expected =
        { capability: 'holds', 'harm-ratio': 'inconclusive', 'deep-token-qi-table4': 'inconclusive' }[claim.id] ?? 'does not hold';
      expect(j.verdict, claim.id).toBe(expected);
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

  it('prints the cell count and an estimate within 3 hours on 2 workers with 3 seeds', async () => {
    const lines: string[] = [];
    const summary = await runReproduce({
      out: mkdtempSync(join(tmpdir(), 'star-dss-repro-')),
      seeds: 3,
      workers: 2,
      backend: 'none',
      dryRun: true,
      quiet: true,
      log: (l) => lines.push(l),
    });
    expect(summary.cells).toBe(143);
    expect(summary.pending).toBe(143);
    expect(summary.estimateSeconds).toBeGreaterThan(30 * 60);
    expect(summary.estimateSeconds).toBeLessThan(3 * 3600);
    const total = lines.find((l) => l.startsWith('143 unique cells, 143 to run; estimated '))!;
    expect(total).toContain(`estimated ${(summary.estimateSeconds / 60).toFixed(0)} min on 2 worker(s)`);
    expect(total).toContain('6 min to train base model micro:llama and the micro guardrail first'); // a fresh cache: 2 × 6 min on 2 workers
    expect(lines.some((l) => /worst-case +13 cells \(13 to run\)/.test(l))).toBe(true);
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

  it('rejects an unknown claim', () => {
    expect(() => parse(['reproduce', '--claim', 'worst'])).toThrow(/claim, Given: "worst"/);
  });
});
