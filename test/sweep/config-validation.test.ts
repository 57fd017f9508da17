// Config validation beyond types: the sweep name becomes a folder (runs/<name>, plans/<name>.json), so it must
// stay a plain folder name; an unknown key anywhere in the config gets the nearest known key at its own level.
import { describe, expect, it } from 'vitest';
import { parseSweepConfig } from '../../harness/sweep/config.ts';

const base = { threats: ['benign'], strategies: ['sft'] };

describe('sweep config name', () => {
  it('a name with path separators or dots alone is rejected in one line naming the file, the field and the fix', () => {
    for (const name of ['../../x', 'a/b', 'a\\b', '..', '.', '', 'run 1', '/abs']) {
      expect(() => parseSweepConfig({ ...base, name }, 'x.yaml'), name).toThrow(/^x\.yaml: field 'name': .*Fix: .*$/);
    }
    expect(() => parseSweepConfig({ ...base, name: '../../x' }, 'x.yaml')).toThrow(/'\.\.\/\.\.\/x'/);
  });

  it('letters, digits, dots, underscores and dashes pass', () => {
    for (const name of ['sweep', 'paper-v2.1', 'a_b', '..x', 'x..']) expect(parseSweepConfig({ ...base, name }).name).toBe(name);
  });
});

describe('unknown keys: did you mean, at every level', () => {
  const cases: [Record<string, unknown>, string, string][] = [
    [{ train: { lrr: 1e-4 } }, 'train', 'lr'],
    [{ eval: { maxitems: 5 } }, 'eval', 'maxItems'],
    [{ eval: { decoding: { temperature: 0.2, topp: 0.9 } } }, 'eval.decoding', 'topP'],
    [{ star: { chunkWord: 3 } }, 'star', 'chunkWords'],
    [{ guardrails: [{ spec: 'micro', falseNegativeRat: 0.1 }] }, 'guardrails.0', 'falseNegativeRate'],
    [{ oldTask: [{ dataset: 'micro:sql', count: 1, cout: 2 }] }, 'oldTask.0', 'count'],
    [{ oldTask: { dataset: 'micro:sql', count: 1, datset: 'x' } }, 'oldTask', 'dataset'],
  ];
  for (const [extra, path, suggestion] of cases)
    it(`${path}: did you mean '${suggestion}'`, () => {
      expect(() => parseSweepConfig({ ...base, ...extra }, 'x.yaml')).toThrow(
        new RegExp(`^x\\.yaml: field '${path.replace('.', '\\.')}': .*Did you mean '${suggestion}'\\?$`),
      );
    });

  it('still suggests at the top level, and stays quiet when nothing is near', () => {
    expect(() => parseSweepConfig({ ...base, seed: [1] }, 'x.yaml')).toThrow(/Did you mean 'seeds'\?/);
    expect(() => parseSweepConfig({ ...base, train: { zzzzzzzz: 1 } }, 'x.yaml')).toThrow(
      /^x\.yaml: field 'train': Unrecognized key: "zzzzzzzz"$/,
    );
  });
});
