// Prerequisites that cells share (the world's base models and its guardrail), each prepared once before
// any cell runs, so workers never race to train them. With several workers they train side by side, one
// process each (wasm uses one core per process). Run as a script: `prepare.ts base <family> <worldSeed>` or
// `prepare.ts guardrail <worldSeed>`.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ensureWorld } from '../../datasets/micro-world/build.ts';
import { ensureBaseModel } from '../micro-world/base-model.ts';
import { ensureMicroGuardrail } from '../micro-world/guardrail.ts';
import { backendRequest, initBackend } from '../../engine/tensor/backend.ts';

export type Prerequisite = { kind: 'base'; family: string; worldSeed: number } | { kind: 'guardrail'; worldSeed: number };

export async function prepare(p: Prerequisite, log: (line: string) => void): Promise<string> {
  const world = ensureWorld(p.worldSeed);
  return p.kind === 'base' ? ensureBaseModel(p.family, { worldSeed: p.worldSeed, log }) : ensureMicroGuardrail({ world, log });
}

function prepareInChild(p: Prerequisite): Promise<void> {
  const runner = fileURLToPath(new URL('../../bin/run-ts.mjs', import.meta.url));
  const args = p.kind === 'base' ? ['base', p.family, String(p.worldSeed)] : ['guardrail', String(p.worldSeed)];
  const backend = backendRequest(); // the backend of this process (--backend or STAR_DSS_BACKEND, auto resolved)
  const env = backend ? { ...process.env, STAR_DSS_BACKEND: backend } : process.env;
  const child = fork(runner, [fileURLToPath(import.meta.url), ...args], { stdio: 'inherit', env });
  return new Promise((resolve, reject) =>
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`preparing ${args.join(' ')} failed (${signal ?? `exit code ${code}`})`)),
    ),
  );
}

/** Prepares every prerequisite, `parallel` at a time (in child processes when more than one). */
export async function prepareAll(items: Prerequisite[], parallel: number, log: (line: string) => void): Promise<void> {
  if (parallel <= 1 || items.length <= 1) {
    for (const p of items) await prepare(p, log);
    return;
  }
  ensureWorld(items[0].worldSeed); // build the world once, before the children read it
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      for (let p = queue.shift(); p; p = queue.shift()) await prepareInChild(p);
    }),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [kind, a, b] = process.argv.slice(2);
  await initBackend(process.env.STAR_DSS_BACKEND);
  const p: Prerequisite = kind === 'base' ? { kind: 'base', family: a, worldSeed: Number(b) } : { kind: 'guardrail', worldSeed: Number(a) };
  await prepare(p, (line) => console.log(line));
}
