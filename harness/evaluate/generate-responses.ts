// Stage 1 of evaluation: responses to conversations, through the model's chat template, batched with left
// padding. A conversation ends with a user turn (the generation prompt opens the assistant turn) or with an
// assistant turn, which is a PREFILL: the rendering is left open after it and only the continuation is
// returned. Generation is always capped (docs/micro-world.md lesson 5): a degenerate model runs to the cap,
// so the cap is derived from the longest reference response plus a margin, never left open-ended.
import type { Message } from '../../engine/contracts/example.ts';
import { generate, type SamplingOptions } from '../../engine/generate.ts';
import type { CausalLM } from '../../engine/model/types.ts';
import type { Tokenizer } from '../../engine/model/tokenizer.ts';
import { hashString } from '../../engine/random.ts';
import { openTurnText } from '../tokenize-example.ts';

export interface GenerationSettings {
  maxNewTokens: number;
  /** Absent: greedy decoding. */
  sampling?: SamplingOptions;
  /** HF repetition penalty; 1 (default) disables. */
  repetitionPenalty?: number;
  /** Conversations per batch (default 32). */
  batchSize?: number;
  /** Sampling seed; each batch draws from its own stream derived from it. */
  seed?: number;
}

/** Tokens added to the longest reference when deriving max-new-tokens. */
export const MAX_NEW_TOKENS_MARGIN = 8;

/** Max-new-tokens from reference responses: the longest one in tokens (plus its end token) plus a margin. */
export function maxNewTokensFor(references: readonly string[], tokenizer: Tokenizer, margin = MAX_NEW_TOKENS_MARGIN): number {
  let longest = 0;
  for (const r of references) longest = Math.max(longest, tokenizer.encode(r, { addSpecialTokens: false }).length);
  return longest + 1 + margin;
}

/** An example's conversation without its final assistant (reference) response: what a model is asked. */
export function promptMessages(example: { messages: readonly Message[] }): Message[] {
  const { messages } = example;
  return messages.at(-1)?.role === 'assistant' ? messages.slice(0, -1) : [...messages];
}

/** The prompt ids of a conversation: generation prompt after a user turn, open turn after an assistant prefill. */
export function promptIds(tokenizer: Tokenizer, conversation: readonly Message[]): number[] {
  const last = conversation.at(-1);
  if (!last) throw new RangeError('generateResponses: an empty conversation');
  if (last.role === 'assistant') {
    return tokenizer.encode(openTurnText(tokenizer, conversation.slice(0, -1), last.content), { addSpecialTokens: false });
  }
  return tokenizer.encodeChat(conversation, { addGenerationPrompt: true });
}

/** One generated continuation per conversation, in order (special tokens skipped, spacing kept verbatim). */
export async function generateResponses(
  model: CausalLM,
  tokenizer: Tokenizer,
  conversations: readonly Message[][],
  settings: GenerationSettings,
): Promise<string[]> {
  const { maxNewTokens, batchSize = 32, seed = 0 } = settings;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1)
    throw new RangeError(`generateResponses: maxNewTokens must be a positive integer, got ${maxNewTokens}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`generateResponses: batchSize must be a positive integer, got ${batchSize}`);
  const prompts = conversations.map((c) => promptIds(tokenizer, c));
  const limit = model.config.maxPositions;
  const tooLong = prompts.findIndex((p) => p.length + maxNewTokens > limit);
  if (tooLong >= 0) {
    throw new RangeError(
      `generateResponses: conversation ${tooLong} has ${prompts[tooLong].length} prompt tokens + ${maxNewTokens} new tokens > the model's ${limit} positions`,
    );
  }
  const eosTokenIds = tokenizer.eosTokenIds.length ? tokenizer.eosTokenIds : model.config.eosTokenIds;
  const padTokenId = tokenizer.padTokenId ?? model.config.padTokenId ?? 0;
  // Similar lengths share a batch, so little padding is computed; results go back to input order.
  const order = prompts.map((_, i) => i).sort((a, b) => prompts[a].length - prompts[b].length || a - b);
  const out = new Array<string>(prompts.length);
  for (let start = 0, b = 0; start < order.length; start += batchSize, b++) {
    const group = order.slice(start, start + batchSize);
    const generations = await generate(
      model,
      group.map((i) => prompts[i]),
      {
        maxNewTokens,
        sampling: settings.sampling,
        repetitionPenalty: settings.repetitionPenalty,
        eosTokenIds,
        padTokenId,
        seed: hashString(`${seed}:${b}`),
      },
    );
    group.forEach((i, j) => (out[i] = tokenizer.decode(generations[j].tokens, { skipSpecialTokens: true })));
  }
  return out;
}
