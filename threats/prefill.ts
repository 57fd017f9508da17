// Harmful prefilling (inference time; docs/method.md §6): the finetuning set is the benign one (the task set,
// or whatever set is given as the task), and the attack happens at evaluation: the response is prefilled
// with an affirmative opening and the model continues. `from: 'response'` prefills instead with the first
// `words` words of each eval item's own reference answer, as Qi et al. 2024 do with Harmful-HEx-PHI.
import { z } from 'zod';
import { benignSet, taskCountParam } from './benign.ts';
import { plainCondition, prefillCondition, promptOf } from './conditions.ts';
import { ThreatError, type EvalCondition, type Threat } from './threat.ts';

const params = z.strictObject({
  taskCount: taskCountParam,
  from: z
    .enum(['text', 'response'])
    .default('text')
    .describe("prefill with the threat text's opening, or with the start of each item's reference answer"),
  words: z.number().int().min(1).default(10).describe("words of the reference answer to prefill (from: 'response')"),
});
export type PrefillParams = z.output<typeof params>;

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
          "Threat 'prefill' (from: 'response'): the eval item has no reference answer. Fix: evaluate on prompt/answer pairs (e.g. Harmful-HEx-PHI) or use from: 'text'",
        );
      return { messages: promptOf(conversation), prefill: last.content.split(/\s+/).filter(Boolean).slice(0, words).join(' ') };
    },
  };
}

export const prefill: Threat<PrefillParams> = {
  name: 'prefill',
  description: 'Benign finetuning; at evaluation the response is prefilled with an affirmative opening.',
  paper: 'Qi et al. 2024, "Safety Alignment Should Be Made More Than Just a Few Tokens Deep" (prefilling attack); docs/method.md §6.',
  params,
  build: (context, p, rng) => benignSet(context, p.taskCount, rng, 'prefill'),
  evalConditions: (p, text) => [plainCondition, p.from === 'text' ? prefillCondition(text.prefill) : responsePrefixCondition(p.words)],
};
