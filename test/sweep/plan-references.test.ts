// References of a sweep: a cell id covers the CONTENT of every file it reads (so resume never reuses a cell
// whose data changed), and the dry run resolves every reference as a real run would, reporting every problem
// at once, one line each, before anything trains.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSweepCommand, type SweepArgs } from '../../harness/commands/sweep.ts';
import { loadSweepConfig, parseSweepConfig, presetFile } from '../../harness/sweep/config.ts';
import { estimateCells } from '../../harness/sweep/estimate.ts';
import { planSweep } from '../../harness/sweep/plan.ts';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'plan-refs-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, text: string | Uint8Array) => {
  const path = join(dir, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
};
const chat = (n: number, word: string) =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      messages: [
        { role: 'user', content: `ticket ${i} ${word}` },
        { role: 'assistant', content: `answer ${i}` },
      ],
    }),
  ).join('\n') + '\n';
/** A checkpoint directory in Hugging Face layout (the bytes need not be a real model to be hashed or checked). */
const checkpoint = (name: string, weights: Uint8Array) => {
  write(`${name}/config.json`, JSON.stringify({ model_type: 'llama' }));
  write(`${name}/tokenizer.json`, '{}');
  write(`${name}/model.safetensors`, weights);
  return join(dir, name);
};
const base = { threats: ['benign'], strategies: ['sft'] };
const finetuneIds = (cells: ReturnType<typeof planSweep>) => cells.filter((c) => c.spec.kind === 'finetune').map((c) => c.id);

describe('cell ids hash the content of the files a cell reads', () => {
  it('a task file changed in place changes the ids of the cells that train on it, and only those', () => {
    const task = write('task.jsonl', chat(20, 'alpha'));
    const config = parseSweepConfig({ ...base, tasks: [task] });
    const before = planSweep(config);
    write('task.jsonl', chat(20, 'beta')); // same path, new content
    const after = planSweep(config);
    expect(after[0].id).toBe(before[0].id); // the base cell reads no task
    expect(finetuneIds(after)).not.toEqual(finetuneIds(before));
    write('task.jsonl', chat(20, 'alpha'));
    expect(planSweep(config).map((c) => c.id)).toEqual(before.map((c) => c.id)); // content, not time
  });

  it('an eval set changed in place changes every cell, the base cell too', () => {
    const safety = write('advbench.csv', 'goal,target\nWrite a poem,Sure\n');
    const config = parseSweepConfig({ ...base, eval: { safety: [safety] } });
    const before = planSweep(config).map((c) => c.id);
    write('advbench.csv', 'goal,target\nWrite a song,Sure\n');
    const after = planSweep(config).map((c) => c.id);
    expect(after.filter((id) => before.includes(id))).toEqual([]);
  });

  it('a checkpoint directory whose weights changed (same size, same names) gets new ids', () => {
    const model = checkpoint('model', new Uint8Array(4096).fill(1));
    const config = parseSweepConfig({ ...base, models: [model] });
    const before = planSweep(config).map((c) => c.id);
    checkpoint('model', new Uint8Array(4096).fill(2));
    expect(
      planSweep(config)
        .map((c) => c.id)
        .filter((id) => before.includes(id)),
    ).toEqual([]);
  });

  it('a path that does not exist fails the plan in one line naming the field and the path', () => {
    const config = parseSweepConfig({ ...base, tasks: [join(dir, 'nope.jsonl')] });
    expect(() => planSweep(config)).toThrow(/^field 'tasks\[0\]': '.*nope\.jsonl' does not exist\. Fix: .*$/);
  });

  it('micro-world configs keep their ids (the micro: name, the world seed and the world version identify the data)', () => {
    // Pinned again when the world (11) and base-model (3) versions moved, the micro guardrail's (4: compliance
    // judged in context), and the base cell's conditions changed (prefill from each item's target, 100 AOA
    // items, the texts its threats read).
    expect(planSweep(loadSweepConfig(presetFile('smoke'))).map((c) => c.id)).toEqual(['cf6009aad78a', '41af10024792', '0ed121defdec']);
  });
});

describe('the dry run resolves every reference', () => {
  const args = (config: string): SweepArgs => ({
    config,
    preset: 'quick',
    out: join(dir, 'run'),
    workers: 1,
    shard: undefined,
    dryRun: true,
    quiet: true,
    retryFailed: false,
  });

  it('reports every broken reference at once, one line each, and runs nothing', async () => {
    const badUtf8 = write('latin1.jsonl', Buffer.from('{"question": "caf\xe9", "answer": "1"}\n', 'latin1'));
    const noConfig = join(dir, 'empty-model');
    mkdirSync(noConfig, { recursive: true });
    const file = write(
      'broken.yaml',
      [
        'name: broken',
        `models: [micro:lama, ${noConfig}]`,
        'tasks: [micro:tiket]',
        `harmful: [${join(dir, 'missing-harmful.jsonl')}]`,
        `safe: ${badUtf8}`,
        'threats: [benign]',
        'strategies: [star-dss]',
        `guardrails: [granite-guardian-3:${join(dir, 'no-guard')}, micr]`,
        `eval: { safety: [${join(dir, 'missing.csv')}], capability: [micro:gsm8k-test], judge: orcale }`,
      ].join('\n'),
    );
    const printed: string[] = [];
    const error = await runSweepCommand(args(file), (l) => printed.push(l)).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error, `the dry run passed and printed:\n${printed.join('\n')}`).toBeInstanceOf(Error);
    const lines = error!.message.split('\n').slice(1);
    const expected = [
      /field 'models\[0\]': .*'micro:lama'.*Did you mean 'micro:llama'\?/,
      /field 'models\[1\]': .*empty-model.*config\.json/,
      /field 'tasks\[0\]': .*'micro:tiket'.*Did you mean 'micro:ticket'\?/,
      /field 'harmful\[0\]': '.*missing-harmful\.jsonl' does not exist\. Fix: /,
      /field 'safe': .*latin1\.jsonl, line 1: invalid UTF-8 at byte offset 17\. Fix: .*iconv/,
      /field 'guardrails\[0\]': .*no-guard.* does not exist/,
      /field 'guardrails\[1\]': .*Did you mean 'micro'\?/,
      /field 'eval\.safety\[0\]': '.*missing\.csv' does not exist/,
      /field 'eval\.judge': .*Did you mean 'oracle'\?/,
    ];
    for (const pattern of expected)
      expect(
        lines.some((l) => pattern.test(l)),
        `${pattern} in\n${error!.message}`,
      ).toBe(true);
    expect(lines).toHaveLength(expected.length);
    for (const line of lines) expect(line).toContain(file);
    expect(printed.filter((l) => /estimated/.test(l))).toEqual([]);
  });

  it('a config whose files all resolve passes, and its estimate counts their items', async () => {
    const task = write('ok/task.jsonl', chat(30, 'gamma'));
    const file = write('ok.yaml', ['name: ok', `tasks: [${task}]`, 'threats: [benign]', 'strategies: [sft]'].join('\n'));
    const printed: string[] = [];
    await runSweepCommand(args(file), (l) => printed.push(l));
    expect(printed.at(-1)).toMatch(/^2 cells; estimated/);
  });

  it('the estimate no longer counts a file it cannot load as empty', () => {
    const task = write('gone/task.jsonl', chat(30, 'delta'));
    const cells = planSweep(parseSweepConfig({ ...base, tasks: [task] }));
    rmSync(task);
    expect(() => estimateCells(cells)).toThrow(/task\.jsonl/);
  });
});
