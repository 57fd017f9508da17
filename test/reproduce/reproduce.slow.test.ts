// A reduced `reproduce` end to end: the real Deep Token vs SFT claim (Qi et al.'s Table 4) with its real
// judge, on a tiny random model directory (no base-model or guardrail training), one seed, tiny settings.
// One seed makes every comparison inconclusive, which claims.md must say; a second run reuses every cell.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../engine/tensor/index.ts';
import { ensureWorld, loadWorld } from '../../datasets/micro-world/build.ts';
import { createMicroModel } from '../../harness/micro-world/base-model.ts';
import { microTokenizerFiles, tokenizerDirFiles } from '../../datasets/micro-world/tokenizer.ts';
import { saveModel } from '../../engine/model/checkpoint.ts';
import { CLAIMS, type Claim } from '../../harness/reproduce/claims.ts';
import { runReproduce } from '../../harness/reproduce/reproduce.ts';
import { SWEEPS, THREATS, type ReproduceSettings } from '../../harness/reproduce/sweeps.ts';
import { readCellResult } from '../../harness/sweep/store.ts';

const root = mkdtempSync(join(tmpdir(), 'star-dss-reproduce-'));
const out = join(root, 'run');
const modelDir = join(root, 'tiny-model');

// The real claim and judge; its worst-case sweep without the guardrail-reading strategies, and without the
// identity shift: a model given as a directory gets the English threat texts (run-cell.ts), whose AOA
// system prompt the micro-world's AOA pool does not carry.
const qi = CLAIMS.find((c) => c.id === 'deep-token-qi-table4')!;
const claim: Claim = {
  ...qi,
  sweeps: [
    { ...SWEEPS.worstCase, strategies: ['sft', 'deep-token'] },
    { ...SWEEPS.qiTable4, threats: [THREATS.backdoor] },
  ],
};

const settings: ReproduceSettings = {
  shared: {
    models: [modelDir],
    tasks: ['micro:ticket'],
    harmful: ['micro:purebad'],
    oldTask: { dataset: 'micro:gsm8k', count: 4 },
    train: { epochs: 2, batchSize: 16 },
    eval: {
      safety: ['micro:hex-phi'],
      capability: ['micro:ticket-test', 'micro:gsm8k-test'],
      maxItems: 6,
      maxNewTokens: 12,
      samples: 1,
      trajectories: 0,
    },
  },
  guardrail: 'micro',
  curveEpochs: [1],
  metrics: { safetyDataset: 'micro:hex-phi', task: ['micro:ticket-test'], oldTask: ['micro:gsm8k-test'], families: [] },
};

beforeAll(async () => {
  process.env.STAR_DSS_CACHE = join(root, 'cache');
  await initBackend('wasm');
  const files = microTokenizerFiles(loadWorld(ensureWorld(0)).vocabulary);
  const model = createMicroModel(
    'llama',
    { hidden: 32, layers: 1, heads: 2, kvHeads: 1, intermediate: 64, maxPositions: 256, tied: true },
    files,
    3,
  );
  await saveModel(modelDir, model, { files: tokenizerDirFiles(files) });
  model.dispose();
});

describe('star-dss reproduce, reduced', () => {
  it('runs one claim on one seed, writes claims.md and the reports, and a second run reuses every cell', async () => {
    const lines: string[] = [];
    const options = {
      out,
      seeds: 1,
      workers: 1,
      backend: 'wasm',
      quiet: true,
      claims: [claim],
      settings,
      command: 'reduced reproduce',
      log: (l: string) => lines.push(l),
    };
    const first = await runReproduce(options);
    // worst case: base + sft + deep-token; qi-table4: base + backdoor × 2 strategies. No strategy here reads the
    // guardrail, so both label settings plan the same 6 cells, and each judges them.
    expect(first.cells).toBe(6);
    expect(first.ran).toBe(6);
    expect(first.failed).toBe(0);
    expect(first.judgements).toEqual([
      { id: 'deep-token-qi-table4', labels: 'paper', verdict: 'inconclusive' },
      { id: 'deep-token-qi-table4', labels: 'official', verdict: 'inconclusive' },
    ]);
    for (const f of ['claims.md', 'results.csv', 'tables.md', 'report.html', 'reproduce.json'])
      expect(existsSync(join(out, f)), f).toBe(true);

    const md = readFileSync(join(out, 'claims.md'), 'utf8');
    expect(md).toContain(`## 1. ${claim.title} — inconclusive (paper formula) · inconclusive (official scores)`);
    expect(md).toContain(`| 1 | ${claim.title.replace(/\|/g, '\\|')} | **inconclusive** | **inconclusive** |`);
    expect(md).toContain('fewer than 2 seeds');
    expect(md).toContain('deep-token vs sft (identity shift (aoa)): no finished cells');
    expect(md).toContain(qi.paperNumber);
    expect(md).toContain('The claims run here use no guardrail.');
    // The numbers in claims.md are the cells' own: SFT's harmful rate on the worst case, one seed.
    const worst = first.sweeps.find((s) => s.def.name === 'worst-case')!;
    const sftCell = worst.cells.find((c) => c.labels.strategyLabel === 'sft')!;
    const sft = readCellResult(out, sftCell.id)!;
    const plain = sft.safety.find((s) => s.condition === 'plain')!;
    expect(plain.n).toBe(6);
    expect(md).toContain(`harmful injection: ASR sft ${plain.harmfulRate.toFixed(1)} (1)`);
    expect(sft.curve.map((p) => p.epoch)).toEqual([1, 2]); // the harm curve of the worst-case sweep
    const backdoor = first.sweeps
      .find((s) => s.def.name === 'qi-table4')!
      .cells.find((c) => c.labels.threatLabel === 'backdoor' && c.labels.strategyLabel === 'deep-token')!;
    expect(
      readCellResult(out, backdoor.id)!
        .safety.map((s) => s.condition)
        .sort(),
    ).toEqual(['plain', 'trigger']);

    const second = await runReproduce(options);
    expect(second.ran).toBe(0);
    expect(second.pending).toBe(0);
    const again = readFileSync(join(out, 'claims.md'), 'utf8');
    expect(again).toContain('0 cells run (0 failed), 6 reused');
    expect(again).toMatch(/The first run that computed cells \(.+\): .+ wall time for 6 cells/);
    expect(JSON.parse(readFileSync(join(out, 'reproduce.json'), 'utf8')).runs).toHaveLength(2);
  }, 600_000);
});
