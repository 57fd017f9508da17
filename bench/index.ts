// `npm run bench`: engine speeds on a fixed micro configuration (bench/setup.ts), with every ratio measured in
// one run (these machines are shared and noisy, so only same-run ratios mean anything). Each speed is given by
// the clock and per CPU-second of the process (the clock also counts other processes' turns on the cores).
// The native anchor: when a python3 with torch is found, bench/torch-anchor.py trains the same model with the
// same loss, optimiser and batch on one thread, in the same run, and the ratio is printed.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../engine/tensor/backend.ts';
import { withStockKernels } from '../engine/tensor/wasm-kernels.ts';
import { train } from '../engine/train.ts';
import { chooseTokens, generate, type SamplingOptions } from '../engine/generate.ts';
import { Rng } from '../engine/random.ts';
import type { LmGuardrail } from '../guardrails/lm.ts';
import { chooseTokenBySort } from './sort-sampling.ts';
import {
  BENCH_BATCH,
  BENCH_DEEP_GUARD_SIZES,
  BENCH_SIZES,
  BENCH_TIME,
  benchExamples,
  benchGuardrail,
  benchModel,
  benchPrompts,
  benchStarWork,
  GEN_OPTIONS,
  scoreGrouped,
  scoreNaive,
  scoreNaivePerResponse,
  scorePerResponse,
  starLoss,
  starNeeds,
} from './setup.ts';

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
const sizes = BENCH_SIZES;
const model = benchModel(1);

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

/** Wall and process CPU seconds of `fn`. */
async function measure(fn: () => unknown): Promise<{ wall: number; cpu: number }> {
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(cpuStart);
  return { wall: (performance.now() - start) / 1000, cpu: (used.user + used.system) / 1e6 };
}

/** Mean seconds per call of `fn` over `repeats` calls after one warm-up call (wall clock). */
function time(fn: () => void, repeats: number): number {
  fn(); // warm-up (kernel setup, first allocations)
  const start = performance.now();
  for (let i = 0; i < repeats; i++) fn();
  return (performance.now() - start) / repeats / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

type StarWork = ReturnType<typeof benchStarWork>;
type StarPath = (guard: LmGuardrail, work: StarWork) => Promise<number[]>;

/**
 * STAR scoring paths on one guardrail: each warmed up on the whole work (its first call at these shapes
 * allocates; its scores and the tokens it forwards, padding included, are kept), then timed `rounds` times, the
 * paths taking turns so that a busy spell of the machine hits them alike; the median call counts.
 */
async function timeStarPaths(guard: LmGuardrail, work: StarWork, paths: StarPath[], rounds: number) {
  const warm = [];
  for (const score of paths) {
    const before = guard.tokensForwarded;
    const scores = await score(guard, work);
    warm.push({ scores, tokens: guard.tokensForwarded - before });
  }
  const runs = paths.map(() => [] as { wall: number; cpu: number }[]);
  for (let round = 0; round < rounds; round++)
    for (const [i, score] of paths.entries()) runs[i].push(await measure(() => score(guard, work)));
  return warm.map((w, i) => ({ ...w, t: { wall: median(runs[i].map((r) => r.wall)), cpu: median(runs[i].map((r) => r.cpu)) } }));
}

const perSecond = (count: number, t: { wall: number; cpu: number }) =>
  `${(count / t.wall).toFixed(0)} tokens/s, ${(count / t.cpu).toFixed(0)} per CPU-s`;

// 1. Matrix products with their gradients, stock tfjs-backend-wasm kernels vs ours (wasm only): the MLP's
// x·Wᵀ [1024×128]·[512×128]ᵀ and attention's batched q·kᵀ [64×64×32]·[64×64×32]ᵀ.
const matmulRows: [string, string][] = [];
if (backend === 'wasm') {
  const cases: [string, number[], number[]][] = [
    ['[1024x128]·[512x128]ᵀ', [1024, 128], [512, 128]],
    ['batched [64x64x32]·[64x64x32]ᵀ', [64, 64, 32], [64, 64, 32]],
  ];
  for (const [label, sa, sb] of cases) {
    const a = tf.randomNormal(sa as [number, number, number]) as tf.Tensor3D;
    const b = tf.variable(tf.randomNormal(sb as [number, number, number])) as tf.Variable<tf.Rank.R3>;
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => tf.sum(tf.square(tf.matMul(a, b, false, true))) as tf.Scalar, [b]);
        grads[b.name].dataSync();
      });
    const stock = withStockKernels(() => time(step, 5));
    const ours = time(step, 5);
    const flops = (3 * 2 * sa.reduce((x, y) => x * y, 1) * sb[sb.length - 2]) / 1e9; // forward and two gradient products
    matmulRows.push([
      `matmul fwd+grad ${label}: stock wasm → ours`,
      `${(stock * 1000).toFixed(1)} → ${(ours * 1000).toFixed(1)} ms (${(flops / stock).toFixed(1)} → ${(flops / ours).toFixed(1)} GFLOP/s, ${(stock / ours).toFixed(1)}x)`,
    ]);
    tf.dispose([a, b]);
  }
}

// 2. Training: one warm-up step, then 8 steps of batch 16 × 64 tokens, CE + k2 vs a frozen reference, AdamW.
const reference = benchModel(1);
const trainOptions = { loss: starLoss, needs: starNeeds, reference, config: { epochs: 1, batchSize: BENCH_BATCH, lr: 1e-3 } };
await train(model, benchExamples(rng, BENCH_BATCH), trainOptions);
const trainExamples = benchExamples(rng, 8 * BENCH_BATCH);
const trained = await measure(() => train(model, trainExamples, trainOptions));
const trainTokens = trainExamples.length * BENCH_TIME;
reference.dispose();

// 3. The native anchor: the same training in PyTorch on one thread, in this run.
interface TorchResult {
  torch: string;
  blas: string;
  tokens_per_s: number;
  tokens_per_cpu_s: number;
}
function torchAnchor(): TorchResult | string {
  const script = fileURLToPath(new URL('./torch-anchor.py', import.meta.url));
  for (const python of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status !== 0) continue;
    const run = spawnSync(python, [script, '--steps', '8'], { encoding: 'utf8', timeout: 600_000 });
    if (run.status !== 0) return `failed (${python}: ${(run.stderr || run.error?.message || '').trim().split('\n').at(-1)})`;
    return JSON.parse(run.stdout.trim().split('\n').at(-1) as string) as TorchResult;
  }
  return 'skipped: no python3 with torch (Debian: apt-get install python3-torch libopenblas0-pthread)';
}
const torch = torchAnchor();

// 4. Generation: 16 prompts of 16 tokens, 48 new tokens each, greedy, KV cache vs recomputation.
const prompts = benchPrompts(rng);
await generate(model, prompts, GEN_OPTIONS); // warm-up: a whole generation, so that V8 has compiled every kernel it runs
const cached = await measure(() => generate(model, prompts, GEN_OPTIONS));
const full = await measure(() => generate(model, prompts, { ...GEN_OPTIONS, useCache: false }));
const genTokens = 16 * GEN_OPTIONS.maxNewTokens;

// 5. STAR prefix scoring with an LM guardrail of the micro guardrail's size (random weights: the cost does not
// depend on them): every 5-word prefix of 20 micro-world harmful responses, scored naively (each prefix's own
// forward: per response, as the baseline measured it, and batched across responses as annotate does
// without a fast path), and on the shared-prefix paths (one KV cache per response; packed rows of all responses).
const guard = benchGuardrail();
const work = benchStarWork();
const starPaths: [string, StarPath][] = [
  ['naive, one response at a time', scoreNaivePerResponse],
  ['naive, 64 prefixes per call', scoreNaive],
  ['shared, one response at a time (KV cache)', scorePerResponse],
  ['shared, packed rows (scorePrefixGroups)', scoreGrouped],
];
const STAR_ROUNDS = 5;
const starTimed = await timeStarPaths(
  guard,
  work,
  starPaths.map(([, score]) => score),
  STAR_ROUNDS,
);
const starTimes = starTimed.map((r, i) => ({ label: starPaths[i][0], ...r }));
// Tokens each path feeds through the model, padding included: their ratio is the most the timing ratio can reach.
const starTokens = starTimes.map((s) => s.tokens);
const starDiff = Math.max(...starTimes.flatMap((s) => s.scores.map((v, i) => Math.abs(v - starTimes[0].scores[i]))));
// The text work of the packed path alone (its template renderings, then the tokenizer on each prefix's): at this
// model size a fixed part of its time, which bounds its ratio to naive scoring below the token ceiling.
const textWork = () =>
  work.map((w) => guard.renderPrefixes(w.messages, w.prefixes).map((text) => guard.tokenizer.encode(text, { addSpecialTokens: false })));
const textRuns: number[] = [];
for (let round = 0; round < STAR_ROUNDS; round++) textRuns.push((await measure(textWork)).wall);
const textTime = median(textRuns);
guard.dispose();

// Naive per response vs packed on a guardrail whose model dominates (BENCH_DEEP_GUARD_SIZES), 3 rounds.
const deepGuard = benchGuardrail(BENCH_DEEP_GUARD_SIZES);
const [deepNaive, deepPacked] = await timeStarPaths(deepGuard, work, [scoreNaivePerResponse, scoreGrouped], 3);
const deepDiff = Math.max(...deepNaive.scores.map((v, i) => Math.abs(v - deepPacked.scores[i])));
deepGuard.dispose();

// 6. Sampling one token per row at Llama 3's vocabulary (128256): the previous full sort in JavaScript (kept
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

const trainRate = { wall: trainTokens / trained.wall, cpu: trainTokens / trained.cpu };
const torchRows: [string, string][] =
  typeof torch === 'string'
    ? [['PyTorch anchor', torch]]
    : [
        [
          `PyTorch ${torch.torch} CPU, 1 thread (${torch.blas}), same model and step`,
          `${torch.tokens_per_s.toFixed(0)} tokens/s, ${torch.tokens_per_cpu_s.toFixed(0)} per CPU-s`,
        ],
        [
          'PyTorch / ours (same run)',
          `${(torch.tokens_per_s / trainRate.wall).toFixed(2)}x by the clock, ${(torch.tokens_per_cpu_s / trainRate.cpu).toFixed(2)}x per CPU-second`,
        ],
      ];
const rows: [string, string][] = [
  ['backend', backend],
  ...matmulRows,
  [`train (llama d128 L2, batch ${BENCH_BATCH} × ${BENCH_TIME}, CE + k2 vs frozen ref, AdamW)`, perSecond(trainTokens, trained)],
  ...torchRows,
  ['generate (16 × 48 new tokens, greedy, KV cache)', perSecond(genTokens, cached)],
  ['generate without KV cache', perSecond(genTokens, full)],
  ['KV-cache speed-up', `${(full.wall / cached.wall).toFixed(2)}x (${(full.cpu / cached.cpu).toFixed(2)}x in CPU time)`],
  ...starTimes.map(({ label, t }): [string, string] => [
    `STAR scoring, ${starTimes[0].scores.length} prefixes of ${work.length} responses, ${label} (median of ${STAR_ROUNDS})`,
    `${(t.wall * 1000).toFixed(0)} ms (${(t.cpu * 1000).toFixed(0)} ms CPU)`,
  ]),
  [
    'STAR naive / shared packed',
    `${(starTimes[0].t.wall / starTimes[3].t.wall).toFixed(2)}x (${(starTimes[0].t.cpu / starTimes[3].t.cpu).toFixed(2)}x in CPU time) vs naive per response, ` +
      `${(starTimes[1].t.wall / starTimes[3].t.wall).toFixed(2)}x (${(starTimes[1].t.cpu / starTimes[3].t.cpu).toFixed(2)}x) vs batched naive; max |Δ P(safe)| ${starDiff.toExponential(1)}`,
  ],
  [
    'STAR packed: its text work alone (templates rendered, then tokenized)',
    `${(textTime * 1000).toFixed(1)} ms of ${(starTimes[3].t.wall * 1000).toFixed(1)} ms`,
  ],
  [
    `STAR naive per response / packed, guardrail of hidden ${BENCH_DEEP_GUARD_SIZES.hidden}, ${BENCH_DEEP_GUARD_SIZES.layers} layers (median of 3)`,
    `${(deepNaive.t.wall * 1000).toFixed(0)} ms / ${(deepPacked.t.wall * 1000).toFixed(1)} ms = ${(deepNaive.t.wall / deepPacked.t.wall).toFixed(2)}x; max |Δ P(safe)| ${deepDiff.toExponential(1)}`,
  ],
  [
    'STAR tokens forwarded, padding included (the ceiling of the ratios)',
    `${starTokens.join(', ')}: naive per response / packed ${(starTokens[0] / starTokens[3]).toFixed(2)}x, batched naive / packed ${(starTokens[1] / starTokens[3]).toFixed(2)}x`,
  ],
  ...samplingRows,
];
const width = Math.max(...rows.map(([k]) => k.length));
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
