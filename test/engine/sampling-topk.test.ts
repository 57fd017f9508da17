// Sampling on the backend (tf.topk) against the full JavaScript sort it replaced: the same token for the same
// logits, settings and seed, on many random rows, with ties, with nuclei larger than the first candidates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { chooseToken, chooseTokens, type SamplingOptions } from '../../engine/generate.ts';
import { Rng } from '../../engine/random.ts';
import { chooseTokenBySort } from '../../bench/sort-sampling.ts';

/** A row of logits: Gaussian with a given spread, optionally rounded so that many values tie. */
function randomRow(rng: Rng, vocab: number, scale: number, ties: boolean): Float32Array {
  const row = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) {
    const x = rng.normal() * scale;
    row[i] = ties ? Math.round(x * 2) / 2 : x;
  }
  return row;
}

const settings: SamplingOptions[] = [];
for (const temperature of [0.2, 0.7, 1, 1.5])
  for (const topK of [0, 1, 5, 50, 3000]) for (const topP of [1, 0.99, 0.9, 0.5]) settings.push({ temperature, topK, topP });

async function compareOn(vocabs: number[], rowsPer: number): Promise<{ compared: number; differing: number }> {
  const data = new Rng('sampling-topk-rows');
  let compared = 0;
  let differing = 0;
  for (const vocab of vocabs)
    for (let n = 0; n < rowsPer; n++) {
      const row = randomRow(data, vocab, [0.5, 2, 6][n % 3], n % 4 === 3);
      for (const [s, sampling] of settings.entries()) {
        const seed = n * 1000 + s;
        const expected = chooseTokenBySort(row, sampling, new Rng(seed));
        const got = await chooseToken(row, sampling, new Rng(seed));
        compared++;
        if (got !== expected) differing++;
      }
    }
  return { compared, differing };
}

for (const backend of ['wasm', 'cpu'] as const) {
  describe(`sampling with tf.topk on ${backend}`, () => {
    beforeAll(async () => {
      await initBackend(backend);
    });
    afterAll(async () => {
      await initBackend('wasm');
    });

    it('chooses the token the full sort chooses, for every setting and seed', async () => {
      const before = tf.memory().numTensors;
      // 2000 and 5000 exceed the 1024 first candidates: flat rows make the nucleus and the draw grow past them.
      const { compared, differing } = await compareOn([7, 300, 2000, 5000], backend === 'wasm' ? 12 : 6);
      expect(compared).toBeGreaterThan(1000);
      expect(differing).toBe(0);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('a batch draws row by row from one RNG, as one row at a time does', async () => {
      const data = new Rng(5);
      const rows = Array.from({ length: 6 }, (_, i) => randomRow(data, 4000, i % 2 ? 0.5 : 4, false));
      for (const sampling of [
        { temperature: 0.2, topK: 50, topP: 0.9 },
        { temperature: 1, topK: 0, topP: 0.95 },
        { temperature: 1, topK: 0, topP: 1 },
      ]) {
        const one = new Rng(77);
        const alone = rows.map((row) => chooseTokenBySort(row, sampling, one));
        expect(await chooseTokens(rows, sampling, new Rng(77))).toEqual(alone);
      }
    });
  });
}
