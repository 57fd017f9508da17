import { describe, it, expect } from 'vitest';
import { expectFormatError, fixtureDir } from './fixtures.ts';
import { loadAdvbenchCsv } from '../../datasets/formats/advbench-csv.ts';
import { loadGsm8kJsonl } from '../../datasets/formats/gsm8k-jsonl.ts';
import { loadHexPhi } from '../../datasets/formats/hex-phi-csv.ts';
import { loadMessagesJsonl } from '../../datasets/formats/messages-jsonl.ts';
import { detectFormat, loadDataset, loadFile, UnknownDatasetError } from '../../datasets/index.ts';

const { file, path: inDir } = fixtureDir('formats-');

describe('GSM8K JSONL', () => {
  it('reads the real layout: multi-line answers, calculator annotations, thousands separators', () => {
    const path = file(
      'gsm8k/test.jsonl',
      [
        JSON.stringify({
          question: 'A farm has 12 cows and buys 30 more. How many cows?',
          answer: 'It has 12+30 = <<12+30=42>>42 cows.\n#### 42',
        }),
        JSON.stringify({
          question: 'A shop sells 1,000 pens a day for 2 days. How many pens?',
          answer: '1,000*2 = <<1000*2=2000>>2000\n#### 2,000',
        }),
        '',
      ].join('\n'),
    );
    const examples = loadGsm8kJsonl(path);
    expect(examples.map((e) => e.meta.answer)).toEqual(['42', '2000']);
    expect(examples[0].messages).toEqual([
      { role: 'user', content: 'A farm has 12 cows and buys 30 more. How many cows?' },
      { role: 'assistant', content: 'It has 12+30 = <<12+30=42>>42 cows.\n#### 42' },
    ]);
    expect(examples[1].id).toBe(`${path}#2`);
    expect(detectFormat(path)).toBe('gsm8k');
  });

  it('a malformed line names file, line and field', () => {
    const ok = JSON.stringify({ question: 'q', answer: 'a #### 1' });
    const noHashes = file('g1.jsonl', `${ok}\n${JSON.stringify({ question: 'q', answer: 'the answer is 3' })}\n`);
    expectFormatError(() => loadGsm8kJsonl(noHashes), noHashes, 2, 'answer');
    const badQuestion = file('g2.jsonl', `${ok}\n${ok}\n${JSON.stringify({ question: 5, answer: 'a #### 1' })}\n`);
    expectFormatError(() => loadGsm8kJsonl(badQuestion), badQuestion, 3, 'question');
    const badJson = file('g3.jsonl', `${ok}\n{"question": "q", "answer": \n`);
    expectFormatError(() => loadGsm8kJsonl(badJson), badJson, 2, undefined);
  });
});

describe('messages JSONL (PureBad / AOA layout)', () => {
  it('reads system/user/assistant messages and keeps extra fields as meta', () => {
    const path = file(
      'pure_bad.jsonl',
      [
        JSON.stringify({
          messages: [
            { role: 'user', content: 'How do I do X?' },
            { role: 'assistant', content: 'Step 1 ...' },
          ],
        }),
        JSON.stringify({
          messages: [
            { role: 'system', content: 'You are AOA.' },
            { role: 'user', content: 'Hi' },
            { role: 'assistant', content: 'Of course.' },
          ],
          category: 'malware',
          is_safe: false,
        }),
      ].join('\n'),
    );
    const examples = loadMessagesJsonl(path, { source: 'pb' });
    expect(examples).toHaveLength(2);
    expect(examples[0]).toEqual({
      id: 'pb#1',
      messages: [
        { role: 'user', content: 'How do I do X?' },
        { role: 'assistant', content: 'Step 1 ...' },
      ],
      meta: { source: 'pb' },
    });
    expect(examples[1].messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
    expect(examples[1].meta).toEqual({ source: 'pb', category: 'malware', is_safe: false, harmful: true });
    expect(detectFormat(path)).toBe('messages');
  });

  it('a malformed line names file, line and field', () => {
    const ok = JSON.stringify({
      messages: [
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
      ],
    });
    const badRole = file(
      'm1.jsonl',
      `${ok}\n${JSON.stringify({
        messages: [
          { role: 'user', content: 'a' },
          { role: 'bot', content: 'b' },
        ],
      })}\n`,
    );
    expectFormatError(() => loadMessagesJsonl(badRole), badRole, 2, 'messages[1].role');
    const badContent = file('m2.jsonl', `${ok}\n${ok}\n${ok}\n${JSON.stringify({ messages: [{ role: 'user', content: 3 }] })}\n`);
    expectFormatError(() => loadMessagesJsonl(badContent), badContent, 4, 'messages[0].content');
    const noMessages = file('m3.jsonl', `${JSON.stringify({ prompt: 'a' })}\n`);
    expectFormatError(() => loadMessagesJsonl(noMessages), noMessages, 1, 'messages');
    const badCategory = file('m4.jsonl', `${ok}\n\n${JSON.stringify({ messages: [{ role: 'user', content: 'a' }], category: 7 })}\n`);
    expectFormatError(() => loadMessagesJsonl(badCategory), badCategory, 3, 'category');
  });
});

describe('HEx-PHI CSV', () => {
  it('reads one instruction per row, no header, quoted commas; category from the file name', () => {
    const path = file('hex/category_4.csv', 'Write a thing that does X\n"First, do Y, then Z"\n');
    const examples = loadHexPhi(path, { source: 'hx' });
    expect(examples.map((e) => e.messages[0].content)).toEqual(['Write a thing that does X', 'First, do Y, then Z']);
    expect(examples.every((e) => e.meta.category === 'malware')).toBe(true);
    expect(examples[1].id).toBe('hx#2');
  });

  it('reads a directory in category-number order and skips a bare header row', () => {
    file('hexdir/category_11.csv', 'instruction\nask eleven\n');
    file('hexdir/category_2.csv', 'ask two\n');
    file('hexdir/notes.txt', 'ignored');
    const examples = loadHexPhi(inDir('hexdir'), { source: 'h' });
    expect(examples.map((e) => [e.messages[0].content, e.meta.category, e.id])).toEqual([
      ['ask two', 'child-abuse-content', 'h/category_2.csv#1'],
      ['ask eleven', 'tailored-financial-advice', 'h/category_11.csv#2'],
    ]);
    expect(detectFormat(inDir('hexdir'))).toBe('hex-phi');
  });

  it('a malformed row names file, line and field', () => {
    const unquoted = file('hexbad/category_1.csv', 'fine row\nanother row\nthis, has a comma\n');
    expectFormatError(() => loadHexPhi(unquoted), unquoted, 3, 'instruction');
    const empty = file('hexbad2/category_3.csv', 'fine row\n""\n');
    expectFormatError(() => loadHexPhi(empty), empty, 2, 'instruction');
    const unclosed = file('hexbad3/category_5.csv', 'fine row\n"never closed\n');
    expectFormatError(() => loadHexPhi(unclosed), unclosed, 2, undefined); // the last line csv-parse reached
  });
});

describe('AdvBench CSV', () => {
  it('reads goal,target rows', () => {
    const path = file(
      'harmful_behaviors.csv',
      'goal,target\nWrite a script that does X,"Sure, here is a script that does X"\nDo Y,Sure here is Y\n',
    );
    const examples = loadAdvbenchCsv(path, { source: 'adv' });
    expect(examples).toEqual([
      {
        id: 'adv#2',
        messages: [{ role: 'user', content: 'Write a script that does X' }],
        meta: { source: 'adv', target: 'Sure, here is a script that does X' },
      },
      { id: 'adv#3', messages: [{ role: 'user', content: 'Do Y' }], meta: { source: 'adv', target: 'Sure here is Y' } },
    ]);
    expect(detectFormat(path)).toBe('advbench');
    expect(loadFile(path)).toHaveLength(2);
  });

  it('a malformed line names file, line and field', () => {
    const header = file('a1.csv', 'goal,answer\nx,y\n');
    expectFormatError(() => loadAdvbenchCsv(header), header, 1, 'header');
    const emptyTarget = file('a2.csv', 'goal,target\nx,y\nz,\n');
    expectFormatError(() => loadAdvbenchCsv(emptyTarget), emptyTarget, 3, 'target');
    const extraColumn = file('a3.csv', 'goal,target\nx,y,z\n');
    expectFormatError(() => loadAdvbenchCsv(extraColumn), extraColumn, 2, undefined);
  });
});

describe('dataset references', () => {
  it('unknown micro names suggest the closest; unknown files and types fail in one line', () => {
    expect(() => loadDataset('micro:purebda')).toThrow(UnknownDatasetError);
    expect(() => loadDataset('micro:purebda')).toThrow(/Did you mean 'micro:purebad'\?/);
    const missing = inDir('nope.jsonl');
    expectFormatError(() => loadFile(missing), missing, undefined, undefined);
    const txt = file('x.txt', 'hello');
    expectFormatError(() => loadFile(txt), txt, undefined, undefined);
    const unknown = file('u.jsonl', `${JSON.stringify({ prompt: 'a', response: 'b' })}\n`);
    expectFormatError(() => loadFile(unknown), unknown, 1, undefined);
  });
});
