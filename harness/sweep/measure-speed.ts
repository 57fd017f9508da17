// The dry run's speeds, measured: each configured model is built at its real size from its config.json (random
// weights: the cost of a step does not depend on their values), and one timed training step (after one to warm
// up) and a short batched generation run on the chosen backend. A model whose memory plan does not fit the
// backend is not built; the estimate says so.
import type { ModelConfig } from '../../engine/model/types.ts';
import { readConfigFile } from '../../engine/model/checkpoint.ts';
import { makeConfig, parseConfig } from '../../engine/model/config.ts';
import { createModel } from '../../engine/model/transformer.ts';
import { memoryPlan } from '../../engine/memory-plan.ts';
import { generate } from '../../engine/generate.ts';
import { train, type TrainExample } from '../../engine/train.ts';
import { tf } from '../../engine/tensor/index.ts';
import { Rng } from '../../engine/random.ts';
import { baseRecipe } from '../micro-world/base-model.ts';
import type { Cell } from './plan.ts';

export interface MeasuredSpeed {
  /** Training tokens/s of one optimiser step at the measured micro-batch (no reference forward). */
  train: number;
  /** Generated tokens/s, batched, with the KV cache. */
  generate: number;
  batch: number;
  seqLen: number;
}

/** What the dry run measured per model reference, or why it could not. */
export type SpeedMeasurement = { ok: true; speed: MeasuredSpeed } | { ok: false; reason: string };

/** A `micro:<family>` model's config at its recipe's sizes (the world's vocabulary is about 500 words). */
function modelConfig(ref: string): ModelConfig {
  if (!ref.startsWith('micro:')) return readConfigFile(ref);
  const recipe = baseRecipe(ref.slice('micro:'.length));
  return parseConfig(makeConfig(recipe.family, { ...recipe.sizes, vocab: 512 }));
}

/** Times one training step and one batched generation of a random-init model of `config` on the current backend. */
export async function measureSpeed(config: ModelConfig, backend: string, batch = 4, seqLen = 64): Promise<SpeedMeasurement> {
  const plan = memoryPlan(config, { backend, batch, seqLen, trainable: 'full', reference: 'none', chunked: true });
  if (!plan.fits) return { ok: false, reason: `does not fit ${backend} (memory plan ${(plan.total / 2 ** 30).toFixed(1)} GiB)` };
  const model = createModel(config, { seed: 0 });
  try {
    const rng = new Rng('measure-speed');
    const row = () => Array.from({ length: seqLen + 1 }, () => Math.floor(rng.next() * config.vocabSize));
    const examples: TrainExample[] = Array.from({ length: 2 * batch }, () => {
      const ids = row();
      return { ids, responseMask: ids.map(() => 1) };
    });
    const stepSeconds: number[] = [];
    let last = performance.now();
    await train(model, examples, {
      loss: (inputs) => tf.neg(tf.div(tf.sum(tf.mul(inputs.logp, inputs.mask)), tf.sum(inputs.mask))) as tf.Scalar,
      needs: { reference: false, star: false, verdict: false, fullLogProbs: false },
      config: { epochs: 1, batchSize: batch, seed: 0 },
      onStep: () => {
        const now = performance.now();
        stepSeconds.push((now - last) / 1000);
        last = now;
      },
    });
    const newTokens = 8;
    const started = performance.now();
    await generate(
      model,
      Array.from({ length: batch }, () => row().slice(0, 16)),
      { maxNewTokens: newTokens, eosTokenIds: [], padTokenId: 0 },
    );
    const generateSeconds = (performance.now() - started) / 1000;
    return {
      ok: true,
      speed: { train: (batch * seqLen) / stepSeconds[1], generate: (batch * newTokens) / generateSeconds, batch, seqLen },
    };
  } catch (error) {
    return { ok: false, reason: `could not be measured on ${backend}: ${String((error as Error).message).split('\n')[0]}` };
  } finally {
    model.dispose();
  }
}

/** One measurement per distinct model of the cells. */
export async function measureModels(cells: readonly Cell[], backend: string): Promise<Map<string, SpeedMeasurement>> {
  const out = new Map<string, SpeedMeasurement>();
  for (const ref of new Set(cells.map((c) => c.spec.model))) {
    try {
      out.set(ref, await measureSpeed(modelConfig(ref), backend));
    } catch (error) {
      out.set(ref, { ok: false, reason: `config.json not read (${String((error as Error).message).split('\n')[0]})` });
    }
  }
  return out;
}
