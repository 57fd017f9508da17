// The chunked label log-probs (engine/train.ts): equal to the unchunked ones within 1e-6, with equal gradients
// wrt every parameter, and no tensor left behind.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { labelLogProbs } from '../../engine/train.ts';
import { makeConfig, parseConfig } from '../../engine/model/config.ts';
import { createModel } from '../../engine/model/transformer.ts';
import type { CausalLM, ModelConfig } from '../../engine/model/types.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

function model(family: 'llama' | 'qwen2' | 'gpt2', extra: Partial<ModelConfig> = {}): CausalLM {
  const raw = makeConfig(family, {
    hidden: 16,
    layers: 2,
    heads: 4,
    kvHeads: family === 'gpt2' ? undefined : 2,
    intermediate: 32,
    vocab: 40,
    maxPositions: 64,
    tieWordEmbeddings: family !== 'qwen2',
  });
  return createModel({ ...parseConfig(raw), ...extra }, { seed: 5 });
}

function batch(b: number, t: number): { ids: tf.Tensor2D; labels: tf.Tensor2D; weights: tf.Tensor2D } {
  const ids = Array.from({ length: b * t }, (_, i) => (i * 7 + 3) % 40);
  const labels = Array.from({ length: b * t }, (_, i) => (i * 11 + 5) % 40);
  const weights = Array.from({ length: b * t }, (_, i) => ((i % 5) - 2) / 3); // a non-uniform upstream gradient
  return {
    ids: tf.tensor2d(ids, [b, t], 'int32'),
    labels: tf.tensor2d(labels, [b, t], 'int32'),
    weights: tf.tensor2d(weights, [b, t]),
  };
}

/** logp and the gradients of Σ weights · logp wrt every parameter. */
function run(m: CausalLM, data: ReturnType<typeof batch>, options: { full?: boolean; chunkBytes?: number; recompute?: boolean }) {
  const vars = [...m.params.values()];
  return tf.tidy(() => {
    const logp = labelLogProbs(m, data.ids, data.labels, options).logp.arraySync() as number[][];
    const { grads } = tf.variableGrads(
      () => tf.sum(tf.mul(labelLogProbs(m, data.ids, data.labels, options).logp, data.weights)) as tf.Scalar,
      vars,
    );
    return { logp, grads: vars.map((v) => Array.from(grads[v.name].dataSync())) };
  });
}

describe('chunked label log-probs', () => {
  for (const [name, family, extra] of [
    ['llama, tied head', 'llama', {}],
    ['qwen2, untied head', 'qwen2', {}],
    ['gpt2', 'gpt2', {}],
    ['llama with a logit divisor and a final softcap', 'llama', { logitsDivisor: 2, finalSoftcap: 3 }],
  ] as const) {
    it(`equal the unchunked ones within 1e-6, with equal gradients (${name})`, () => {
      const m = model(family, extra);
      const data = batch(3, 7);
      const full = run(m, data, { full: true });
      // 4 bytes × 3 sequences × 40 words × 2 steps: chunks of 2 time steps (the last of 1).
      const chunked = run(m, data, { chunkBytes: 4 * 3 * 40 * 2 });
      const one = run(m, data, {}); // one chunk
      for (const other of [chunked, one]) {
        other.logp.flat().forEach((v, i) => expect(Math.abs(v - full.logp.flat()[i])).toBeLessThan(1e-6));
        other.grads.forEach((g, k) => {
          const ref = full.grads[k];
          const scale = Math.max(1, ...ref.map(Math.abs));
          g.forEach((v, i) => expect(Math.abs(v - ref[i]) / scale).toBeLessThan(1e-6));
        });
      }
      tf.dispose([data.ids, data.labels, data.weights]);
      m.dispose();
    });
  }

  it('leaves the tensor count flat', () => {
    const m = model('llama');
    const data = batch(2, 9);
    run(m, data, { chunkBytes: 4 * 2 * 40 * 3 }); // warm up kernels and caches
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run(m, data, { chunkBytes: 4 * 2 * 40 * 3 });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([data.ids, data.labels, data.weights]);
    m.dispose();
  });
});

describe('activation recomputation per block', () => {
  for (const family of ['llama', 'gpt2'] as const) {
    it(`gives the same log-probs and gradients, chunked or not (${family})`, () => {
      const m = model(family, family === 'llama' ? { finalSoftcap: 3 } : {});
      const data = batch(2, 6);
      const plain = run(m, data, { full: true });
      for (const options of [
        { full: true, recompute: true },
        { recompute: true, chunkBytes: 4 * 2 * 40 * 2 },
      ]) {
        const other = run(m, data, options);
        other.logp.flat().forEach((v, i) => expect(Math.abs(v - plain.logp.flat()[i])).toBeLessThan(1e-6));
        other.grads.forEach((g, k) => {
          const ref = plain.grads[k];
          const scale = Math.max(1, ...ref.map(Math.abs));
          g.forEach((v, i) => expect(Math.abs(v - ref[i]) / scale).toBeLessThan(1e-6));
        });
      }
      const before = tf.memory().numTensors;
      run(m, data, { recompute: true });
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([data.ids, data.labels, data.weights]);
      m.dispose();
    });
  }
});
