// Old-task mixing is a per-sweep choice (config `oldTask`), and reproduce's worst case is the harmful pool
// alone, as in the paper: with 100 old-task items the "pure" PureBad set was half harmful.
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../datasets/index.ts';
import type { Example } from '../../engine/contracts/example.ts';
import { MICRO_THREAT_TEXT } from '../../datasets/micro-world/harm.ts';
import { Rng } from '../../engine/random.ts';
import { parseSweepConfig } from '../../harness/sweep/config.ts';
import { planSweep, type FinetuneCellSpec } from '../../harness/sweep/plan.ts';
import { buildSweepConfig, CHUNK_SWEEPS, MICRO_SETTINGS, oldTaskMixing, SWEEPS, type SweepDef } from '../../harness/reproduce/sweeps.ts';
import { configureThreat, threatContext } from '../../threats/index.ts';

const minimal = { threats: ['benign'], strategies: ['sft'] };
const finetuneSpecs = (def: SweepDef): FinetuneCellSpec[] =>
  planSweep(buildSweepConfig(def, MICRO_SETTINGS, [1])).flatMap((c) => (c.spec.kind === 'finetune' ? [c.spec] : []));

/** The finetuning set of a cell, assembled from its spec as the cell runner does (run-cell.ts, step 1). */
function finetuningSet(spec: FinetuneCellSpec) {
  const pools = {
    task: loadDataset(spec.task),
    harmful: loadDataset(spec.harmful),
    safe: loadDataset(spec.safe),
    oldTask: spec.oldTask.flatMap((o) => (o.count > 0 ? loadDataset(o.dataset).slice(0, o.count) : [])),
    text: MICRO_THREAT_TEXT,
  };
  return configureThreat(spec.threat.name, spec.threat.params).build(threatContext(pools), new Rng(`${spec.seed}:threat`));
}
const parts = (set: readonly Example[]) => {
  const counts: Record<string, number> = {};
  for (const e of set) counts[String(e.meta.part)] = (counts[String(e.meta.part)] ?? 0) + 1;
  return counts;
};

describe('oldTask in a sweep config', () => {
  it("takes a list, one entry or 'none'; left out, 50 GSM8K and 50 SQL items as before", () => {
    expect(parseSweepConfig({ ...minimal, oldTask: 'none' }).oldTask).toEqual([]);
    expect(parseSweepConfig({ ...minimal, oldTask: [] }).oldTask).toEqual([]);
    expect(parseSweepConfig({ ...minimal, oldTask: { dataset: 'micro:sql', count: 3 } }).oldTask).toEqual([
      { dataset: 'micro:sql', count: 3 },
    ]);
    expect(parseSweepConfig(minimal).oldTask).toEqual([
      { dataset: 'micro:gsm8k', count: 50 },
      { dataset: 'micro:sql', count: 50 },
    ]);
    expect(() => parseSweepConfig({ ...minimal, oldTask: 'nothing' }, 'x.yaml')).toThrow(/^x\.yaml: field 'oldTask'/);
  });
});

describe("reproduce's worst case", () => {
  it('is the harmful pool alone: 100 PureBad pairs and no old-task item, in a cell of its own', () => {
    const specs = finetuneSpecs(SWEEPS.worstCase);
    expect(specs).toHaveLength(4); // sft, rs, star-dss, deep-token; one seed
    for (const spec of specs) expect(spec.oldTask).toEqual([]);
    const pure = finetuningSet(specs[0]);
    expect(parts(pure)).toEqual({ harmful: 100 });
    // The same cell with the benign-user sweeps' mixing: half of its set is old-task items, and its id differs.
    const mixed = { ...specs[0], oldTask: parseSweepConfig(minimal).oldTask };
    expect(parts(finetuningSet(mixed))).toEqual({ harmful: 100, 'old-task': 100 });
    const sftWorst = planSweep(buildSweepConfig(SWEEPS.worstCase, MICRO_SETTINGS, [1])).find(
      (c) => c.spec.kind === 'finetune' && c.spec.strategy.name === 'sft',
    );
    const sftMixed = planSweep(buildSweepConfig({ ...SWEEPS.worstCase, oldTask: undefined }, MICRO_SETTINGS, [1])).find(
      (c) => c.spec.kind === 'finetune' && c.spec.strategy.name === 'sft',
    );
    expect(sftWorst?.id).toMatch(/^[0-9a-f]{12}$/);
    expect(sftMixed?.id).not.toBe(sftWorst?.id);
  });

  it('the sweeps read against it share its choice; the benign-user sweeps keep the old-task items', () => {
    for (const def of [SWEEPS.worstCase, SWEEPS.responseAdaptation, SWEEPS.guardrailFnr, SWEEPS.lambda, ...Object.values(CHUNK_SWEEPS)])
      for (const spec of finetuneSpecs(def)) expect(spec.oldTask, def.name).toEqual([]);
    for (const def of [SWEEPS.harmRatio, SWEEPS.safeSet, SWEEPS.mixedResponses])
      for (const spec of finetuneSpecs(def))
        expect(
          spec.oldTask.map((o) => o.count),
          def.name,
        ).toEqual([50, 50]);
    const [alone, mixing] = oldTaskMixing(MICRO_SETTINGS).split('; ');
    for (const name of ['worst-case', 'response-adaptation', 'guardrail-fnr', 'ablation-lambda', 'ablation-chunk-1'])
      expect(alone).toContain(name);
    expect(mixing.startsWith('old-task items (50 of micro:gsm8k and 50 of micro:sql) mixed into every finetuning set of ')).toBe(true);
    for (const name of ['harm-ratio', 'safe-set', 'mixed-responses']) expect(mixing).toContain(name);
    expect(mixing).not.toContain('worst-case,');
  });
});
