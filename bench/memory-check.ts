// `node bin/run-ts.mjs bench/memory-check.ts [--batch B] [--seq T]`: the memory plan (engine/memory-plan.ts)
// against a measurement. For random-init checkpoints of the real sizes of SmolLM2-135M-Instruct (full
// finetuning) and Qwen2.5-0.5B-Instruct (LoRA rank 8: full finetuning does not fit wasm's 4 GiB), one training
// step on wasm runs in a child process, which reports its peak resident memory (VmHWM of /proc/self/status)
// and the size of the wasm heap; Llama-3.2-1B-Instruct is checked to be refused from config.json alone.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../engine/tensor/backend.ts';
import { loadModel, readConfigFile } from '../engine/model/checkpoint.ts';
import { createLora } from '../engine/model/lora.ts';
import { knownConfig } from '../engine/model/known-configs.ts';
import { checkCheckpointMemory, formatBytes, memoryPlan, type Trainable } from '../engine/memory-plan.ts';
import { train, type TrainExample } from '../engine/train.ts';
import type { LossInputs } from '../engine/contracts/loss.ts';
import { initCheckpoint } from '../harness/commands/model.ts';

const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    init: { type: 'string' },
    batch: { type: 'string', default: '2' },
    seq: { type: 'string', default: '64' },
    dir: { type: 'string', default: join(tmpdir(), 'star-dss-memory-check') },
  },
});

const status = (field: string) => {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${field}:`));
  return Number(line?.split(/\s+/)[1] ?? 0) * 1024;
};

/** Child: one training step on wasm; prints a JSON line with the peak resident memory. */
async function child(spec: { dir: string; trainable: Trainable; batch: number; seq: number; unchecked?: boolean }): Promise<void> {
  await initBackend('wasm');
  const atStart = status('VmRSS');
  const { model: base } = loadModel(spec.dir);
  const afterLoad = status('VmHWM');
  // The checkpoint's bytes on the host are garbage once loaded; collect them now, so the step's peak measures
  // the engine rather than when V8 happens to collect (the plan counts them in loading, not in the step).
  (globalThis as { gc?: () => void }).gc?.();
  process.stderr.write(`loaded: peak ${formatBytes(afterLoad)}\n`);
  const model =
    spec.trainable === 'full'
      ? base
      : createLora(base, { rank: spec.trainable.loraRank, alpha: 16, dropout: 0, rslora: false } as never, { seed: 0 });
  const vocab = base.config.vocabSize;
  const examples: TrainExample[] = Array.from({ length: spec.batch }, (_, b) => {
    const ids = Array.from({ length: spec.seq + 1 }, (_, t) => (b * 7919 + t * 104729) % vocab);
    return { ids, responseMask: ids.map((_, t) => (t >= 4 ? 1 : 0)) };
  });
  const loss = ({ logp, mask }: LossInputs) => tf.div(tf.neg(tf.sum(tf.mul(logp, mask))), tf.maximum(tf.sum(mask), 1)) as tf.Scalar;
  const started = performance.now();
  const heap = () => (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.byteLength ?? 0;
  const result = await train(model, examples, {
    loss,
    needs: { reference: false, star: false, verdict: false, fullLogProbs: false },
    config: { epochs: 1, batchSize: spec.batch, gradAccum: 1, warmupSteps: 0 },
    // unchecked: measure even what the plan would refuse (train() would throw TrainError MEMORY first).
    ...(spec.unchecked ? {} : { memory: { backend: 'wasm', trainable: spec.trainable, reference: 'none' as const } }),
    onStep: () => process.stderr.write(`step done: peak ${formatBytes(status('VmHWM'))}, wasm heap ${formatBytes(heap())}\n`),
  });
  const wasmHeap = heap();
  process.stdout.write(
    `${JSON.stringify({
      rssAtStart: atStart,
      peakAfterLoad: afterLoad,
      peak: status('VmHWM'),
      wasmHeap,
      microBatch: result.microBatch,
      planned: result.memoryPlan?.total,
      loss: result.losses[0],
      seconds: (performance.now() - started) / 1000,
      chunked: (model as { forwardHidden?: unknown }).forwardHidden !== undefined,
    })}\n`,
  );
}

async function main(): Promise<void> {
  if (values.child) return child(JSON.parse(values.child));
  if (values.init) {
    await initBackend('cpu'); // writing the checkpoint is not what is measured; cpu keeps it out of wasm's 4 GiB
    const [name, out] = JSON.parse(values.init) as [string, string];
    await initCheckpoint({ like: name, out, seed: 0 } as never);
    return;
  }
  const batch = Number(values.batch);
  const seq = Number(values.seq);
  const run = (args: string[]) =>
    execFileSync(process.execPath, ['--expose-gc', 'bin/run-ts.mjs', 'bench/memory-check.ts', ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  mkdirSync(values.dir, { recursive: true });
  const cases: { name: string; trainable: Trainable }[] = [
    { name: 'SmolLM2-135M-Instruct', trainable: 'full' },
    { name: 'SmolLM2-135M-Instruct', trainable: { loraRank: 8 } },
    { name: 'Qwen2.5-0.5B-Instruct', trainable: { loraRank: 8 } },
  ];
  for (const c of cases) {
    const dir = join(values.dir, c.name);
    if (!existsSync(join(dir, 'config.json'))) run(['--init', JSON.stringify([c.name, dir])]);
    const config = readConfigFile(dir);
    const plan = memoryPlan(config, {
      backend: 'wasm',
      batch,
      seqLen: seq,
      trainable: c.trainable,
      reference: 'none',
      chunked: true,
    });
    const what = `${c.name} (${c.trainable === 'full' ? 'full finetuning' : `LoRA rank ${c.trainable.loraRank}`}, wasm, batch ${batch} × ${seq} tokens)`;
    let measured: Record<string, number>;
    try {
      const out = run(['--child', JSON.stringify({ dir, trainable: c.trainable, batch, seq, unchecked: true })]);
      measured = JSON.parse(out.trim().split('\n').at(-1)!);
    } catch {
      console.log(
        `${what}: plan ${formatBytes(plan.total)} (${plan.fits ? 'fits' : 'refused'}); measured: the step FAILED (out of memory)`,
      );
      continue;
    }
    console.log(
      `${what}: plan ${formatBytes(plan.total)} peak (${plan.fits ? 'fits' : 'refused'}; runtime ${formatBytes(plan.runtime)} + max(loading ${formatBytes(plan.loading)}, step ${formatBytes(plan.step)}: weights ${formatBytes(plan.weights)}, grads+AdamW ${formatBytes(plan.gradients + plan.optimizer)}, activations ${formatBytes(plan.activations)}, workspace ${formatBytes(plan.workspace)})); measured peak RSS ${formatBytes(measured.peak)} = ${((100 * measured.peak) / plan.total).toFixed(0)}% of the plan (at start ${formatBytes(measured.rssAtStart)}, after load ${formatBytes(measured.peakAfterLoad)}), wasm heap ${measured.wasmHeap ? formatBytes(measured.wasmHeap) : '?'} = ${((100 * measured.wasmHeap) / plan.step).toFixed(0)}% of the step's; step ${measured.seconds.toFixed(1)} s, loss ${measured.loss.toFixed(3)}, chunked ${Boolean(measured.chunked)}`,
    );
  }
  const llama = join(values.dir, 'Llama-3.2-1B-Instruct-config');
  mkdirSync(llama, { recursive: true });
  writeFileSync(join(llama, 'config.json'), JSON.stringify(knownConfig('Llama-3.2-1B-Instruct')));
  try {
    checkCheckpointMemory(llama, { backend: 'wasm', batch: 1, seqLen: seq, trainable: 'full', reference: 'none', chunked: true });
    console.log('Llama-3.2-1B-Instruct: NOT refused (unexpected)');
  } catch (error) {
    console.log(`Llama-3.2-1B-Instruct on wasm: refused before loading: ${(error as Error).message}`);
  }
}

await main();
