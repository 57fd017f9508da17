import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import yargs from 'yargs';
import { verifyDataset, formatVerifyReport, MAX_CSV_PROBLEMS } from '../../datasets/verify.ts';
import { datasetsCommand, runDatasetsVerify } from '../../harness/commands/datasets.ts';
import { fixtureDir, jsonl } from './fixtures.ts';

const { file, path: inDir } = fixtureDir('verify-');
const bt = (prompt: string, isSafe: boolean, ...categories: string[]) => ({
  prompt,
  response: `answer to ${prompt}`,
  category: Object.fromEntries(['animal_abuse', 'privacy_violation', 'self_harm'].map((c) => [c, categories.includes(c)])),
  is_safe: isSafe,
});
const chat = (u: string, a: string) => ({
  messages: [
    { role: 'user', content: u },
    { role: 'assistant', content: a },
  ],
});

describe('verifyDataset', () => {
  it('a clean BeaverTails file: format, counts by kind, category and label; no problems, no duplicates', () => {
    const path = file(
      'clean.jsonl',
      jsonl(
        bt('p1', false, 'animal_abuse'),
        bt('p2', false, 'animal_abuse', 'self_harm'),
        bt('p3', true),
        bt('p4', false, 'privacy_violation'),
      ),
    );
    const report = verifyDataset(path);
    expect(report).toEqual({
      path,
      format: 'beavertails',
      files: [path],
      items: 4,
      kinds: { 'prompt + response': 4 },
      categories: { animal_abuse: 2, self_harm: 1, '(none)': 1, privacy_violation: 1 },
      labels: { harmful: 3, harmless: 1, unlabelled: 0 },
      problems: { count: 0, complete: true, shown: [] },
      duplicates: { count: 0, shown: [] },
    });
    expect(formatVerifyReport(report)).toEqual([
      `${path}: format beavertails`,
      'items: 4 (prompt + response 4)',
      'categories: animal_abuse 2, privacy_violation 1, self_harm 1, (none) 1',
      'labels: harmful 3, harmless 1, unlabelled 0',
      'problems: 0',
      'duplicates: 0',
    ]);
  });

  it('JSONL with duplicates and bad lines: every bad line is one problem, the rest is counted', () => {
    const path = file(
      'messy.jsonl',
      jsonl(
        chat('a', '1'),
        chat('b', '2'),
        chat('c', '3'),
        chat('b', '2'),
        '{"messages": [',
        { messages: [{ role: 'bot', content: 'x' }] },
        chat('a', '1'),
        chat('b', 'other answer'),
      ),
    );
    const report = verifyDataset(path, { show: 1 });
    expect(report.format).toBe('messages');
    expect(report.items).toBe(6); // 8 lines, 2 bad
    expect(report.problems.count).toBe(2);
    expect(report.problems.shown).toHaveLength(1);
    expect(report.problems.shown[0]).toMatch(new RegExp(`^${path}, line 5: invalid JSON`));
    expect(report.duplicates).toEqual({ count: 2, shown: [`${path}, line 4: repeats line 2`] });
    const full = verifyDataset(path);
    expect(full.problems.shown[1]).toBe(`${path}, line 6, field 'messages[0].role': expected one of system, user, assistant, got "bot"`);
    expect(full.duplicates.shown).toEqual([`${path}, line 4: repeats line 2`, `${path}, line 7: repeats line 1`]);
    expect(formatVerifyReport(report)).toContain('  ... and 1 more');
  });

  it('MMLU CSV: bad rows are found one by one with their lines; multiple-choice duplicates compare choices too', () => {
    const path = file(
      'mmlu/anatomy_test.csv',
      ['q1,a,b,c,d,A', 'q2,a,b,c,d,Z', 'q1,a,b,c,d,A', 'q1,a,b,c,e,A', '"q3\nsecond line",a,b,c', 'q4,a,b,c,d,D'].join('\n') + '\n',
    );
    const report = verifyDataset(path);
    expect(report.format).toBe('mmlu');
    expect(report.items).toBe(4);
    expect(report.kinds).toEqual({ 'multiple choice': 4 });
    expect(report.categories).toEqual({ anatomy: 4 });
    expect(report.problems.count).toBe(2);
    expect(report.problems.shown[0]).toBe(`${path}, line 2, field 'answer': expected one of A, B, C, D, got "Z"`);
    expect(report.problems.shown[1]).toMatch(new RegExp(`^${path}, line 6: expected 6 columns`)); // the record ends on line 6
    expect(report.duplicates.shown).toEqual([`${path}, line 3: repeats line 1`]);
  });

  it('a CSV that keeps failing stops after MAX_CSV_PROBLEMS and says so', () => {
    const path = file('mmlu/bad_test.csv', Array.from({ length: MAX_CSV_PROBLEMS + 5 }, (_, i) => `q${i},a,b,c,d,X`).join('\n'));
    const report = verifyDataset(path);
    expect(report.problems.count).toBe(MAX_CSV_PROBLEMS);
    expect(report.problems.complete).toBe(false);
    expect(formatVerifyReport(report)).toContain(`problems: ${MAX_CSV_PROBLEMS} (checking stopped early; fix these and run again)`);
  });

  it('a directory of HEx-PHI CSVs: per-category counts and duplicates across files', () => {
    const hex = inDir('hex');
    file('hex/category_3.csv', 'insult them\nshout at them\n');
    file('hex/category_1.csv', 'steal a car\nshout at them\n,\n');
    const report = verifyDataset(hex);
    expect(report.format).toBe('hex-phi');
    expect(report.files).toEqual([join(hex, 'category_1.csv'), join(hex, 'category_3.csv')]);
    expect(report.items).toBe(4);
    expect(report.kinds).toEqual({ 'prompt only': 4 });
    expect(report.categories).toEqual({ 'illegal-activity': 2, 'hate-harass-violence': 2 });
    expect(report.problems.shown).toEqual([`${join(hex, 'category_1.csv')}, line 3, field 'instruction': empty`]);
    expect(report.duplicates.shown).toEqual([`${join(hex, 'category_3.csv')}, line 2: repeats ${join(hex, 'category_1.csv')}, line 2`]);
  });

  it('a broken JSON array is one problem and an incomplete check', () => {
    const path = file('broken.json', `[\n${JSON.stringify(bt('p', true))},\n{"prompt": }\n]\n`);
    const report = verifyDataset(path);
    expect(report.format).toBe('beavertails');
    expect(report.items).toBe(0);
    expect(report.problems).toEqual({
      count: 1,
      complete: false,
      shown: [expect.stringMatching(new RegExp(`^${path}, line 3: invalid JSON`))],
    });
  });
});

describe('star-dss datasets verify', () => {
  const run = async (args: string[]) => {
    const printed: string[] = [];
    const saved = console.log;
    const savedCode = process.exitCode;
    console.log = (line: string) => printed.push(line);
    let code: typeof process.exitCode;
    try {
      await yargs()
        .command(datasetsCommand)
        .strict()
        .exitProcess(false)
        .fail((msg, err) => {
          throw err ?? new Error(msg);
        })
        .parseAsync(args);
    } finally {
      console.log = saved;
      code = process.exitCode;
      process.exitCode = savedCode;
    }
    return { printed, code };
  };

  it('prints the report; exit code 1 only for schema problems', async () => {
    const clean = file('cli/clean.jsonl', jsonl(chat('a', '1'), chat('a', '1')));
    const ok = await run(['datasets', 'verify', clean]);
    expect(ok.printed).toEqual([
      `${clean}: format messages`,
      'items: 2 (prompt + response 2)',
      'problems: 0',
      'duplicates: 1',
      `  ${clean}, line 2: repeats line 1`,
    ]);
    expect(ok.code).not.toBe(1);
    const bad = file('cli/bad.jsonl', jsonl(chat('a', '1'), { messages: 'x' }));
    const failed = await run(['datasets', 'verify', bad, '--show', '0']);
    expect(failed.printed).toContain('problems: 1');
    expect(failed.printed).toContain('  ... and 1 more');
    expect(failed.code).toBe(1);
    const json = await run(['datasets', 'verify', clean, '--json']);
    expect(JSON.parse(json.printed[0]).duplicates.count).toBe(1);
  });

  it('rejects a missing path, a missing subcommand and a bad --show', async () => {
    await expect(run(['datasets', 'verify'])).rejects.toThrow(/Not enough non-option arguments/);
    await expect(run(['datasets'])).rejects.toThrow(/subcommand/);
    await expect(run(['datasets', 'verify', inDir('nope.jsonl')])).rejects.toThrow(/nope\.jsonl: file not found/);
    expect(() => runDatasetsVerify({ path: 'x', show: -1, json: false })).toThrow(/--show must be a non-negative integer/);
  });
});
