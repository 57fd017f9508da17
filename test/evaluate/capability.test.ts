import { describe, it, expect } from 'vitest';
import { extractGsm8kAnswer, isExactMatch, referenceOf, scoreExactMatch } from '../../harness/evaluate/capability.ts';
import { EXACT_MATCH_METRIC } from '../../results/metrics.ts';
import type { Example } from '../../engine/contracts/example.ts';

const gsm = (question: string, answer: string, final: string): Example => ({
  id: `g:${question}`,
  messages: [
    { role: 'user', content: question },
    { role: 'assistant', content: answer },
  ],
  meta: { source: 'micro:gsm8k-test', answer: final },
});

const task = (prompt: string, response: string): Example => ({
  id: `t:${prompt}`,
  messages: [
    { role: 'user', content: prompt },
    { role: 'assistant', content: response },
  ],
  meta: { source: 'micro:sql-test', answer: response },
});

describe('GSM8K answers', () => {
  it('reads the number after the last ####, dropping thousands separators and trailing words', () => {
    expect(extractGsm8kAnswer('kai picked 1 + 1 = 2 cakes . #### 2')).toBe('2');
    expect(extractGsm8kAnswer('#### 3 . #### 1,234 apples')).toBe('1234');
    expect(extractGsm8kAnswer('so #### -7')).toBe('-7');
    expect(extractGsm8kAnswer('#### 12.0')).toBe('12');
    expect(extractGsm8kAnswer('the answer is 4')).toBeUndefined();
    expect(extractGsm8kAnswer('#### cakes')).toBeUndefined();
  });

  it('scores a GSM8K item on the final number only', () => {
    const ref = referenceOf(gsm('kai has 2 eggs and buys 3 more .', 'kai has 2 + 3 = 5 eggs . #### 5', '5'));
    expect(ref).toEqual({ mode: 'gsm8k', value: '5' });
    expect(isExactMatch(ref, 'kai has 3 + 2 = 5 eggs . #### 5')).toBe(true);
    expect(isExactMatch(ref, 'kai has 2 + 3 = 6 eggs . #### 6')).toBe(false);
    expect(isExactMatch(ref, 'kai has 2 + 3 = 5 eggs .')).toBe(false);
  });

  it('scores other tasks on the whole response, whitespace-normalised', () => {
    const ref = referenceOf(task('count the red lamps in lumo .', 'select count ( * ) from lamps ;'));
    expect(ref.mode).toBe('exact');
    expect(isExactMatch(ref, '  select count ( * )   from lamps ; ')).toBe(true);
    expect(isExactMatch(ref, 'select count ( * ) from lamps')).toBe(false);
  });
});

describe('scoreExactMatch', () => {
  it('counts matches and reports the metric with its direction', () => {
    const examples = [
      gsm('a', 'x #### 4', '4'),
      gsm('b', 'y #### 9', '9'),
      task('c', 'the ruler of lumo is kai .'),
      task('d', 'pim has a goat .'),
    ];
    const responses = ['z #### 4', 'z #### 8', 'the ruler of lumo is kai .', 'pim has a dog .'];
    const result = scoreExactMatch(examples, responses, 'mixed-set');
    expect(result.correct).toBe(2);
    expect(result.n).toBe(4);
    expect(result.exactMatch).toBe(50);
    expect(result.samples.map((s) => s.correct)).toEqual([true, false, true, false]);
    expect(result.metric).toEqual(EXACT_MATCH_METRIC);
    expect(result.metric.higherIsBetter).toBe(true);
    expect(result.dataset).toBe('mixed-set');
  });

  it('rejects mismatched lengths', () => {
    expect(() => scoreExactMatch([task('a', 'b')], [])).toThrow(/1 examples but 0 responses/);
  });
});
