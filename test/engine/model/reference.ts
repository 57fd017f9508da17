// An independent Float64 forward pass for llama, qwen2, gpt2, gemma2, gemma3_text, qwen3 and granite in
// plain loops (no tfjs), written from the Hugging Face modelling code, used by the tests as ground truth.
// One sequence at a time; the weights are keyed by Hugging Face names in Hugging Face layouts. The feature
// switches of the newer families (softcaps, sliding layers, rope bases, multipliers, norms) are read here
// from the config.json fields themselves (`c.raw`, with the transformers class defaults), not from the
// engine's normalised config, so a misreading in engine/model/config.ts shows up as a mismatch.
import { Rng } from '../../../engine/random.ts';
import type { ModelConfig } from '../../../engine/model/types.ts';

export interface RefTensor {
  data: Float64Array;
  shape: number[];
}
export type RefWeights = Map<string, RefTensor>;

const isGemma = (c: ModelConfig) => c.raw.model_type === 'gemma2' || c.raw.model_type === 'gemma3_text';

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
  const gemma = isGemma(c);
  out.push(['model.embed_tokens.weight', [c.vocabSize, d]]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.`;
    out.push([p + 'input_layernorm.weight', [d]]);
    out.push([p + 'self_attn.q_proj.weight', [q, d]], [p + 'self_attn.k_proj.weight', [kv, d]], [p + 'self_attn.v_proj.weight', [kv, d]]);
    out.push([p + 'self_attn.o_proj.weight', [d, q]]);
    if (c.attentionBias) {
      out.push([p + 'self_attn.q_proj.bias', [q]], [p + 'self_attn.k_proj.bias', [kv]], [p + 'self_attn.v_proj.bias', [kv]]);
      if (c.family !== 'qwen2') out.push([p + 'self_attn.o_proj.bias', [d]]);
    }
    if (c.family === 'qwen3' || c.family === 'gemma3_text') {
      out.push([p + 'self_attn.q_norm.weight', [c.headDim]], [p + 'self_attn.k_norm.weight', [c.headDim]]);
    }
    out.push([p + 'post_attention_layernorm.weight', [d]]);
    if (gemma) out.push([p + 'pre_feedforward_layernorm.weight', [d]], [p + 'post_feedforward_layernorm.weight', [d]]);
    out.push([p + 'mlp.gate_proj.weight', [c.intermediateSize, d]], [p + 'mlp.up_proj.weight', [c.intermediateSize, d]]);
    out.push([p + 'mlp.down_proj.weight', [d, c.intermediateSize]]);
  }
  out.push(['model.norm.weight', [d]]);
  if (!c.tieWordEmbeddings) out.push(['lm_head.weight', [c.vocabSize, d]]);
  return out;
}

/**
 * Random weights large enough that every part of the network matters: norm scales near 1 (gemma's
 * (1 + w) norms: w near 0), non-zero biases.
 */
export function randomWeights(c: ModelConfig, seed: number, std = 0.2): RefWeights {
  const rng = new Rng(seed);
  const w: RefWeights = new Map();
  const normCentre = isGemma(c) ? 0 : 1;
  for (const [name, shape] of hfParameterShapes(c)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(size);
    const isNorm = /(norm|ln_\d|ln_f)\.weight$/.test(name);
    const isBias = name.endsWith('.bias');
    for (let i = 0; i < size; i++) {
      // Round to float32 so the tfjs model sees exactly the same numbers.
      data[i] = Math.fround(isNorm ? normCentre + 0.2 * rng.normal() : isBias ? 0.1 * rng.normal() : std * rng.normal());
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

/** RMSNorm; gemma's scales by (1 + w). */
function rms(x: Float64Array, w: Float64Array, eps: number, plusOne = false): Float64Array {
  let ms = 0;
  for (const v of x) ms += v * v;
  const r = 1 / Math.sqrt(ms / x.length + eps);
  return x.map((v, i) => v * r * (plusOne ? 1 + w[i] : w[i]));
}

function layerNorm(x: Float64Array, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  let mean = 0;
  for (const v of x) mean += v / x.length;
  let variance = 0;
  for (const v of x) variance += (v - mean) ** 2 / x.length;
  const r = 1 / Math.sqrt(variance + eps);
  return x.map((v, i) => (v - mean) * r * w[i] + b[i]);
}

/**
 * HF's default inv_freq and `_compute_llama3_parameters` (written in its torch.where form) or
 * `_compute_linear_scaling_rope_parameters`; `theta` replaces the base and drops the scaling (gemma3's
 * local rope).
 */
export function referenceInvFreq(c: ModelConfig, theta?: number): Float64Array {
  const half = c.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / (theta ?? c.ropeTheta) ** ((2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (!s || theta !== undefined) return inv;
  if (s.ropeType === 'linear') return inv.map((f) => f / s.factor);
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

/** How attention scores are formed: scale, optional tanh softcap, optional sliding window (in absolute indices). */
interface AttentionOptions {
  scaling: number;
  softcap?: number;
  window?: number;
}

/** Causal attention of every query over earlier unmasked keys; fully masked queries get zeros. */
function attention(
  c: ModelConfig,
  q: Float64Array[],
  k: Float64Array[],
  v: Float64Array[],
  mask: number[],
  options: AttentionOptions = { scaling: 1 / Math.sqrt(c.headDim) },
): Float64Array[] {
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
        if (options.window !== undefined && t - j >= options.window) continue;
        let s = 0;
        for (let e = 0; e < hd; e++) s += qt[h * hd + e] * k[j][kvh * hd + e];
        s *= options.scaling;
        if (options.softcap !== undefined) s = options.softcap * Math.tanh(s / options.softcap);
        keys.push(j);
        scores.push(s);
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

/**
 * The switches of the HF modelling code of each rotary family, read from the config.json fields with the
 * defaults of its transformers config class.
 */
interface RotaryFeatures {
  gemma: boolean;
  qkNorm: boolean;
  act: (x: number) => number;
  embedScale: number;
  scaling: number;
  residual: number;
  logitsScaling: number;
  attnCap?: number;
  finalCap?: number;
  /** Per layer: the sliding window, or undefined for a global layer. */
  windows: (number | undefined)[];
  /** Per layer: its rope inv_freq. */
  invFreqs: Float64Array[];
}

function rotaryFeatures(c: ModelConfig): RotaryFeatures {
  const raw = c.raw;
  const type = raw.model_type;
  // A missing field takes the class default; an explicit null stays null (switched off).
  const field = <T>(name: string, fallback: T): T | null => (raw[name] === undefined ? fallback : (raw[name] as T | null));
  const gemma = type === 'gemma2' || type === 'gemma3_text';
  const granite = type === 'granite';
  const layers = Array.from({ length: c.numLayers }, (_, l) => l);
  let sliding = layers.map(() => false);
  if (gemma) {
    const types = raw.layer_types as string[] | undefined;
    const pattern = type === 'gemma2' ? 2 : (field('sliding_window_pattern', 6) as number);
    // modeling_gemma2: `is_sliding = not bool(layer_idx % 2)`; gemma3: `bool((layer_idx + 1) % pattern)`.
    sliding = types ? types.map((t) => t === 'sliding_attention') : layers.map((l) => (l + 1) % pattern !== 0);
  }
  const window = field('sliding_window', 4096) as number;
  const globalInv = referenceInvFreq(c);
  const localInv = type === 'gemma3_text' ? referenceInvFreq(c, field('rope_local_base_freq', 10000) as number) : globalInv;
  return {
    gemma,
    qkNorm: type === 'qwen3' || type === 'gemma3_text',
    act: gemma ? geluTanh : silu,
    embedScale: gemma ? Math.fround(Math.sqrt(c.hiddenSize)) : granite ? (field('embedding_multiplier', 1) as number) : 1,
    scaling: gemma
      ? (field('query_pre_attn_scalar', 256) as number) ** -0.5
      : granite
        ? (field('attention_multiplier', 1) as number)
        : 1 / Math.sqrt(c.headDim),
    residual: granite ? (field('residual_multiplier', 1) as number) : 1,
    logitsScaling: granite ? (field('logits_scaling', 1) as number) : 1,
    // Gemma3's attention does not pass attn_logit_softcapping on; Gemma2's does.
    attnCap: type === 'gemma2' ? (field('attn_logit_softcapping', 50) ?? undefined) : undefined,
    finalCap: gemma ? (field('final_logit_softcapping', type === 'gemma2' ? 30 : null) ?? undefined) : undefined,
    windows: sliding.map((s) => (s ? window : undefined)),
    invFreqs: sliding.map((s) => (s ? localInv : globalInv)),
  };
}

function rotaryRow(c: ModelConfig, w: RefWeights, ids: number[], mask: number[], positions: number[]): Float64Array[] {
  const d = c.hiddenSize;
  const f = rotaryFeatures(c);
  const emb = get(w, 'model.embed_tokens.weight');
  let x = ids.map((id) => emb.slice(id * d, (id + 1) * d).map((v) => v * f.embedScale));
  const opt = (name: string) => w.get(name)?.data;
  const norm = (v: Float64Array, name: string) => rms(v, get(w, name), c.normEps, f.gemma);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}.`;
    const h = x.map((xt) => norm(xt, p + 'input_layernorm.weight'));
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const q = h.map((ht) => linearOutIn(get(w, p + 'self_attn.q_proj.weight'), ht, qDim, opt(p + 'self_attn.q_proj.bias')));
    const k = h.map((ht) => linearOutIn(get(w, p + 'self_attn.k_proj.weight'), ht, kvDim, opt(p + 'self_attn.k_proj.bias')));
    const v = h.map((ht) => linearOutIn(get(w, p + 'self_attn.v_proj.weight'), ht, kvDim, opt(p + 'self_attn.v_proj.bias')));
    const headNorm = (row: Float64Array, heads: number, name: string) => {
      for (let hh = 0; hh < heads; hh++) {
        const slice = row.slice(hh * c.headDim, (hh + 1) * c.headDim);
        row.set(norm(slice, name), hh * c.headDim);
      }
    };
    positions.forEach((pos, t) => {
      if (f.qkNorm) {
        headNorm(q[t], c.numHeads, p + 'self_attn.q_norm.weight');
        headNorm(k[t], c.numKvHeads, p + 'self_attn.k_norm.weight');
      }
      for (let hh = 0; hh < c.numHeads; hh++) rotate(q[t], hh * c.headDim, c.headDim, pos, f.invFreqs[l]);
      for (let hh = 0; hh < c.numKvHeads; hh++) rotate(k[t], hh * c.headDim, c.headDim, pos, f.invFreqs[l]);
    });
    const attn = attention(c, q, k, v, mask, { scaling: f.scaling, softcap: f.attnCap, window: f.windows[l] });
    x = x.map((xt, t) => {
      let o = linearOutIn(get(w, p + 'self_attn.o_proj.weight'), attn[t], d, opt(p + 'self_attn.o_proj.bias'));
      if (f.gemma) o = norm(o, p + 'post_attention_layernorm.weight');
      const y = xt.map((val, i) => val + f.residual * o[i]);
      const h2 = norm(y, p + (f.gemma ? 'pre_feedforward_layernorm.weight' : 'post_attention_layernorm.weight'));
      const g = linearOutIn(get(w, p + 'mlp.gate_proj.weight'), h2, c.intermediateSize);
      const u = linearOutIn(get(w, p + 'mlp.up_proj.weight'), h2, c.intermediateSize);
      let m = linearOutIn(
        get(w, p + 'mlp.down_proj.weight'),
        g.map((gv, i) => f.act(gv) * u[i]),
        d,
      );
      if (f.gemma) m = norm(m, p + 'post_feedforward_layernorm.weight');
      return y.map((val, i) => val + f.residual * m[i]);
    });
  }
  const head = c.tieWordEmbeddings ? emb : get(w, 'lm_head.weight');
  return x.map((xt) =>
    linearOutIn(head, norm(xt, 'model.norm.weight'), c.vocabSize).map((z) => {
      const scaled = z / f.logitsScaling;
      return f.finalCap === undefined ? scaled : f.finalCap * Math.tanh(scaled / f.finalCap);
    }),
  );
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
    return c.family === 'gpt2' ? gpt2Row(c, w, row, m, positions) : rotaryRow(c, w, row, m, positions);
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
