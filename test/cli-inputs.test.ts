// Bad inputs to the CLI are one-line errors before any work: an empty data file for `star`, out-of-range
// decoding flags for `model generate`, and a checkpoint whose weights hold NaN for `model generate|logits|info`.
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend, tf } from '../engine/tensor/index.ts';
import { initCheckpoint } from '../harness/commands/model.ts';
import { runStar, type StarArgs } from '../harness/commands/star.ts';
import { loadModel, saveModel } from '../engine/model/checkpoint.ts';
import type { GuardItem, Guardrail } from '../guardrails/types.ts';
import { runCli } from './cli-run.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

afterEach(() => {
  vi.restoreAllMocks();
});

const run = runCli;

const tempDir = () => mkdtempSync(join(tmpdir(), 'cli-inputs-'));

async function tinyCheckpoint(dir: string): Promise<string> {
  await initCheckpoint({ family: 'llama', out: dir, hidden: 16, layers: 1, heads: 2, vocab: 24, maxPositions: 32, tied: true, seed: 1 });
  return dir;
}

/** Every response scored safe; counts how often it was asked. */
class CountingGuard implements Guardrail {
  readonly id = 'counting-guard:v1';
  calls = 0;
  async scoreSafe(items: GuardItem[]): Promise<number[]> {
    this.calls += items.length;
    return items.map(() => 1);
  }
}

describe('star --data with no examples', () => {
  for (const [label, content] of [
    ['an empty file', ''],
    ['blank lines only', '\n  \n\n'],
  ] as const) {
    it(`${label}: a one-line error naming the file, nothing written, no guardrail resolved`, async () => {
      const dir = tempDir();
      const data = join(dir, 'empty.jsonl');
      writeFileSync(data, content);
      let resolved = 0;
      const args: StarArgs = {
        data,
        guardrail: ['fake'],
        out: join(dir, 'out.jsonl'),
        html: join(dir, 'out.html'),
        cache: false,
        batchSize: 8,
      };
      const attempt = runStar(args, {
        resolve: async () => {
          resolved++;
          return new CountingGuard();
        },
        log: () => {},
      });
      await expect(attempt).rejects.toThrow(/empty\.jsonl: no examples/);
      await attempt.catch((error: Error) => expect(error.message).not.toContain('\n'));
      expect(resolved).toBe(0);
      expect(readdirSync(dir)).toEqual(['empty.jsonl']);
    });
  }
});

describe('model generate flags', () => {
  let model: string;
  beforeAll(async () => {
    model = await tinyCheckpoint(join(tempDir(), 'm'));
  });
  const generate = (...flags: string[]) => run(['model', 'generate', '--model', model, '--prompt', 'w1 w2', '--raw', ...flags]);

  for (const [flags, message] of [
    [['--max-new-tokens', '-1'], /--max-new-tokens: expected a positive integer, got -1/],
    [['--max-new-tokens', '0'], /--max-new-tokens: expected a positive integer, got 0/],
    [['--max-new-tokens', '2.5'], /--max-new-tokens: expected a positive integer, got 2.5/],
    [['--temperature', '-1'], /--temperature: expected a number > 0.*--greedy/],
    [['--temperature', '0'], /--temperature: expected a number > 0.*--greedy/],
    [['--top-p', '5'], /--top-p: expected a number in \(0, 1\] .*got 5/],
    [['--top-p', '0'], /--top-p: expected a number in \(0, 1\] .*got 0/],
    [['--top-k', '-1'], /--top-k: expected an integer ≥ 0 \(0 disables it\), got -1/],
    [['--top-k', '1.5'], /--top-k: expected an integer ≥ 0 \(0 disables it\), got 1.5/],
    [['--repetition-penalty', '0'], /--repetition-penalty: expected a number > 0 \(1 disables it\), got 0/],
    [['--temperature', 'abc'], /--temperature: expected a number > 0.*got NaN/],
  ] as const) {
    it(`rejects ${flags.join(' ')}`, async () => {
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      await expect(generate(...flags)).rejects.toThrow(message);
      expect(log).not.toHaveBeenCalled();
    });
  }

  it('accepts valid flags and prints a reply', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    await generate('--max-new-tokens', '3', '--temperature', '0.7', '--top-p', '1', '--top-k', '0', '--repetition-penalty', '1');
    await generate('--max-new-tokens', '3', '--greedy');
    expect(log).toHaveBeenCalledTimes(2);
  });
});

describe('a checkpoint whose weights hold NaN', () => {
  let dir: string;
  let poisoned: string;
  beforeAll(async () => {
    const root = tempDir();
    const good = await tinyCheckpoint(join(root, 'good'));
    const { model } = loadModel(good);
    poisoned = [...model.params.keys()].find((name) => name.includes('layers.0.mlp'))!;
    const variable = model.params.get(poisoned)!;
    const values = variable.dataSync().slice();
    values[3] = Number.NaN;
    variable.assign(tf.tensor(values, variable.shape));
    dir = join(root, 'nan');
    await saveModel(dir, model, { dir: good });
    model.dispose();
  });

  for (const command of [['generate', '--prompt', 'w1', '--raw', '--max-new-tokens', '2'], ['logits', '--ids', '1,2,3'], ['info']]) {
    it(`model ${command[0]} fails with one line naming the checkpoint and the tensor`, async () => {
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      const attempt = run(['model', command[0], '--model', dir, ...command.slice(1)]);
      await expect(attempt).rejects.toThrow(/non-finite/);
      await attempt.catch((error: Error) => {
        expect(error.message).toContain(dir);
        expect(error.message).toContain(`'${poisoned}'`);
        expect(error.message).not.toContain('\n');
      });
      expect(log).not.toHaveBeenCalled();
      expect(write).not.toHaveBeenCalled();
      expect(existsSync(dir)).toBe(true);
    });
  }
});
