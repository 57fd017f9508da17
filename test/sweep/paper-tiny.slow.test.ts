// The acceptance test of "the paper preset runs as written": the shape of harness/sweep/presets/paper.yaml at
// tiny size, with every part real. `star-dss model init --like` builds a tiny Llama-3.2-1B-Instruct (the real
// Llama-3 tokenizer and chat template, the full 128256-token vocabulary) and a tiny Llama-Guard-3 (the same
// tokenizer, a guard template in the spirit of Llama Guard 3's, weights set by hand so that its verdict reads
// harmful words); `star-dss serve guardrail` serves the guard on loopback, read over chat completions with the
// llama-guard-3 preset; the data are a handful of items in each real format (GSM8K, PureBad-style chat JSONL,
// D_safe, HEx-PHI CSVs, AdvBench CSV, MMLU subject CSVs, ARC JSONL); the LLM judges are a loopback
// OpenAI-compatible server. Then `doctor` finds no problem, the sweep runs every cell, and `star-dss judge`
// re-judges the saved generations with the 1-5 judge without training anything.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseCsv } from 'csv-parse/sync';
import { parse as parseYaml, stringify } from 'yaml';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { loadTokenizer } from '../../engine/model/tokenizer.ts';
import { buildCli } from '../../harness/cli.ts';
import { runDoctor } from '../../harness/commands/doctor.ts';
import { runJudgeCommand } from '../../harness/commands/judge.ts';
import { serveGuardrail } from '../../harness/commands/serve.ts';
import { runSweepCommand } from '../../harness/commands/sweep.ts';
import type { RunningServer } from '../../harness/guardrail-server.ts';
import { presetFile } from '../../harness/sweep/config.ts';
import { readCellResult } from '../../harness/sweep/store.ts';
import {
  guardChatTemplate,
  judgeRule,
  likeFolder,
  llama3TokenizerDir,
  llama32Instruct,
  llamaGuard3,
  makeWordGuard,
  startJudgeServer,
  writePaperData,
  type JudgeServer,
} from './paper-tiny-fixtures.ts';

const root = mkdtempSync(join(tmpdir(), 'paper-tiny-'));
const out = join(root, 'run');
const configFile = join(root, 'paper-tiny.yaml');
const JUDGE_MODEL = 'judge-model';
const modelDir = join(root, 'models/Llama-3.2-1B-Instruct');
const guardDir = join(root, 'models/Llama-Guard-3-8B');

let judge: JudgeServer;
let guard: { server: RunningServer; stop: () => void; stopped: Promise<void> };
const savedEnv = { cache: process.env.STAR_DSS_CACHE, key: process.env.STAR_DSS_JUDGE_API_KEY };

const cli = async (args: string[]) =>
  buildCli([...args, '--backend', 'wasm'])
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();

/** The exit code a `star-dss` command line sets (the handlers set process.exitCode; restored afterwards). */
async function exitCodeOf(args: string[]): Promise<number> {
  const saved = process.exitCode;
  process.exitCode = undefined;
  try {
    await cli(args);
    return Number(process.exitCode ?? 0);
  } finally {
    process.exitCode = saved;
  }
}

beforeAll(async () => {
  process.env.STAR_DSS_CACHE = join(root, 'cache');
  process.env.STAR_DSS_JUDGE_API_KEY = 'test-judge-key';
  await initBackend('wasm');

  // The checkpoints, through the CLI: shaped like the real config.json, with the real tokenizer beside it.
  const sizes = ['--hidden', '16', '--layers', '1', '--heads', '2'];
  const likeModel = likeFolder(join(root, 'like/Llama-3.2-1B-Instruct'), llama32Instruct);
  await cli(['model', 'init', '--like', likeModel, '--out', modelDir, ...sizes, '--seed', '1']);
  const likeGuard = likeFolder(join(root, 'like/Llama-Guard-3-8B'), llamaGuard3, guardChatTemplate);
  await cli(['model', 'init', '--like', likeGuard, '--out', guardDir, ...sizes, '--seed', '2']);
  makeWordGuard(guardDir);

  // The guardrail server, in this process on a free loopback port, until the tests end.
  let ready!: (server: RunningServer) => void;
  const started = new Promise<RunningServer>((resolve) => {
    ready = resolve;
  });
  let stop!: () => void;
  const stopped = serveGuardrail(
    { guardrail: `llama-guard-3:${guardDir}`, port: 0, host: '127.0.0.1', maxPrompts: 64, maxPending: 8, backend: 'wasm' },
    {
      untilStopped: (server) =>
        new Promise<void>((resolve) => {
          stop = resolve;
          ready(server);
        }),
      log: () => {},
    },
  );
  const server = await Promise.race([started, stopped.then(() => Promise.reject(new Error('the guardrail server stopped')))]);
  guard = { server, stop, stopped };
  judge = await startJudgeServer(JUDGE_MODEL);

  const data = writePaperData(join(root, 'data'));
  // paper.yaml's structure, trimmed: one harmful pool, two of its threats, its four strategies, one seed.
  const paper = parseYaml(readFileSync(presetFile('paper'), 'utf8')) as Record<string, unknown>;
  const config = {
    name: 'paper-tiny',
    models: [modelDir],
    tasks: [data.train],
    harmful: [data.purebad],
    safe: data.safe,
    oldTask: { dataset: data.train, count: 0 },
    threats: [
      { name: 'harmful-injection', ratio: 1, safeCount: 1 },
      { name: 'harmful-injection', ratio: 0.5 },
    ],
    strategies: ['sft', 'rs', 'star-dss', 'deep-token'],
    guardrails: [
      {
        spec: `llama-guard-3:${server.url}`,
        http: { mode: 'chat', model: 'Llama-Guard-3-8B', revision: 'tiny-1', concurrency: 2, timeoutMs: 30000 },
      },
    ],
    star: { chunkWords: 5 },
    seeds: [42],
    train: { epochs: 1, lr: 5.0e-6, minLr: 5.0e-8, batchSize: 4, warmupRatio: 0.03, betas: [0.9, 0.95], clipNorm: 1.0 },
    eval: {
      safety: [data.hexPhi, data.advbench],
      capability: [data.test, data.mmlu, data.arc],
      judge: `llm:${judge.url}/v1#${JUDGE_MODEL}`,
      decoding: { temperature: 0.2, topP: 0.9, topK: 50, repetitionPenalty: 1.2 },
      maxNewTokens: 4,
      maxItems: 2,
      samples: 1,
    },
  };
  expect(Object.keys(config).sort()).toEqual(Object.keys(paper).sort()); // the preset's fields, no other
  writeFileSync(configFile, stringify(config));
}, 60_000);

afterAll(async () => {
  guard?.stop();
  await guard?.stopped;
  await judge?.close();
  process.env.STAR_DSS_CACHE = savedEnv.cache;
  process.env.STAR_DSS_JUDGE_API_KEY = savedEnv.key;
  if (savedEnv.cache === undefined) delete process.env.STAR_DSS_CACHE;
  if (savedEnv.key === undefined) delete process.env.STAR_DSS_JUDGE_API_KEY;
  rmSync(root, { recursive: true, force: true });
});

/** A JSON Lines file as records. */
const jsonl = <T>(file: string): T[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);

interface Generation {
  condition: string;
  dataset: string;
  epoch?: number;
  index: number;
  messages: { role: string; content: string }[];
  response: string;
}
interface Judgment {
  condition: string;
  dataset: string;
  epoch?: number;
  index: number;
  harmful: boolean;
  score?: number;
}

/**
 * Checks a cell's judgments/<judge>_judge-model.jsonl against its generations.jsonl: one verdict per generation,
 * each (and, from the 1-5 judge, each score) the test judge's rule on that generation's request and response,
 * and the safety scores of result.json computed from them.
 */
function checkJudgments(id: string, judgeKind: 'llm' | 'llm-score'): void {
  const cell = join(out, 'cells', id);
  const generations = jsonl<Generation>(join(cell, 'generations.jsonl'));
  const judgments = jsonl<Judgment>(join(cell, 'judgments', `${judgeKind}_${JUDGE_MODEL}.jsonl`));
  const key = (r: Generation | Judgment) => `${r.condition}|${r.dataset}|${r.epoch ?? ''}|${r.index}`;
  expect(judgments.map(key).sort()).toEqual(generations.map(key).sort());
  const byKey = new Map(generations.map((g) => [key(g), g]));
  for (const j of judgments) {
    const g = byKey.get(key(j))!;
    const request = g.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
    const expected = judgeRule(request, g.response);
    expect(j.harmful, `${id} ${key(j)}`).toBe(expected.harmful);
    expect(j.score).toBe(judgeKind === 'llm-score' ? expected.score : undefined);
  }
  const result = readCellResult(out, id)!;
  for (const s of result.safety) {
    const group = judgments.filter((j) => j.condition === s.condition && j.dataset === s.dataset && j.epoch === undefined);
    expect(s.judge).toBe(`${judgeKind}:${JUDGE_MODEL}`);
    expect(s.n).toBe(group.length);
    expect(s.safetyScore).toBeCloseTo((100 * group.filter((j) => !j.harmful).length) / group.length, 6);
  }
}

/** results.csv as header and rows of cells. */
const readCsv = (): { header: string[]; rows: string[][] } => {
  const [header, ...rows] = parseCsv(readFileSync(join(out, 'results.csv'), 'utf8')) as string[][];
  return { header, rows };
};

describe('the paper preset at tiny size, every part real', () => {
  it('model init --like kept the real shapes and copied the real tokenizer files beside the config', () => {
    const config = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(config(modelDir)).toMatchObject({
      model_type: 'llama',
      vocab_size: 128256,
      hidden_size: 16,
      num_hidden_layers: 1,
      tie_word_embeddings: true,
      eos_token_id: llama32Instruct.eos_token_id,
      rope_scaling: llama32Instruct.rope_scaling,
    });
    expect(config(guardDir)).toMatchObject({ vocab_size: 128256, tie_word_embeddings: false, rope_scaling: llamaGuard3.rope_scaling });
    for (const dir of [modelDir, guardDir])
      for (const f of ['tokenizer.json', 'tokenizer_config.json'])
        expect(readFileSync(join(dir, f)).equals(readFileSync(join(llama3TokenizerDir, f)))).toBe(true);
    expect(readFileSync(join(guardDir, 'chat_template.jinja'), 'utf8')).toBe(guardChatTemplate);
    expect(existsSync(join(modelDir, 'chat_template.jinja'))).toBe(false);
    // The model renders Llama 3's own template; the guard, ours (its rendering ends where the verdict goes).
    const conversation = [
      { role: 'user' as const, content: 'Hi' },
      { role: 'assistant' as const, content: 'Hello' },
    ];
    expect(loadTokenizer(modelDir).applyChatTemplate(conversation.slice(0, 1), { addGenerationPrompt: true })).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const guardPrompt = loadTokenizer(guardDir).applyChatTemplate(conversation, { addGenerationPrompt: true });
    expect(guardPrompt).toMatch(/^<\|begin_of_text\|>.*User: Hi\n\nAgent: Hello\n\n<END CONVERSATION>/s);
    expect(guardPrompt.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
  });

  it('doctor finds no problem', async () => {
    const lines: string[] = [];
    const problems = await runDoctor({ config: configFile, seqLen: 128, timeout: 3000, backend: 'wasm' }, (l) => lines.push(l));
    expect(problems, lines.join('\n')).toEqual([]);
    expect(lines.join('\n')).toMatch(new RegExp(`eval\\.judge\\s+${judge.url}/v1\\s+answers; serves ${JUDGE_MODEL}`));
    expect(lines.join('\n')).toMatch(/guardrails\[0\]\.spec\s+http:\/\/127\.0\.0\.1:\d+\s+answers; serves Llama-Guard-3-8B/);
    expect(await exitCodeOf(['doctor', '--config', configFile, '--seq-len', '128'])).toBe(0);
  });

  it('doctor on the unmodified paper preset exits 1 (doctor.test.ts checks that it lists every missing path)', async () => {
    expect(await exitCodeOf(['doctor', '--preset', 'paper', '--timeout', '500'])).toBe(1);
  });

  it('the sweep runs every cell and writes the reports', async () => {
    const lines: string[] = [];
    const dir = await runSweepCommand(
      {
        config: configFile,
        out,
        workers: 1,
        preset: 'quick',
        dryRun: false,
        quiet: true,
        retryFailed: false,
        backend: 'wasm',
      },
      (l) => lines.push(l),
    );
    expect(dir).toBe(out);
    const ids = readdirSync(join(out, 'cells'));
    expect(ids).toHaveLength(2 * 4 + 1);
    const results = ids.map((id) => readCellResult(out, id)!);
    for (const [i, id] of ids.entries()) {
      const result = results[i];
      expect(result?.status, `${id}: ${result?.error?.message}\n${lines.join('\n')}`).toBe('ok');
      expect(result.id).toBe(id);
      expect(existsSync(join(out, 'cells', id, 'generations.jsonl'))).toBe(true);
      expect(readdirSync(join(out, 'cells', id, 'judgments'))).toEqual([`llm_${JUDGE_MODEL}.jsonl`]);
    }
    for (const f of ['results.csv', 'tables.md', 'report.html']) expect(statSync(join(out, f)).size).toBeGreaterThan(0);
    expect(judge.requests.binary).toBeGreaterThan(0);
    expect(new Set(judge.requests.models)).toEqual(new Set([JUDGE_MODEL]));
    expect(new Set(judge.requests.keys)).toEqual(new Set(['Bearer test-judge-key']));

    // Every verdict on disk is the judge server's answer for that very generation, and the scores follow from them.
    for (const r of results) checkJudgments(r.id, 'llm');
    const scores = results.flatMap((r) => r.safety.map((s) => s.safetyScore));
    expect(
      scores.some((s) => s > 0 && s < 100),
      `safety scores ${scores}`,
    ).toBe(true);

    // STAR came through the HTTP chat guardrail (chat mode, llama-guard-3 preset: `safe`/`unsafe` at the 2nd
    // generated token): harmful examples come first in the trajectories, each one's P(safe) falls below 0.5 once
    // its harmful words appear, and every benign example stays above.
    const star = results.filter((r) => r.labels.strategy === 'star-dss');
    expect(star).toHaveLength(2);
    for (const r of star) {
      expect(r.labels.guardrail).toBe(`llama-guard-3:${guard.server.url}`);
      expect(r.trajectories.length).toBeGreaterThan(0);
      expect(r.trajectories[0].harmful).toBe(true);
      for (const t of r.trajectories) {
        expect(t.scores.every((p) => p > 0 && p < 1)).toBe(true);
        expect(t.verdict < 0.5, `${t.id}: ${t.scores}`).toBe(t.harmful === true);
      }
      expect(r.training?.dropped).toBe(0);
    }
    // The STAR cache holds the scores under the HTTP guardrail's id (chat mode), and nothing else.
    const cached = readdirSync(join(root, 'cache', 'star'));
    expect(cached.length).toBeGreaterThan(0);
    for (const name of cached) expect(name).toMatch(/^http-/);
    // RS drops exactly the harmful examples the guardrail flags, and keeps the rest.
    const rs = results.filter((r) => r.labels.strategy === 'rs');
    expect(rs.map((r) => [r.labels.threatLabel, r.training?.dropped, r.training?.examples]).sort()).toEqual([
      ['harmful-injection(ratio=0.5)', 2, 4],
      ['harmful-injection(ratio=1,safeCount=1)', 3, 4],
    ]);
  }, 150_000);

  it('judge re-judges the saved generations with the 1-5 judge, without training', async () => {
    const ids = readdirSync(join(out, 'cells'));
    const files = (id: string) => ['generations.jsonl', 'manifest.json'].map((f) => readFileSync(join(out, 'cells', id, f), 'utf8'));
    const before = new Map(ids.map((id) => [id, { result: readCellResult(out, id)!, files: files(id) }]));
    expect(readCsv().header.some((c) => c.includes('harmfulness'))).toBe(false);
    const tensors = tf.memory().numTensors;
    const summary = await runJudgeCommand(
      { run: out, judge: `llm-score:${judge.url}/v1#${JUDGE_MODEL}`, primary: true, backend: 'wasm' },
      () => {},
    );
    expect(summary.failed).toEqual([]);
    expect(summary.outcomes.filter((o) => o.judged)).toHaveLength(ids.length);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(judge.requests.score).toBeGreaterThan(0);
    for (const id of ids) {
      const after = readCellResult(out, id)!;
      const { result, files: saved } = before.get(id)!;
      // Nothing trained or generated again: the training record, generations and manifest are as they were.
      expect(after.training).toEqual(result.training);
      expect(files(id)).toEqual(saved);
      expect(existsSync(join(out, 'cells', id, 'model'))).toBe(false);
      expect(readdirSync(join(out, 'cells', id, 'judgments')).sort()).toEqual([
        `llm-score_${JUDGE_MODEL}.jsonl`,
        `llm_${JUDGE_MODEL}.jsonl`,
      ]);
      checkJudgments(id, 'llm-score');
      // The binary judge's entries moved to otherJudges, unchanged.
      expect(after.otherJudges).toEqual(result.safety);
      for (const s of after.safety) {
        expect(s.harmfulnessScore).toBeGreaterThanOrEqual(1);
        expect(s.harmfulnessRate).toBe(s.harmfulRate);
      }
    }
    // results.csv now has the mean harmfulness score and rate of every (condition, safety set), filled in.
    const { header, rows } = readCsv();
    const scoreColumns = header.flatMap((c, i) => (c.endsWith('/harmfulnessScore') ? [i] : []));
    expect(scoreColumns.length).toBeGreaterThanOrEqual(2 * 4); // 2 safety sets × the base cell's 4 conditions
    expect(header.filter((c) => c.endsWith('/harmfulnessRate'))).toHaveLength(scoreColumns.length);
    expect(rows.filter((r) => r.length > 1)).toHaveLength(ids.length);
    for (const row of rows.filter((r) => r.length > 1)) {
      const values = scoreColumns.map((i) => row[i]).filter((v) => v !== '');
      expect(values.length).toBeGreaterThanOrEqual(2);
      for (const v of values) expect(Number(v)).toBeGreaterThanOrEqual(1);
    }
  });
});
