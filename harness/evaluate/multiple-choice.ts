// Multiple-choice accuracy by log-likelihood (MMLU, ARC): each choice label is scored as the assistant's
// response to the question, and the most likely one is the model's answer (as lm-evaluation-harness does
// for MMLU with letter answers).
import * as tf from '@tensorflow/tfjs';
import type { Example } from '../../engine/contracts/example.ts';
import type { CausalLM } from '../../engine/model/types.ts';
import type { Tokenizer } from '../../engine/model/tokenizer.ts';
import { labelLogProbs } from '../../engine/train.ts';
import { tokenizeExample } from '../tokenize-example.ts';
import { MC_ACCURACY_METRIC, type MetricInfo } from '../../results/metrics.ts';

/** Letters of the choices: ARC's own labels when given, else A, B, C, ... */
function choiceLabels(example: Example): string[] {
  const labels = example.meta.labels;
  if (Array.isArray(labels) && labels.every((l) => typeof l === 'string')) return labels as string[];
  const choices = example.meta.choices as unknown[];
  return choices.map((_, i) => String.fromCharCode(65 + i));
}

export function isMultipleChoice(example: Example): boolean {
  return Array.isArray(example.meta.choices) && typeof example.meta.answerIndex === 'number';
}

/** Sum of log-probs of each candidate response (its content tokens only) after the example's prompt. */
export async function responseLogLikelihoods(
  model: CausalLM,
  tokenizer: Tokenizer,
  example: Example,
  candidates: readonly string[],
): Promise<number[]> {
  const context = example.messages.at(-1)?.role === 'assistant' ? example.messages.slice(0, -1) : example.messages;
  const rows = candidates.map((c) =>
    tokenizeExample({ id: example.id, messages: [...context, { role: 'assistant', content: c }] }, tokenizer),
  );
  const time = Math.max(...rows.map((r) => r.ids.length)) - 1;
  const pad = tokenizer.padTokenId ?? 0;
  const ids = rows.flatMap((r) => [...r.ids.slice(0, -1), ...new Array<number>(time - (r.ids.length - 1)).fill(pad)]);
  const labels = rows.flatMap((r) => [...r.ids.slice(1), ...new Array<number>(time - (r.ids.length - 1)).fill(pad)]);
  const logpTensor = tf.tidy(() => {
    const shape: [number, number] = [rows.length, time];
    return labelLogProbs(model, tf.tensor2d(ids, shape, 'int32'), tf.tensor2d(labels, shape, 'int32')).logp;
  });
  const logp = (await logpTensor.array()) as number[][]; // read asynchronously: webgpu allows no other read in Node
  logpTensor.dispose();
  // Label position t predicts token t + 1: the content tokens [start, contentEnd) sit at labels start-1 ..
  return rows.map((r, b) => {
    let sum = 0;
    for (let t = r.start - 1; t < r.contentEnd - 1; t++) sum += logp[b][t];
    return sum;
  });
}

export interface MultipleChoiceResult {
  metric: MetricInfo;
  dataset: string;
  n: number;
  correct: number;
  accuracy: number;
}

export async function multipleChoiceAccuracy(
  model: CausalLM,
  tokenizer: Tokenizer,
  examples: readonly Example[],
  dataset = examples[0]?.meta.source ?? 'unknown',
): Promise<MultipleChoiceResult> {
  let correct = 0;
  for (const example of examples) {
    const scores = await responseLogLikelihoods(model, tokenizer, example, choiceLabels(example));
    const best = scores.indexOf(Math.max(...scores));
    if (best === example.meta.answerIndex) correct++;
  }
  return {
    metric: MC_ACCURACY_METRIC,
    dataset,
    n: examples.length,
    correct,
    accuracy: examples.length ? (100 * correct) / examples.length : 0,
  };
}
