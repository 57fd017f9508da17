// Label processing and per-response misses from a sweep config to a cell's guardrail: parsed with defaults,
// kept in the cell spec (and so the cell id and the result labels) only when not the default, and handed to the
// guardrail a cell builds.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../engine/tensor/index.ts';
import { parseSweepConfig } from '../../harness/sweep/config.ts';
import { guardrailLabel, guardrailSpec, planSweep } from '../../harness/sweep/plan.ts';
import { cellGuardrail, labelsOf } from '../../harness/sweep/run-cell.ts';
import { LmGuardrail } from '../../guardrails/lm.ts';
import { NoisyGuardrail } from '../../guardrails/noisy.ts';
import { writeWordGuard } from './helpers.ts';

const base = { threats: ['benign'], strategies: ['rs', 'sft'] };
const entry = (guardrail: unknown) => parseSweepConfig({ ...base, guardrails: [guardrail] }).guardrails[0];
const official = { temperature: 0.2, topK: 50, topP: 0.9 };

describe('label settings in sweep configs', () => {
  it('fills the paper formula by default and keeps it out of the cell spec', () => {
    expect(guardrailSpec(entry('micro'))).toEqual({ spec: 'micro', falseNegativeRate: 0 });
    expect(guardrailSpec(entry({ spec: 'micro' }))).toEqual({ spec: 'micro', falseNegativeRate: 0 });
    expect(guardrailSpec(entry({ spec: 'micro', labelSetting: 'paper' }))).toEqual({ spec: 'micro', falseNegativeRate: 0 });
  });

  it('resolves a named setting and numbers over it to one processing; the same numbers give the same spec', () => {
    expect(guardrailSpec(entry({ spec: 'micro', labelSetting: 'official' })).labelProcessing).toEqual(official);
    expect(guardrailSpec(entry({ spec: 'micro', labelTemperature: 0.2, labelTopK: 50, labelTopP: 0.9 }))).toEqual(
      guardrailSpec(entry({ spec: 'micro', labelSetting: 'official' })),
    );
    expect(guardrailSpec(entry({ spec: 'micro', labelSetting: 'official', labelTopP: 0.95 })).labelProcessing).toEqual({
      ...official,
      topP: 0.95,
    });
  });

  it('rejects bad label fields in one line naming them', () => {
    const bad: [unknown, RegExp][] = [
      [
        { spec: 'micro', labelSetting: 'authors' },
        /^x\.yaml: field 'guardrails\.0': labelSetting: Invalid option: expected one of "paper"\|"official"$/,
      ],
      [{ spec: 'micro', labelTopP: 0 }, /^x\.yaml: field 'guardrails\.0\.labelTopP': Too small: expected number to be >0$/],
      [{ spec: 'micro', labelTopK: 1.5 }, /^x\.yaml: field 'guardrails\.0': labelTopK: Invalid input: expected int, received number$/],
    ];
    for (const [guardrail, message] of bad) expect(() => parseSweepConfig({ ...base, guardrails: [guardrail] }, 'x.yaml')).toThrow(message);
  });

  it('gives guardrail-reading cells new ids and labels under another setting; cells without a guardrail are shared', () => {
    const plan = (guardrail: unknown) => planSweep(parseSweepConfig({ ...base, guardrails: [guardrail] }));
    const [paper, officialCells] = [plan('micro'), plan({ spec: 'micro', labelSetting: 'official' })];
    const id = (cells: ReturnType<typeof plan>, strategy: string) => cells.find((c) => c.labels.strategyLabel === strategy)!.id;
    expect(id(officialCells, 'rs')).not.toBe(id(paper, 'rs'));
    expect(id(officialCells, 'sft')).toBe(id(paper, 'sft'));
    const rs = officialCells.find((c) => c.labels.strategyLabel === 'rs')!;
    expect(labelsOf(rs).guardrail).toBe('micro [official labels]');
    expect(labelsOf(paper.find((c) => c.labels.strategyLabel === 'rs')!).guardrail).toBe('micro');
  });
});

describe('per-response misses in sweep configs', () => {
  it('are the default and enter the cell spec only with a false-negative rate', () => {
    expect(guardrailSpec(entry({ spec: 'micro', falseNegativeRate: 0.4 }))).toEqual({
      spec: 'micro',
      falseNegativeRate: 0.4,
      falseNegativesPer: 'response',
    });
    expect(guardrailSpec(entry({ spec: 'micro', falseNegativeRate: 0, falseNegativesPer: 'prefix' }))).toEqual({
      spec: 'micro',
      falseNegativeRate: 0,
    });
    const prefix = guardrailSpec(entry({ spec: 'micro', falseNegativeRate: 0.4, falseNegativesPer: 'prefix' }));
    expect(guardrailLabel(prefix)).toBe('micro [misses per prefix]');
    expect(guardrailLabel({ ...prefix, labelProcessing: official })).toBe('micro [official labels, misses per prefix]');
  });
});

describe("a cell's guardrail", () => {
  let dir: string;
  beforeAll(async () => {
    await initBackend('wasm');
    dir = await writeWordGuard();
  });

  it('reads with the label processing of its spec, and misses per response or per prefix as its spec says', async () => {
    const plain = await cellGuardrail({ spec: dir, falseNegativeRate: 0 }, 0, 1, 0);
    const processed = await cellGuardrail({ spec: dir, falseNegativeRate: 0, labelProcessing: official }, 0, 1, 0);
    const noisy = await cellGuardrail(
      { spec: dir, falseNegativeRate: 0.4, falseNegativesPer: 'response', labelProcessing: official },
      0.4,
      1,
      0,
    );
    const perPrefix = await cellGuardrail({ spec: dir, falseNegativeRate: 0.4, falseNegativesPer: 'prefix' }, 0.4, 1, 0);
    try {
      expect(plain).toBeInstanceOf(LmGuardrail);
      expect((processed as LmGuardrail).labelProcessing).toEqual(official);
      expect(processed.id).not.toBe(plain.id);
      expect(noisy).toBeInstanceOf(NoisyGuardrail);
      expect((noisy as NoisyGuardrail).per).toBe('response');
      expect(((noisy as NoisyGuardrail).inner as LmGuardrail).labelProcessing).toEqual(official);
      expect((perPrefix as NoisyGuardrail).per).toBe('prefix');
      // A judge's spec string takes the defaults.
      const judge = await cellGuardrail(dir, 0, 0, 0);
      expect(judge.id).toBe(plain.id);
      judge.dispose?.();
    } finally {
      for (const g of [plain, processed, noisy, perPrefix]) g.dispose?.();
    }
  });
});
