// End to end on the micro-world with a tiny random model (no base-model or guardrail training): a sweep
// process is killed mid-run, resumed, and every cell ends up with exactly one result; the finished ones are
// not run again. Then the reports are written from the run directory.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { initBackend } from '../../engine/tensor/index.ts';
import { ensureWorld, loadWorld } from '../../datasets/micro-world/build.ts';
import { createMicroModel } from '../../harness/micro-world/base-model.ts';
import { microTokenizerFiles, tokenizerDirFiles } from '../../datasets/micro-world/tokenizer.ts';
import { saveModel } from '../../engine/model/checkpoint.ts';
import { planSweep } from '../../harness/sweep/plan.ts';
import { parseSweepConfig } from '../../harness/sweep/config.ts';
import { readCellResult } from '../../harness/sweep/store.ts';

const root = mkdtempSync(join(tmpdir(), 'star-dss-sweep-'));
const cache = join(root, 'cache');
const out = join(root, 'run');
const configFile = join(root, 'tiny.yaml');
const bin = new URL('../../bin/star-dss.mjs', import.meta.url).pathname;

beforeAll(async () => {
  process.env.STAR_DSS_CACHE = cache;
  await initBackend('wasm');
  const world = loadWorld(ensureWorld(0));
  const files = microTokenizerFiles(world.vocabulary);
  const model = createMicroModel(
    'llama',
    { hidden: 32, layers: 1, heads: 2, kvHeads: 1, intermediate: 64, maxPositions: 160, tied: true },
    files,
    3,
  );
  await saveModel(join(root, 'tiny-model'), model, { files: tokenizerDirFiles(files) });
  model.dispose();
  const config = {
    name: 'tiny',
    models: [join(root, 'tiny-model')],
    tasks: ['micro:ticket'],
    harmful: ['micro:purebad'],
    oldTask: { dataset: 'micro:gsm8k', count: 4 },
    threats: [{ name: 'harmful-injection', count: 12, total: 24 }],
    strategies: ['sft', 'deep-token'],
    seeds: [1, 2],
    train: { epochs: 1, batchSize: 8 },
    eval: { safety: ['micro:hex-phi'], capability: ['micro:ticket-test'], maxItems: 6, maxNewTokens: 12, samples: 1 },
  };
  writeFileSync(configFile, stringify(config));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function sweep(args: string[], killWhen?: () => boolean): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'sweep', '--config', configFile, '--out', out, '--backend', 'wasm', '--quiet', ...args], {
      env: { ...process.env, STAR_DSS_CACHE: cache },
      stdio: 'ignore',
      detached: true,
    });
    const timer = killWhen
      ? setInterval(() => {
          if (killWhen()) {
            clearInterval(timer);
            process.kill(-child.pid!, 'SIGKILL'); // the whole group: the sweep and its workers
          }
        }, 50)
      : undefined;
    child.on('exit', (code) => {
      if (timer) clearInterval(timer);
      resolve(code);
    });
  });
}

const results = () =>
  existsSync(join(out, 'cells')) ? readdirSync(join(out, 'cells')).filter((id) => existsSync(join(out, 'cells', id, 'result.json'))) : [];

describe('sweep: kill, resume, report', () => {
  it('a killed sweep resumes with every cell exactly once', async () => {
    const raw = (await import('yaml')).parse((await import('node:fs')).readFileSync(configFile, 'utf8'));
    const cells = planSweep(parseSweepConfig(raw));
    expect(cells).toHaveLength(5); // base + 2 strategies × 2 seeds

    await sweep(['--workers', '2'], () => results().length >= 2);
    const first = results();
    expect(first.length).toBeGreaterThanOrEqual(2);
    expect(first.length).toBeLessThan(cells.length);
    const before = new Map(first.map((id) => [id, statSync(join(out, 'cells', id, 'result.json')).mtimeMs]));

    expect(await sweep(['--workers', '1'])).toBe(0);
    const ids = results().sort();
    expect(ids).toEqual(cells.map((c) => c.id).sort());
    for (const [id, mtime] of before) expect(statSync(join(out, 'cells', id, 'result.json')).mtimeMs).toBe(mtime); // not re-run
    for (const id of ids) {
      const result = readCellResult(out, id)!;
      expect(result.status, result.error?.message).toBe('ok');
      expect(result.safety[0].n).toBe(6);
    }
    // No temporary files anywhere in the run directory.
    const all = readdirSync(out, { recursive: true }) as string[];
    expect(all.filter((f) => f.includes('.tmp'))).toEqual([]);
    for (const f of ['results.csv', 'tables.md', 'report.html']) expect(existsSync(join(out, f))).toBe(true);
  }, 600_000);
});
