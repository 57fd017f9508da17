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

describe('RS in the real training loop: zero-weighting keeps the step count and the normaliser', () => {
  // 10 examples, the ones at i = 0, 3, 6, 9 flagged (verdict 0.2): 4 flagged, 6 learned.
  const examples = data(10);

  it('mode zero takes ceil(10 / 4) = 3 steps per epoch, as SFT does; mode drop ceil(6 / 4) = 2', async () => {
    const steps: Record<string, number> = {};
    for (const raw of [{ mode: 'zero' }, { mode: 'drop' }, undefined]) {
      const strategy = configureStrategy(raw ? 'rs' : 'sft', raw);
      const { keep } = strategy.filter(examples.map((e) => ({ verdict: e.verdict! })));
      const model = tinyModel('llama', 1);
      const result = await train(
        model,
        examples.filter((_, i) => keep[i]),
        {
          loss: strategy.loss,
          needs: strategy.needs,
          config: { epochs: 2, batchSize: 4, lr: 1e-3, warmupSteps: 0 },
        },
      );
      steps[raw?.mode ?? 'sft'] = result.steps;
      model.dispose();
    }
    expect(steps).toEqual({ zero: 6, drop: 4, sft: 6 });
  });

  it("mode zero's first loss is SFT's first loss restricted to learned tokens, over every response token", async () => {
    // One batch of all 10 examples, loss read before the first update: every response token (positions 4..9, 6 label positions each: 60 in all)
    // is in the normaliser; the flagged 24 add nothing. So loss_zero = (Σ_learned CE) / 60 and loss_drop = (Σ_learned CE) / 36.
    const first = async (raw: object) => {
      const strategy = configureStrategy('rs', raw);
      const { keep } = strategy.filter(examples.map((e) => ({ verdict: e.verdict! })));
      const model = tinyModel('llama', 1);
      const result = await train(
        model,
        examples.filter((_, i) => keep[i]),
        {
          loss: strategy.loss,
          needs: strategy.needs,
          config: { epochs: 1, batchSize: 10, lr: 1e-3, warmupSteps: 0 },
        },
      );
      model.dispose();
      return result.losses[0];
    };
    const zero = await first({ mode: 'zero' });
    const drop = await first({ mode: 'drop' });
    expect(zero).toBeGreaterThan(0);
    expect(zero / drop).toBeCloseTo(36 / 60, 5);
  });
});

describe('strategies in the real training loop', () => {
  for (const name of strategyNames) {
    it(`${name}: loss falls over a few steps`, async () => {
      const strategy = configureStrategy(name, name === 'reweight' ? { reference: true } : {});
      const examples = data(8);
      const { keep, dropped } = strategy.filter(examples.map((e) => ({ verdict: e.verdict! })));
      const kept = examples.filter((_, i) => keep[i]);
      if (name === 'rs') expect([dropped, kept.length]).toEqual([3, 8]); // verdicts 0.2 at i = 0, 3, 6: weight 0, still in the data
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
