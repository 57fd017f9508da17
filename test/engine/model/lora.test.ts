import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../../engine/tensor/index.ts';
import { makeConfig, parseConfig, type ConfigSizes } from '../../../engine/model/config.ts';
import { createModel } from '../../../engine/model/transformer.ts';
import { createLora, isLora, mergeLora, type LoraModel } from '../../../engine/model/lora.ts';
import { ADAPTER_CONFIG, AdapterError, loadAdapter, parseAdapterConfig, saveAdapter } from '../../../engine/model/peft.ts';
import { train } from '../../../engine/train.ts';
import { saveModel } from '../../../engine/model/checkpoint.ts';
import type { LossInputs } from '../../../engine/contracts/loss.ts';
import type { CausalLM, Family } from '../../../engine/model/types.ts';

const tiny: Record<Family, ConfigSizes> = {
  llama: { hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 48, vocab: 50, maxPositions: 64 },
  qwen2: { hidden: 32, layers: 2, heads: 4, kvHeads: 2, intermediate: 40, vocab: 50, maxPositions: 64, tieWordEmbeddings: true },
  gpt2: { hidden: 24, layers: 2, heads: 3, vocab: 50, maxPositions: 32 },
};
const families: Family[] = ['llama', 'qwen2', 'gpt2'];

const base = (family: Family) => createModel(parseConfig(makeConfig(family, tiny[family])), { seed: 3 });
const ids = () => tf.tensor2d([[5, 17, 3, 44, 9, 21, 30, 12]], [1, 8], 'int32');
const logitsOf = (model: CausalLM, options = {}) => tf.tidy(() => Array.from(model.forward(ids(), options).logits.dataSync()));
const maxDiff = (a: number[], b: number[]) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/** Gives every B random values, so the adapters change the model. */
function randomiseB(lora: LoraModel, seed = 1): void {
  let k = 0;
  for (const m of lora.modules.values()) m.b.assign(tf.tidy(() => tf.randomNormal(m.b.shape, 0, 0.2, 'float32', seed + k++)));
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('LoRA adapters', () => {
  for (const family of families) {
    it(`${family}: B = 0 leaves the logits exactly unchanged; adapters equal the merged checkpoint`, () => {
      const model = base(family);
      const lora = createLora(model, { rank: 4, alpha: 8, dropout: 0.1 }, { seed: 1 });
      try {
        const plain = logitsOf(model);
        expect(logitsOf(lora)).toEqual(plain);
        randomiseB(lora);
        const adapted = logitsOf(lora);
        expect(maxDiff(adapted, plain)).toBeGreaterThan(1e-3);
        expect(logitsOf(lora, { adapters: false })).toEqual(plain);
        expect(logitsOf(lora.reference)).toEqual(plain);
        expect(logitsOf(lora)).toEqual(adapted); // no dropout outside training
        const merged = mergeLora(lora);
        try {
          expect(maxDiff(logitsOf(merged), adapted)).toBeLessThan(1e-5);
        } finally {
          merged.dispose();
        }
      } finally {
        lora.dispose();
        model.dispose();
      }
    });
  }

  // The newer families share the rotary block: gemma2 (softcaps, sandwich norms, head_dim ≠ hidden / heads), qwen3 (q/k norms).
  const newer = {
    gemma2: {
      model_type: 'gemma2',
      vocab_size: 50,
      hidden_size: 32,
      intermediate_size: 48,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 12,
      hidden_activation: 'gelu_pytorch_tanh',
      max_position_embeddings: 64,
      rms_norm_eps: 1e-6,
      rope_theta: 100,
      query_pre_attn_scalar: 20,
      sliding_window: 3,
      attn_logit_softcapping: 1.0,
      final_logit_softcapping: 1.5,
      tie_word_embeddings: true,
    },
    qwen3: {
      model_type: 'qwen3',
      vocab_size: 50,
      hidden_size: 32,
      intermediate_size: 40,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 12,
      hidden_act: 'silu',
      max_position_embeddings: 64,
      rms_norm_eps: 1e-6,
      rope_theta: 1000,
      attention_bias: true,
      tie_word_embeddings: false,
    },
  };
  for (const [family, raw] of Object.entries(newer)) {
    it(`${family}: B = 0 changes nothing; adapters equal the merged checkpoint`, () => {
      const model = createModel(parseConfig(raw), { seed: 3 });
      const lora = createLora(model, { rank: 4, alpha: 8, dropout: 0 }, { seed: 1 });
      expect(lora.modules.get('model.layers.1.self_attn.o_proj')).toMatchObject({ inFeatures: 48, outFeatures: 32 });
      const plain = logitsOf(model);
      expect(logitsOf(lora)).toEqual(plain);
      randomiseB(lora);
      const adapted = logitsOf(lora);
      expect(maxDiff(adapted, plain)).toBeGreaterThan(1e-3);
      const merged = mergeLora(lora);
      expect(maxDiff(logitsOf(merged), adapted)).toBeLessThan(1e-5);
      merged.dispose();
      lora.dispose();
      model.dispose();
    });
  }

  it('forwardHidden carries the adapters (train() computes chunked log-probs from it); the reference has none', () => {
    const model = base('qwen2');
    const lora = createLora(model, { rank: 4, alpha: 8, dropout: 0 }, { seed: 1 });
    randomiseB(lora);
    const viaHidden = (m: CausalLM) =>
      tf.tidy(() => {
        const { hidden, head } = m.forwardHidden!(ids());
        return Array.from(tf.matMul(hidden.squeeze([0]), head, false, true).dataSync());
      });
    expect(maxDiff(viaHidden(lora), logitsOf(lora))).toBeLessThan(1e-5);
    expect(maxDiff(viaHidden(lora.reference), logitsOf(model))).toBeLessThan(1e-5);
    lora.dispose();
    model.dispose();
  });

  it('scales by alpha / r, or alpha / sqrt(r) with rsLoRA; A is Kaiming-uniform, B zero', () => {
    const model = base('llama');
    const a = createLora(model, { rank: 4, alpha: 8, dropout: 0 }, { seed: 1 });
    const b = createLora(model, { rank: 4, alpha: 8, dropout: 0, rslora: true }, { seed: 1 });
    expect(a.scaling).toBe(2);
    expect(b.scaling).toBe(4);
    const m = a.modules.get('model.layers.1.mlp.down_proj')!;
    const values = Array.from(m.a.dataSync());
    expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(48));
    expect(Math.max(...values.map(Math.abs))).toBeGreaterThan(0.8 / Math.sqrt(48));
    expect(Array.from(m.b.dataSync()).every((v) => v === 0)).toBe(true);
    a.dispose();
    b.dispose();
    model.dispose();
  });

  it('drops adapter inputs only while gradients are recorded, and differently per forward pass', () => {
    const model = base('llama');
    const lora = createLora(model, { rank: 4, alpha: 8, dropout: 0.5 }, { seed: 1 });
    randomiseB(lora);
    const evaluated = logitsOf(lora);
    const underGrad = () => {
      const { value, grads } = tf.variableGrads(() => tf.sum(lora.forward(ids()).logits) as tf.Scalar, [...lora.params.values()]);
      const v = value.dataSync()[0];
      tf.dispose([value, ...Object.values(grads)]);
      return v;
    };
    const sum = evaluated.reduce((a, b) => a + b, 0);
    const first = underGrad();
    expect(Math.abs(first - sum)).toBeGreaterThan(1e-3);
    expect(underGrad()).not.toBe(first);
    expect(logitsOf(lora)).toEqual(evaluated);
    lora.dispose();
    model.dispose();
  });

  it('uses PEFT tensor names and shapes', () => {
    const expected: Record<Family, [string, number[], number[]][]> = {
      llama: [
        ['self_attn.q_proj', [4, 32], [32, 4]],
        ['self_attn.k_proj', [4, 32], [16, 4]],
        ['self_attn.v_proj', [4, 32], [16, 4]],
        ['self_attn.o_proj', [4, 32], [32, 4]],
        ['mlp.gate_proj', [4, 32], [48, 4]],
        ['mlp.up_proj', [4, 32], [48, 4]],
        ['mlp.down_proj', [4, 48], [32, 4]],
      ],
      qwen2: [
        ['self_attn.q_proj', [4, 32], [32, 4]],
        ['self_attn.k_proj', [4, 32], [16, 4]],
        ['self_attn.v_proj', [4, 32], [16, 4]],
        ['self_attn.o_proj', [4, 32], [32, 4]],
        ['mlp.gate_proj', [4, 32], [40, 4]],
        ['mlp.up_proj', [4, 32], [40, 4]],
        ['mlp.down_proj', [4, 40], [32, 4]],
      ],
      gpt2: [
        ['attn.c_attn', [4, 24], [72, 4]],
        ['attn.c_proj', [4, 24], [24, 4]],
        ['mlp.c_fc', [4, 24], [96, 4]],
        ['mlp.c_proj', [4, 96], [24, 4]],
      ],
    };
    for (const family of families) {
      const model = base(family);
      const lora = createLora(model, { rank: 4, alpha: 16, dropout: 0 }, { seed: 0 });
      const prefix = family === 'gpt2' ? 'transformer.h' : 'model.layers';
      const want: [string, number[]][] = [];
      for (const layer of [0, 1])
        for (const [module, a, b] of expected[family]) {
          want.push([`base_model.model.${prefix}.${layer}.${module}.lora_A.weight`, a]);
          want.push([`base_model.model.${prefix}.${layer}.${module}.lora_B.weight`, b]);
        }
      const got = [...lora.params].map(([name, v]) => [name, v.shape] as [string, number[]]);
      expect(got.sort()).toEqual(want.sort());
      expect(isLora(lora)).toBe(true);
      expect(isLora(model)).toBe(false);
      lora.dispose();
      model.dispose();
    }
  });

  it('targets a subset by name or regex, and refuses targets that match nothing', () => {
    const model = base('llama');
    const byName = createLora(model, { rank: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj'] }, { seed: 0 });
    expect([...byName.modules.keys()]).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
    ]);
    const byRegex = createLora(model, { rank: 2, alpha: 4, dropout: 0, targets: '.*\\.1\\.mlp\\..*' }, { seed: 0 });
    expect(byRegex.modules.size).toBe(3);
    expect(() => createLora(model, { rank: 2, alpha: 4, dropout: 0, targets: ['c_attn'] }, { seed: 0 })).toThrow(/match no projection/);
    byName.dispose();
    byRegex.dispose();
    model.dispose();
  });

  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: saves and loads an adapter in PEFT's layout`, async () => {
      const model = base(family);
      const lora = createLora(model, { rank: 4, alpha: 8, dropout: 0.05, rslora: true }, { seed: 1 });
      randomiseB(lora);
      const dir = join(mkdtempSync(join(tmpdir(), 'lora-')), 'adapter');
      await saveAdapter(dir, lora, 'micro:llama');
      const config = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG), 'utf8'));
      expect(config).toMatchObject({
        peft_type: 'LORA',
        task_type: 'CAUSAL_LM',
        r: 4,
        lora_alpha: 8,
        lora_dropout: 0.05,
        use_rslora: true,
        bias: 'none',
        use_dora: false,
        fan_in_fan_out: family === 'gpt2',
        base_model_name_or_path: 'micro:llama',
      });
      await expect(saveModel(join(dir, 'full'), lora, { files: {} })).rejects.toThrow(/LoRA adapters/);
      const loaded = loadAdapter(dir, model);
      try {
        expect(loaded.scaling).toBe(lora.scaling);
        expect(logitsOf(loaded)).toEqual(logitsOf(lora));
      } finally {
        loaded.dispose();
        lora.dispose();
        model.dispose();
      }
    });
  }

  it('refuses adapter options it does not implement, in one line', () => {
    const ok = {
      peft_type: 'LORA',
      r: 8,
      lora_alpha: 16,
      lora_dropout: 0,
      target_modules: ['q_proj'],
      bias: 'none',
      task_type: 'CAUSAL_LM',
    };
    expect(parseAdapterConfig(ok)).toEqual({ rank: 8, alpha: 16, dropout: 0, targets: ['q_proj'], rslora: false });
    for (const bad of [
      { bias: 'all' },
      { use_dora: true },
      { modules_to_save: ['lm_head'] },
      { peft_type: 'IA3' },
      { rank_pattern: { q_proj: 2 } },
    ]) {
      let message = '';
      try {
        parseAdapterConfig({ ...ok, ...bad });
      } catch (error) {
        expect(error).toBeInstanceOf(AdapterError);
        message = (error as Error).message;
      }
      expect(message).toMatch(/is not supported/);
      expect(message).not.toContain('\n');
    }
  });

  it('refuses an adapter whose tensors do not fit the base', async () => {
    const llama = base('llama');
    const qwen = createModel(parseConfig(makeConfig('qwen2', { ...tiny.qwen2, intermediate: 44 })), { seed: 3 });
    const lora = createLora(llama, { rank: 2, alpha: 4, dropout: 0 }, { seed: 1 });
    const dir = join(mkdtempSync(join(tmpdir(), 'lora-')), 'adapter');
    await saveAdapter(dir, lora, 'x');
    expect(() => loadAdapter(dir, qwen)).toThrow(/has shape \[2, 32\], expected|expected \[/);
    const config = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG), 'utf8'));
    writeFileSync(join(dir, ADAPTER_CONFIG), JSON.stringify({ ...config, target_modules: ['q_proj'] }));
    expect(() => loadAdapter(dir, llama)).toThrow(/belongs to no targeted/);
    lora.dispose();
    llama.dispose();
    qwen.dispose();
  });

  it('train() updates the adapters only, and the reference stays the base', async () => {
    const model = base('llama');
    const lora = createLora(model, { rank: 4, alpha: 8, dropout: 0.1 }, { seed: 1 });
    const before = new Map([...model.params].map(([name, v]) => [name, Array.from(v.dataSync())]));
    const plain = logitsOf(model);
    const data = Array.from({ length: 8 }, (_, i) => {
      const seq = Array.from({ length: 8 }, (_, t) => ((i * 7 + t * 5) % 40) + 2);
      return { ids: seq, responseMask: seq.map((_, t) => (t >= 3 ? 1 : 0)) };
    });
    const loss = ({ logp, mask }: LossInputs) => tf.div(tf.neg(tf.sum(tf.mul(logp, mask))), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
    const kl = ({ logp, refLogp, mask }: LossInputs) =>
      tf.add(loss({ logp, mask } as LossInputs), tf.mean(tf.mul(tf.square(tf.sub(logp, refLogp!)), mask))) as tf.Scalar;
    const result = await train(lora, data, {
      loss: kl,
      needs: { reference: true, star: false, verdict: false, fullLogProbs: false },
      reference: lora.reference,
      config: { epochs: 3, batchSize: 4, lr: 1e-2, warmupSteps: 0 },
    });
    expect(result.losses.at(-1)!).toBeLessThan(result.losses[0]);
    for (const [name, v] of model.params) expect(Array.from(v.dataSync())).toEqual(before.get(name));
    expect(logitsOf(lora.reference)).toEqual(plain);
    expect(maxDiff(logitsOf(lora), plain)).toBeGreaterThan(1e-4);
    lora.dispose();
    model.dispose();
  });
});
