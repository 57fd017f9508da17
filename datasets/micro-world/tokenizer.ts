// The micro-world's word-level tokenizer: the world's vocabulary (the same 421 words for every seed) after
// the special tokens, a WhitespaceSplit pre-tokenizer and the word-level chat template
// (`<system> s <user> p <assistant> r <eos>`), written as tokenizer.json + tokenizer_config.json so the
// micro models load in Python transformers too. The guardrail (harness/micro-world/guardrail.ts) reuses it with its
// own template and one more special token.
import {
  buildWordLevelTokenizer,
  tokenizerFromObjects,
  wordLevelChatTemplate,
  type Tokenizer,
  type WordLevelSpecialTokens,
  type WordLevelTokenizerFiles,
} from '../../engine/model/tokenizer.ts';

/** No <bos>: the chat template starts with a role token, which marks the start as well. */
export const MICRO_SPECIAL_TOKENS = {
  pad: '<pad>',
  unk: '<unk>',
  eos: '<eos>',
  system: '<system>',
  user: '<user>',
  assistant: '<assistant>',
} as const satisfies WordLevelSpecialTokens;

export interface MicroTokenizerOptions {
  /** Words the vocabulary must hold besides the world's (e.g. guardrail labels); added at the end if missing. */
  extraWords?: readonly string[];
  /** More special tokens (named), placed after the standard ones. */
  extraSpecials?: Record<string, string>;
  /** Default: the word-level template with the role tokens above. */
  chatTemplate?: string;
}

/** The words in id order: the world's vocabulary as given (sorted in world.json), then missing extra words. */
export function microWords(vocabulary: readonly string[], extraWords: readonly string[] = []): string[] {
  const known = new Set(vocabulary);
  return [...vocabulary, ...extraWords.filter((w, i) => !known.has(w) && extraWords.indexOf(w) === i)];
}

/** tokenizer.json + tokenizer_config.json of the world's word-level tokenizer. */
export function microTokenizerFiles(vocabulary: readonly string[], options: MicroTokenizerOptions = {}): WordLevelTokenizerFiles {
  if (vocabulary.length === 0) throw new RangeError('microTokenizerFiles: the vocabulary is empty (is world.json complete?)');
  return buildWordLevelTokenizer({
    words: microWords(vocabulary, options.extraWords),
    specialTokens: { ...MICRO_SPECIAL_TOKENS, ...options.extraSpecials },
    chatTemplate: options.chatTemplate ?? wordLevelChatTemplate,
    modelMaxLength: 128,
  });
}

/** The tokenizer object itself (the same as loading the files from a model directory). */
export function microTokenizer(vocabulary: readonly string[], options: MicroTokenizerOptions = {}): Tokenizer {
  const { tokenizerJson, tokenizerConfig } = microTokenizerFiles(vocabulary, options);
  return tokenizerFromObjects(tokenizerJson, tokenizerConfig);
}

/** Model directory files for saveModel: the tokenizer files plus any extra JSON files. */
export function tokenizerDirFiles(files: WordLevelTokenizerFiles, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { 'tokenizer.json': files.tokenizerJson, 'tokenizer_config.json': files.tokenizerConfig, ...extra };
}
