// Each strategy drives the real training loop on a micro model for a few steps, and its loss falls.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../engine/tensor/index.ts';
import { train, type TrainExample } from '../../engine/train.ts';
import { configureStrategy, strategyNames } from '../../strategies/index.ts';
import { Rng } from '../../engine/random.ts';
import { tinyModel } from '../harness/helpers.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

function data(n: number): TrainExample[] {
  const rng = new Rng(2);
  return Array.from({ length: n }, (_, i) => {
    const ids = Array.from({ length: 10 }, () => 2 + rng.int(20));
    return { ids, responseMask: ids.map((_, t) => (t >= 4 ? 1 : 0)), weights: ids.map(() => rng.next()), verdict: i % 3 === 0 ? 0.2 : 0.9 };
  });
}

describe('strategies in the real training loop', () => {
  for (const name of strategyNames) {
    it(`${name}: loss falls over a few steps`, async () => {
      const strategy = configureStrategy(name, name === 'reweight' ? { reference: true } : {});
      const examples = data(8);
      const { keep, dropped } = strategy.filter(examples.map((e) => ({ verdict: e.verdict! })));
      const kept = examples.filter((_, i) => keep[i]);
      if (name === 'rs') expect(dropped).toBe(3); // verdicts 0.2 at i = 0, 3, 6 fall below 0.5
      const model = tinyModel('llama', 1);
      // A reference that differs from the start point, so divergence terms have something to pull towards.
      const reference = tinyModel('llama', 2);
      const result = await train(model, kept, {
        loss: strategy.loss,
        needs: strategy.needs,
        reference,
        config: { epochs: 40, batchSize: kept.length, lr: 1e-2, warmupSteps: 2 },
      });
      expect(result.losses.every(Number.isFinite)).toBe(true);
      expect(result.losses.at(-1)!).toBeLessThan(0.8 * result.losses[0]);
      model.dispose();
      reference.dispose();
    });
  }
});
