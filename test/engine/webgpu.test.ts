// The webgpu backend (tfjs-backend-webgpu on Dawn) against cpu and wasm: every family's logits and parameter
// gradients within 1e-4 of cpu, 20 steps of train() on a micro model on wasm's loss curve within 1e-3, and a flat
// tensor count. On a machine without a GPU, Dawn's OpenGL backend on Mesa's llvmpipe is the adapter (the Debian
// packages libegl1 libegl-mesa0 libgl1-mesa-dri; .ci/run installs them). Without any adapter the suite skips
// and says why. Reads are asynchronous throughout: Node's webgpu cannot read a GPU tensor synchronously.
import { afterAll, describe, expect, it } from 'vitest';
import { backendAdapter, backendRequest, describeAdapter, initBackend, tf } from '../../engine/tensor/backend.ts';
import { MODEL_FAMILIES, makeConfig, parseConfig } from '../../engine/model/config.ts';
import { createModel } from '../../engine/model/transformer.ts';
import type { CausalLM, Family } from '../../engine/model/types.ts';
import { train, type TrainExample } from '../../engine/train.ts';
import { generate } from '../../engine/generate.ts';
import { saveModel } from '../../engine/model/checkpoint.ts';
import { readCheckpointTensors } from '../../engine/model/safetensors.ts';
import { forwardLast } from '../../guardrails/lm.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LossInputs } from '../../engine/contracts/loss.ts';

let unavailable: string | undefined;
try {
  await initBackend('webgpu');
} catch (error) {
  unavailable = (error as Error).message;
}
if (unavailable) console.warn(`[webgpu] suite skipped: ${unavailable}`);
const adapter = backendAdapter();
if (adapter) console.log(`[webgpu] adapter: ${describeAdapter(adapter)}`);
await initBackend('wasm');
afterAll(() => initBackend('wasm'));

const tokens = { bos_token_id: 2, eos_token_id: 1, pad_token_id: 0 };
const common = {
  vocab_size: 40,
  hidden_size: 16,
  intermediate_size: 24,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 32,
  ...tokens,
};
/** Tiny configs of the families makeConfig cannot build from sizes (their features switched on). */
const rawConfigs: Record<string, Record<string, unknown>> = {
  gemma2: {
    ...common,
    architectures: ['Gemma2ForCausalLM'],
    model_type: 'gemma2',
    num_hidden_layers: 2,
    head_dim: 8,
    hidden_activation: 'gelu_pytorch_tanh',
    rms_norm_eps: 1e-6,
    rope_theta: 100,
    attention_bias: false,
    query_pre_attn_scalar: 8,
    sliding_window: 3,
    attn_logit_softcapping: 1.0,
    final_logit_softcapping: 1.5,
    tie_word_embeddings: true,
  },
  gemma3_text: {
    ...common,
    architectures: ['Gemma3ForCausalLM'],
    model_type: 'gemma3_text',
    num_hidden_layers: 2,
    head_dim: 8,
    hidden_activation: 'gelu_pytorch_tanh',
    rms_norm_eps: 1e-6,
    rope_theta: 1000,
    rope_local_base_freq: 10,
    rope_scaling: { rope_type: 'linear', factor: 4 },
    query_pre_attn_scalar: 8,
    sliding_window: 3,
    sliding_window_pattern: 2,
    attn_logit_softcapping: null,
    final_logit_softcapping: 1.5,
    tie_word_embeddings: true,
  },
  qwen3: {
    ...common,
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    num_hidden_layers: 2,
    head_dim: 8,
    hidden_act: 'silu',
    rms_norm_eps: 1e-6,
    rope_theta: 1000,
    rope_scaling: null,
    attention_bias: true,
    use_sliding_window: false,
    sliding_window: null,
    max_window_layers: 2,
    tie_word_embeddings: false,
  },
  granite: {
    ...common,
    architectures: ['GraniteForCausalLM'],
    model_type: 'granite',
    num_hidden_layers: 2,
    hidden_act: 'silu',
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    attention_bias: false,
    mlp_bias: false,
    embedding_multiplier: 3,
    attention_multiplier: 0.05,
    residual_multiplier: 0.5,
    logits_scaling: 4,
    tie_word_embeddings: true,
  },
};

function build(family: string, seed = 1): CausalLM {
  const raw =
    rawConfigs[family] ??
    makeConfig(family as Family, {
      hidden: 16,
      layers: 2,
      heads: 4,
      kvHeads: family === 'gpt2' ? undefined : 2,
      intermediate: 24,
      vocab: 40,
      maxPositions: 32,
    });
  return createModel(parseConfig(raw), { seed });
}

const ids = [
  [5, 17, 3, 34, 9, 21, 30, 12],
  [7, 8, 19, 2, 11, 7, 25, 6],
];

/** Logits and the gradient of a next-token cross-entropy with respect to every parameter, read asynchronously. */
async function logitsAndGrads(family: string): Promise<{ logits: Float32Array; grads: Map<string, Float32Array> }> {
  const model = build(family);
  const input = tf.tensor2d(ids, undefined, 'int32');
  const labels = tf
    .oneHot(
      tf.tensor2d(
        ids.map((r) => [...r.slice(1), 0]),
        undefined,
        'int32',
      ),
      40,
    )
    .cast('float32');
  const vars = [...model.params.values()];
  let logits: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const out = model.forward(input).logits;
    logits = tf.keep(out);
    return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(out), labels), -1))) as tf.Scalar;
  }, vars);
  const result = { logits: (await logits!.data()) as Float32Array, grads: new Map<string, Float32Array>() };
  for (const [name, v] of model.params) result.grads.set(name, (await grads[v.name].data()) as Float32Array);
  tf.dispose([value, logits!, input, labels, ...Object.values(grads)]);
  model.dispose();
  return result;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('backend for child processes', () => {
  it('names the backend in use as a --backend value (what sweep workers and prepare processes get)', async () => {
    await initBackend('cpu');
    expect(backendRequest()).toBe('cpu');
    expect(backendAdapter()).toBeUndefined();
    await initBackend('wasm');
    expect(backendRequest()).toBe('wasm');
    if (!unavailable) {
      await initBackend('webgpu');
      expect(backendRequest()).toBe('webgpu');
      expect(backendAdapter()?.type).toMatch(/^(hardware|software)$/);
      await initBackend('wasm');
    }
  });
});

describe.skipIf(unavailable !== undefined)(`webgpu backend${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it.each(MODEL_FAMILIES)('%s: logits and gradients match cpu within 1e-4', async (family) => {
    await initBackend('cpu');
    const cpu = await logitsAndGrads(family);
    await initBackend('webgpu');
    const gpu = await logitsAndGrads(family);
    const dLogits = maxDiff(gpu.logits, cpu.logits);
    let dGrad = 0;
    for (const [name, g] of cpu.grads) dGrad = Math.max(dGrad, maxDiff(gpu.grads.get(name)!, g));
    console.log(`[webgpu] ${family}: max |Δ| vs cpu: logits ${dLogits.toExponential(2)}, gradients ${dGrad.toExponential(2)}`);
    expect(dLogits).toBeLessThan(1e-4);
    expect(dGrad).toBeLessThan(1e-4);
    expect(Math.max(...cpu.logits.map(Math.abs))).toBeGreaterThan(0.05); // compares something
  });

  it('20 steps of the engine train() on a micro model follow the wasm loss curve within 1e-3, with a flat tensor count', async () => {
    const examples: TrainExample[] = ids.map((row) => ({ ids: row, responseMask: row.map(() => 1) }));
    const meanCe = (inputs: LossInputs) => tf.neg(tf.div(tf.sum(tf.mul(inputs.logp, inputs.mask)), tf.sum(inputs.mask))) as tf.Scalar;
    async function curve(): Promise<{ losses: number[]; counts: number[] }> {
      const model = build('llama', 3);
      const counts: number[] = [];
      const result = await train(model, examples, {
        loss: meanCe,
        needs: { reference: false, star: false, verdict: false, fullLogProbs: false },
        config: { epochs: 20, batchSize: 2, lr: 1e-2, minLr: 1e-2, warmupSteps: 0, seed: 1 },
        onStep: () => counts.push(tf.memory().numTensors),
      });
      model.dispose();
      return { losses: result.losses, counts };
    }
    await initBackend('wasm');
    const wasm = await curve();
    await initBackend('webgpu');
    const gpu = await curve();
    const d = Math.max(...gpu.losses.map((l, i) => Math.abs(l - wasm.losses[i])));
    console.log(`[webgpu] loss ${gpu.losses[0].toFixed(4)} → ${gpu.losses[19].toFixed(4)}; max |Δ| vs wasm ${d.toExponential(2)}`);
    expect(gpu.losses[19]).toBeLessThan(gpu.losses[0] - 0.5); // it learns
    expect(d).toBeLessThan(1e-3);
    expect(gpu.counts[19]).toBe(gpu.counts[0]); // nothing leaks per step
  });

  it('generation (greedy and sampled), last-position logits and checkpoint saving read asynchronously and match wasm', async () => {
    const prompts = [ids[0].slice(0, 5), ids[1].slice(0, 3)];
    const options = { maxNewTokens: 6, eosTokenIds: [], padTokenId: 0 };
    const sampled = { ...options, sampling: { temperature: 1, topK: 10, topP: 0.9 }, seed: 3 };
    async function run(): Promise<{ greedy: number[][]; sampled: number[][]; last: Float32Array[]; saved: Float32Array[] }> {
      const model = build('qwen2', 5);
      const greedy = (await generate(model, prompts, options)).map((g) => g.tokens);
      const drawn = (await generate(model, prompts, sampled)).map((g) => g.tokens);
      const last = (await forwardLast(model, [ids[0]])).logits;
      const dir = join(mkdtempSync(join(tmpdir(), 'webgpu-save-')), 'm');
      await saveModel(dir, model, { files: { 'tokenizer.json': { model: { type: 'WordLevel', vocab: {} } } } });
      const stored = readCheckpointTensors(dir);
      const saved: Float32Array[] = [];
      for (const [name, v] of model.params) {
        expect(Array.from(stored.get(name)!.data as Float32Array)).toEqual(Array.from((await v.data()) as Float32Array));
        saved.push(stored.get(name)!.data as Float32Array);
      }
      model.dispose();
      rmSync(dir, { recursive: true, force: true });
      return { greedy, sampled: drawn, last, saved };
    }
    await initBackend('wasm');
    const wasm = await run();
    await initBackend('webgpu');
    const before = tf.memory().numTensors;
    const gpu = await run();
    expect(tf.memory().numTensors).toBe(before);
    await initBackend('wasm');
    expect(gpu.greedy).toEqual(wasm.greedy);
    expect(gpu.sampled).toEqual(wasm.sampled);
    expect(gpu.greedy.flat().length).toBe(12);
    expect(maxDiff(gpu.last[0], wasm.last[0])).toBeLessThan(1e-4);
    gpu.saved.forEach((w, i) => expect(maxDiff(w, wasm.saved[i])).toBe(0)); // the same seeded init, written from the GPU
  });
});
