// `npm run profile`: where the engine's time goes, per kernel, for the bench's workloads (bench/setup.ts): one
// training step (forward, backward and AdamW of batch 16 × 64, CE + k2 to a frozen reference), one greedy
// generation of 16 rows × 48 tokens with the KV cache, and STAR scoring of 206 prefixes: naive (per response
// and batched across responses), shared one response at a time, shared in packed rows.
// tf.profile records every kernel call with its output shapes. wasm and cpu kernels run synchronously, so each
// is timed in process CPU time by default (user + system, all threads: on a shared machine a kernel's wall time
// includes the time other processes held the core); `--wall` times them by the clock instead. Custom-gradient ops (our matMul, gather, ...) wrap other kernels: they are listed apart, with
// inclusive times, and left out of the kernel total. "MB out" is what the kernels wrote (their outputs, 4 bytes an
// element; views such as Reshape write nothing), which for Transpose, Concat, Slice, Tile and Cast is pure
// copying. Matrix products show their speed in GFLOP/s. The rest of the wall time is JavaScript: the
// tape, tidy scopes, reading results.
// Flags: --backend NAME (default wasm), --top N (rows per table, default 14), --shapes (a table by kernel and
// input shapes as well), --only train|generate|star, --family llama|qwen2|gpt2 (the model of the training and
// generation workloads, same sizes; default llama).
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../engine/tensor/backend.ts';
import { train } from '../engine/train.ts';
import { generate } from '../engine/generate.ts';
import { Rng } from '../engine/random.ts';
import { SIZED_FAMILIES } from '../engine/model/config.ts';
import type { Family } from '../engine/model/types.ts';
import {
  BENCH_BATCH,
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

const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
};
const top = Number(flag('top') ?? 14);
const byShapes = argv.includes('--shapes');
const only = flag('only');
const wallClock = argv.includes('--wall');
const part = (name: string) => only === undefined || only === name;
const backend = await initBackend(flag('backend') ?? process.env.STAR_DSS_BACKEND ?? 'wasm');
const synchronous = backend === 'wasm' || backend === 'cpu';
if (synchronous && !wallClock) {
  // The profiler asks the backend to time each kernel; these backends run it inside the call.
  const timed = tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> };
  timed.time = async (f) => {
    const start = process.cpuUsage();
    f();
    const used = process.cpuUsage(start);
    return { kernelMs: (used.user + used.system) / 1000 };
  };
}
const clock = synchronous && !wallClock ? 'CPU' : 'wall';

interface Row {
  key: string;
  count: number;
  ms: number;
  bytes: number;
  /** Floating-point operations of the matrix products in the row. */
  flops: number;
}

type Kernel = Awaited<ReturnType<typeof tf.profile>>['kernels'][number];
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
/** Views share their input's buffer: they write nothing (Identity does so with our wasm kernel). */
const views = new Set(['Reshape', 'ExpandDims', 'Squeeze', ...(backend === 'wasm' ? ['Identity'] : [])]);

/** 2 · m · n · k of a BatchMatMul call: the output's size times the shared dimension (read off a's shape). */
function matmulFlops(k: Kernel): number {
  if (k.name !== 'BatchMatMul') return 0;
  const a = k.inputShapes[0] ?? [];
  const out = k.outputShapes[0] as number[];
  const m = out[out.length - 2];
  const [r, c] = a.slice(-2);
  return 2 * size(out) * (r === m ? c : r);
}

function table(title: string, rows: Row[], total: number): void {
  console.log(`\n${title}`);
  const width = Math.max(28, ...rows.slice(0, top).map((r) => r.key.length));
  console.log(
    `  ${'kernel'.padEnd(width)}  ${'calls'.padStart(6)}  ${'ms'.padStart(8)}  ${'%'.padStart(5)}  ${'ms/call'.padStart(8)}  ${'MB out'.padStart(8)}  ${'GFLOP/s'.padStart(7)}`,
  );
  for (const r of rows.slice(0, top)) {
    console.log(
      `  ${r.key.padEnd(width)}  ${String(r.count).padStart(6)}  ${r.ms.toFixed(1).padStart(8)}  ${((100 * r.ms) / total).toFixed(1).padStart(5)}  ${(r.ms / r.count).toFixed(3).padStart(8)}  ${(r.bytes / 2 ** 20).toFixed(1).padStart(8)}  ${r.flops > 0 ? (r.flops / r.ms / 1e6).toFixed(1).padStart(7) : ''}`,
    );
  }
  if (rows.length > top) {
    const rest = rows.slice(top);
    const ms = rest.reduce((s, r) => s + r.ms, 0);
    console.log(
      `  ${`(${rest.length} more)`.padEnd(width)}  ${''.padStart(6)}  ${ms.toFixed(1).padStart(8)}  ${((100 * ms) / total).toFixed(1).padStart(5)}`,
    );
  }
}

function group(kernels: Kernel[], key: (k: Kernel) => string): Row[] {
  const rows = new Map<string, Row>();
  for (const k of kernels) {
    const id = key(k);
    const row = rows.get(id) ?? { key: id, count: 0, ms: 0, bytes: 0, flops: 0 };
    row.count++;
    row.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    if (!views.has(k.name)) row.bytes += 4 * (k.outputShapes as number[][]).reduce((s, shape) => s + size(shape), 0);
    row.flops += matmulFlops(k);
    rows.set(id, row);
  }
  return [...rows.values()].sort((a, b) => b.ms - a.ms);
}

/** Profiles `work` once (after one unprofiled warm-up run) and prints its kernel tables. */
async function profile(title: string, work: () => Promise<unknown> | unknown, units?: { count: number; name: string }): Promise<number> {
  await work(); // warm-up: kernel set-up, first allocations
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const info = await tf.profile(async () => {
    await work();
  });
  const wall = performance.now() - start;
  const used = process.cpuUsage(cpuStart);
  const cpu = (used.user + used.system) / 1000;
  const registered = (name: string) => tf.getKernel(name, backend) !== undefined;
  const kernels = info.kernels.filter((k) => registered(k.name));
  const custom = info.kernels.filter((k) => !registered(k.name));
  const rows = group(kernels, (k) => k.name);
  const kernelMs = rows.reduce((s, r) => s + r.ms, 0);
  const kernelBytes = rows.reduce((s, r) => s + r.bytes, 0);
  const flops = rows.reduce((s, r) => s + r.flops, 0);
  const per = units ? `, ${((units.count / wall) * 1000).toFixed(0)} ${units.name}/s under the profiler` : '';
  const total = clock === 'CPU' ? cpu : wall;
  console.log(`\n=== ${title}: ${wall.toFixed(0)} ms wall, ${cpu.toFixed(0)} ms CPU${per}`);
  console.log(
    `kernels ${kernelMs.toFixed(0)} ms ${clock} (${((100 * kernelMs) / total).toFixed(0)}%) in ${kernels.length} calls, ` +
      `${(kernelBytes / 2 ** 20).toFixed(0)} MB written; JavaScript and the rest ${(total - kernelMs).toFixed(0)} ms; ` +
      `matrix products ${(flops / 1e9).toFixed(2)} GFLOP`,
  );
  table('by kernel', rows, kernelMs);
  if (byShapes)
    table(
      'by kernel and input shapes',
      group(kernels, (k) => `${k.name} ${k.inputShapes.map((s) => `[${s ?? ''}]`).join('')}`),
      kernelMs,
    );
  if (custom.length > 0)
    table(
      'custom-gradient ops (inclusive times; their kernels are counted above)',
      group(custom, (k) => k.name),
      kernelMs,
    );
  return total;
}

console.log(`backend ${backend}; kernel times in ${clock} time`);
const rng = new Rng(0);

// 1. One training step, the bench's: batch 16 × 64, CE + k2 to a frozen reference, AdamW.
const family = (flag('family') ?? 'llama') as Family;
if (!SIZED_FAMILIES.includes(family)) throw new Error(`--family: one of ${SIZED_FAMILIES.join(', ')}, got ${family}`);
const model = benchModel(1, family);
const reference = benchModel(1, family);
const examples = benchExamples(rng, BENCH_BATCH);
if (part('train'))
  await profile(
    `train step (batch ${BENCH_BATCH} × ${BENCH_TIME}, CE + k2 vs frozen reference, AdamW)`,
    () => train(model, examples, { loss: starLoss, needs: starNeeds, reference, config: { epochs: 1, batchSize: BENCH_BATCH, lr: 1e-3 } }),
    { count: BENCH_BATCH * BENCH_TIME, name: 'tokens' },
  );
reference.dispose();

// 2. Generation: 16 prompts of 16 tokens, 48 greedy new tokens each, KV cache.
const prompts = benchPrompts(rng);
if (part('generate'))
  await profile('generate (16 rows × 48 new tokens, greedy, KV cache)', () => generate(model, prompts, GEN_OPTIONS), {
    count: 16 * GEN_OPTIONS.maxNewTokens,
    name: 'tokens',
  });
model.dispose();

// 3. STAR scoring of every 5-word prefix of 20 responses: naive (a forward per prefix) vs shared KV cache.
if (part('star')) {
  const guard = benchGuardrail();
  const work = benchStarWork();
  const prefixes = work.reduce((s, w) => s + w.prefixes.length, 0);
  const naive = await profile(`STAR naive, one response at a time (${prefixes} prefixes of ${work.length} responses)`, () =>
    scoreNaivePerResponse(guard, work),
  );
  const batched = await profile('STAR naive, 64 prefixes per scoreSafe call', () => scoreNaive(guard, work));
  const perResponse = await profile('STAR shared prefixes, one response at a time (scorePrefixes)', () => scorePerResponse(guard, work));
  const packed = await profile('STAR shared prefixes, packed rows (scorePrefixGroups)', () => scoreGrouped(guard, work));
  console.log(
    `\nSTAR under the profiler (${clock} time): naive per response / shared per response ${(naive / perResponse).toFixed(2)}x, ` +
      `naive per response / packed ${(naive / packed).toFixed(2)}x, batched naive / packed ${(batched / packed).toFixed(2)}x`,
  );
  guard.dispose();
}
