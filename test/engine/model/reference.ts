// An independent Float64 forward pass for llama, qwen2 and gpt2 in plain loops (no tfjs), written from
// the Hugging Face modelling code, used by the tests as ground truth. One sequence at a time; the
// weights are keyed by Hugging Face names in Hugging Face layouts.
import { Rng } from '../../../engine/random.ts';
import type { ModelConfig } from '../../../engine/model/types.ts';

export interface RefTensor {
  data: Float64Array;
  shape: number[];
}
export type RefWeights = Map<string, RefTensor>;

/** The Hugging Face parameter names and shapes of a config, listed from the modelling code. */
export function hfParameterShapes(c: ModelConfig): [string, number[]][] {
  const d = c.hiddenSize;
  const out: [string, number[]][] = [];
  if (c.family === 'gpt2') {
    out.push(['transformer.wte.weight', [c.vocabSize, d]], ['transformer.wpe.weight', [c.maxPositions, d]]);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}.`;
      out.push(
        [p + 'ln_1.weight', [d]],
        [p + 'ln_1.bias', [d]],
        [p + 'attn.c_attn.weight', [d, 3 * d]],
        [p + 'attn.c_attn.bias', [3 * d]],
        [p + 'attn.c_proj.weight', [d, d]],
        [p + 'attn.c_proj.bias', [d]],
        [p + 'ln_2.weight', [d]],
        [p + 'ln_2.bias', [d]],
        [p + 'mlp.c_fc.weight', [d, c.intermediateSize]],
        [p + 'mlp.c_fc.bias', [c.intermediateSize]],
        [p + 'mlp.c_proj.weight', [c.intermediateSize, d]],
        [p + 'mlp.c_proj.bias', [d]],
      );
    }
    out.push(['transformer.ln_f.weight', [d]], ['transformer.ln_f.bias', [d]]);
    return out;
  }
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  out.push(['model.embed_tokens.weight', [c.vocabSize, d]]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`;
    out.push([p + 'input_layernorm.weight', [d]]);
    out.push([p + 'self_attn.q_proj.weight', [q, d]], [p + 'self_attn.k_proj.weight', [kv, d]], [p + 'self_attn.v_proj.weight', [kv, d]]);
    out.push([p + 'self_attn.o_proj.weight', [d, q]]);
    if (c.attentionBias) {
      out.push([p + 'self_attn.q_proj.bias', [q]], [p + 'self_attn.k_proj.bias', [kv]], [p + 'self_attn.v_proj.bias', [kv]]);
      if (c.family === 'llama') out.push([p + 'self_attn.o_proj.bias', [d]]);
    }
    out.push([p + 'post_attention_layernorm.weight', [d]]);
    out.push([p + 'mlp.gate_proj.weight', [c.intermediateSize, d]], [p + 'mlp.up_proj.weight', [c.intermediateSize, d]]);
    out.push([p + 'mlp.down_proj.weight', [d, c.intermediateSize]]);
  }
  out.push(['model.norm.weight', [d]]);
  if (!c.tieWordEmbeddings) out.push(['lm_head.weight', [c.vocabSize, d]]);
  return out;
}

/** Random weights large enough that every part of the network matters: norm weights near 1, non-zero biases. */
export function randomWeights(c: ModelConfig, seed: number, std = 0.2): RefWeights {
  const rng = new Rng(seed);
  const w: RefWeights = new Map();
  for (const [name, shape] of hfParameterShapes(c)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(size);
    const isNorm = /(norm|ln_\d|ln_f)\.weight$/.test(name);
    const isBias = name.endsWith('.bias');
    for (let i = 0; i < size; i++) {
      // Round to float32 so the tfjs model sees exactly the same numbers.
      data[i] = Math.fround(isNorm ? 1 + 0.2 * rng.normal() : isBias ? 0.1 * rng.normal() : std * rng.normal());
    }
    w.set(name, { data, shape });
  }
  return w;
}

function get(w: RefWeights, name: string): Float64Array {
  const t = w.get(name);
  if (!t) throw new Error(`reference: missing weight ${name}`);
  return t.data;
}

/** y = W x (+ b) for an nn.Linear weight [out, in]. */
function linearOutIn(W: Float64Array, x: Float64Array, out: number, b?: Float64Array): Float64Array {
  const n = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[o] : 0;
    for (let i = 0; i < n; i++) s += W[o * n + i] * x[i];
    y[o] = s;
  }
  return y;
}

/** y = x W + b for a Conv1D weight [in, out]. */
function conv1d(W: Float64Array, b: Float64Array, x: Float64Array, out: number): Float64Array {
  const y = Float64Array.from(b);
  for (let i = 0; i < x.length; i++) for (let o = 0; o < out; o++) y[o] += x[i] * W[i * out + o];
  return y;
}

function rms(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ms = 0;
  for (const v of x) ms += v * v;
  const r = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, i) => v * r * w[i]);
}

function layerNorm(x: Float64Array, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  let mean = 0;
  for (const v of x) mean += v / x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) ** 2 / x.length;
  const r = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * r * w[i] + b[i]);
}

/** HF's default inv_freq and `_compute_llama3_parameters`, written in its torch.where form. */
export function referenceInvFreq(c: ModelConfig): Float64Array {
  const half = c.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / c.ropeTheta ** ((2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (!s) return inv;
  const lowWl = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWl = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  return inv.map((f) => {
    const wl = (2 * Math.PI) / f;
    const scaled = wl > lowWl ? f / s.factor : f;
    const smooth = (s.originalMaxPositionEmbeddings / wl - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    const smoothed = ((1 - smooth) * scaled) / s.factor + smooth * scaled;
    const medium = !(wl < highWl) && !(wl > lowWl);
    return medium ? smoothed : scaled;
  });
}

/** HF's position ids for one row: cumsum(mask) − 1, padded positions set to 1. */
export function referencePositions(mask: number[]): number[] {
  let sum = 0;
  return mask.map((m) => {
    sum += m;
    return m === 0 ? 1 : sum - 1;
  });
}

function rotate(x: Float64Array, offset: number, headDim: number, pos: number, inv: Float64Array): void {
  const half = headDim / 2;
  for (let j = 0; j < half; j++) {
    const cos = Math.cos(pos * inv[j]);
    const sin = Math.sin(pos * inv[j]);
    const a = x[offset + j];
    const b = x[offset + half + j];
    x[offset + j] = a * cos - b * sin; // x1·cos + (−x2)·sin
    x[offset + half + j] = b * cos + a * sin; // x2·cos + x1·sin
  }
}

/** Causal attention of every query over earlier unmasked keys; fully masked queries get zeros. */
function attention(c: ModelConfig, q: Float64Array[], k: Float64Array[], v: Float64Array[], mask: number[]): Float64Array[] {
  const T = q.length;
  const hd = c.headDim;
  const group = c.numHeads / c.numKvHeads;
  return q.map((qt, t) => {
    const out = new Float64Array(c.numHeads * hd);
    for (let h = 0; h < c.numHeads; h++) {
      const kvh = Math.floor(h / group);
      const keys: number[] = [];
      const scores: number[] = [];
      for (let j = 0; j <= t && j < T; j++) {
        if (mask[j] === 0) continue;
        let s = 0;
        for (let e = 0; e < hd; e++) s += qt[h * hd + e] * k[j][kvh * hd + e];
        keys.push(j);
        scores.push(s / Math.sqrt(hd));
      }
      if (keys.length === 0) continue;
      const max = Math.max(...scores);
      const ex = scores.map((s) => Math.exp(s - max));
      const z = ex.reduce((a, b) => a + b, 0);
      keys.forEach((j, n) => {
        for (let e = 0; e < hd; e++) out[h * hd + e] += (ex[n] / z) * v[j][kvh * hd + e];
      });
    }
    return out;
  });
}

const silu = (x: number) => x / (1 + Math.exp(-x));
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

function llamaRow(c: ModelConfig, w: RefWeights, ids: number[], mask: number[], positions: number[]): Float64Array[] {
  const d = c.hiddenSize;
  const inv = referenceInvFreq(c);
  const emb = get(w, 'model.embed_tokens.weight');
  let x = ids.map((id) => emb.slice(id * d, (id + 1) * d));
  const opt = (name: string) => w.get(name)?.data;
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const h = x.map((xt) => rms(xt, get(w, p + 'input_layernorm.weight'), c.normEps));
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const q = h.map((ht) => linearOutIn(get(w, p + 'self_attn.q_proj.weight'), ht, qDim, opt(p + 'self_attn.q_proj.bias')));
    const k = h.map((ht) => linearOutIn(get(w, p + 'self_attn.k_proj.weight'), ht, kvDim, opt(p + 'self_attn.k_proj.bias')));
    const v = h.map((ht) => linearOutIn(get(w, p + 'self_attn.v_proj.weight'), ht, kvDim, opt(p + 'self_attn.v_proj.bias')));
    positions.forEach((pos, t) => {
      for (let hh = 0; hh < c.numHeads; hh++) rotate(q[t], hh * c.headDim, c.headDim, pos, inv);
      for (let hh = 0; hh < c.numKvHeads; hh++) rotate(k[t], hh * c.headDim, c.headDim, pos, inv);
    });
    const attn = attention(c, q, k, v, mask);
    x = x.map((xt, t) => {
      const o = linearOutIn(get(w, p + 'self_attn.o_proj.weight'), attn[t], d, opt(p + 'self_attn.o_proj.bias'));
      const y = xt.map((val, i) => val + o[i]);
      const h2 = rms(y, get(w, p + 'post_attention_layernorm.weight'), c.normEps);
      const g = linearOutIn(get(w, p + 'mlp.gate_proj.weight'), h2, c.intermediateSize);
      const u = linearOutIn(get(w, p + 'mlp.up_proj.weight'), h2, c.intermediateSize);
      const m = linearOutIn(
        get(w, p + 'mlp.down_proj.weight'),
        g.map((gv, i) => silu(gv) * u[i]),
        d,
      );
      return y.map((val, i) => val + m[i]);
    });
  }
  const head = c.tieWordEmbeddings ? emb : get(w, 'lm_head.weight');
  return x.map((xt) => linearOutIn(head, rms(xt, get(w, 'model.norm.weight'), c.normEps), c.vocabSize));
}

function gpt2Row(c: ModelConfig, w: RefWeights, ids: number[], mask: number[], positions: number[]): Float64Array[] {
  const d = c.hiddenSize;
  const wte = get(w, 'transformer.wte.weight');
  const wpe = get(w, 'transformer.wpe.weight');
  let x = ids.map((id, t) => wte.slice(id * d, (id + 1) * d).map((val, i) => val + wpe[positions[t] * d + i]));
  for (let l = 0; l < c.numLayers; l++) {
    const p = `transformer.h.${l}.`;
    const qkv = x.map((xt) =>
      conv1d(
        get(w, p + 'attn.c_attn.weight'),
        get(w, p + 'attn.c_attn.bias'),
        layerNorm(xt, get(w, p + 'ln_1.weight'), get(w, p + 'ln_1.bias'), c.normEps),
        3 * d,
      ),
    );
    const attn = attention(
      c,
      qkv.map((r) => r.slice(0, d)),
      qkv.map((r) => r.slice(d, 2 * d)),
      qkv.map((r) => r.slice(2 * d)),
      mask,
    );
    x = x.map((xt, t) => {
      const o = conv1d(get(w, p + 'attn.c_proj.weight'), get(w, p + 'attn.c_proj.bias'), attn[t], d);
      const y = xt.map((val, i) => val + o[i]);
      const h2 = layerNorm(y, get(w, p + 'ln_2.weight'), get(w, p + 'ln_2.bias'), c.normEps);
      const f = conv1d(get(w, p + 'mlp.c_fc.weight'), get(w, p + 'mlp.c_fc.bias'), h2, c.intermediateSize).map(geluTanh);
      const m = conv1d(get(w, p + 'mlp.c_proj.weight'), get(w, p + 'mlp.c_proj.bias'), f, d);
      return y.map((val, i) => val + m[i]);
    });
  }
  return x.map((xt) =>
    linearOutIn(wte, layerNorm(xt, get(w, 'transformer.ln_f.weight'), get(w, 'transformer.ln_f.bias'), c.normEps), c.vocabSize),
  );
}

/** Logits [batch][time] → Float64Array(vocab); mask rows are 1 for tokens and 0 for (left) padding. */
export function referenceLogits(c: ModelConfig, w: RefWeights, ids: number[][], mask?: number[][]): Float64Array[][] {
  return ids.map((row, b) => {
    const m = mask ? mask[b] : row.map(() => 1);
    const positions = referencePositions(m);
    return c.family === 'gpt2' ? gpt2Row(c, w, row, m, positions) : llamaRow(c, w, row, m, positions);
  });
}

/** Mean cross-entropy over the positions whose label is ≥ 0 (label −1 = ignored). */
export function referenceLoss(c: ModelConfig, w: RefWeights, ids: number[][], labels: number[][], mask?: number[][]): number {
  const logits = referenceLogits(c, w, ids, mask);
  let total = 0;
  let count = 0;
  labels.forEach((row, b) =>
    row.forEach((label, t) => {
      if (label < 0) return;
      const z = logits[b][t];
      const max = Math.max(...z);
      let sum = 0;
      for (const v of z) sum += Math.exp(v - max);
      total += max + Math.log(sum) - z[label];
      count++;
    }),
  );
  return total / count;
}
