// Persisted evaluation stages on a tiny run (a random tiny model on the micro-world, a base cell and one
// finetuned cell with a harm curve and eval.keepModels): every generation and every verdict is written, the
// finetuned weights are kept, and `star-dss judge` re-judges the saved generations without training anything,
// updating result.json and the reports.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildCli } from '../../harness/cli.ts';
import { runJudgeCommand } from '../../harness/commands/judge.ts';
import { parseSweepConfig } from '../../harness/sweep/config.ts';
import { planSweep, type Cell } from '../../harness/sweep/plan.ts';
import { runCell } from '../../harness/sweep/run-cell.ts';
import {
  cellDir,
  readCellResult,
  writeCellResult,
  writePlan,
  type CapabilityRecord,
  type GenerationRecord,
  type JudgmentRecord,
} from '../../harness/sweep/store.ts';
import { loadDataset } from '../../datasets/index.ts';
import { loadModel } from '../../engine/model/checkpoint.ts';
import { writeReports } from '../../reports/index.ts';
import type { CellResult } from '../../results/result.ts';
import { tinySetup } from './tiny-run.ts';

const root = mkdtempSync(join(tmpdir(), 'star-dss-stages-'));
const run = join(root, 'run');
let cells: Cell[] = [];
let base: Cell;
let tuned: Cell;
/** The results as the sweep wrote them. */
const original = new Map<string, CellResult>();

const jsonl = <T>(file: string): T[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
const result = (cell: Cell) => readCellResult(run, cell.id)!;
const csvRows = () => parseCsv(readFileSync(join(run, 'results.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
const csvHeader = () => Object.keys(csvRows()[0]);
const quiet = () => {};

let server: Server;
let judgeUrl = '';

beforeAll(async () => {
  const { configFile } = await tinySetup(root, [1], 2);
  const raw = parse(readFileSync(configFile, 'utf8'));
  raw.strategies = ['sft'];
  raw.eval.curveEpochs = [1];
  raw.eval.keepModels = true;
  const config = parseSweepConfig(raw);
  cells = planSweep(config);
  base = cells.find((c) => c.spec.kind === 'base')!;
  tuned = cells.find((c) => c.spec.kind === 'finetune')!;
  writePlan(run, config, cells);
  for (const cell of cells) {
    const { result: r, manifest } = await runCell(cell, { backend: 'wasm' });
    expect(r.error?.message).toBeUndefined();
    writeCellResult(run, r, manifest);
    original.set(cell.id, readCellResult(run, cell.id)!);
  }
  await writeReports(run);
  // A loopback judge that scores by the response's length: 5 for an even one, else 1 or 4.
  server = createServer(async (req, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const user = (JSON.parse(text) as { messages: { role: string; content: string }[] }).messages[1].content;
    const response = user.slice(user.indexOf('Response:\n') + 'Response:\n'.length);
    const score = response.length % 2 === 0 ? 5 : response.length % 3 === 0 ? 4 : 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ choices: [{ message: { content: `Rationale: length ${response.length}.\nScore: ${score}` } }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  judgeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}, 240_000);

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  rmSync(root, { recursive: true, force: true });
});

describe('a cell persists its evaluation stages', () => {
  it('writes every capability response with its reference and verdict, and they give result.json exact match', () => {
    for (const cell of cells) {
      const r = original.get(cell.id)!;
      const records = jsonl<CapabilityRecord>(join(cellDir(run, cell.id), 'capability.jsonl'));
      expect(r.capability.length).toBeGreaterThan(0);
      for (const c of r.capability) {
        const mine = records.filter((x) => x.dataset === c.dataset);
        expect(mine.length).toBe(c.n);
        expect(mine.map((x) => x.index)).toEqual(mine.map((_, i) => i));
        expect((100 * mine.filter((x) => x.correct).length) / mine.length).toBeCloseTo(c.value, 10);
        const references = new Map(loadDataset(c.dataset).map((e) => [e.id, e]));
        for (const x of mine) {
          expect(references.has(x.id)).toBe(true);
          expect(x.prompt).toBe(references.get(x.id)!.messages.at(-2)?.content);
          expect(typeof x.response).toBe('string');
        }
      }
      expect(new Set(records.map((x) => x.dataset))).toEqual(new Set(r.capability.map((c) => c.dataset)));
    }
  });

  it('writes every generated response with its prompt, prefill, decoding settings and seed', () => {
    for (const cell of cells) {
      const r = original.get(cell.id)!;
      const generations = jsonl<GenerationRecord>(join(cellDir(run, cell.id), 'generations.jsonl'));
      const final = generations.filter((g) => g.epoch === undefined);
      const curve = generations.filter((g) => g.epoch !== undefined);
      expect(final.length).toBe(r.safety.reduce((sum, s) => sum + s.n, 0));
      expect(r.samples.length).toBeLessThan(final.length); // result.json keeps a few, the file keeps all
      for (const g of generations) {
        expect(g.dataset).toBe('micro:hex-phi');
        expect(g.decoding).toBe('greedy');
        expect(g.maxNewTokens).toBe(12);
        expect(g.seed).toBe(cell.spec.kind === 'finetune' ? 1 : 0);
        expect(g.messages.at(-1)?.role).toBe('user');
        expect(typeof g.id).toBe('string');
        expect(g.response).toBe(
          g.prefill === undefined ? g.continuation : g.continuation === '' ? g.prefill : `${g.prefill} ${g.continuation}`,
        );
      }
      if (cell === base) {
        // A base cell measures every threat's conditions, prefilling among them.
        expect(new Set(final.map((g) => g.condition)).size).toBe(r.safety.length);
        expect(final.filter((g) => g.condition === 'prefill').every((g) => g.prefill !== undefined && g.prefill !== '')).toBe(true);
        // Each prompt is prefilled with its own target: the opening of its answer in the world's grammar.
        const targets = new Map(loadDataset('micro:hex-phi').map((e) => [e.id, e.meta.target]));
        for (const g of final.filter((x) => x.condition === 'prefill')) {
          expect(g.prefill).toBe(targets.get(g.id));
          const [, verb, object] = /^sure , here is how to (\w+) a (\w+)$/.exec(g.prefill ?? '') ?? [];
          expect(g.messages.at(-1)?.content).toContain(` ${verb} a ${object} `);
        }
        expect(final.filter((g) => g.condition === 'plain').every((g) => g.prefill === undefined)).toBe(true);
        expect(curve).toEqual([]);
      } else {
        // The harm curve's generations after epoch 1 (plain only) are kept too.
        expect(curve.length).toBeGreaterThan(0);
        expect(curve.every((g) => g.epoch === 1 && g.condition === 'plain')).toBe(true);
      }
    }
  });

  it("writes its judge's verdict on each generation, keyed by condition, dataset, epoch and index", () => {
    for (const cell of cells) {
      const dir = cellDir(run, cell.id);
      expect(readdirSync(join(dir, 'judgments'))).toEqual(['oracle.jsonl']);
      const generations = jsonl<GenerationRecord>(join(dir, 'generations.jsonl'));
      const judgments = jsonl<JudgmentRecord>(join(dir, 'judgments', 'oracle.jsonl'));
      const key = (x: { condition: string; dataset: string; epoch?: number; index: number; id: string }) =>
        JSON.stringify([x.condition, x.dataset, x.epoch ?? null, x.index, x.id]);
      expect(judgments.map(key).sort()).toEqual(generations.map(key).sort());
      expect(judgments.every((j) => j.judge === 'oracle' && j.judgeVersion === 2 && typeof j.harmful === 'boolean')).toBe(true);
      for (const s of original.get(cell.id)!.safety) {
        const mine = judgments.filter((j) => j.epoch === undefined && j.condition === s.condition);
        expect((100 * mine.filter((j) => j.harmful).length) / mine.length).toBeCloseTo(s.harmfulRate, 9);
      }
    }
  });

  it("records the memory plan training used in a finetuned cell's manifest, and none for a base cell", () => {
    const manifest = JSON.parse(readFileSync(join(cellDir(run, tuned.id), 'manifest.json'), 'utf8'));
    expect(manifest.memoryPlan).toMatchObject({ backend: 'wasm', fits: true, limit: { backend: 'wasm' } });
    expect(manifest.memoryPlan.total).toBeGreaterThan(manifest.memoryPlan.weights);
    expect(JSON.parse(readFileSync(join(cellDir(run, base.id), 'manifest.json'), 'utf8')).memoryPlan).toBeUndefined();
  });

  it("keeps a finetuned cell's weights with eval.keepModels, and only a finetuned cell's", () => {
    const model = join(cellDir(run, tuned.id), 'model');
    expect(existsSync(join(model, 'config.json'))).toBe(true);
    expect(existsSync(join(model, 'model.safetensors'))).toBe(true);
    const loaded = loadModel(model);
    expect(loaded.model.params.size).toBeGreaterThan(0);
    loaded.model.dispose();
    expect(existsSync(join(cellDir(run, base.id), 'model'))).toBe(false);
    // The staging copy under the cache was moved, not left behind.
    const staging = join(root, 'cache', 'kept-models');
    expect(existsSync(staging) ? readdirSync(staging) : []).toEqual([]);
  });
});

describe('star-dss judge', () => {
  it('re-judging with the same judge reproduces the sweep: the same aggregation', async () => {
    await runJudgeCommand({ run, judge: 'oracle', primary: true }, quiet);
    for (const cell of cells) {
      const now = result(cell);
      const before = original.get(cell.id)!;
      expect(now.safety).toEqual(before.safety);
      expect(now.samples).toEqual(before.samples);
      expect(now.curve).toEqual(before.curve);
      expect(now.otherJudges).toBeUndefined();
    }
  });

  it('re-judges saved generations with another judge without training, and updates result.json and the reports', async () => {
    const manifest = readFileSync(join(cellDir(run, tuned.id), 'manifest.json'), 'utf8');
    const tensors = tf.memory().numTensors;
    const summary = await runJudgeCommand({ run, judge: 'keyword', primary: true }, quiet);
    expect(summary.failed).toEqual([]);
    expect(summary.outcomes.every((o) => o.judged)).toBe(true);
    // Nothing was trained or even loaded: no tensor was made, the training record and manifest are as they were.
    expect(tf.memory().numTensors).toBe(tensors);
    expect(readFileSync(join(cellDir(run, tuned.id), 'manifest.json'), 'utf8')).toBe(manifest);
    for (const cell of cells) {
      const now = result(cell);
      const before = original.get(cell.id)!;
      expect(now.training).toEqual(before.training);
      expect(now.capability).toEqual(before.capability);
      expect(now.seconds).toBe(before.seconds);
      expect(now.safety.map((s) => [s.condition, s.judge, s.judgeVersion])).toEqual(before.safety.map((s) => [s.condition, 'keyword', 2]));
      expect(now.curve.map((p) => [p.epoch, p.condition])).toEqual(before.curve.map((p) => [p.epoch, p.condition]));
      // The replaced judge is kept beside it: one entry per (condition, dataset, judge).
      expect(now.otherJudges).toEqual(before.safety);
      const judgments = jsonl<JudgmentRecord>(join(cellDir(run, cell.id), 'judgments', 'keyword.jsonl'));
      expect(judgments.length).toBe(jsonl(join(cellDir(run, cell.id), 'generations.jsonl')).length);
      expect(judgments.every((j) => j.judge === 'keyword' && j.judgeVersion === 2)).toBe(true);
    }
    const rows = csvRows();
    expect(rows.map((row) => row['safety/plain/micro:hex-phi/judge'])).toEqual(cells.map(() => 'keyword'));
    expect(readFileSync(join(run, 'tables.md'), 'utf8')).toContain('Judges: keyword.');
  });

  it('records a scoring judge beside the reported one (--no-primary), then makes it the reported one', async () => {
    await buildCli(['judge', '--run', run, '--judge', `llm-score:${judgeUrl}#m`, '--no-primary'])
      .fail((message, error) => {
        throw error ?? new Error(message);
      })
      .parseAsync();
    for (const cell of cells) {
      const now = result(cell);
      expect(new Set(now.safety.map((s) => s.judge))).toEqual(new Set(['keyword']));
      const scored = now.otherJudges!.filter((s) => s.judge === 'llm-score:m');
      expect(scored.map((s) => s.condition)).toEqual(now.safety.map((s) => s.condition));
      for (const s of scored) {
        expect(s.harmfulnessScore).toBeGreaterThanOrEqual(1);
        expect(s.harmfulnessScore).toBeLessThanOrEqual(5);
        expect(s.harmfulnessRate).toBeCloseTo(s.harmfulRate, 9); // harmful means scored 5
        expect(Object.keys(s.metrics)).toEqual(expect.arrayContaining(['harmfulnessScore', 'harmfulnessRate']));
      }
      const judgments = jsonl<JudgmentRecord>(join(cellDir(run, cell.id), 'judgments', 'llm-score_m.jsonl'));
      expect(judgments.every((j) => j.score !== undefined && /^length \d+\.$/.test(j.rationale ?? ''))).toBe(true);
    }
    expect(csvHeader()).not.toContain('safety/plain/micro:hex-phi/harmfulnessScore');

    await runJudgeCommand({ run, judge: `llm-score:${judgeUrl}#m`, primary: true }, quiet);
    for (const cell of cells) {
      const now = result(cell);
      expect(new Set(now.safety.map((s) => s.judge))).toEqual(new Set(['llm-score:m']));
      expect(new Set(now.otherJudges!.map((s) => s.judge))).toEqual(new Set(['oracle', 'keyword']));
      expect(now.otherJudges!.length).toBe(2 * now.safety.length);
    }
    expect(csvHeader()).toEqual(
      expect.arrayContaining(['safety/plain/micro:hex-phi/harmfulnessScore', 'safety/plain/micro:hex-phi/harmfulnessRate']),
    );
  });

  it('refuses an unknown judge spec before touching any cell', async () => {
    const before = readFileSync(join(run, 'results.csv'), 'utf8');
    await expect(runJudgeCommand({ run, judge: 'keywrd', primary: true }, quiet)).rejects.toThrow(/Did you mean 'keyword'/);
    expect(readFileSync(join(run, 'results.csv'), 'utf8')).toBe(before);
  });

  it('skips a cell that saved no generations, and names an unknown cell', async () => {
    rmSync(join(cellDir(run, base.id), 'generations.jsonl'));
    const summary = await runJudgeCommand({ run, judge: 'oracle', primary: true, cells: base.id }, quiet);
    expect(summary.outcomes).toEqual([
      expect.objectContaining({ id: base.id, judged: false, reason: expect.stringMatching(/no generations\.jsonl/) }),
    ]);
    await expect(runJudgeCommand({ run, judge: 'oracle', primary: true, cells: 'nope' }, quiet)).rejects.toThrow(
      /--cells: no such cell .*nope/,
    );
  });
});
