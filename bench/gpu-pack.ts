// The GPU pack's program (`npm run gpu-pack` bundles it with dawn.node into gpu-pack/; `npm run bench --
// --gpu-pack` runs it from the source tree). On a machine with a GPU and a Vulkan loader it prints the WebGPU
// adapter, checks a tiny model's logits and gradients against the cpu backend, then measures at the size of
// Llama-3.2-1B (its config.json, random init) a full finetuning step (forward, backward, Adam on every
// weight) in tokens/s and greedy generation with the KV cache in tokens/s, and PyTorch's same step and
// generation when python3 with torch and transformers is there. Reads are asynchronous (webgpu in Node
// cannot read a GPU tensor synchronously), so it uses its own loops rather than train() and generate().
// Flags: --backend (default webgpu), --size 1b|tiny, --batch, --seq, --steps, --new-tokens, --no-torch.
import { spawnSync } from 'node:child_process';
import { backendAdapter, describeAdapter, initBackend, tf } from '../engine/tensor/backend.ts';
import { parseConfig } from '../engine/model/config.ts';
import { knownConfig } from '../engine/model/known-configs.ts';
import { parameterSpecs } from '../engine/model/parameters.ts';
import { createModel, disposeCache } from '../engine/model/transformer.ts';
import type { CausalLM, KVCache, ModelConfig } from '../engine/model/types.ts';

/** Llama-3.2-1B-Instruct's config.json (engine/model/known-configs.ts). */
const LLAMA_3_2_1B = knownConfig('Llama-3.2-1B-Instruct') as Record<string, unknown>;
/** The same architecture shrunk, for a run on a software adapter. */
const TINY = {
  ...LLAMA_3_2_1B,
  hidden_size: 64,
  head_dim: 16,
  intermediate_size: 128,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 2,
  vocab_size: 1000,
  max_position_embeddings: 1024,
};

type Options = { backend: string; size: string; batch: number; seq: number; steps: number; newTokens: number; torch: boolean };

function parseArgs(argv: string[]): Options {
  const get = (name: string) => {
    const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
    return i < 0 ? undefined : argv[i].includes('=') ? argv[i].split('=').slice(1).join('=') : argv[i + 1];
  };
  const size = get('size') ?? '1b';
  if (size !== '1b' && size !== 'tiny') throw new Error(`--size: 1b or tiny, got ${size}`);
  return {
    backend: get('backend') ?? 'webgpu',
    size,
    batch: Number(get('batch') ?? (size === '1b' ? 4 : 2)),
    seq: Number(get('seq') ?? (size === '1b' ? 512 : 64)),
    steps: Number(get('steps') ?? 3),
    newTokens: Number(get('new-tokens') ?? (size === '1b' ? 64 : 16)),
    torch: !argv.includes('--no-torch'),
  };
}

/** A model of `config` with random normal(0, 0.02) weights drawn on the backend (fast at 1B parameters). */
function randomModel(config: ModelConfig, seed: number): CausalLM {
  const weights = new Map<string, tf.Tensor>();
  for (const spec of parameterSpecs(config))
    weights.set(
      spec.name,
      spec.init === 'normal'
        ? tf.randomNormal(spec.shape, 0, 0.02, 'float32', seed)
        : spec.init === 'ones'
          ? tf.ones(spec.shape)
          : tf.zeros(spec.shape),
    );
  const model = createModel(config, { weights });
  tf.dispose([...weights.values()]);
  return model;
}

const crossEntropy = (model: CausalLM, ids: tf.Tensor2D, vocab: number) => {
  const [b, t] = ids.shape;
  const input = ids.slice([0, 0], [b, t - 1]) as tf.Tensor2D;
  const labels = tf.oneHot(ids.slice([0, 1], [b, t - 1]) as tf.Tensor2D, vocab).cast('float32');
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(model.forward(input).logits), labels), -1))) as tf.Scalar;
};

async function logitsAndGrads(config: ModelConfig, ids: number[][]): Promise<Float32Array[]> {
  const model = randomModel(config, 7);
  const x = tf.tensor2d(ids, undefined, 'int32');
  const vars = [...model.params.values()];
  let logits: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    logits = tf.keep(model.forward(x.slice([0, 0], [ids.length, ids[0].length - 1]) as tf.Tensor2D).logits);
    return crossEntropy(model, x, config.vocabSize);
  }, vars);
  const out = [(await logits!.data()) as Float32Array];
  for (const v of vars) out.push((await grads[v.name].data()) as Float32Array);
  tf.dispose([value, logits!, x, ...Object.values(grads)]);
  model.dispose();
  return out;
}

async function parity(backend: string, log: (line: string) => void): Promise<boolean> {
  const config = parseConfig(TINY);
  const ids = [
    [5, 17, 3, 44, 9, 21, 30, 12, 7],
    [8, 19, 2, 41, 7, 600, 3, 99, 1],
  ];
  await initBackend('cpu');
  const cpu = await logitsAndGrads(config, ids);
  await initBackend(backend);
  const gpu = await logitsAndGrads(config, ids);
  const diff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
  const dLogits = diff(gpu[0], cpu[0]);
  const dGrads = Math.max(...gpu.slice(1).map((g, i) => diff(g, cpu[i + 1])));
  const ok = dLogits < 1e-4 && dGrads < 1e-4;
  log(
    `parity vs cpu (tiny llama): max |Δ| logits ${dLogits.toExponential(2)}, gradients ${dGrads.toExponential(2)}: ${ok ? 'PASS' : 'FAIL'} (1e-4)`,
  );
  return ok;
}

async function measure(o: Options, log: (line: string) => void): Promise<void> {
  const raw = o.size === '1b' ? LLAMA_3_2_1B : TINY;
  const config = parseConfig(raw);
  let start = performance.now();
  const model = randomModel(config, 1);
  const count = [...model.params.values()].reduce((n, v) => n + v.size, 0);
  log(
    `model: ${o.size === '1b' ? 'Llama-3.2-1B' : 'tiny llama'} shape, ${count >= 1e8 ? `${(count / 1e9).toFixed(3)}B` : `${(count / 1e6).toFixed(2)}M`} parameters, random init in ${((performance.now() - start) / 1000).toFixed(1)} s`,
  );
  const vars = [...model.params.values()];
  const optimiser = tf.train.adam(1e-5);
  let seed = 1;
  const batch = () => tf.randomUniform([o.batch, o.seq + 1], 0, config.vocabSize, 'int32', seed++) as tf.Tensor2D;
  const step = async () => {
    const ids = batch();
    const loss = optimiser.minimize(() => crossEntropy(model, ids, config.vocabSize), true, vars);
    const value = (await loss!.data())[0];
    tf.dispose([loss!, ids]);
    return value;
  };
  start = performance.now();
  const first = await step(); // kernels compiled, optimiser state allocated
  log(`first training step (compiles kernels): ${((performance.now() - start) / 1000).toFixed(1)} s, loss ${first.toFixed(3)}`);
  start = performance.now();
  for (let i = 0; i < o.steps; i++) await step();
  const stepSeconds = (performance.now() - start) / 1000 / o.steps;
  log(
    `train: full finetuning step (Adam, fp32), batch ${o.batch} × ${o.seq}: ${stepSeconds.toFixed(2)} s/step, ${((o.batch * o.seq) / stepSeconds).toFixed(0)} tokens/s`,
  );
  optimiser.dispose();

  // Greedy generation with the KV cache: batch 1 and batch 8, a 32-token prompt.
  for (const rows of [1, 8]) {
    const run = async (newTokens: number) => {
      let cache: KVCache | undefined;
      let ids = tf.randomUniform([rows, 32], 0, config.vocabSize, 'int32', 5) as tf.Tensor2D;
      for (let t = 0; t < newTokens; t++) {
        const out = model.forward(ids, cache ? { cache, lastOnly: true } : { useCache: true, lastOnly: true });
        const next = tf.tidy(() =>
          out.logits
            .slice([0, out.logits.shape[1] - 1, 0], [rows, 1, config.vocabSize])
            .argMax(-1)
            .cast('int32'),
        ) as tf.Tensor2D;
        await next.data();
        tf.dispose([out.logits, ids]);
        if (cache) disposeCache(cache);
        cache = out.cache;
        ids = next;
      }
      ids.dispose();
      if (cache) disposeCache(cache);
    };
    await run(2); // warm-up
    start = performance.now();
    await run(o.newTokens);
    const seconds = (performance.now() - start) / 1000;
    log(
      `generate: batch ${rows}, 32-token prompt, ${o.newTokens} new tokens, greedy, KV cache: ${((rows * o.newTokens) / seconds).toFixed(1)} tokens/s`,
    );
  }
  model.dispose();
  log(`tensors left: ${tf.memory().numTensors}`);
}

const TORCH_SCRIPT = `
import json, sys, time
import torch
from transformers import LlamaConfig, LlamaForCausalLM
o = json.loads(sys.argv[1])
dev = 'cuda' if torch.cuda.is_available() else 'cpu'
print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0) if dev == 'cuda' else 'cpu'}", flush=True)
cfg = LlamaConfig(**o['config'])
model = LlamaForCausalLM(cfg).to(dev).float()
opt = torch.optim.Adam(model.parameters(), lr=1e-5)
B, T = o['batch'], o['seq']
def step():
    ids = torch.randint(0, cfg.vocab_size, (B, T + 1), device=dev)
    out = model(ids[:, :-1], labels=None)
    loss = torch.nn.functional.cross_entropy(out.logits.reshape(-1, cfg.vocab_size), ids[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()
step()
if dev == 'cuda': torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(o['steps']): step()
if dev == 'cuda': torch.cuda.synchronize()
s = (time.perf_counter() - t) / o['steps']
print(f"torch train: full finetuning step (Adam, fp32), batch {B} x {T}: {s:.2f} s/step, {B * T / s:.0f} tokens/s", flush=True)
model.eval()
for rows in (1, 8):
    ids = torch.randint(0, cfg.vocab_size, (rows, 32), device=dev)
    with torch.no_grad():
        model.generate(ids, max_new_tokens=2, do_sample=False, min_new_tokens=2, pad_token_id=0)
        if dev == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(ids, max_new_tokens=o['new_tokens'], min_new_tokens=o['new_tokens'], do_sample=False, pad_token_id=0)
        if dev == 'cuda': torch.cuda.synchronize()
    s = time.perf_counter() - t
    print(f"torch generate: batch {rows}, 32-token prompt, {o['new_tokens']} new tokens, greedy, KV cache: {rows * o['new_tokens'] / s:.1f} tokens/s", flush=True)
`;

function torchBaseline(o: Options, log: (line: string) => void): void {
  const probe = spawnSync('python3', ['-c', 'import torch, transformers'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    log(
      `PyTorch: skipped (python3 with torch and transformers not found${probe.stderr ? `: ${probe.stderr.trim().split('\n').at(-1)}` : ''})`,
    );
    return;
  }
  const raw = o.size === '1b' ? LLAMA_3_2_1B : TINY;
  const args = JSON.stringify({ config: raw, batch: o.batch, seq: o.seq, steps: o.steps, new_tokens: o.newTokens });
  const run = spawnSync('python3', ['-c', TORCH_SCRIPT, args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  for (const line of (run.stdout ?? '').trim().split('\n').filter(Boolean)) log(line);
  if (run.status !== 0) log(`PyTorch failed: ${(run.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`);
}

/** Runs the pack: adapter, parity, training and generation speed, PyTorch's; exit code 1 when parity fails. */
export async function gpuPackMain(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  const o = parseArgs(argv);
  log(`node ${process.version}, ${process.platform}-${process.arch}`);
  await initBackend(o.backend);
  const adapter = backendAdapter();
  log(`backend: ${tf.getBackend()}${adapter ? `; adapter: ${describeAdapter(adapter)}` : ''}`);
  if (adapter?.type === 'software') log('WARNING: a software adapter (no GPU found through Vulkan): the numbers below are not GPU numbers');
  const ok = await parity(o.backend, log);
  await measure(o, log);
  if (o.torch) torchBaseline(o, log);
  return ok ? 0 : 1;
}
