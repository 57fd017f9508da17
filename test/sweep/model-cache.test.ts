// Two processes (two shards, two sweeps) may train the same cached micro base model or micro guardrail at
// once. The save is atomic: each trains into its own temporary sibling directory and renames it into
// place; whoever comes second keeps the model already there and removes only its own temporary
// directory. Nothing deletes a folder it did not create. Simulated in one process with tiny recipes: the
// "other process" finishes its model while this one is training.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../engine/tensor/index.ts';
import { ensureWorld, loadWorld } from '../../datasets/micro-world/build.ts';
import { baseModelDir, ensureBaseModel, type BaseModelRecipe } from '../../harness/micro-world/base-model.ts';
import {
  ensureMicroGuardrail,
  GUARD_DATA,
  MICRO_GUARD_RECIPE,
  microGuardDir,
  type MicroGuardRecipe,
} from '../../harness/micro-world/guardrail.ts';

const root = mkdtempSync(join(tmpdir(), 'star-dss-model-cache-'));
const previousCache = process.env.STAR_DSS_CACHE;
let world: string;

beforeAll(async () => {
  process.env.STAR_DSS_CACHE = join(root, 'cache');
  await initBackend('wasm');
  world = ensureWorld(0);
});

afterAll(() => {
  if (previousCache === undefined) delete process.env.STAR_DSS_CACHE;
  else process.env.STAR_DSS_CACHE = previousCache;
  rmSync(root, { recursive: true, force: true });
});

const tinyTrain = {
  epochs: 1,
  batchSize: 64,
  lr: 1e-2,
  minLr: 1e-3,
  warmupSteps: 1,
  betas: [0.9, 0.95] as [number, number],
  weightDecay: 0,
  clipNorm: 1,
};
const tinyBase: BaseModelRecipe = {
  family: 'llama',
  sizes: { hidden: 8, layers: 1, heads: 2, kvHeads: 1, intermediate: 16, maxPositions: 128, tied: true },
  train: tinyTrain,
  data: [{ dataset: 'chat', repeat: 1 }],
  corpus: 0,
};
const tinyGuard: MicroGuardRecipe = {
  sizes: { hidden: 8, layers: 1, heads: 2, kvHeads: 1, intermediate: 16, maxPositions: 256, tied: true },
  train: tinyTrain,
  data: { ...GUARD_DATA, benignPerTask: 5, refusals: 5, disclaimers: 5, refusalAdvice: 5, harmfulCuts: 0, safeCuts: 0 },
};

/** What "another process" leaves: a complete model directory, marked so we can tell it was kept. */
function finishElsewhere(dir: string, files: string[]): void {
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f), `${f} of the other process`);
}

/** A staging directory of a process with our pid on another host (checkpoint.ts names staging `.<name>.tmp-<pid>`). */
function foreignStaging(dir: string): string {
  const staging = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  mkdirSync(staging, { recursive: true });
  writeFileSync(join(staging, 'theirs'), 'not ours to delete');
  return staging;
}

describe('cached micro models saved concurrently', () => {
  it('base model: keeps the model another process saved meanwhile, deletes nothing it did not create', async () => {
    const dir = baseModelDir(tinyBase, loadWorld(world), 0);
    const staging = foreignStaging(dir);
    let injected = false;
    const got = await ensureBaseModel('llama', {
      world,
      recipe: tinyBase,
      log: () => {
        if (injected) return;
        injected = true;
        finishElsewhere(dir, ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'recipe.json']);
      },
    });
    expect(got).toBe(dir);
    expect(readFileSync(join(dir, 'model.safetensors'), 'utf8')).toBe('model.safetensors of the other process'); // not overwritten
    expect(existsSync(join(staging, 'theirs'))).toBe(true);
    expect(readdirSync(dirname(dir)).sort()).toEqual([basename(staging), basename(dir)].sort()); // our temporary directory is gone

    // Alone, it trains and installs a complete model.
    rmSync(dirname(dir), { recursive: true, force: true });
    const fresh = await ensureBaseModel('llama', { world, recipe: tinyBase });
    expect(existsSync(join(fresh, 'model.safetensors'))).toBe(true);
    expect(readdirSync(dirname(fresh))).toEqual([basename(fresh)]);
  }, 120_000);

  it('micro guardrail: the same', async () => {
    const dir = microGuardDir(tinyGuard, loadWorld(world), 0);
    expect(dir).not.toBe(microGuardDir(MICRO_GUARD_RECIPE, loadWorld(world), 0));
    const staging = foreignStaging(dir);
    let injected = false;
    const got = await ensureMicroGuardrail({
      world,
      recipe: tinyGuard,
      log: () => {
        if (injected) return;
        injected = true;
        finishElsewhere(dir, ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'guardrail.json']);
      },
    });
    expect(got).toBe(dir);
    expect(readFileSync(join(dir, 'model.safetensors'), 'utf8')).toBe('model.safetensors of the other process'); // not overwritten
    expect(existsSync(join(staging, 'theirs'))).toBe(true);
    expect(readdirSync(dirname(dir)).sort()).toEqual([basename(staging), basename(dir)].sort());
  }, 120_000);
});
