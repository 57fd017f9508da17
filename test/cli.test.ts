import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCli } from '../harness/cli.ts';
import { parseIds } from '../harness/commands/model.ts';

const run = async (args: string[]) =>
  buildCli(args)
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();

describe('CLI (in process, no spawning)', () => {
  it('runs `model init` with parsed flags', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'cli-')), 'm');
    const argv = await run([
      'model',
      'init',
      '--family',
      'gpt2',
      '--out',
      out,
      '--hidden',
      '16',
      '--heads',
      '2',
      '--vocab',
      '20',
      '--backend',
      'wasm',
    ]);
    expect(argv.backend).toBe('wasm');
    expect(argv.hidden).toBe(16);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
  });

  it('rejects an unknown backend, an unknown family and a missing command', async () => {
    await expect(run(['model', 'info', '--model', 'x', '--backend', 'tpu'])).rejects.toThrow(/backend, Given: "tpu"/);
    await expect(run(['model', 'init', '--family', 'bert', '--out', 'x'])).rejects.toThrow(/family, Given: "bert"/);
    await expect(run([])).rejects.toThrow(/Name a command/);
  });

  it('validates --ids', () => {
    expect(parseIds('1, 2,3', 10)).toEqual([1, 2, 3]);
    expect(() => parseIds('1,x', 10)).toThrow(/--ids/);
    expect(() => parseIds('12', 10)).toThrow(/\[0, 10\)/);
  });
});

describe('star-dss strategies', () => {
  it('lists every strategy with its parameters and defaults', async () => {
    const { formatStrategies } = await import('../harness/commands/strategies.ts');
    const text = formatStrategies();
    for (const name of ['sft', 'rs', 'reweight', 'star-dss', 'deep-token', 'kl-only']) expect(text).toMatch(new RegExp(`^${name}: `, 'm'));
    expect(text).toContain('lambda: number ≥ 0 = 0.5');
    expect(text).toContain('threshold: number ≥ 0 ≤ 1 = 0.5');
  });
});
