import { describe, expect, it } from 'vitest';
import { aggregate } from '../../reports/aggregate.ts';
import { makeFakeRun } from './fake-run.ts';

describe('grouping', () => {
  it('a strategy that reads no guardrail appears in the table of every guardrail and FNR of its data', () => {
    const { cells } = makeFakeRun();
    const relabelled = cells.map((c) =>
      c.labels.strategy === 'sft' ? { ...c, labels: { ...c.labels, guardrail: 'none', falseNegativeRate: 0 } } : c,
    );
    const { groups } = aggregate(relabelled);
    expect(groups.map((g) => g.key.falseNegativeRate)).toEqual([0, 0.4]);
    for (const g of groups) expect(g.strategies).toContain('sft');
    // In the FNR 0.4 table the sft row is the same (guardrail-free) cells as at FNR 0.
    const sftAt = (i: number) => groups[i].rows.find((r) => r.strategy === 'sft' && r.threat === groups[0].rows[0].threat);
    expect(sftAt(1)?.safety).toEqual(sftAt(0)?.safety);
  });
});
