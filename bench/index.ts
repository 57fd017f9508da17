// `npm run bench`: engine speeds on a fixed micro configuration, with every ratio measured in one run
// (these machines are noisy, so only same-run ratios mean anything).
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../engine/tensor/backend.ts';
import { matMul } from '../engine/tensor/ops.ts';
import { makeConfig, parseConfig } from '../engine/model/config.ts';
import { createModel } from '../engine/model/transformer.ts';
import { train, type TrainExample } from '../engine/train.ts';
import { chooseTokens, generate, type SamplingOptions } from '../engine/generate.ts';
import { Rng } from '../engine/random.ts';
import { chooseTokenBySort } from './sort-sampling.ts';
import type { LossInputs } from '../engine/contracts/loss.ts';
import { buildWorld, worldVocabulary } from '../datasets/micro-world/build.ts';
import { createMicroModel } from '../harness/micro-world/base-model.ts';
import { guardTokenizerFiles, MICRO_GUARD_RECIPE } from '../harness/micro-world/guardrail.ts';
import { LmGuardrail } from '../guardrails/lm.ts';
import { guardPreset } from '../guardrails/presets.ts';
import { tokenizerFromObjects } from '../engine/model/tokenizer.ts';
import { wordPrefixes, chunkEnds } from '../harness/star.ts';

// `npm run bench -- --backend webgpu` (or STAR_DSS_BACKEND); `--async` runs only the part that reads tensors
// asynchronously, the one webgpu can run (see asyncBench), on any backend for a same-shape comparison.
const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  return i < 0 ? undefined : argv[i].includes('=') ? argv[i].split('=').slice(1).join('=') : argv[i + 1];
};
// `--gpu-pack`: the GPU pack's program from the source tree (bench/gpu-pack.ts; its flags pass through).
if (argv.includes('--gpu-pack')) {
  const { gpuPackMain } = await import('./gpu-pack.ts');
  process.exit(await gpuPackMain(argv.filter((a) => a !== '--gpu-pack')));
}
const backend = await initBackend(flag('backend') ?? process.env.STAR_DSS_BACKEND ?? 'wasm');
const rng = new Rng(0);
// The micro-world's model size (docs/micro-world.md): d 128, 2 layers, 4 heads, MLP 512, vocab 512, T 64, batch 16.
const sizes = { hidden: 128, layers: 2, heads: 4, intermediate: 512, vocab: 512, maxPositions: 128 };
const model = createModel(parseConfig(makeConfig('llama', sizes)), { seed: 1 });

// webgpu in Node cannot read a GPU tensor synchronously (no OffscreenCanvas), and train(), generate() and the
// guardrail read with dataSync: on webgpu (or with --async) the bench measures the same shapes with its own
// loops that read with `await data()`: matmul fwd+grad, a full training step (forward, backward, Adam) of
// batch 16 × 64 tokens, and greedy decoding of 16 rows without a KV cache.
if (backend === 'webgpu' || argv.includes('--async')) {
  await asyncBench();
  process.exit(0);
}

async function asyncBench(): Promise<void> {
  const timeAsync = async (fn: () => Promise<void>, repeats: number) => {
    await fn();
    const start = performance.now();
    for (let i = 0; i < repeats; i++) await fn();
    return (performance.now() - start) / repeats / 1000;
  };
  const xa = tf.randomNormal([1024, 128]) as tf.Tensor2D;
  const wa = tf.variable(tf.randomNormal([512, 128]).mul(0.05)) as tf.Variable<tf.Rank.R2>;
  const mmStep = (mm: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D) => async () => {
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.square(mm(xa, wa))) as tf.Scalar, [wa]);
    await grads[wa.name].data();
    tf.dispose([value, grads[wa.name]]);
  };
  const mmStock = await timeAsync(
    mmStep((a, b) => tf.matMul(a, b, false, true)),
    10,
  );
  const vars = [...model.params.values()];
  const optimiser = tf.train.adam(1e-3);
  const batch = () =>
    tf.tensor2d(
      Array.from({ length: 16 }, () => Array.from({ length: 65 }, () => 4 + rng.int(sizes.vocab - 4))),
      undefined,
      'int32',
    );
  const trainStep = async () => {
    const ids = batch();
    const loss = optimiser.minimize(
      () => {
        const input = ids.slice([0, 0], [16, 64]) as tf.Tensor2D;
        const labels = tf.oneHot(ids.slice([0, 1], [16, 64]) as tf.Tensor2D, sizes.vocab).cast('float32');
        return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(model.forward(input).logits), labels), -1))) as tf.Scalar;
      },
      true,
      vars,
    );
    await loss!.data();
    tf.dispose([loss!, ids]);
  };
  const stepSeconds = await timeAsync(trainStep, 4);
  const decode = async () => {
    const rows = Array.from({ length: 16 }, () => Array.from({ length: 16 }, () => 4 + rng.int(sizes.vocab - 4)));
    for (let t = 0; t < 16; t++) {
      const next = tf.tidy(() => model.forward(tf.tensor2d(rows, undefined, 'int32'), { lastOnly: true }).logits.argMax(-1));
      const chosen = (await next.data()) as Int32Array;
      next.dispose();
      rows.forEach((r, i) => r.push(chosen[i]));
    }
  };
  const decodeSeconds = await timeAsync(decode, 1);
  const rows: [string, string][] = [
    ['backend', backend],
    ['matmul fwd+grad [1024x128]·[512x128]ᵀ, stock tfjs (async read)', `${(mmStock * 1000).toFixed(1)} ms`],
    ['train step (llama d128 L2, batch 16 × 64, CE, Adam; async read)', `${((16 * 64) / stepSeconds).toFixed(0)} tokens/s`],
    ['generate (16 rows × 16 new tokens, greedy, no KV cache; async read)', `${((16 * 16) / decodeSeconds).toFixed(0)} tokens/s`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
}

function time(fn: () => void, repeats: number): number {
  fn(); // warm-up (kernel setup, first allocations)
  const start = performance.now();
  for (let i = 0; i < repeats; i++) fn();
  return (performance.now() - start) / repeats / 1000;
}

// 1. Matmul forward + gradient at the model's MLP shape: ours (explicit transposes) vs stock tfjs.
const x = tf.randomNormal([1024, 128]) as tf.Tensor2D;
const w = tf.variable(tf.randomNormal([512, 128]).mul(0.05)) as tf.Variable<tf.Rank.R2>;
const step = (mm: (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D) => () =>
  tf.tidy(() => {
    const { grads } = tf.variableGrads(() => tf.sum(tf.square(mm(x, w))) as tf.Scalar, [w]);
    grads[w.name].dataSync();
  });
const stock = time(
  step((a, b) => tf.matMul(a, b, false, true)),
  10,
);
const fast = time(
  step((a, b) => matMul(a, b, false, true)),
  10,
);

// 2. Training tokens/s: 8 steps of batch 16 × 64 tokens, CE + k2 to a frozen reference (STAR-DSS's shape).
const reference = createModel(model.config, { seed: 1 });
const examples: TrainExample[] = Array.from({ length: 128 }, () => {
  const ids = Array.from({ length: 65 }, () => 4 + rng.int(sizes.vocab - 4));
  return { ids, responseMask: ids.map((_, t) => (t >= 16 ? 1 : 0)), weights: ids.map(() => rng.next()) };
});
const starLoss = ({ logp, refLogp, mask, weights }: LossInputs) =>
  tf.tidy(() => {
    const d = tf.mul(tf.square(tf.sub(logp, refLogp!)), 0.5);
    const per = tf.add(tf.mul(weights!, tf.neg(logp)), tf.mul(tf.sub(1, weights!), tf.mul(d, 0.5)));
    return tf.div(tf.sum(tf.mul(per, mask)), tf.sum(mask)) as tf.Scalar;
  });
const trainStart = performance.now();
await train(model, examples, {
  loss: starLoss,
  needs: { reference: true, star: true, verdict: false, fullLogProbs: false },
  reference,
  config: { epochs: 1, batchSize: 16, lr: 1e-3 },
});
const trainSeconds = (performance.now() - trainStart) / 1000;
const trainTokens = examples.length * 64;

// 3. Generation tokens/s: 16 prompts of 16 tokens, 48 new tokens each, greedy, KV cache vs recomputation.
const prompts = Array.from({ length: 16 }, () => Array.from({ length: 16 }, () => 4 + rng.int(sizes.vocab - 4)));
const genOpts = { maxNewTokens: 48, eosTokenIds: [-1], padTokenId: 0 };
let genStart = performance.now();
await generate(model, prompts, genOpts);
const cachedSeconds = (performance.now() - genStart) / 1000;
genStart = performance.now();
await generate(model, prompts, { ...genOpts, useCache: false });
const fullSeconds = (performance.now() - genStart) / 1000;
const genTokens = 16 * 48;

// 4. STAR prefix scoring with an LM guardrail of the micro guardrail's size (random weights: the cost does
// not depend on them): every 5-word prefix of 20 micro-world harmful responses, naive (each prefix a full
// forward, batched) vs shared (one KV cache of the response, then each prefix's template suffix).
const world = buildWorld(0);
const files = guardTokenizerFiles(worldVocabulary(world));
const guardModel = createMicroModel('llama', MICRO_GUARD_RECIPE.sizes, files, 2);
const guard = new LmGuardrail({
  model: guardModel,
  tokenizer: tokenizerFromObjects(files.tokenizerJson, files.tokenizerConfig),
  spec: guardPreset('micro'),
  weights: 'bench',
  batchSize: 32,
});
const responses = (world.datasets.purebad ?? [])
  .slice(0, 20)
  .map((e) => ({ messages: e.messages.slice(0, -1), text: e.messages.at(-1)!.content }));
const prefixesOf = (text: string) => {
  const n = text.split(' ').length;
  return wordPrefixes(text, chunkEnds(n, 5));
};
let starStart = performance.now();
const naiveScores: number[] = [];
for (const r of responses)
  naiveScores.push(...(await guard.scoreSafe(prefixesOf(r.text).map((response) => ({ messages: r.messages, response })))));
const naiveSeconds = (performance.now() - starStart) / 1000;
starStart = performance.now();
const sharedScores: number[] = [];
for (const r of responses) sharedScores.push(...(await guard.scorePrefixes!(r.messages, prefixesOf(r.text))));
const sharedSeconds = (performance.now() - starStart) / 1000;
const maxDiff = Math.max(...naiveScores.map((v, i) => Math.abs(v - sharedScores[i])));

// 5. Sampling one token per row at Llama 3's vocabulary (128256): the previous full sort in JavaScript (kept
// here only as the baseline) vs tf.topk on the backend, 8 rows of Gaussian logits (σ 4: a top-p 0.9 nucleus of
// some 500 tokens at T 1). Both must choose the same tokens.
const SAMPLE_VOCAB = 128256;
const SAMPLE_ROWS = 8;
const logitRows = Array.from({ length: SAMPLE_ROWS }, () => Float32Array.from({ length: SAMPLE_VOCAB }, () => rng.normal() * 4));
const samplingCases: [string, SamplingOptions][] = [
  ['T 0.2, top-k 50, top-p 0.9 (paper)', { temperature: 0.2, topK: 50, topP: 0.9 }],
  ['T 1, top-p 0.9', { temperature: 1, topK: 0, topP: 0.9 }],
  ['T 1, no top-k or top-p', { temperature: 1, topK: 0, topP: 1 }],
];
const samplingRows: [string, string][] = [];
for (const [label, sampling] of samplingCases) {
  let sorted: number[] = [];
  let onBackend: number[] = [];
  const before = time(() => {
    const draw = new Rng(1);
    sorted = logitRows.map((row) => chooseTokenBySort(row, sampling, draw));
  }, 2);
  onBackend = await chooseTokens(logitRows, sampling, new Rng(1)); // warm-up
  const afterStart = performance.now();
  for (let i = 0; i < 5; i++) onBackend = await chooseTokens(logitRows, sampling, new Rng(1));
  const after = (performance.now() - afterStart) / 5 / 1000;
  const same = sorted.every((t, i) => t === onBackend[i]);
  samplingRows.push([
    `sample 1 token/row, vocab 128256, ${label}`,
    `${((before / SAMPLE_ROWS) * 1000).toFixed(1)} → ${((after / SAMPLE_ROWS) * 1000).toFixed(2)} ms/row (JS sort → tf.topk, ${(before / after).toFixed(0)}x${same ? '' : ', TOKENS DIFFER'})`,
  ]);
}

const rows: [string, string][] = [
  ['backend', backend],
  ['matmul fwd+grad [1024x128]·[512x128]ᵀ, stock tfjs', `${(stock * 1000).toFixed(1)} ms`],
  ['matmul fwd+grad, fast-gradient matmul', `${(fast * 1000).toFixed(1)} ms`],
  ['speed-up of fast-gradient matmul over stock', `${(stock / fast).toFixed(2)}x`],
  ['train (llama d128 L2, batch 16 × 64, CE + k2 vs frozen ref)', `${(trainTokens / trainSeconds).toFixed(0)} tokens/s`],
  ['generate (16 × 48 new tokens, greedy, KV cache)', `${(genTokens / cachedSeconds).toFixed(0)} tokens/s`],
  ['generate without KV cache', `${(genTokens / fullSeconds).toFixed(0)} tokens/s`],
  ['KV-cache speed-up', `${(fullSeconds / cachedSeconds).toFixed(2)}x`],
  [`STAR scoring, ${naiveScores.length} prefixes of 20 responses, naive`, `${(naiveSeconds * 1000).toFixed(0)} ms`],
  ['STAR scoring, shared KV cache', `${(sharedSeconds * 1000).toFixed(0)} ms`],
  ['STAR naive/shared time ratio', `${(naiveSeconds / sharedSeconds).toFixed(2)}x (max |Δ P(safe)| ${maxDiff.toExponential(1)})`],
  ...samplingRows,
];
const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
