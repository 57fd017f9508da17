// `star-dss doctor`: every problem of a config in one run (missing paths, unsupported config.json, endpoints
// that do not answer, models too big for the backend), a memory plan from config.json, and the dry run's
// estimate scaled by model size.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { type DoctorArgs, runDoctor } from '../../harness/commands/doctor.ts';
import { parseSweepConfig, presetFile } from '../../harness/sweep/config.ts';
import { estimateCells, parameterCount } from '../../harness/sweep/estimate.ts';
import { measureModels } from '../../harness/sweep/measure-speed.ts';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { memoryPlan } from '../../engine/memory-plan.ts';
import { planSweep } from '../../harness/sweep/plan.ts';
import { modelsUrl, probeEndpoint } from '../../harness/sweep/references.ts';
import { parseConfig } from '../../engine/model/config.ts';

// Llama-3.2-1B-Instruct's config.json (meta-llama/Llama-3.2-1B-Instruct), the fields the engine reads.
const llama32 = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 8192,
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  head_dim: 64,
  hidden_act: 'silu',
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  vocab_size: 128256,
  bos_token_id: 128000,
  eos_token_id: [128001, 128008, 128009],
};

let dir = '';
let server: Server;
let base = '';
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'doctor-'));
  server = createServer((req, res) => {
    if (req.url === '/locked/v1/models') {
      res.writeHead(401).end();
      return;
    }
    if (req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: [{ id: 'judge-model' }] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const write = (name: string, text: string) => {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
};
const checkpoint = (name: string, config: object) => {
  write(`${name}/config.json`, JSON.stringify(config));
  write(`${name}/tokenizer.json`, '{}');
  write(`${name}/model.safetensors`, '');
  return join(dir, name);
};
const args = (config: string): DoctorArgs => ({ config, seqLen: 512, timeout: 2000, backend: 'wasm' });

describe('star-dss doctor', () => {
  it('lists every missing path of the unmodified paper preset in one run', async () => {
    const lines: string[] = [];
    const problems = await runDoctor({ preset: 'paper', seqLen: 512, timeout: 300, backend: 'wasm' }, (l) => lines.push(l));
    const raw = parseYaml(readFileSync(presetFile('paper'), 'utf8')) as Record<string, unknown>;
    const paths = JSON.stringify(raw).match(/\/(?:data|models)\/[^",\]]+/g) ?? [];
    expect(paths.length).toBeGreaterThan(10);
    for (const path of new Set(paths.map((p) => p.replace(/^granite-guardian-3:/, ''))))
      expect(
        problems.some((p) => p.includes(`'${path}' does not exist`)),
        `${path} in\n${problems.join('\n')}`,
      ).toBe(true);
    expect(lines.at(-problems.length - 1)).toMatch(/^\d+ problems:$/);
  });

  it('plans memory from config.json, flags a model too big for the backend, an unsupported config and a dead endpoint', async () => {
    const model = checkpoint('Llama-3.2-1B-Instruct', llama32);
    const odd = checkpoint('odd', { model_type: 'mamba', hidden_size: 8 });
    const file = write(
      'real.yaml',
      [
        'name: real',
        `models: [${model}, ${odd}]`,
        'threats: [benign]',
        'strategies: [sft, star-dss]',
        `guardrails: ['http://127.0.0.1:9/v1']`,
        `eval: { judge: 'llm:${base}/v1#judge-model' }`,
        'train: { batchSize: 32, gradAccum: 4 }',
      ].join('\n'),
    );
    const lines: string[] = [];
    const problems = await runDoctor(args(file), (l) => lines.push(l));
    const text = lines.join('\n');
    expect(text).toMatch(/memory plan \(an estimate from config\.json, not a measurement\)/);
    expect(text).toMatch(/micro-batch 8 × 512 tokens/);
    expect(text).toMatch(/Llama-3\.2-1B-Instruct\s+1\.24 B\s+4\.6 GiB\s+13\.8 GiB\s+4\.6 GiB/);
    expect(text).toMatch(new RegExp(`eval\\.judge\\s+${base}/v1\\s+answers; serves judge-model`));
    const expected = [
      /field 'models\[1\]': .*odd\/config\.json: field 'model_type' must be one of/,
      /field 'guardrails\[0\]': GET http:\/\/127\.0\.0\.1:9\/v1\/models: .*Fix: start the server/,
      /field 'models\[0\]': finetuning '.*Llama-3\.2-1B-Instruct' needs about \d+\.\d GiB of wasm heap \(estimate: weights .*\) and the wasm backend has 4\.0 GiB .*Fix: the float32 weights alone exceed it/,
    ];
    for (const pattern of expected)
      expect(
        problems.some((p) => pattern.test(p)),
        `${pattern} in\n${problems.join('\n')}`,
      ).toBe(true);
    expect(problems).toHaveLength(expected.length);
  });

  it('a config without problems says so', async () => {
    const file = write('ok.yaml', ['name: ok', 'threats: [benign]', 'strategies: [sft]'].join('\n'));
    const lines: string[] = [];
    expect(await runDoctor(args(file), (l) => lines.push(l))).toEqual([]);
    expect(lines.at(-1)).toBe('no problems found');
  });

  it('a judge asking for a model the server does not list is a problem', async () => {
    const file = write(
      'judge.yaml',
      ['name: judge', 'threats: [benign]', 'strategies: [sft]', `eval: { judge: 'llm:${base}/v1#other' }`].join('\n'),
    );
    const problems = await runDoctor(args(file), () => {});
    expect(problems).toEqual([expect.stringMatching(/field 'eval\.judge': .* does not serve 'other' \(it serves judge-model\)/)]);
  });

  it('an endpoint that refuses names the API key variable', async () => {
    expect(modelsUrl('http://h:1/v1/chat/completions')).toBe('http://h:1/v1/models');
    expect(modelsUrl('http://h:1/')).toBe('http://h:1/v1/models');
    const refused = await probeEndpoint(
      { field: 'eval.judge', url: `${base}/locked/v1`, role: 'judge', apiKeyEnv: 'STAR_DSS_TEST_KEY' },
      2000,
    );
    expect(refused).toEqual({ ok: false, problem: expect.stringMatching(/HTTP 401\. Fix: set STAR_DSS_TEST_KEY/) });
  });
});

describe('estimates from config.json', () => {
  it("counts Llama-3.2-1B's 1,235,814,400 parameters and plans 16 bytes each for full finetuning", () => {
    const config = parseConfig(llama32);
    expect(parameterCount(config)).toBe(1_235_814_400);
    const options = { backend: 'wasm', seqLen: 128, trainable: 'full', reference: 'none', chunked: false } as const;
    const plan = memoryPlan(config, { ...options, batch: 1 });
    expect(plan.weights + plan.gradients + plan.optimizer).toBe(16 * 1_235_814_400);
    expect(plan.reference).toBe(0);
    expect(memoryPlan(config, { ...options, batch: 2 }).activations).toBe(2 * plan.activations);
  });

  it('the dry run scales the micro model speed by parameters and says it is an estimate', () => {
    const task = write('task.jsonl', '{"messages":[{"role":"user","content":"hi there"},{"role":"assistant","content":"hello"}]}\n');
    const model = checkpoint('Llama-3.2-1B-Instruct', llama32);
    const cells = planSweep(parseSweepConfig({ models: [model, 'micro:llama'], tasks: [task], threats: ['benign'], strategies: ['sft'] }));
    const { perCell, basis } = estimateCells(cells);
    const real = cells.findIndex((c) => c.spec.kind === 'finetune' && c.spec.model === model);
    const micro = cells.findIndex((c) => c.spec.kind === 'finetune' && c.spec.model === 'micro:llama');
    expect(perCell[real] / perCell[micro]).toBeGreaterThan(1000);
    expect(basis).toMatch(/^an estimate, not a measurement: the micro model's speeds from npm run bench/);
    expect(basis).toMatch(/Llama-3\.2-1B-Instruct 1\.24 B parameters/);
  });

  it('with measured speeds, the dry run divides by them; a model too big for the backend is not built and keeps the scaled estimate', async () => {
    await initBackend('wasm');
    const task = write('task.jsonl', '{"messages":[{"role":"user","content":"hi there"},{"role":"assistant","content":"hello"}]}\n');
    const model = checkpoint('Llama-3.2-1B-Instruct', llama32);
    const cells = planSweep(parseSweepConfig({ models: [model, 'micro:llama'], tasks: [task], threats: ['benign'], strategies: ['sft'] }));
    const tensors = tf.memory().numTensors;
    const measured = await measureModels(cells, 'wasm');
    expect(tf.memory().numTensors).toBe(tensors);
    const micro = measured.get('micro:llama');
    expect(micro?.ok && micro.speed.train > 0 && micro.speed.generate > 0).toBe(true);
    const big = measured.get(model);
    expect(big?.ok).toBe(false);
    expect(big && !big.ok && big.reason).toMatch(/does not fit wasm/);
    const { perCell, basis } = estimateCells(cells, measured);
    const halved = estimateCells(
      cells,
      new Map(
        [...measured].map(([ref, m]) => [
          ref,
          m.ok ? { ...m, speed: { ...m.speed, train: m.speed.train / 2, generate: m.speed.generate / 2 } } : m,
        ]),
      ),
    );
    const i = cells.findIndex((c) => c.spec.kind === 'finetune' && c.spec.model === 'micro:llama');
    expect(halved.perCell[i] / perCell[i]).toBeCloseTo(2, 6);
    expect(basis).toMatch(/^an estimate from one measured step per model on this backend \(micro:llama: \d+ train tokens\/s/);
    expect(basis).toMatch(/not measured, so from the micro model's speeds .*does not fit wasm/);
  });
});
