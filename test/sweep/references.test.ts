// checkReferences, form by form: what a real run would resolve is checked without loading a model or calling
// a server, and a real (not dry) sweep stops on the same problems before its backend starts.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSweepCommand } from '../../harness/commands/sweep.ts';
import { loadSweepConfig, parseSweepConfig, presetFile, presetNames } from '../../harness/sweep/config.ts';
import { checkReferences, hashPath, SweepReferenceError, sweepReferences } from '../../harness/sweep/references.ts';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'refs-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = { threats: ['benign'], strategies: ['sft'] };
const check = (raw: Record<string, unknown>) => checkReferences(parseSweepConfig({ ...base, ...raw }), 'c.yaml');

describe('checkReferences', () => {
  it('the micro-world presets resolve', async () => {
    for (const name of presetNames.filter((n) => n !== 'paper'))
      expect(await checkReferences(loadSweepConfig(presetFile(name)))).toEqual([]);
  });

  it('the paper preset names each missing checkpoint and file, one line each', async () => {
    const problems = await checkReferences(loadSweepConfig(presetFile('paper')), 'paper.yaml');
    for (const field of ['models[0]', 'tasks[0]', 'harmful[2]', 'safe', 'eval.safety[1]', 'eval.capability[2]', 'guardrails[0]'])
      expect(
        problems.some((p) => p.startsWith(`paper.yaml: field '${field}': `)),
        field,
      ).toBe(true);
    expect(problems.some((p) => p.includes("'oldTask"))).toBe(false); // count 0: never read
    for (const p of problems) expect(p).not.toContain('\n');
  });

  it('judges: every accepted form passes; a bad URL or a bad inner guardrail is named', async () => {
    for (const judge of ['oracle', 'keyword', 'guardrail:micro', 'llm:http://127.0.0.1:8000/v1', 'llm:https://h/v1#gpt-4o'])
      expect(await check({ eval: { judge } }), judge).toEqual([]);
    expect(await check({ eval: { judge: 'llm:ftp://h' } })).toEqual([
      expect.stringMatching(/^c\.yaml: field 'eval\.judge': judge 'llm:ftp:\/\/h'/),
    ]);
    expect(await check({ eval: { judge: 'guardrail:micr' } })).toEqual([
      expect.stringMatching(/^c\.yaml: field 'eval\.judge': .*Did you mean 'micro'\?/),
    ]);
    expect(await check({ eval: { judge: `guardrail:llama-guard-3:${join(dir, 'none')}` } })).toEqual([
      expect.stringMatching(/field 'eval\.judge': '.*none' does not exist/),
    ]);
  });

  it('guardrails are checked only when a strategy reads one; URLs are parsed, not called', async () => {
    expect(await check({ guardrails: ['nonsense'] })).toEqual([]); // sft reads no guardrail
    expect(await check({ strategies: ['rs'], guardrails: ['granite-guardian-3:http://127.0.0.1:9/v1', { spec: 'micro' }] })).toEqual([]);
    expect(await check({ strategies: ['rs'], guardrails: ['granite-guardin-3:http://h'] })).toEqual([
      expect.stringMatching(/field 'guardrails\[0\]': .*granite-guardian-3/),
    ]);
  });

  it('unknown threats and strategies and bad parameters are reported with the references', async () => {
    const problems = await check({ threats: ['benign', 'backdor'], strategies: [{ name: 'star-dss', lamda: 1 }], tasks: ['micro:tiket'] });
    expect(problems).toEqual([
      expect.stringMatching(/^c\.yaml: field 'threats\[1\]': .*Did you mean 'backdoor'\?/),
      expect.stringMatching(/^c\.yaml: field 'strategies\[0\]': .*Did you mean 'lambda'\?/),
      expect.stringMatching(/^c\.yaml: field 'tasks\[0\]': .*Did you mean 'micro:ticket'\?/),
    ]);
  });

  it('fields: a threat with its own pool, old tasks with count 0, the sweep pool when every threat has its own', () => {
    const config = parseSweepConfig({
      threats: [{ name: 'identity-shift', harmful: 'micro:aoa' }],
      strategies: ['sft'],
      oldTask: [
        { dataset: 'micro:sql', count: 0 },
        { dataset: 'micro:gsm8k', count: 5 },
      ],
    });
    const fields = sweepReferences(config).map((r) => r.field);
    expect(fields).toContain('threats[0].harmful');
    expect(fields).toContain('oldTask[1].dataset');
    expect(fields).not.toContain('oldTask[0].dataset');
    expect(fields).not.toContain('harmful[0]');
  });

  it('a real sweep stops on the same problems before anything starts', async () => {
    const file = join(dir, 'real.yaml');
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, `name: real\ntasks: [${join(dir, 'missing.jsonl')}]\nthreats: [benign]\nstrategies: [sft]\n`);
    const out = join(dir, 'run');
    const args = { config: file, preset: 'quick' as const, out, workers: 1, dryRun: false, quiet: true, retryFailed: false };
    await expect(runSweepCommand(args, () => {})).rejects.toThrow(SweepReferenceError);
    await expect(runSweepCommand(args, () => {})).rejects.toThrow(/^.*real\.yaml: field 'tasks\[0\]': '.*missing\.jsonl' does not exist/);
    expect(existsSync(out)).toBe(false);
  });

  it('weights over 64 MiB: hashed in full once, remembered by path, size, inode and times; a write in place is seen', () => {
    const saved = process.env.STAR_DSS_CACHE;
    process.env.STAR_DSS_CACHE = join(dir, 'cache');
    try {
      const weights = join(dir, 'big', 'model.safetensors');
      mkdirSync(join(dir, 'big'), { recursive: true });
      writeFileSync(weights, Buffer.alloc(65 * 1024 * 1024, 7));
      const first = hashPath(join(dir, 'big'));
      expect(readdirSync(join(dir, 'cache', 'content-hashes'))).toHaveLength(1);
      expect(hashPath(join(dir, 'big'))).toBe(first);
      const fd = openSync(weights, 'r+');
      writeSync(fd, Buffer.from([8]), 0, 1, 40 * 1024 * 1024); // one byte deep inside, same size
      closeSync(fd);
      expect(hashPath(join(dir, 'big'))).not.toBe(first);
    } finally {
      if (saved === undefined) delete process.env.STAR_DSS_CACHE;
      else process.env.STAR_DSS_CACHE = saved;
    }
  });
});
