// A failing cell's result.json: the error keeps its message and stack, with no absolute path of this machine
// (paths relative to the repository root, the home directory as ~).
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../engine/tensor/index.ts';
import { parseSweepConfig } from '../../harness/sweep/config.ts';
import { planSweep } from '../../harness/sweep/plan.ts';
import { runCell } from '../../harness/sweep/run-cell.ts';

const root = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');
const scratch = mkdtempSync(join(tmpdir(), 'star-dss-cell-error-'));

/** A base cell whose model is an existing directory with no checkpoint in it: it fails while loading. */
async function failingCell(model: string) {
  mkdirSync(model, { recursive: true });
  const [cell] = planSweep(parseSweepConfig({ models: [model], threats: ['benign'], strategies: ['sft'], seeds: [0] }));
  return (await runCell(cell, { backend: 'wasm' })).result;
}

describe('a failing cell', () => {
  beforeAll(() => initBackend('wasm'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('records its error with no absolute path of this machine', async () => {
    const result = await failingCell(join(scratch, 'empty-model'));
    expect(result.status).toBe('error');
    const error = JSON.stringify(result.error);
    expect(error).not.toContain(root);
    expect(error).not.toContain(homedir());
    expect(error).not.toMatch(/file:\/\//);
    // No stack frame names an absolute file.
    const frames = (result.error?.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
    expect(frames.length).toBeGreaterThan(0);
    for (const frame of frames) expect(frame).not.toMatch(/(\(|at )\//);
    // Frames keep their file, relative to the repository root.
    expect(result.error?.stack).toMatch(/at runCell \(harness\/sweep\/run-cell\.ts:\d+:\d+\)/);
    expect(result.error?.message).toMatch(/empty-model\/config\.json: not found/);
  });

  it('writes the home directory as ~', async () => {
    const saved = process.env.HOME;
    process.env.HOME = scratch;
    try {
      const result = await failingCell(join(scratch, 'models', 'm'));
      expect(result.error?.message).toMatch(/^~\/models\/m\/config\.json: not found/);
      expect(JSON.stringify(result.error)).not.toContain(scratch);
    } finally {
      process.env.HOME = saved;
    }
  });
});
