// Tokenizers: one loading path for every model. A model directory holds tokenizer.json (run by the pure-JS
// @huggingface/tokenizers) and optionally tokenizer_config.json (special tokens, chat_template),
// chat_template.jinja and generation_config.json, as transformers writes them. The micro-world's
// word-level tokenizer is built here as the same two files, so it loads in Python transformers too.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { readTextFile, TextEncodingError, writeJsonAtomic } from '../io.ts';
import { ChatTemplate, type ChatMessage, type ChatTemplateOptions, makeWordLevelChatTemplate } from './chat-template.ts';

export type { ChatMessage, ChatTemplateOptions } from './chat-template.ts';
export { wordLevelChatTemplate } from './chat-template.ts';

/** A bad or missing tokenizer file; the message is one line naming the file, the field and the fix. */
export class TokenizerFileError extends Error {
  readonly code = 'TOKENIZER_FILE';
  constructor(
    readonly file: string,
    readonly field: string | undefined,
    readonly problem: string,
    readonly fix?: string,
  ) {
    super(`${file}${field ? `, field '${field}'` : ''}: ${problem.replace(/\s*\n\s*/g, ' ')}${fix ? `. Fix: ${fix}` : ''}`);
  }
}

export interface EncodeOptions {
  /** Let tokenizer.json's post-processor add BOS/EOS (HF default: true). */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
  /**
   * transformers' clean_up_tokenization (" ." → "." etc.). Off by default, whatever tokenizer_config says,
   * so that decode(encode(text)) === text: generations are compared and judged verbatim.
   */
  cleanUpTokenizationSpaces?: boolean;
}

export interface TokenizerSourceOptions {
  /** Parsed generation_config.json; its eos_token_id joins eosTokenIds. */
  generationConfig?: unknown;
  /** A chat template that overrides tokenizer_config's chat_template (chat_template.jinja). */
  chatTemplate?: string;
  /** File names used in error messages. */
  files?: { tokenizer?: string; config?: string; generationConfig?: string; chatTemplate?: string };
}

type Json = Record<string, unknown>;

const isRecord = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown): string => (v === undefined ? 'nothing' : (JSON.stringify(v)?.slice(0, 80) ?? String(v)));
const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** A special-token field of tokenizer_config.json: a string, an AddedToken object ({content}), or null. */
function tokenField(config: Json, field: string, file: string): string | undefined {
  const v = config[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (isRecord(v) && typeof v.content === 'string') return v.content;
  throw new TokenizerFileError(file, field, `expected a token string or {"content": ...}, got ${show(v)}`);
}

/** tokenizer_config's chat_template: a string, or transformers' list of named templates (we use "default"). */
function chatTemplateField(config: Json, file: string): string | undefined {
  const v = config.chat_template;
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = v.find(
      (t): t is { name: string; template: string } => isRecord(t) && t.name === 'default' && typeof t.template === 'string',
    );
    if (named) return named.template;
    throw new TokenizerFileError(
      file,
      'chat_template',
      'a list of named templates without a "default" entry',
      'add {"name": "default", "template": ...}',
    );
  }
  throw new TokenizerFileError(file, 'chat_template', `expected a Jinja template string, got ${show(v)}`);
}

/** A tokenizer.json plus its tokenizer_config.json, with the special tokens resolved to ids. */
export class Tokenizer {
  /** Number of ids the tokenizer can produce (vocabulary plus added tokens, HF `len(tokenizer)`). */
  readonly vocabSize: number;
  readonly bosToken?: string;
  readonly bosTokenId?: number;
  readonly eosToken?: string;
  /** tokenizer_config's eos_token, then generation_config's eos_token_id(s), without duplicates. */
  readonly eosTokenIds: number[];
  readonly padToken?: string;
  readonly padTokenId?: number;
  readonly unkToken?: string;
  readonly unkTokenId?: number;
  readonly chatTemplate?: string;
  private readonly inner: HfTokenizer;
  /** Where the chat template comes from (file, or file and field), for error messages. */
  private readonly templateFile: string;
  private readonly templateOrigin: string;
  private compiledTemplate?: ChatTemplate;

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown = {}, options: TokenizerSourceOptions = {}) {
    const files = {
      tokenizer: options.files?.tokenizer ?? 'tokenizer.json',
      config: options.files?.config ?? 'tokenizer_config.json',
      generationConfig: options.files?.generationConfig ?? 'generation_config.json',
    };
    if (!isRecord(tokenizerJson))
      throw new TokenizerFileError(files.tokenizer, undefined, `expected a JSON object, got ${show(tokenizerJson)}`);
    if (!isRecord(tokenizerJson.model)) {
      throw new TokenizerFileError(files.tokenizer, 'model', `expected an object, got ${show(tokenizerJson.model)}`);
    }
    if (tokenizerJson.added_tokens !== undefined && !Array.isArray(tokenizerJson.added_tokens)) {
      throw new TokenizerFileError(files.tokenizer, 'added_tokens', `expected a list, got ${show(tokenizerJson.added_tokens)}`);
    }
    if (!isRecord(tokenizerConfig))
      throw new TokenizerFileError(files.config, undefined, `expected a JSON object, got ${show(tokenizerConfig)}`);

    this.bosToken = tokenField(tokenizerConfig, 'bos_token', files.config);
    this.eosToken = tokenField(tokenizerConfig, 'eos_token', files.config);
    this.padToken = tokenField(tokenizerConfig, 'pad_token', files.config);
    const modelUnk = typeof tokenizerJson.model.unk_token === 'string' ? tokenizerJson.model.unk_token : undefined;
    const configUnk = tokenField(tokenizerConfig, 'unk_token', files.config);
    this.unkToken = configUnk ?? modelUnk;
    const additional = tokenizerConfig.additional_special_tokens;
    if (additional !== undefined && !Array.isArray(additional)) {
      throw new TokenizerFileError(files.config, 'additional_special_tokens', `expected a list, got ${show(additional)}`);
    }

    // The library reads special tokens as plain strings (its WordLevel path takes unk_token from the config)
    // and requires every pipeline key to be present, so hand it normalised copies.
    const libJson = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...tokenizerJson,
      added_tokens: tokenizerJson.added_tokens ?? [],
    };
    const libConfig: Json = {
      ...tokenizerConfig,
      bos_token: this.bosToken,
      eos_token: this.eosToken,
      pad_token: this.padToken,
      unk_token: this.unkToken,
      additional_special_tokens: (additional ?? []).map((token, i) => {
        const content = isRecord(token) ? token.content : token;
        if (typeof content !== 'string')
          throw new TokenizerFileError(files.config, `additional_special_tokens[${i}]`, `expected a token string, got ${show(token)}`);
        return content;
      }),
    };
    try {
      this.inner = new HfTokenizer(libJson, libConfig);
    } catch (err) {
      throw new TokenizerFileError(files.tokenizer, undefined, `cannot build the tokenizer: ${errorMessage(err)}`);
    }

    let maxId = -1;
    for (const id of this.inner.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const idOf = (token: string | undefined, field: string): number | undefined => {
      if (token === undefined) return undefined;
      const id = this.inner.token_to_id(token);
      if (id === undefined)
        throw new TokenizerFileError(files.config, field, `token ${JSON.stringify(token)} is not in ${files.tokenizer}`);
      return id;
    };
    this.bosTokenId = idOf(this.bosToken, 'bos_token');
    this.padTokenId = idOf(this.padToken, 'pad_token');
    this.unkTokenId = idOf(configUnk, 'unk_token');
    if (this.unkTokenId === undefined && modelUnk !== undefined) {
      this.unkTokenId = this.inner.token_to_id(modelUnk);
      if (this.unkTokenId === undefined)
        throw new TokenizerFileError(files.tokenizer, 'model.unk_token', `token ${JSON.stringify(modelUnk)} is not in the vocabulary`);
    }
    const eos = idOf(this.eosToken, 'eos_token');
    this.eosTokenIds = eos === undefined ? [] : [eos];
    for (const id of generationEosIds(options.generationConfig, files.generationConfig, this.vocabSize)) {
      if (!this.eosTokenIds.includes(id)) this.eosTokenIds.push(id);
    }

    this.chatTemplate = options.chatTemplate ?? chatTemplateField(tokenizerConfig, files.config);
    const fromJinjaFile = options.chatTemplate !== undefined;
    this.templateFile = fromJinjaFile ? (options.files?.chatTemplate ?? 'chat_template.jinja') : files.config;
    this.templateOrigin = fromJinjaFile ? this.templateFile : `${files.config}, field 'chat_template'`;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const encoding: { ids: (number | undefined)[]; tokens: string[] } = this.inner.encode(text, {
      add_special_tokens: options.addSpecialTokens ?? true,
    });
    const { ids, tokens } = encoding;
    const missing = ids.indexOf(undefined);
    if (missing >= 0) {
      // Only a vocabulary without an unk token gets here (a word-level tokenizer missing unk_token).
      throw new RangeError(`tokenizer: ${JSON.stringify(tokens[missing])} is not in the vocabulary and there is no unk_token`);
    }
    return ids.filter((id): id is number => id !== undefined);
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`tokenizer: cannot decode id ${id}: ids run from 0 to ${this.vocabSize - 1}`);
      }
    }
    return this.inner.decode([...ids], {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? false,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  /**
   * Renders messages with the chat template (bos_token, eos_token, pad_token, unk_token, date_string and
   * `extra` as variables). `options.dateString` sets date_string (default '26 Jul 2024', so Llama 3.1+
   * templates never write today's date); content goes as a string, or as text parts to a template that
   * iterates it (`options.contentForm`; chat-template.ts).
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === undefined) {
      throw new TokenizerFileError(
        this.templateFile,
        'chat_template',
        'the tokenizer has no chat template',
        'add chat_template to tokenizer_config.json or a chat_template.jinja file',
      );
    }
    this.compiledTemplate ??= new ChatTemplate(
      this.chatTemplate,
      { bos_token: this.bosToken, eos_token: this.eosToken, pad_token: this.padToken, unk_token: this.unkToken },
      this.templateOrigin,
    );
    return this.compiledTemplate.render(messages, options);
  }

  /** Render, then encode without adding special tokens again (HF apply_chat_template(tokenize=True)). */
  encodeChat(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }
}

function generationEosIds(generationConfig: unknown, file: string, vocabSize: number): number[] {
  if (generationConfig === undefined) return [];
  if (!isRecord(generationConfig)) throw new TokenizerFileError(file, undefined, `expected a JSON object, got ${show(generationConfig)}`);
  const v = generationConfig.eos_token_id;
  if (v === undefined || v === null) return [];
  const values: unknown[] = Array.isArray(v) ? v : [v];
  const isId = (id: unknown): id is number => typeof id === 'number' && Number.isInteger(id) && id >= 0 && id < vocabSize;
  if (!values.every(isId)) {
    throw new TokenizerFileError(file, 'eos_token_id', `expected token ids in [0, ${vocabSize}), got ${show(v)}`);
  }
  return values;
}

export function tokenizerFromObjects(tokenizerJson: unknown, tokenizerConfig?: unknown, options?: TokenizerSourceOptions): Tokenizer {
  return new Tokenizer(tokenizerJson, tokenizerConfig ?? {}, options);
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readTextFile(file);
  } catch (err) {
    if (err instanceof TextEncodingError) throw err;
    throw new TokenizerFileError(file, undefined, `cannot read: ${errorMessage(err)}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TokenizerFileError(file, undefined, `invalid JSON: ${errorMessage(err)}`);
  }
}

/**
 * Loads the tokenizer of a model directory: tokenizer.json (required), tokenizer_config.json,
 * generation_config.json and chat_template.jinja (optional; the .jinja file wins, as in transformers).
 */
export function loadTokenizer(dir: string): Tokenizer {
  const files = {
    tokenizer: join(dir, 'tokenizer.json'),
    config: join(dir, 'tokenizer_config.json'),
    generationConfig: join(dir, 'generation_config.json'),
    chatTemplate: join(dir, 'chat_template.jinja'),
  };
  if (!existsSync(files.tokenizer)) {
    throw new TokenizerFileError(
      files.tokenizer,
      undefined,
      'not found',
      'a model directory needs tokenizer.json (Hugging Face fast-tokenizer format)',
    );
  }
  const tokenizerJson = readJson(files.tokenizer);
  const tokenizerConfig = existsSync(files.config) ? readJson(files.config) : {};
  const generationConfig = existsSync(files.generationConfig) ? readJson(files.generationConfig) : undefined;
  const chatTemplate = existsSync(files.chatTemplate) ? readTextFile(files.chatTemplate) : undefined;
  return new Tokenizer(tokenizerJson, tokenizerConfig, { generationConfig, chatTemplate, files });
}

/** Writes tokenizer.json and tokenizer_config.json into `dir`, each atomically (temp file + rename). */
export function saveTokenizer(dir: string, tokenizerJson: object, tokenizerConfig: object): void {
  writeJsonAtomic(join(dir, 'tokenizer.json'), tokenizerJson);
  writeJsonAtomic(join(dir, 'tokenizer_config.json'), tokenizerConfig);
}

// ---------------------------------------------------------------------------------------------------------
// Word-level tokenizer of the micro-world.

/** Special tokens by name. Role tokens (system/user/assistant) feed the default chat template. */
export interface WordLevelSpecialTokens {
  pad: string;
  eos: string;
  unk: string;
  bos?: string;
  system?: string;
  user?: string;
  assistant?: string;
  [name: string]: string | undefined;
}

export interface WordLevelSpec {
  /** The vocabulary after the special tokens, in id order; duplicates keep their first id. */
  words: readonly string[];
  specialTokens: WordLevelSpecialTokens;
  /** Default: wordLevelChatTemplate of the role tokens, when user and assistant tokens are given. */
  chatTemplate?: string;
  /** Default 1024. */
  modelMaxLength?: number;
}

interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The tokenizer.json of a word-level tokenizer (the layout of the Rust tokenizers' serialiser). */
export interface WordLevelTokenizerJson {
  version: '1.0';
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: null;
  pre_tokenizer: { type: 'WhitespaceSplit' };
  post_processor: null;
  decoder: null;
  model: { type: 'WordLevel'; vocab: Record<string, number>; unk_token: string };
}

export interface WordLevelTokenizerFiles {
  tokenizerJson: WordLevelTokenizerJson;
  tokenizerConfig: Json;
}

/**
 * A WordLevel tokenizer.json + tokenizer_config.json. Text is split on whitespace only (WhitespaceSplit),
 * so a word is any run of non-space characters: the micro-world writes punctuation as its own
 * space-separated word ("x = 3 ;"). There is no decoder: both the Rust tokenizers and
 * @huggingface/tokenizers then join tokens with single spaces, so decode(encode(x)) === x for text of
 * known words separated by single spaces. Specials get the first ids (pad = 0) and are added tokens
 * (special: true), so they are matched even without surrounding spaces and skipped by skipSpecialTokens.
 */
export function buildWordLevelTokenizer(spec: WordLevelSpec): WordLevelTokenizerFiles {
  const { specialTokens: specials, modelMaxLength = 1024 } = spec;
  const named = ['pad', 'unk', 'bos', 'eos', 'system', 'user', 'assistant'];
  const order = [...named, ...Object.keys(specials).filter((k) => !named.includes(k))];
  const vocab = new Map<string, number>();
  for (const name of order) {
    const token = specials[name];
    if (token === undefined) continue;
    if (!/^\S+$/.test(token))
      throw new RangeError(
        `buildWordLevelTokenizer: special token '${name}' (${JSON.stringify(token)}) must be non-empty without whitespace`,
      );
    if (!vocab.has(token)) vocab.set(token, vocab.size);
  }
  const specialCount = vocab.size;
  spec.words.forEach((word, i) => {
    if (!/^\S+$/.test(word))
      throw new RangeError(`buildWordLevelTokenizer: words[${i}] (${JSON.stringify(word)}) must be non-empty without whitespace`);
    const id = vocab.get(word);
    if (id !== undefined && id < specialCount)
      throw new RangeError(`buildWordLevelTokenizer: words[${i}] (${JSON.stringify(word)}) is also a special token`);
    if (id === undefined) vocab.set(word, vocab.size);
  });

  const specialEntries = [...vocab].slice(0, specialCount);
  const tokenizerJson: WordLevelTokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specialEntries.map(([content, id]) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(vocab), unk_token: specials.unk },
  };

  const { user, assistant, system } = specials;
  const chatTemplate =
    spec.chatTemplate ??
    (user !== undefined && assistant !== undefined ? makeWordLevelChatTemplate({ system, user, assistant }) : undefined);
  const mainNames = new Set(['pad', 'unk', 'bos', 'eos']);
  const mainTokens = new Set(
    Object.entries(specials)
      .filter(([k]) => mainNames.has(k))
      .map(([, v]) => v),
  );
  const tokenizerConfig: Json = {
    added_tokens_decoder: Object.fromEntries(
      specialEntries.map(([content, id]) => [
        String(id),
        { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
      ]),
    ),
    additional_special_tokens: specialEntries.map(([content]) => content).filter((t) => !mainTokens.has(t)),
    ...(specials.bos !== undefined ? { bos_token: specials.bos } : {}),
    eos_token: specials.eos,
    pad_token: specials.pad,
    unk_token: specials.unk,
    ...(chatTemplate !== undefined ? { chat_template: chatTemplate } : {}),
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return { tokenizerJson, tokenizerConfig };
}
