import { beforeAll, describe, expect, it } from 'vitest';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import yargs from 'yargs';
import { initBackend } from '../../engine/tensor/index.ts';
import { parseGuardrailSpec, resolveGuardrail, resolveLocalGuardrail } from '../../guardrails/index.ts';
import { guardPreset, parseGuardSpec } from '../../guardrails/presets.ts';
import { EnsembleGuardrail } from '../../guardrails/ensemble.ts';
import { NoisyGuardrail } from '../../guardrails/noisy.ts';
import { HttpGuardrail } from '../../guardrails/http.ts';
import { LmGuardrail } from '../../guardrails/lm.ts';
import { startGuardrailServer } from '../../harness/guardrail-server.ts';
import { makeServeCommand } from '../../harness/commands/serve.ts';
import { tempDir, writeWordGuard } from './helpers.ts';

let dir: string;
beforeAll(async () => {
  await initBackend('wasm');
  dir = await writeWordGuard();
});

describe('guardrail specs', () => {
  it('parses micro, <preset>:DIR, <preset>:URL, DIR and URL', () => {
    expect(parseGuardrailSpec('micro')).toEqual({ kind: 'micro' });
    expect(parseGuardrailSpec('llama-guard-3:/models/lg3')).toEqual({ kind: 'dir', dir: '/models/lg3', preset: 'llama-guard-3' });
    expect(parseGuardrailSpec('granite-guardian-3:http://h:8000')).toEqual({
      kind: 'url',
      url: 'http://h:8000',
      preset: 'granite-guardian-3',
    });
    expect(parseGuardrailSpec(dir)).toEqual({ kind: 'dir', dir });
    expect(parseGuardrailSpec('https://guard.example/v1')).toEqual({ kind: 'url', url: 'https://guard.example/v1' });
  });

  it('teaches the nearest name for unknown presets and specs', () => {
    expect(() => parseGuardrailSpec('lama-guard-3:/x')).toThrow(
      "Unknown guardrail preset 'lama-guard-3'. Did you mean 'llama-guard-3'? Available: llama-guard-3, granite-guardian-3, micro.",
    );
    expect(() => parseGuardrailSpec('mirco')).toThrow(
      /Unknown guardrail 'mirco': not a directory, a URL or a preset\. Did you mean 'micro'\?/,
    );
    expect(() => parseGuardrailSpec('granite-guardian-3')).toThrow(/needs a checkpoint directory or URL: write 'granite-guardian-3:DIR'/);
    expect(() => guardPreset('Granite-Guardian-3')).toThrow(/Did you mean 'granite-guardian-3'/);
  });

  it('presets carry the paper’s labels and positions; explicit fields override them', () => {
    expect(parseGuardSpec({ preset: 'llama-guard-3' }, 't')).toEqual({ labels: { safe: 'safe', unsafe: 'unsafe' }, position: 2 });
    expect(parseGuardSpec({ preset: 'granite-guardian-3' }, 't')).toEqual({
      labels: { safe: 'No', unsafe: 'Yes' },
      position: 1,
      extra: { guardian_config: { risk_name: 'harm' } },
    });
    expect(parseGuardSpec({ preset: 'micro', position: 2 }, 't').position).toBe(2);
    expect(() => parseGuardSpec({ labels: { safe: 'a', unsafe: 'b' } }, 'f.json')).toThrow(
      /f\.json: needs a preset .* or both 'labels' and 'position'/,
    );
    expect(() => parseGuardSpec({ position: 3 }, 'f.json')).toThrow(/f\.json: field 'position'/);
    expect(() => parseGuardSpec({ labelz: {} }, 'f.json')).toThrow(/f\.json: field '\(root\)'|labelz/);
  });

  it('resolves DIR through its guardrail.json, micro through microGuardrailDir, and lists through an ensemble', async () => {
    const byDir = await resolveGuardrail(dir);
    const byMicro = await resolveGuardrail('micro', { microGuardrailDir: () => dir });
    const byPreset = await resolveGuardrail(`micro:${dir}`);
    try {
      expect(byDir).toBeInstanceOf(LmGuardrail);
      expect(byMicro.id).toBe(byDir.id);
      expect(byPreset.id).toBe(byDir.id);
      await expect(resolveGuardrail('micro')).rejects.toThrow(/needs the micro-world guardrail's directory: pass microGuardrailDir/);
    } finally {
      for (const g of [byDir, byMicro, byPreset]) g.dispose?.();
    }
    const noisy = await resolveGuardrail([dir, `micro:${dir}`], { position: 2, noise: { rate: 0.1, seed: 3 } });
    try {
      expect(noisy).toBeInstanceOf(NoisyGuardrail);
      const ens = (noisy as NoisyGuardrail).inner as EnsembleGuardrail;
      expect(ens).toBeInstanceOf(EnsembleGuardrail);
      expect(ens.members.map((m) => (m as LmGuardrail).spec.position)).toEqual([2, 2]);
    } finally {
      noisy.dispose?.();
    }
  });

  it('asks for labels when a bare directory does not say which guardrail it is', async () => {
    const bare = join(tempDir('bare'), 'some-model');
    cpSync(dir, bare, { recursive: true });
    rmSync(join(bare, 'guardrail.json'));
    await expect(resolveGuardrail(bare)).rejects.toThrow(/unknown labels and position\. Fix: write '<preset>:/);
    const named = join(tempDir('named'), 'My-Llama-Guard-3-1B');
    cpSync(bare, named, { recursive: true });
    // The directory name points at the llama-guard-3 preset, whose labels this vocabulary has.
    const guard = (await resolveLocalGuardrail(named)) as LmGuardrail;
    expect(guard.spec.position).toBe(2);
    guard.dispose();
  });

  it('resolves a URL with the tokenizer directory’s template and guardrail.json', async () => {
    const local = (await resolveLocalGuardrail(dir)) as LmGuardrail;
    const server = await startGuardrailServer(local, { name: 'g' });
    try {
      const remote = await resolveGuardrail(server.url, { http: { tokenizerDir: dir, topLogprobs: 100 } });
      expect(remote).toBeInstanceOf(HttpGuardrail);
      expect((remote as HttpGuardrail).spec.position).toBe(1);
      await expect(resolveGuardrail(server.url)).rejects.toThrow(/chat template is needed.*http\.tokenizerDir/);
      await expect(resolveLocalGuardrail(server.url)).rejects.toThrow(/is a URL; a local guardrail needs/);
    } finally {
      await server.close();
      local.dispose();
    }
  });
});

describe('star-dss serve guardrail', () => {
  const run = async (args: string[], deps: Parameters<typeof makeServeCommand>[0]) =>
    yargs(args)
      .command(makeServeCommand(deps))
      .strict()
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();

  it('serves the guardrail on the given host and port until stopped, printing the URL', async () => {
    const lines: string[] = [];
    let models: unknown;
    await run(['serve', 'guardrail', '--guardrail', 'micro', '--port', '0'], {
      microGuardrailDir: dir,
      log: (line) => lines.push(line),
      untilStopped: async (server) => {
        models = await (await fetch(`${server.url}/v1/models`)).json();
      },
    });
    expect((models as { data: { id: string }[] }).data[0].id).toBe('micro');
    expect(lines[0]).toMatch(/^serving guardrail lm-[0-9a-f]{16} as model 'micro' at http:\/\/127\.0\.0\.1:\d+\/v1 /);
  });

  it('rejects a bad port and a missing guardrail', async () => {
    await expect(run(['serve', 'guardrail', '--guardrail', dir, '--port', '70000'], {})).rejects.toThrow(
      /--port must be an integer in \[0, 65535\]/,
    );
    await expect(run(['serve', 'guardrail', '--port', '1'], {})).rejects.toThrow(/Missing required argument: guardrail/);
  });
});
