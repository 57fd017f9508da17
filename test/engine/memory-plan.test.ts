// The memory plan (engine/memory-plan.ts), the known configs of `model init --like NAME`, and train()'s
// micro-batches sized to a memory budget.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { parseConfig } from '../../engine/model/config.ts';
import { knownConfig, knownConfigNames } from '../../engine/model/known-configs.ts';
import {
  checkCheckpointMemory,
  configParameterCount,
  fitMicroBatch,
  MemoryPlanError,
  memoryPlan,
  type MemoryPlanOptions,
} from '../../engine/memory-plan.ts';
import { train, TrainError, type TrainExample } from '../../engine/train.ts';
import type { LossInputs } from '../../engine/contracts/loss.ts';
import { initCheckpoint } from '../../harness/commands/model.ts';
import { loadModel } from '../../engine/model/checkpoint.ts';
import { tinyModel } from '../harness/helpers.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const known = (name: string) => parseConfig(knownConfig(name)!, name);
const wasm: Omit<MemoryPlanOptions, 'batch'> = { backend: 'wasm', seqLen: 128, trainable: 'full', reference: 'none', chunked: true };

describe('known configs', () => {
  it('parse, with the published parameter counts', () => {
    expect(knownConfigNames()).toEqual(['SmolLM2-135M-Instruct', 'Qwen2.5-0.5B-Instruct', 'Llama-3.2-1B-Instruct', 'Llama-Guard-3-1B']);
    expect(configParameterCount(known('SmolLM2-135M-Instruct'))).toBe(134_515_008);
    expect(configParameterCount(known('Qwen/Qwen2.5-0.5B-Instruct'))).toBe(494_032_768);
    expect(configParameterCount(known('llama-3.2-1b-instruct'))).toBe(1_235_814_400);
    expect(configParameterCount(known('Llama-Guard-3-1B'))).toBe(1_498_482_688); // untied head
    expect(knownConfig('no-such-model')).toBeUndefined();
  });

  it('model init --like NAME writes a checkpoint of that config (shrunk here by size flags)', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'like-')), 'm');
    const config = await initCheckpoint({
      like: 'Qwen2.5-0.5B-Instruct',
      out,
      layers: 1,
      hidden: 32,
      heads: 4,
      vocab: 64,
      seed: 0,
    } as never);
    expect(config.family).toBe('qwen2');
    expect(config.numLayers).toBe(1);
    expect(config.attentionBias).toBe(true);
    const { model } = loadModel(out);
    expect(model.config.vocabSize).toBe(64);
    model.dispose();
  });
});

describe('memory plan', () => {
  it('refuses Llama-3.2-1B full finetuning on wasm from config.json alone, before any weight is allocated', () => {
    const dir = mkdtempSync(join(tmpdir(), 'plan-'));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify(knownConfig('Llama-3.2-1B-Instruct')));
    const before = tf.memory();
    let error: unknown;
    try {
      checkCheckpointMemory(dir, { ...wasm, batch: 1 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MemoryPlanError);
    const message = (error as Error).message;
    expect(message).not.toMatch(/\n/);
    expect(message).toMatch(
      /needs about 19\.7 GiB of wasm heap \(estimate: weights 4\.6 GiB, gradients \+ AdamW 13\.8 GiB, .*\) and the wasm backend has 4\.0 GiB/,
    );
    expect(message).toMatch(/Fix: the float32 weights alone exceed it: run with --backend tensorflow-gpu .*LoRA adapters/);
    expect(tf.memory().numTensors).toBe(before.numTensors);
    expect(tf.memory().numBytes).toBe(before.numBytes);
    // LoRA fits SmolLM2-135M and Qwen2.5-0.5B in wasm's 4 GiB heap (bench/memory-check.ts runs a step of each).
    const lora = { ...wasm, batch: 1, trainable: { loraRank: 8 }, reference: 'adapters-off' } as const;
    expect(memoryPlan(known('SmolLM2-135M-Instruct'), lora).fits).toBe(true);
    const qwen = memoryPlan(known('Qwen2.5-0.5B-Instruct'), lora);
    expect(qwen.fits).toBe(true);
    // Its peak is loading's (the checkpoint on the host and its copy on the backend), outside the heap's limit.
    expect(qwen.loading).toBe(8 * qwen.parameters);
    expect(qwen.total).toBe(qwen.runtime + qwen.loading);
    expect(qwen.step).toBe(qwen.weights + qwen.gradients + qwen.optimizer + 2 * qwen.activations);
    expect(memoryPlan(known('Qwen2.5-0.5B-Instruct'), { ...lora, backend: 'tensorflow-gpu' }).fits).toBe(true); // GPU memory unknown
    expect(memoryPlan(known('Qwen2.5-0.5B-Instruct'), { ...lora, backend: 'tensorflow-gpu' }).workspace).toBe(0);
  });

  it('counts the vocabulary rows of one chunk when chunked, of every token when not', () => {
    const qwen = known('Qwen2.5-0.5B-Instruct');
    const full = memoryPlan(qwen, { ...wasm, batch: 32, seqLen: 512, chunked: false });
    const chunked = memoryPlan(qwen, { ...wasm, batch: 32, seqLen: 512 });
    expect(full.vocabulary).toBe(3 * 4 * 32 * 512 * 151936);
    expect(chunked.vocabulary).toBe(3 * 64 * 1024 ** 2);
    // On wasm the workspace (as much again as the activations) doubles the difference.
    expect(full.step - chunked.step).toBe(2 * (full.vocabulary - chunked.vocabulary));
  });

  it('counts one block of activations with recomputation', () => {
    const smol = known('SmolLM2-135M-Instruct');
    const plain = memoryPlan(smol, { ...wasm, batch: 4 });
    const recomputed = memoryPlan(smol, { ...wasm, batch: 4, recompute: true });
    const perBlock = 10 * 576 + 4 * 1536 + 2 * 9 * 128;
    expect(plain.activations - recomputed.activations).toBe(4 * 4 * 128 * (29 * perBlock - 30 * 576));
  });

  it('fits the largest micro-batch under a budget', () => {
    const smol = known('SmolLM2-135M-Instruct');
    const fit = fitMicroBatch(smol, wasm, 32);
    expect(fit.batch).toBeGreaterThan(0);
    expect(fit.batch).toBeLessThan(32);
    expect(fit.plan.fits).toBe(true);
    expect(memoryPlan(smol, { ...wasm, batch: fit.batch + 1 }).fits).toBe(false);
    expect(fitMicroBatch(known('Llama-3.2-1B-Instruct'), wasm, 32).batch).toBe(0);
  });
});

describe('train() with a memory budget', () => {
  const needs = { reference: false, star: false, verdict: false, fullLogProbs: false };
  const loss = ({ logp, mask }: LossInputs) => tf.div(tf.neg(tf.sum(tf.mul(logp, mask))), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  const examples: TrainExample[] = Array.from({ length: 8 }, (_, i) => {
    const ids = Array.from({ length: 8 }, (_, t) => ((i * 5 + t * 3) % 20) + 2);
    return { ids, responseMask: ids.map((_, t) => (t >= 3 ? 1 : 0)) };
  });

  it('trains the same with activation recomputation', async () => {
    const runs = await Promise.all(
      [false, true].map(async (recompute) => {
        const model = tinyModel('llama', 1, 24);
        const { losses } = await train(model, examples, { loss, needs, config: { epochs: 3, batchSize: 4 }, recompute });
        model.dispose();
        return losses;
      }),
    );
    runs[1].forEach((l, i) => expect(Math.abs(l - runs[0][i])).toBeLessThan(1e-5));
  });

  it('sizes micro-batches to the budget and accumulates up to the configured batch', async () => {
    const model = tinyModel('llama', 1, 24);
    const opts = { backend: 'wasm', seqLen: 7, trainable: 'full', reference: 'none', chunked: true } as const;
    const budget = memoryPlan(model.config, { ...opts, batch: 2 }).total; // 2 sequences fit, 3 do not
    const result = await train(model, examples, { loss, needs, config: { epochs: 1, batchSize: 8 }, memory: { backend: 'wasm', budget } });
    expect(result.microBatch).toBe(2);
    expect(result.steps).toBe(1); // 8 examples: one optimiser step of 4 micro-batches
    expect(result.memoryPlan?.total).toBe(budget);
    expect(Number.isFinite(result.losses[0])).toBe(true);
    await expect(
      train(model, examples, { loss, needs, config: { epochs: 1, batchSize: 8 }, memory: { backend: 'wasm', budget: 1000 } }),
    ).rejects.toThrow(TrainError);
    model.dispose();
  });
});
