import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { learningRate, makeBatch, train, TrainError, type TrainExample } from '../../engine/train.ts';
import type { LossInputs } from '../../engine/contracts/loss.ts';
import { tinyModel } from '../harness/helpers.ts';

const noNeeds = { reference: false, star: false, verdict: false, fullLogProbs: false };
const meanCe = ({ logp, mask }: LossInputs) => tf.div(tf.neg(tf.sum(tf.mul(logp, mask))), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;

function examples(n: number, len = 8, seed = 3): TrainExample[] {
  return Array.from({ length: n }, (_, i) => {
    const ids = Array.from({ length: len }, (_, t) => ((i * 7 + t * (seed + i)) % 20) + 2);
    return { ids, responseMask: ids.map((_, t) => (t >= 3 ? 1 : 0)) };
  });
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('learning-rate schedule', () => {
  it('warms up linearly, then follows a cosine down to the minimum', () => {
    const c = { lr: 1e-3, minLr: 1e-4 };
    expect(learningRate(1, 100, c, 10)).toBeCloseTo(1e-4, 12);
    expect(learningRate(10, 100, c, 10)).toBeCloseTo(1e-3, 12);
    expect(learningRate(55, 100, c, 10)).toBeCloseTo(1e-4 + 0.9e-3 * 0.5, 12); // halfway: cos(π/2) = 0
    expect(learningRate(100, 100, c, 10)).toBeCloseTo(1e-4, 12);
  });
});

describe('makeBatch', () => {
  it('right-pads and shifts tokens, masks and weights to label positions', () => {
    const batch = makeBatch(
      [
        { ids: [5, 6, 7, 8], responseMask: [0, 0, 1, 1], weights: [0.1, 0.2, 0.3, 0.4] },
        { ids: [9, 10, 11], responseMask: [0, 1, 1], weights: [0.5, 0.6, 0.7] },
      ],
      0,
      { star: true, verdict: false },
    );
    expect(batch.ids.arraySync()).toEqual([
      [5, 6, 7],
      [9, 10, 0],
    ]);
    expect(batch.labels.arraySync()).toEqual([
      [6, 7, 8],
      [10, 11, 0],
    ]);
    expect(batch.mask.arraySync()).toEqual([
      [0, 1, 1],
      [1, 1, 0],
    ]);
    const w = batch.weights!.arraySync();
    expect(w[0]).toEqual([0.2, 0.3, 0.4].map(Math.fround));
    expect(w[1]).toEqual([0.6, 0.7, 0].map(Math.fround));
    expect(batch.tokens).toBe(4);
    tf.dispose([batch.ids, batch.labels, batch.mask, batch.weights!]);
  });
});

describe('train', () => {
  it('overfits a fixed batch: the loss falls by more than 90%', async () => {
    const model = tinyModel('llama');
    const data = examples(4);
    const result = await train(model, data, {
      loss: meanCe,
      needs: noNeeds,
      config: { epochs: 150, batchSize: 4, lr: 1e-2, warmupSteps: 5, minLr: 1e-3, seed: 1 },
    });
    const first = result.losses[0];
    const last = result.losses.at(-1)!;
    expect(last).toBeLessThan(0.1 * first);
    model.dispose();
  });

  it('keeps the tensor count stable across 20 steps', async () => {
    const model = tinyModel('gpt2');
    const before = tf.memory().numTensors;
    const counts: number[] = [];
    await train(model, examples(8), {
      loss: meanCe,
      needs: noNeeds,
      config: { epochs: 10, batchSize: 4, gradAccum: 2, lr: 1e-3 },
      onStep: () => counts.push(tf.memory().numTensors),
    });
    expect(counts).toHaveLength(20);
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('gradient accumulation over equal micro-batches equals one large batch', async () => {
    const a = tinyModel('qwen2', 7);
    const b = tinyModel('qwen2', 7);
    const data = examples(4);
    const config = { epochs: 1, batchSize: 4, lr: 1e-2, warmupSteps: 0, seed: 5, clipNorm: 0 };
    await train(a, data, { loss: meanCe, needs: noNeeds, config: { ...config, gradAccum: 1 } });
    await train(b, data, { loss: meanCe, needs: noNeeds, config: { ...config, gradAccum: 2 } });
    for (const [name, p] of a.params) {
      const q = b.params.get(name)!;
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(p, q))).dataSync()[0]);
      expect(diff, name).toBeLessThan(1e-5);
    }
    a.dispose();
    b.dispose();
  });

  it('applies decoupled weight decay to matrices only', async () => {
    const model = tinyModel('gpt2');
    const before = new Map([...model.params].map(([n, p]) => [n, p.dataSync().slice()]));
    // A loss with zero gradient: only the decay moves the parameters.
    const zero = ({ logp }: LossInputs) => tf.mul(tf.sum(logp), 0) as tf.Scalar;
    await train(model, examples(2), {
      loss: zero,
      needs: noNeeds,
      config: { epochs: 1, batchSize: 2, lr: 0.1, warmupSteps: 0, weightDecay: 0.5, minLr: 0.1 },
    });
    for (const [name, p] of model.params) {
      const after = p.dataSync();
      const old = before.get(name)!;
      const factor = p.rank >= 2 ? 1 - 0.1 * 0.5 : 1;
      for (let i = 0; i < old.length; i += Math.max(1, Math.floor(old.length / 7))) expect(after[i], name).toBeCloseTo(old[i] * factor, 6);
    }
    model.dispose();
  });

  it('stops with an error naming the step when the loss is not finite', async () => {
    const model = tinyModel('llama');
    let calls = 0;
    const exploding = (inputs: LossInputs) => (++calls === 3 ? (tf.add(meanCe(inputs), Number.NaN) as tf.Scalar) : meanCe(inputs));
    const run = train(model, examples(8), { loss: exploding, needs: noNeeds, config: { epochs: 1, batchSize: 2 } });
    await expect(run).rejects.toThrow(TrainError);
    await expect(
      train(model, examples(8), {
        loss: (inputs) => tf.add(meanCe(inputs), Infinity) as tf.Scalar,
        needs: noNeeds,
        config: { epochs: 1, batchSize: 2 },
      }),
    ).rejects.toThrow(/step 1 .*Infinity/);
    calls = 0;
    await expect(train(model, examples(8), { loss: exploding, needs: noNeeds, config: { epochs: 1, batchSize: 2 } })).rejects.toThrow(
      /step 3/,
    );
    model.dispose();
  });
});
