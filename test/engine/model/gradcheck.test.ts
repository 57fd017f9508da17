// Analytic gradients of the cross-entropy loss (tfjs on wasm, float32) against central finite
// differences of the independent Float64 reference loss, on sampled entries of many parameter tensors.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf, oneHot } from '../../../engine/tensor/index.ts';
import { Rng } from '../../../engine/random.ts';
import { makeConfig, parseConfig } from '../../../engine/model/config.ts';
import { createModel } from '../../../engine/model/transformer.ts';
import type { Family } from '../../../engine/model/types.ts';
import { randomWeights, referenceLoss, type RefWeights } from './reference.ts';

const sizes = {
  llama: {
    hidden: 16,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    intermediate: 24,
    vocab: 40,
    maxPositions: 32,
    ropeScaling: { ropeType: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 32 },
  },
  qwen2: { hidden: 16, layers: 2, heads: 4, kvHeads: 2, intermediate: 24, vocab: 40, maxPositions: 32, tieWordEmbeddings: true },
  gpt2: { hidden: 16, layers: 2, heads: 2, vocab: 40, maxPositions: 8 },
} as const;

const ids = [
  [4, 9, 33, 2, 17, 8],
  [0, 0, 21, 9, 9, 30],
];
const mask = [
  [1, 1, 1, 1, 1, 1],
  [0, 0, 1, 1, 1, 1],
];
const labels = [
  [9, 33, 2, 17, 8, 1],
  [-1, -1, 9, 9, 30, 3],
];

function analyticGrads(family: Family, weights: RefWeights): { loss: number; grads: Map<string, Float32Array> } {
  const config = parseConfig(makeConfig(family, sizes[family]));
  const names = [...weights.keys()];
  const [loss, ...arrays] = tf.tidy(() => {
    const model = createModel(config, {
      weights: new Map([...weights].map(([n, t]) => [n, tf.tensor(Float32Array.from(t.data), t.shape)])),
    });
    const flatLabels = labels.flat();
    const valid = tf.tensor1d(flatLabels.map((l) => (l >= 0 ? 1 : 0)));
    const { value, grads } = tf.variableGrads(() => {
      const { logits } = model.forward(tf.tensor2d(ids, undefined, 'int32'), { attentionMask: tf.tensor2d(mask, undefined, 'int32') });
      const logProbs = tf.logSoftmax(logits).reshape([-1, config.vocabSize]); // [tokens, vocab]
      const picked = tf.sum(
        tf.mul(
          logProbs,
          oneHot(
            tf.tensor1d(
              flatLabels.map((l) => Math.max(l, 0)),
              'int32',
            ),
            config.vocabSize,
          ),
        ),
        1,
      );
      return tf.div(tf.neg(tf.sum(tf.mul(picked, valid))), tf.sum(valid)) as tf.Scalar;
    }, [...model.params.values()]);
    const out = names.map((name) => grads[(model.params.get(name) as tf.Variable).name].dataSync() as Float32Array);
    const lossValue = value.dataSync()[0];
    model.dispose();
    return [lossValue, ...out];
  });
  return { loss: loss as number, grads: new Map(names.map((name, i) => [name, arrays[i] as Float32Array])) };
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe.each(['llama', 'qwen2', 'gpt2'] as const)('%s gradient check', (family) => {
  it('tfjs gradients match finite differences of the Float64 reference (relative error < 1e-3)', () => {
    const config = parseConfig(makeConfig(family, sizes[family]));
    const weights = randomWeights(config, 21);
    const { loss, grads } = analyticGrads(family, weights);
    const refLoss = referenceLoss(config, weights, ids, labels, mask);
    expect(Math.abs(loss - refLoss)).toBeLessThan(1e-5);

    // ~20 entries, each from a different tensor spread over the network; within a tensor, an entry whose
    // gradient is not negligible (unused wpe rows, say, have exactly zero gradient).
    const rng = new Rng(`gradcheck:${family}`);
    const names = [...weights.keys()];
    const picked = [...new Set(Array.from({ length: 20 }, (_, i) => names[Math.round((i * (names.length - 1)) / 19)]))];
    expect(picked.length).toBe(20);
    expect(picked).toContain(names[names.length - 1]); // the final norm or lm_head
    const h = 1e-5;
    const errors: string[] = [];
    let checked = 0;
    for (const name of picked) {
      const g = grads.get(name) as Float32Array;
      const scale = Math.max(...Array.from(g, Math.abs));
      let index = rng.int(g.length);
      for (let tries = 0; tries < 50 && Math.abs(g[index]) < 0.05 * scale; tries++) index = rng.int(g.length);
      const data = (weights.get(name) as { data: Float64Array }).data;
      const original = data[index];
      data[index] = original + h;
      const plus = referenceLoss(config, weights, ids, labels, mask);
      data[index] = original - h;
      const minus = referenceLoss(config, weights, ids, labels, mask);
      data[index] = original;
      const numeric = (plus - minus) / (2 * h);
      const rel = Math.abs(g[index] - numeric) / Math.max(Math.abs(g[index]), Math.abs(numeric));
      expect(Math.abs(numeric)).toBeGreaterThan(1e-6);
      if (!(rel < 1e-3))
        errors.push(`${name}[${index}]: tfjs ${g[index]}, finite difference ${numeric}, relative error ${rel.toExponential(2)}`);
      checked++;
    }
    expect(errors).toEqual([]);
    expect(checked).toBe(picked.length);
  });
});
