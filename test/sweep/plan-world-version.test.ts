// The micro-world generator's version is part of what identifies `micro:` data: a world built by other code
// (WORLD_VERSION bumped) gives the cells that read micro-world data new ids. Version 2, current when cell ids
// were first made, leaves the ids as they were (plan-references.test.ts pins them).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { loadSweepConfig, parseSweepConfig, presetFile } from '../../harness/sweep/config.ts';
import { planSweep } from '../../harness/sweep/plan.ts';

vi.mock('../../datasets/micro-world/build.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../../datasets/micro-world/build.ts')>()),
  WORLD_VERSION: 3,
}));

describe('micro-world version in cell ids', () => {
  it('a bumped world version changes the ids of micro-world cells and records the version in the spec', () => {
    const cells = planSweep(loadSweepConfig(presetFile('smoke')));
    expect(cells.map((c) => c.id)).not.toContain('67f4e1a7fce7');
    expect(cells.map((c) => c.id)).not.toContain('f67d5826b92a');
    expect(cells[0].spec.microVersions).toEqual({ world: 3 });
  });

  it('cells that read no micro-world content are left alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'world-version-'));
    try {
      const file = (name: string) => {
        writeFileSync(join(dir, name), `${JSON.stringify({ messages: [{ role: 'user', content: name }] })}\n`);
        return join(dir, name);
      };
      mkdirSync(join(dir, 'model'));
      writeFileSync(join(dir, 'model', 'config.json'), '{}');
      const config = parseSweepConfig({
        models: [join(dir, 'model')],
        tasks: [file('task.jsonl')],
        harmful: [file('harmful.jsonl')],
        safe: file('safe.jsonl'),
        oldTask: { dataset: 'micro:sql', count: 0 },
        threats: ['benign'],
        strategies: ['sft'],
        eval: { safety: [file('eval.jsonl')], capability: [], judge: 'keyword' },
      });
      const cells = planSweep(config);
      expect(cells).toHaveLength(2);
      for (const cell of cells) {
        expect(cell.spec.microVersions).toBeUndefined();
        expect(Object.keys(cell.spec.contents ?? {}).length).toBeGreaterThan(0);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
