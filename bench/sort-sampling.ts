// The sampler that tf.topk replaced: a full sort of the row in JavaScript. Kept only as the baseline of
// `npm run bench` and as the reference the sampling test compares the backend sampler against.
import type { SamplingOptions } from '../engine/generate.ts';
import type { Rng } from '../engine/random.ts';

/** One token from a row of logits: temperature, then top-k and top-p over the fully sorted row. */
export function chooseTokenBySort(logits: Float32Array, sampling: SamplingOptions, draw: Rng): number {
  const scaled = Array.from(logits, (x, id) => ({ id, x: x / sampling.temperature }));
  scaled.sort((a, b) => b.x - a.x || a.id - b.id);
  let kept = sampling.topK > 0 ? scaled.slice(0, sampling.topK) : scaled;
  const max = kept[0].x;
  let probs = kept.map((c) => Math.exp(c.x - max));
  let total = probs.reduce((a, b) => a + b, 0);
  if (sampling.topP < 1) {
    let cumulative = 0;
    let keep = 0;
    while (keep < probs.length) {
      cumulative += probs[keep] / total;
      keep++;
      if (cumulative >= sampling.topP) break;
    }
    kept = kept.slice(0, keep);
    probs = probs.slice(0, keep);
    total = probs.reduce((a, b) => a + b, 0);
  }
  let r = draw.next() * total;
  for (let i = 0; i < kept.length; i++) {
    r -= probs[i];
    if (r < 0) return kept[i].id;
  }
  return kept[kept.length - 1].id;
}
