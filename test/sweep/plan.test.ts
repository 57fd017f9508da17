import { describe, expect, it } from 'vitest';
import { loadSweepConfig, parseSweepConfig, presetFile, presetNames } from '../../harness/sweep/config.ts';
import { parseShard, planSweep, shardCells } from '../../harness/sweep/plan.ts';

describe('sweep config', () => {
  it('every preset parses', () => {
    for (const name of presetNames) expect(() => loadSweepConfig(presetFile(name))).not.toThrow();
  });

  it('fills defaults and rejects bad fields in one line naming the field', () => {
    const config = parseSweepConfig({ threats: ['benign'], strategies: ['sft'] });
    expect(config.models).toEqual(['micro:llama']);
    expect(config.train.epochs).toBe(10);
    expect(() => parseSweepConfig({ threats: ['benign'], strategies: ['sft'], train: { epochs: -1 } }, 'x.yaml')).toThrow(
      /^x\.yaml: field 'train\.epochs': .*$/,
    );
    expect(() => parseSweepConfig({ threats: ['benign'], strategies: ['sft'], seed: [1] }, 'x.yaml')).toThrow(/Did you mean 'seeds'\?/);
    expect(() => presetFile('quik')).toThrow(/Did you mean 'quick'\?/);
  });

  it('old-task mix: the default covers both old tasks; one entry or a list is accepted and read as a list', () => {
    const base = { threats: ['benign'], strategies: ['sft'] };
    expect(parseSweepConfig(base).oldTask).toEqual([
      { dataset: 'micro:gsm8k', count: 50 },
      { dataset: 'micro:sql', count: 50 },
    ]);
    expect(parseSweepConfig({ ...base, oldTask: { dataset: 'micro:sql', count: 7 } }).oldTask).toEqual([
      { dataset: 'micro:sql', count: 7 },
    ]);
    expect(
      parseSweepConfig({
        ...base,
        oldTask: [
          { dataset: 'micro:sql', count: 7 },
          { dataset: 'micro:lore', count: 0 },
        ],
      }).oldTask,
    ).toHaveLength(2);
    expect(() => parseSweepConfig({ ...base, oldTask: [{ dataset: 'micro:sql' }] }, 'x.yaml')).toThrow(/^x\.yaml: field 'oldTask/);
  });
});

describe('planSweep', () => {
  const quick = loadSweepConfig(presetFile('quick'));

  it('the quick preset: one base cell plus every strategy × threat, with unique stable ids', () => {
    const cells = planSweep(quick);
    expect(cells).toHaveLength(1 + 6 * 5);
    expect(cells[0].spec.kind).toBe('base');
    expect(new Set(cells.map((c) => c.id)).size).toBe(cells.length);
    expect(planSweep(quick).map((c) => c.id)).toEqual(cells.map((c) => c.id));
    const aoa = cells.find((c) => c.spec.kind === 'finetune' && c.spec.threat.name === 'identity-shift')!;
    expect(aoa.spec.kind === 'finetune' && aoa.spec.harmful).toBe('micro:aoa');
    expect(aoa.labels.threatLabel).toBe('identity-shift[micro:aoa]');
    const tenPercent = cells.find((c) => c.labels.threatLabel === 'harmful-injection(ratio=0.1,total=300)');
    expect(tenPercent).toBeDefined();
    // The base cell measures the eval conditions of every registered threat.
    expect(cells[0].spec.conditionsOf.map((t) => t.name).sort()).toEqual([
      'backdoor',
      'benign',
      'harmful-injection',
      'identity-shift',
      'prefill',
      'response-adaptation',
    ]);
  });

  it('guardrail and false-negative-rate axes apply only to strategies that read a guardrail', () => {
    const config = parseSweepConfig({
      threats: [{ name: 'harmful-injection', ratio: 1 }],
      strategies: ['sft', 'rs', 'star-dss'],
      guardrails: ['micro', { spec: 'micro', falseNegativeRate: 0.4 }],
      seeds: [1, 2],
    });
    const specs = planSweep(config).flatMap((c) => (c.spec.kind === 'finetune' ? [c.spec] : []));
    const count = (name: string) => specs.filter((s) => s.strategy.name === name).length;
    expect([count('sft'), count('rs'), count('star-dss')]).toEqual([2, 4, 4]);
    expect(specs.find((s) => s.strategy.name === 'sft')?.guardrail.spec).toBe('none');
  });

  it('a changed default-valued parameter leaves the id alone; a changed value changes it', () => {
    const base = { threats: ['benign'], strategies: ['star-dss'] };
    const a = planSweep(parseSweepConfig(base))[1].id;
    const b = planSweep(parseSweepConfig({ ...base, strategies: [{ name: 'star-dss', lambda: 0.5 }] }))[1].id;
    const c = planSweep(parseSweepConfig({ ...base, strategies: [{ name: 'star-dss', lambda: 1 }] }))[1];
    expect(b).toBe(a);
    expect(c.id).not.toBe(a);
    expect(c.labels.strategyLabel).toBe('star-dss(lambda=1)');
  });

  it('shards partition the cells', () => {
    const cells = planSweep(quick);
    const shards = [1, 2, 3].map((index) => shardCells(cells, { index, count: 3 }));
    expect(
      shards
        .flat()
        .map((c) => c.id)
        .sort(),
    ).toEqual(cells.map((c) => c.id).sort());
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(() => parseShard('4/3')).toThrow(/--shard/);
  });
});
