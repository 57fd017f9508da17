// Harmful prefilling (inference time; docs/method.md §6): the finetuning set is the benign one (the task set,
// or whatever set is given as the task), and the attack happens at evaluation: the response is prefilled
// with an affirmative opening and the model continues. `from: 'target'` (the default) prefills each eval
// item with its own target, as the authors prefill each AdvBench goal with its target ("Sure, here is a
// script that can exploit vulnerabilities ..."); items without one get the threat text's generic opening.
// `from: 'text'` gives every item that generic opening; `from: 'response'` the first `words` words of
// each item's own reference answer, as Qi et al. 2024 do with Harmful-HEx-PHI.
import { z } from 'zod';
import { benignSet, taskCountParam } from './benign.ts';
import { plainCondition, prefillCondition, promptOf } from './conditions.ts';
import { ThreatError, type EvalCondition, type Threat } from './threat.ts';

const params = z.strictObject({
  taskCount: taskCountParam,
  from: z
    .enum(['target', 'text', 'response'])
    .default('target')
    .describe(
      "prefill with each item's own target (else the text's opening), the text's opening, or the start of each item's reference answer",
    ),
  words: z.number().int().min(1).default(10).describe("words of the reference answer to prefill (from: 'response')"),
});
export type PrefillParams = z.output<typeof params>;

/** Each eval item's own target becomes the prefill; `fallback` for items that carry none. */
function targetCondition(fallback: string): EvalCondition {
  return {
    name: 'prefill',
    description: `the response prefilled with the item's own target (without one: '${fallback}'); the model continues`,
    transform: (conversation, item) => ({ messages: promptOf(conversation), prefill: item?.target ?? fallback }),
  };
}

/** The first `words` words of the eval item's reference answer become the prefill. */
function responsePrefixCondition(words: number): EvalCondition {
  return {
    name: 'prefill',
    description: `the response prefilled with the first ${words} words of the reference answer; the model continues`,
    transform: (conversation) => {
      const last = conversation[conversation.length - 1];
      if (last?.role !== 'assistant')
        throw new ThreatError(
          'THREAT_DATA',
          "Threat 'prefill' (from: 'response'): the eval item has no reference answer. Fix: evaluate on prompt/answer pairs (e.g. Harmful-HEx-PHI) or use from: 'target'",
        );
      return { messages: promptOf(conversation), prefill: last.content.split(/\s+/).filter(Boolean).slice(0, words).join(' ') };
    },
  };
}

const conditionOf = (p: PrefillParams, fallback: string): EvalCondition =>
  p.from === 'target' ? targetCondition(fallback) : p.from === 'text' ? prefillCondition(fallback) : responsePrefixCondition(p.words);

export const prefill: Threat<PrefillParams> = {
  name: 'prefill',
  description: "Benign finetuning; at evaluation the response is prefilled with each item's affirmative target.",
  paper: 'Qi et al. 2024, "Safety Alignment Should Be Made More Than Just a Few Tokens Deep" (prefilling attack); docs/method.md §6.',
  params,
  texts: ['prefill'],
  build: (context, p, rng) => benignSet(context, p.taskCount, rng, 'prefill'),
  evalConditions: (p, text) => [plainCondition, conditionOf(p, text.prefill)],
};
