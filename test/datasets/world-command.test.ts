import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { worldCommand } from '../../harness/commands/world.ts';
import { loadDataset } from '../../datasets/index.ts';
import { WORLD_VERSION } from '../../datasets/micro-world/build.ts';

let dir: string;
const savedCache = process.env.STAR_DSS_CACHE;
const savedLog = console.log;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'world-cmd-'));
  process.env.STAR_DSS_CACHE = join(dir, 'cache');
});
afterAll(() => {
  console.log = savedLog;
  if (savedCache === undefined) delete process.env.STAR_DSS_CACHE;
  else process.env.STAR_DSS_CACHE = savedCache;
  rmSync(dir, { recursive: true, force: true });
});

const run = async (args: string[]) => {
  const printed: string[] = [];
  console.log = (line: string) => printed.push(line);
  try {
    await yargs()
      .command(worldCommand)
      .strict()
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync(args);
  } finally {
    console.log = savedLog;
  }
  return printed;
};

describe('star-dss world build', () => {
  it('writes the world to --out with --seed and prints sizes', async () => {
    const out = join(dir, 'w3');
    const printed = await run(['world', 'build', '--seed', '3', '--out', out]);
    const manifest = JSON.parse(readFileSync(join(out, 'world.json'), 'utf8'));
    expect(manifest.seed).toBe(3);
    expect(printed[0]).toContain(out);
    expect(printed[1]).toBe(`vocabulary: ${manifest.vocabulary.length} words`);
    expect(printed.some((l) => l.startsWith('purebad ') && l.includes(' 100 '))).toBe(true);
  });

  it('defaults to the cache directory of seed 0, which micro: references then use', async () => {
    await run(['world', 'build']);
    const defaultDir = join(dir, 'cache', 'world', `seed-0-v${WORLD_VERSION}`);
    expect(existsSync(join(defaultDir, 'world.json'))).toBe(true);
    expect(loadDataset('micro:safe')[0].meta.source).toBe('micro:safe');
    expect(loadDataset('micro:base').length).toBeGreaterThan(7000);
  });

  it('rejects a bad seed and a missing subcommand', async () => {
    await expect(run(['world', 'build', '--seed', '-2', '--out', join(dir, 'bad')])).rejects.toThrow(
      /--seed must be a non-negative integer/,
    );
    await expect(run(['world'])).rejects.toThrow(/subcommand/);
    expect(existsSync(join(dir, 'bad'))).toBe(false);
  });
});
