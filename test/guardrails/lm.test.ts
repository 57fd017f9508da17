import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { loadModel } from '../../engine/model/checkpoint.ts';
import type { LoadedModel } from '../../engine/model/checkpoint.ts';
import { LmGuardrail, loadLmGuardrail } from '../../guardrails/lm.ts';
import { guardPresets, pSafe, type GuardSpec } from '../../guardrails/presets.ts';
import { labelSettings, processedPSafe } from '../../guardrails/label-processing.ts';
import type { GuardItem } from '../../guardrails/types.ts';
import type { Message } from '../../engine/contracts/example.ts';
import { sigmoid, tempDir, writeWordGuard } from './helpers.ts';

let dir: string;
let ref: LoadedModel;
const first: GuardSpec = guardPresets.micro;
const second: GuardSpec = { labels: { safe: 'safe', unsafe: 'unsafe' }, position: 2 };

beforeAll(async () => {
  await initBackend('wasm');
  dir = await writeWordGuard();
  ref = loadModel(dir);
});
afterAll(() => ref.model.dispose());

/** The verdict computed by hand: render, forward the whole sequence without a cache, read the labels. */
function manualVerdict(prompt: string, response: string, position: 1 | 2): number {
  const { row, safe, unsafe } = manualRow(prompt, response, position);
  return sigmoid(row[safe] - row[unsafe]);
}

/** The whole vocabulary's logits at the verdict position, computed by hand, and the label ids. */
function manualRow(prompt: string, response: string, position: 1 | 2): { row: number[]; safe: number; unsafe: number } {
  const { model, tokenizer } = ref;
  const conversation: Message[] = [
    { role: 'user', content: prompt },
    { role: 'assistant', content: response },
  ];
  let ids = tokenizer.encodeChat(conversation, { addGenerationPrompt: true });
  const lastRow = (seq: number[]) =>
    tf.tidy(() => {
      const logits = model.forward(tf.tensor2d([seq], [1, seq.length], 'int32')).logits;
      return Array.from(logits.slice([0, seq.length - 1, 0], [1, 1, -1]).dataSync());
    });
  let row = lastRow(ids);
  if (position === 2) {
    const greedy = row.indexOf(Math.max(...row));
    ids = [...ids, greedy];
    row = lastRow(ids);
  }
  return { row, safe: tokenizer.tokenToId('safe')!, unsafe: tokenizer.tokenToId('unsafe')! };
}

const items: GuardItem[] = [
  { messages: [{ role: 'user', content: 'how do i make a bomb' }], response: 'sure here is the recipe . first get some powder then mix' },
  { messages: [{ role: 'user', content: 'how do i make a cake' }], response: 'mix flour and sugar' },
  { messages: [{ role: 'user', content: 'help' }], response: 'sorry i cannot help with that' },
  {
    messages: [
      { role: 'system', content: 'you help' },
      { role: 'user', content: 'make a cake' },
    ],
    response: 'step one heat it until hot . step two stir . step three bake and serve',
  },
  { messages: [{ role: 'user', content: 'how do i make a bomb' }], response: '' },
];

describe('P(safe) formula', () => {
  it('is the softmax over the two label logits, σ(ℓ_safe − ℓ_unsafe)', () => {
    // σ(2) = 1 / (1 + e^-2) = 0.8807970779778823; σ(−0.5) = 0.3775406687981454.
    expect(pSafe(2, 0)).toBeCloseTo(0.8807970779778823, 14);
    expect(pSafe(3.5, 1.5)).toBeCloseTo(0.8807970779778823, 14);
    expect(pSafe(-1, -0.5)).toBeCloseTo(0.3775406687981454, 14);
    // Softmax of [ℓ_safe, ℓ_unsafe] = [1.2, 4.7]: e^1.2 / (e^1.2 + e^4.7) = 0.029312230751356.
    expect(pSafe(1.2, 4.7)).toBeCloseTo(Math.exp(1.2) / (Math.exp(1.2) + Math.exp(4.7)), 14);
    expect(pSafe(0, 0)).toBe(0.5);
    // Large logits stay finite.
    expect(pSafe(1000, -1000)).toBe(1);
    expect(pSafe(-1000, 1000)).toBe(0);
    expect(pSafe(1e30, 1e30 - 1e15)).toBe(1);
  });
});

describe('LM guardrail on a word-level model', () => {
  it('renders [user, assistant] through its own template, without the system turn, ending at the verdict', () => {
    const guard = loadLmGuardrail(dir, first);
    try {
      expect(guard.render(items[3])).toBe(
        '<user> make a cake <assistant> step one heat it until hot . step two stir . step three bake and serve <eos> <assistant>',
      );
      expect(guard.render(items[4])).toBe('<user> how do i make a bomb <assistant> <eos> <assistant>');
    } finally {
      guard.dispose();
    }
  });

  it('reads the label logits at the 1st and at the 2nd generated position, as a manual forward does', async () => {
    for (const spec of [first, second]) {
      const guard = loadLmGuardrail(dir, spec, { batchSize: 3 });
      try {
        const scores = await guard.scoreSafe(items);
        const expected = items.map((it) =>
          manualVerdict(it.messages.filter((m) => m.role === 'user')[0].content, it.response, spec.position),
        );
        scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i], 5));
        // The scaled weights spread the verdicts, so the comparison is not between constants.
        expect(Math.max(...scores) - Math.min(...scores)).toBeGreaterThan(0.05);
        expect(guard.calls).toBe(items.length);
      } finally {
        guard.dispose();
      }
    }
  });

  it('2nd-position scores differ from 1st-position scores (the greedy token is fed back)', async () => {
    const a = loadLmGuardrail(dir, first);
    const b = loadLmGuardrail(dir, second);
    try {
      const [sa, sb] = [await a.scoreSafe(items), await b.scoreSafe(items)];
      expect(sa.some((s, i) => Math.abs(s - sb[i]) > 1e-3)).toBe(true);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('scores all prefixes from one KV cache, equal to naive per-prefix scoring within 1e-5', async () => {
    const messages: Message[] = [{ role: 'user', content: 'how do i make a bomb' }];
    const response =
      'sure here is the recipe . first get some powder then mix flour and sugar . step one heat it until hot . step two stir . step three';
    const w = response.split(' ');
    const prefixes: string[] = [];
    for (let k = 5; k < w.length; k += 5) prefixes.push(w.slice(0, k).join(' '));
    prefixes.push(response);
    expect(prefixes.length).toBe(6);
    for (const spec of [first, second]) {
      const guard = loadLmGuardrail(dir, spec, { batchSize: 4 });
      const forward = guard.model.forward;
      let forwards = 0;
      guard.model.forward = (ids, options) => {
        forwards++;
        return forward(ids, options);
      };
      try {
        const naive: number[] = [];
        for (const p of prefixes) naive.push(...(await guard.scoreSafe([{ messages, response: p }])));
        const naiveTokens = guard.tokensForwarded;
        const before = tf.memory().numTensors;
        forwards = 0;
        const shared = await guard.scorePrefixes(messages, prefixes);
        expect(tf.memory().numTensors).toBe(before);
        const sharedTokens = guard.tokensForwarded - naiveTokens;
        shared.forEach((s, i) => expect(Math.abs(s - naive[i])).toBeLessThan(1e-5));
        expect(guard.calls).toBe(2 * prefixes.length);
        // One pass over the full rendering, then the template suffix (eos, assistant) of each shorter prefix;
        // at position 1 the full response reuses the pass's own logits. At position 2 the full response joins
        // the suffix rows (its last token, left-padded to their width 2) so that every row's fed-back token
        // goes through one more forward. The naive path forwards each whole prefix rendering.
        const full = guard.encode({ messages, response }).length;
        const rows = spec.position === 2 ? prefixes.length : prefixes.length - 1;
        expect(sharedTokens).toBe(full + rows * 2 + (spec.position === 2 ? rows : 0));
        expect(sharedTokens).toBeLessThan(naiveTokens / 2);
        // The suffixes are batched: 5 rows (position 1) or 6 (position 2) in groups of batchSize 4 take 2
        // forwards after the full pass, one more each at position 2 for the fed-back token.
        expect(forwards).toBe(spec.position === 2 ? 1 + 2 * 2 : 1 + 2);
      } finally {
        guard.model.forward = forward;
        guard.dispose();
      }
    }
  });

  it('scores texts that share little with the last one (long suffixes, padded beside short ones) as naive scoring does', async () => {
    const messages: Message[] = [{ role: 'user', content: 'how do i make a cake' }];
    // Not prefixes of the last text: their renderings share only the prompt with it, so their suffixes are
    // long while 'mix flour' forwards only its template suffix; they share one forward, left-padded.
    const texts = ['sorry i cannot help with that', 'mix flour', 'step one heat it until hot', 'mix flour and sugar'];
    for (const spec of [first, second]) {
      const guard = loadLmGuardrail(dir, spec);
      try {
        const naive = texts.map((t) => manualVerdict(messages[0].content, t, spec.position));
        const before = tf.memory().numTensors;
        const shared = await guard.scorePrefixes(messages, texts);
        expect(tf.memory().numTensors).toBe(before);
        shared.forEach((s, i) => expect(Math.abs(s - naive[i])).toBeLessThan(1e-5));
      } finally {
        guard.dispose();
      }
    }
  });

  it('leaves no tensors behind in scoreSafe and scorePrefixes', async () => {
    const guard = loadLmGuardrail(dir, second, { batchSize: 2 });
    try {
      await guard.scoreSafe(items.slice(0, 1)); // warm-up allocations
      const before = tf.memory().numTensors;
      await guard.scoreSafe(items);
      await guard.scorePrefixes(items[0].messages, ['sure', 'sure here', 'sure here is the recipe']);
      await guard.scorePrefixes(items[0].messages, []);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      guard.dispose();
    }
  });

  it('derives its id from weights, template, labels and position', async () => {
    const a = loadLmGuardrail(dir, first);
    const b = loadLmGuardrail(dir, first);
    const c = loadLmGuardrail(dir, second);
    const d = loadLmGuardrail(dir, { ...first, labels: { safe: 'unsafe', unsafe: 'safe' } });
    const copy = join(tempDir('copy'), 'other');
    mkdirSync(copy);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'])
      copyFileSync(join(dir, f), join(copy, f));
    const e = loadLmGuardrail(copy, first);
    const other = await writeWordGuard(4);
    const f = loadLmGuardrail(other, first);
    try {
      expect(a.id).toMatch(/^lm-[0-9a-f]{16}$/);
      expect(b.id).toBe(a.id);
      expect(e.id).toBe(a.id); // same bytes elsewhere: same guardrail
      expect(new Set([a.id, c.id, d.id, f.id]).size).toBe(4);
    } finally {
      for (const g of [a, b, c, d, e, f]) g.dispose();
    }
  });

  it('label processing: the processed full-vocabulary row of a manual forward, through both paths, with its own id', async () => {
    const { official } = labelSettings;
    const topPOnly = { temperature: 1, topK: 50, topP: 0.9 };
    for (const spec of [first, second]) {
      for (const processing of [official, topPOnly]) {
        const paper = loadLmGuardrail(dir, spec);
        const guard = loadLmGuardrail(dir, spec, { labelProcessing: processing });
        const same = loadLmGuardrail(dir, spec, { labelProcessing: labelSettings.paper });
        try {
          const scores = await guard.scoreSafe(items);
          items.forEach((it, i) => {
            const { row, safe, unsafe } = manualRow(it.messages.filter((m) => m.role === 'user')[0].content, it.response, spec.position);
            expect(scores[i], `item ${i}`).toBeCloseTo(processedPSafe(row, safe, unsafe, processing), 5);
          });
          // On this random guard, top-p at temperature 1 leaves only the unsafe label for item 1 and only the safe one for item 2.
          if (spec === first && processing === topPOnly) expect([scores[1], scores[2]]).toEqual([0, 1]);
          const messages = items[0].messages;
          const words = items[0].response.split(' ');
          const prefixes = [2, 5, 8, words.length].map((k) => words.slice(0, k).join(' '));
          const fast = await guard.scorePrefixes(messages, prefixes);
          const naive = await guard.scoreSafe(prefixes.map((response) => ({ messages, response })));
          fast.forEach((p, i) => expect(p).toBeCloseTo(naive[i], 5));
          expect(guard.id).not.toBe(paper.id);
          expect(same.id).toBe(paper.id); // the paper formula keeps the id (and the STAR cache) it always had
        } finally {
          for (const g of [paper, guard, same]) g.dispose();
        }
      }
    }
  });

  it('rejects a label that is not a single token', () => {
    const { model, tokenizer } = loadModel(dir);
    expect(
      () => new LmGuardrail({ model, tokenizer, spec: { labels: { safe: 'safe enough', unsafe: 'unsafe' }, position: 1 }, weights: 'x' }),
    ).toThrow(/safe label "safe enough" is not a single token: it encodes to 2 tokens/);
    model.dispose();
  });
});
