// Turns a chat Example into a TrainExample for one tokenizer: the ids of the full chat rendering, the
// response mask, and (given a STAR annotation) one STAR weight per token. Everything here is indexed by
// SEQUENCE position; engine/train.ts's makeBatch shifts mask and weights to label positions itself
// (label t predicts token t+1 and carries mask[t+1] and weights[t+1]), so nothing is shifted here.
//
// How the response span is found (the response is the final message, which must be an assistant turn):
//   ids    = tokens of the full rendering of all messages (no generation prompt).
//   start  = token count of the conversation WITHOUT the response rendered with add_generation_prompt;
//            those tokens must be a prefix of `ids`. Templates that open the assistant turn differently
//            when it has content (Qwen3 adds an empty think block) fail that check; then the open
//            assistant turn with empty content (see openTurnText) is used and must be a prefix instead.
//   contentEnd = where the rendering of the response left open (no end-of-turn) stops agreeing with `ids`.
//   end    = one past the first special token (end-of-turn, e.g. <eos>, <|eot_id|>, <|im_end|>) at or after
//            contentEnd; the whole rest of the sequence if there is none.
//   responseMask = 1 on [start, end): the response and its end-of-turn token are learned; everything
//            else (prompt, and whatever the template appends after the turn, such as the assistant header
//            the shipped Llama-3 template always adds) is 0.
//
// STAR boundaries (docs/method.md §3, the authors' rule, with one refinement):
//   boundary_0 = start. For chunk k < K, boundary_k = token count of the open rendering of
//   [context, assistant: response text up to the end of chunk k's last word], clamped to
//   [boundary_{k-1}, ids.length]. boundary_K = ids.length, so the end-of-turn token (and anything the
//   template appends) belongs to the last chunk. In token mode boundary_k = start + chunkEnds[k] exactly.
//   Token i gets weight V_k for boundary_{k-1} ≤ i < boundary_k. Prompt tokens (i < start) get weight 1;
//   they are masked out of the loss, so the value never matters. An empty response (no chunks) gives
//   its end-of-turn token the full-response verdict.
//   Refinement: the boundary text keeps the response's own whitespace (the authors tokenize the
//   space-joined words, which the guardrail still sees). The two agree on single-spaced text; on
//   "Hi\tthere" the joined "Hi there" would put the boundary between the tab token and "there".
//   A BPE token that straddles a cut (Llama-3 merges "Done.\nNext" into Done | .\n | Next) is assigned
//   by the token count alone: the prefix "Done." renders as Done | . (2 tokens), so ".\n" — the 2nd
//   response token — goes to the EARLIER chunk, the one whose text ends inside it. With byte-level BPE
//   tokenizers that attach a leading space to the next word (Llama-3, Qwen, GPT-2), single-spaced cuts
//   never straddle a token; straddles come from newlines and other non-space separators.
import type { Example, Message } from '../engine/contracts/example.ts';
import type { Tokenizer } from '../engine/model/tokenizer.ts';
import type { TrainExample } from '../engine/train.ts';
import { originalWordPrefix, wordSpans, type StarAnnotation } from './star-chunks.ts';

export class TokenizeExampleError extends Error {
  constructor(
    readonly code: 'NO_RESPONSE' | 'PROMPT_NOT_PREFIX' | 'BAD_ANNOTATION',
    message: string,
  ) {
    super(message);
  }
}

/** An example split into the conversation before the response and the response text. */
export interface SplitExample {
  context: Message[];
  response: string;
}

export function splitResponse(example: Pick<Example, 'id' | 'messages'>): SplitExample {
  const last = example.messages.at(-1);
  if (last?.role !== 'assistant') {
    throw new TokenizeExampleError(
      'NO_RESPONSE',
      `example '${example.id}': the last message must be the assistant response, got ${last ? `a ${last.role} message` : 'no messages'}`,
    );
  }
  return { context: example.messages.slice(0, -1), response: last.content };
}

/** An example's token sequence and where its response lies in it (positions, see the header). */
export interface TokenizedExample extends SplitExample {
  ids: number[];
  start: number;
  contentEnd: number;
  end: number;
}

/**
 * The rendering of [context, assistant: partial] left open after `partial` (no end-of-turn), like HF's
 * continue_final_message (our chat template cuts at a marker, so a partial that also occurs later in the
 * rendering is cut in the right place). An empty partial renders the generation prompt.
 */
export function openTurnText(tokenizer: Tokenizer, context: readonly Message[], partial: string): string {
  if (partial.trim() === '') return tokenizer.applyChatTemplate([...context], { addGenerationPrompt: true });
  return tokenizer.applyChatTemplate([...context, { role: 'assistant', content: partial }], { continueFinalMessage: true });
}

/** Token count of openTurnText (encoded without adding special tokens again, as encodeChat does). */
export function openTurnLength(tokenizer: Tokenizer, context: readonly Message[], partial: string): number {
  return tokenizer.encode(openTurnText(tokenizer, context, partial), { addSpecialTokens: false }).length;
}

const isPrefix = (a: readonly number[], b: readonly number[]): boolean => a.length <= b.length && a.every((id, i) => b[i] === id);

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** Special tokens vanish when decoded with skipSpecialTokens; eos ids count even if not marked special. */
const isSpecial = (tokenizer: Tokenizer, id: number): boolean =>
  tokenizer.eosTokenIds.includes(id) || tokenizer.decode([id], { skipSpecialTokens: true }) === '';

export function tokenizeExample(example: Pick<Example, 'id' | 'messages'>, tokenizer: Tokenizer): TokenizedExample {
  const { context, response } = splitResponse(example);
  const ids = tokenizer.encodeChat(example.messages);
  const prompt = tokenizer.encodeChat(context, { addGenerationPrompt: true });
  let start: number;
  if (isPrefix(prompt, ids)) start = prompt.length;
  else {
    const open = tokenizer.encode(openTurnText(tokenizer, context, ''), { addSpecialTokens: false });
    if (!isPrefix(open, ids)) {
      throw new TokenizeExampleError(
        'PROMPT_NOT_PREFIX',
        `example '${example.id}': neither the generation-prompt rendering nor the open assistant turn is a token prefix of the full rendering, so the response cannot be located`,
      );
    }
    start = open.length;
  }
  const openFull = tokenizer.encode(openTurnText(tokenizer, context, response), { addSpecialTokens: false });
  const contentEnd = Math.max(start, commonPrefixLength(openFull, ids));
  let end = ids.length;
  for (let i = contentEnd; i < ids.length; i++) {
    if (isSpecial(tokenizer, ids[i])) {
      end = i + 1;
      break;
    }
  }
  return { context, response, ids, start, contentEnd, end };
}

/**
 * Token boundaries of the chunks: boundaries[0] = start, boundaries[k] = first position after chunk k,
 * the last = ids.length (rules in the header). Length chunkEnds.length + 1, or [start] with no chunks.
 */
export function starBoundaries(
  tokenized: TokenizedExample,
  annotation: Pick<StarAnnotation, 'unit' | 'chunkEnds'>,
  tokenizer: Tokenizer,
): number[] {
  const { ids, start, context, response } = tokenized;
  const ends = annotation.chunkEnds;
  const boundaries = [start];
  ends.forEach((units, k) => {
    const previous = boundaries[k];
    let at: number;
    if (k === ends.length - 1) at = ids.length;
    else if (annotation.unit === 'tokens') at = start + units;
    else at = openTurnLength(tokenizer, context, originalWordPrefix(response, units));
    boundaries.push(Math.min(ids.length, Math.max(previous, at)));
  });
  return boundaries;
}

function checkAnnotation(id: string, tokenized: TokenizedExample, a: StarAnnotation): void {
  const bad = (why: string) => new TokenizeExampleError('BAD_ANNOTATION', `example '${id}': STAR annotation ${why}`);
  if (a.chunkEnds.length !== a.scores.length) throw bad(`has ${a.chunkEnds.length} chunk ends but ${a.scores.length} scores`);
  if (a.chunkEnds.some((e, k) => !Number.isInteger(e) || e <= (k ? a.chunkEnds[k - 1] : 0)))
    throw bad(`chunkEnds ${JSON.stringify(a.chunkEnds)} are not increasing positive integers`);
  if ([...a.scores, a.verdict].some((v) => !(v >= 0 && v <= 1))) throw bad('has a score or verdict outside [0, 1]');
  const units = a.unit === 'words' ? wordSpans(tokenized.response).length : tokenized.contentEnd - tokenized.start;
  if ((a.chunkEnds.at(-1) ?? 0) !== units) {
    throw bad(
      `ends at ${a.unit.slice(0, -1)} ${a.chunkEnds.at(-1) ?? 0}, but the response has ${units} ${a.unit} (annotated with another example or tokenizer?)`,
    );
  }
}

/** One STAR weight per token of a tokenized example (unshifted; see the header for the rules). */
export function starWeightsOf(tokenized: TokenizedExample, annotation: StarAnnotation, tokenizer: Tokenizer): number[] {
  const boundaries = starBoundaries(tokenized, annotation, tokenizer);
  const weights = new Array<number>(tokenized.ids.length).fill(1);
  if (annotation.scores.length === 0) {
    for (let i = tokenized.start; i < weights.length; i++) weights[i] = annotation.verdict;
    return weights;
  }
  annotation.scores.forEach((score, k) => {
    for (let i = boundaries[k]; i < boundaries[k + 1]; i++) weights[i] = score;
  });
  return weights;
}

/**
 * One STAR weight per token of the example's full chat rendering, indexed by sequence position (NOT
 * shifted to labels: makeBatch does that). Validates that the annotation belongs to this response.
 */
export function starWeights(example: Pick<Example, 'id' | 'messages'>, annotation: StarAnnotation, tokenizer: Tokenizer): number[] {
  const tokenized = tokenizeExample(example, tokenizer);
  checkAnnotation(example.id, tokenized, annotation);
  return starWeightsOf(tokenized, annotation, tokenizer);
}

/** An example as a training sequence; with an annotation, STAR weights and the verdict too. */
export function toTrainExample(example: Pick<Example, 'id' | 'messages'>, tokenizer: Tokenizer, annotation?: StarAnnotation): TrainExample {
  const tokenized = tokenizeExample(example, tokenizer);
  const { ids, start, end } = tokenized;
  const responseMask = ids.map((_, i) => (i >= start && i < end ? 1 : 0));
  if (!annotation) return { ids, responseMask };
  checkAnnotation(example.id, tokenized, annotation);
  return { ids, responseMask, weights: starWeightsOf(tokenized, annotation, tokenizer), verdict: annotation.verdict };
}
