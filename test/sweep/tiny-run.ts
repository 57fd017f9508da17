// Helpers of the process-level sweep tests: a tiny random model directory and config on the micro-world
// (no base-model or guardrail training; a cell takes a second or two), a `star-dss` child process whose
// output is followed line by line, and the worker processes of a sweep (its children, from /proc).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { initBackend } from '../../engine/tensor/index.ts';
import { ensureWorld, loadWorld } from '../../datasets/micro-world/build.ts';
import { createMicroModel } from '../../harness/micro-world/base-model.ts';
import { microTokenizerFiles, tokenizerDirFiles } from '../../datasets/micro-world/tokenizer.ts';
import { saveModel } from '../../engine/model/checkpoint.ts';
import { readCellResult } from '../../harness/sweep/store.ts';

const bin = new URL('../../bin/star-dss.mjs', import.meta.url).pathname;

/** Writes `root/tiny-model` and `root/tiny.yaml` (base + 2 strategies × seeds), with the cache in `root/cache`. */
export async function tinySetup(root: string, seeds: number[], epochs = 1): Promise<{ configFile: string; cache: string }> {
  const cache = join(root, 'cache');
  process.env.STAR_DSS_CACHE = cache;
  await initBackend('wasm');
  const files = microTokenizerFiles(loadWorld(ensureWorld(0)).vocabulary);
  const model = createMicroModel(
    'llama',
    { hidden: 32, layers: 1, heads: 2, kvHeads: 1, intermediate: 64, maxPositions: 160, tied: true },
    files,
    3,
  );
  await saveModel(join(root, 'tiny-model'), model, { files: tokenizerDirFiles(files) });
  model.dispose();
  const configFile = join(root, 'tiny.yaml');
  writeFileSync(
    configFile,
    stringify({
      name: 'tiny',
      models: [join(root, 'tiny-model')],
      tasks: ['micro:ticket'],
      harmful: ['micro:purebad'],
      oldTask: { dataset: 'micro:gsm8k', count: 4 },
      threats: [{ name: 'harmful-injection', count: 12, total: 24 }],
      strategies: ['sft', 'deep-token'],
      seeds,
      train: { epochs, batchSize: 8 },
      eval: { safety: ['micro:hex-phi'], capability: ['micro:ticket-test'], maxItems: 6, maxNewTokens: 12, samples: 1 },
    }),
  );
  return { configFile, cache };
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: string[];
}

export interface Spawned {
  pid: number;
  lines: string[];
  exited: Promise<Exit>;
  /** SIGKILL to the whole process group: the command and its workers. */
  killGroup(): void;
}

/** `star-dss ARGS` in its own process group; stdout and stderr collected line by line. */
export function starDss(args: string[], env: Record<string, string>, onLine?: (line: string) => void): Spawned {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        lines.push(line);
        onLine?.(line);
      }
    });
  }
  const exited = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, lines })));
  return {
    pid: child.pid!,
    lines,
    exited,
    killGroup: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    },
  };
}

/** The sweep worker processes of a sweep: its children running harness/sweep/worker.ts, read from /proc. */
export function workerPids(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('sweep/worker.ts')) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Ids of the cells of a run directory that hold a valid result.json. */
export function finished(runDir: string): string[] {
  const cells = join(runDir, 'cells');
  return existsSync(cells) ? readdirSync(cells).filter((id) => readCellResult(runDir, id) !== undefined) : [];
}

/** Titles of the cells a sweep's output reports as finished ("[3/5] done <title> in 2 s"). */
export function doneTitles(lines: readonly string[]): string[] {
  return lines.flatMap((l) => {
    const m = /^\[\d+\/\d+\] (?:done|FAILED) (.+?) in \d+ s/.exec(l);
    return m ? [m[1]] : [];
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
