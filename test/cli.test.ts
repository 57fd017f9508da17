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

describe('star-dss strategies | threats', () => {
  it('lists every strategy with its parameters and defaults', async () => {
    const { formatPlugins } = await import('../harness/commands/plugins.ts');
    const { describeStrategies, strategyNames } = await import('../strategies/index.ts');
    const text = formatPlugins(describeStrategies());
    for (const name of strategyNames) expect(text).toMatch(new RegExp(`^${name}: `, 'm'));
    expect(text).toContain('lambda: number ≥ 0 = 0.5');
    expect(text).toContain('threshold: number ≥ 0 ≤ 1 = 0.5');
  });

  it('lists every threat, optional parameters marked as such', async () => {
    const { formatPlugins } = await import('../harness/commands/plugins.ts');
    const { describeThreats, threatNames } = await import('../threats/index.ts');
    const text = formatPlugins(describeThreats());
    for (const name of threatNames) expect(text).toMatch(new RegExp(`^${name}: `, 'm'));
    expect(text).toContain('safeCount: integer ≥ 0 = 0');
    expect(text).toMatch(/count: .* = \(optional\)/);
  });
});
