// The micro-world generator's version is part of what identifies `micro:` data: a world built by other code
// (WORLD_VERSION bumped; mocked here one past the current version) gives the cells that read micro-world data
// new ids. The current version's ids are pinned in plan-references.test.ts.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { loadSweepConfig, parseSweepConfig, presetFile } from '../../harness/sweep/config.ts';
import { planSweep } from '../../harness/sweep/plan.ts';
import { WORLD_VERSION } from '../../datasets/micro-world/build.ts';

vi.mock('../../datasets/micro-world/build.ts', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../datasets/micro-world/build.ts')>();
  return { ...actual, WORLD_VERSION: actual.WORLD_VERSION + 1 };
});

describe('micro-world version in cell ids', () => {
  it('a bumped world version changes the ids of micro-world cells and records the version in the spec', () => {
    const cells = planSweep(loadSweepConfig(presetFile('smoke')));
    // The ids plan-references.test.ts pins for the current version.
    expect(cells.map((c) => c.id)).not.toContain('8b1aaf8769f8');
    expect(cells.map((c) => c.id)).not.toContain('0305b9be1a2d');
    expect(cells[0].spec.microVersions?.world).toBe(WORLD_VERSION);
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
