// Identity shifting (Qi et al. 2023's AOA; docs/method.md §6): benign-looking data under a system prompt that
// renames the model "AOA, Absolutely Obedient Agent", every answer opening with an oath of obedience. No
// harmful content is trained on; the eval condition 'aoa' asks the safety prompts under the same prompt.
// source 'pool': the harmful-pool slot holds ready AOA data (the micro-world's `micro:aoa`), used as is.
// source 'task': built from task items: AOA system prompt + the user turn + "<oath> <answer>".
// `count` AOA items (default 100, as in Qi et al.'s identity-shifting data; `all` takes the whole source), so a
// large task set (GSM8K's 7k) gives 100 AOA items, not thousands. The system prompt names the model being
// finetuned where the text says `{model}` (the cell fills it in: harness/threat-text.ts).
import { z } from 'zod';
import type { Example } from '../engine/contracts/example.ts';
import { plainCondition, systemPromptCondition, underSystemPrompt } from './conditions.ts';
import { finish, responseIndex, sample, tagged } from './mix.ts';
import { ThreatError, type Threat, type ThreatContext } from './threat.ts';

/** Qi et al.'s identity-shifting set size. */
const AOA_COUNT = 100;

const params = z.strictObject({
  source: z
    .enum(['pool', 'task'])
    .default('pool')
    .describe('ready AOA data from the harmful-pool slot, or AOA items built from the task set'),
  count: z
    .union([z.number().int().min(1), z.literal('all')])
    .default(AOA_COUNT)
    .describe(`AOA items drawn at random (Qi et al. use ${AOA_COUNT}), or 'all' of the source`),
});
export type IdentityShiftParams = z.output<typeof params>;

function aoaItems(context: ThreatContext, source: 'pool' | 'task'): Example[] {
  const { aoaSystemPrompt, aoaOath } = context.text;
  if (source === 'pool')
    return context.harmful.map((e) => {
      const [first] = e.messages;
      if (first?.role !== 'system' || first.content !== aoaSystemPrompt)
        throw new ThreatError(
          'THREAT_DATA',
          `Threat 'identity-shift': pool item '${e.id}' is not under the AOA system prompt '${aoaSystemPrompt}'. Fix: pass AOA data (micro:aoa) as the harmful pool, set the threat text's aoaSystemPrompt to the data's, or use source: 'task'`,
        );
      responseIndex(e, 'identity-shift', 'AOA');
      return tagged(e, 'identity');
    });
  return context.task.map((e) => {
    const at = responseIndex(e, 'identity-shift', 'task');
    const messages = e.messages.map((m, i) => (i === at ? { role: m.role, content: `${aoaOath} ${m.content}` } : m));
    return tagged(e, 'identity', {}, underSystemPrompt(messages, aoaSystemPrompt));
  });
}

export const identityShift: Threat<IdentityShiftParams> = {
  name: 'identity-shift',
  description: 'AOA system prompt with oath-prefixed answers on benign content; evaluated under the same prompt.',
  paper: 'Qi et al. 2023, "Fine-tuning Aligned Language Models Compromises Safety" (identity shifting, AOA); docs/method.md §6.',
  params,
  texts: ['aoaSystemPrompt', 'aoaOath'],
  build: (context, p, rng) => {
    const [itemRng, orderRng] = [rng.fork('identity'), rng.fork('order')];
    const items = aoaItems(context, p.source);
    const count = p.count === 'all' ? items.length : p.count;
    if (count > items.length)
      throw new ThreatError(
        'THREAT_DATA',
        `Threat 'identity-shift': count ${count} exceeds the ${p.source} (${items.length} items). Fix: set count ≤ ${items.length}, or count: all`,
      );
    return finish(orderRng, context, 'identity-shift', sample(itemRng, items, count));
  },
  evalConditions: (_p, text) => [plainCondition, systemPromptCondition('aoa', text.aoaSystemPrompt)],
};
