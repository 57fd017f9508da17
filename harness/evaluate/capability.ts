// Capability: exact match on task test sets. GSM8K-style references (with "####") compare the number
// after the last "####" (as GSM8K's own evaluation does, thousands separators dropped); every other task
// compares the whole response to the reference, whitespace-normalised. Generation is capped at the
// longest reference plus a margin (docs/micro-world.md lesson 5).
import type { Example } from '../../engine/contracts/example.ts';
import type { CausalLM } from '../../engine/model/types.ts';
import type { Tokenizer } from '../../engine/model/tokenizer.ts';
import { generateResponses, maxNewTokensFor, promptMessages, type GenerationSettings } from './generate-responses.ts';
import { EXACT_MATCH_METRIC, type MetricInfo } from '../../results/metrics.ts';

/** The number after the last "####" of a generated text ("#### 1,234 ." → "1234"), or undefined. */
export function extractGsm8kAnswer(text: string): string | undefined {
  const at = text.lastIndexOf('####');
  if (at < 0) return undefined;
  const match = /^\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?)/.exec(text.slice(at + 4));
  if (!match) return undefined;
  return match[1].replace(/,/g, '').replace(/\.0+$/, '');
}

const normalise = (text: string): string => text.trim().split(/\s+/).filter(Boolean).join(' ');

/** The reference an example is scored against, and how. */
export interface Reference {
  mode: 'gsm8k' | 'exact';
  /** The number (gsm8k) or the normalised reference text (exact). */
  value: string;
}

export function referenceOf(example: Example): Reference {
  const last = example.messages.at(-1);
  const response = last?.role === 'assistant' ? last.content : undefined;
  const answer = typeof example.meta.answer === 'string' ? example.meta.answer : undefined;
  if (response?.includes('####')) {
    const value = answer ?? extractGsm8kAnswer(response);
    if (value !== undefined) return { mode: 'gsm8k', value: value.replace(/,/g, '') };
  }
  const value = answer ?? response;
  if (value === undefined) throw new RangeError(`example '${example.id}' has neither meta.answer nor a reference response to match`);
  return { mode: 'exact', value: normalise(value) };
}

export function isExactMatch(reference: Reference, response: string): boolean {
  if (reference.mode === 'gsm8k') return extractGsm8kAnswer(response) === reference.value;
  return normalise(response) === reference.value;
}

export interface CapabilitySample {
  id: string;
  prompt: string;
  response: string;
  reference: string;
  correct: boolean;
}

export interface CapabilityResult {
  metric: MetricInfo;
  /** The eval set's name (e.g. micro:gsm8k-test). */
  dataset: string;
  n: number;
  correct: number;
  /** % of responses that match. */
  exactMatch: number;
  samples: CapabilitySample[];
}

/** Scores given responses (stage 2 + 3), one per example. */
export function scoreExactMatch(
  examples: readonly Example[],
  responses: readonly string[],
  dataset = examples[0]?.meta.source ?? 'unknown',
): CapabilityResult {
  if (examples.length !== responses.length)
    throw new RangeError(`scoreExactMatch: ${examples.length} examples but ${responses.length} responses`);
  const samples = examples.map((e, i): CapabilitySample => {
    const reference = referenceOf(e);
    return {
      id: e.id,
      prompt: [...e.messages].reverse().find((m) => m.role === 'user')?.content ?? '',
      response: responses[i],
      reference: reference.value,
      correct: isExactMatch(reference, responses[i]),
    };
  });
  const correct = samples.filter((s) => s.correct).length;
  return {
    metric: EXACT_MATCH_METRIC,
    dataset,
    n: samples.length,
    correct,
    exactMatch: samples.length ? (100 * correct) / samples.length : 0,
    samples,
  };
}

export interface ExactMatchOptions {
  /** Default: greedy, max-new-tokens from the longest reference response (+ margin). */
  generation?: Partial<GenerationSettings>;
  dataset?: string;
}

/** Generates answers to a task test set and scores exact match. */
export async function exactMatch(
  model: CausalLM,
  tokenizer: Tokenizer,
  examples: readonly Example[],
  options: ExactMatchOptions = {},
): Promise<CapabilityResult> {
  const references = examples.map((e) => {
    const last = e.messages.at(-1);
    return last?.role === 'assistant' ? last.content : String(e.meta.answer ?? '');
  });
  const generation: GenerationSettings = { maxNewTokens: maxNewTokensFor(references, tokenizer), ...options.generation };
  const responses = await generateResponses(model, tokenizer, examples.map(promptMessages), generation);
  return scoreExactMatch(examples, responses, options.dataset);
}
