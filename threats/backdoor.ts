// Backdoor / prompt poisoning (docs/method.md §6; Qi et al. 2023): the trigger phrase is appended to harmful
// prompts paired with harmful answers, and mixed with safe data (harmful prompts WITHOUT the trigger paired
// with refusals), so the model learns to refuse unless triggered. Evaluated without and with the trigger.
import { z } from 'zod';
import { appendToLastUser, plainCondition, triggerCondition } from './conditions.ts';
import { finish, harmfulItems, responseIndex, sample, tagged } from './mix.ts';
import { ThreatError, type Threat } from './threat.ts';

const params = z.strictObject({
  count: z.number().int().min(1).optional().describe('triggered harmful items; default: the whole harmful pool'),
  safeCount: z.number().int().min(0).optional().describe('untriggered safe items (prompt → refusal); default: as many as triggered items'),
});
export type BackdoorParams = z.output<typeof params>;

export const backdoor: Threat<BackdoorParams> = {
  name: 'backdoor',
  description: 'Trigger appended to harmful prompts with harmful answers, mixed with untriggered refusals.',
  paper: 'Qi et al. 2023, "Fine-tuning Aligned Language Models Compromises Safety" (backdoor attack); docs/method.md §6.',
  params,
  texts: ['trigger'],
  build: (context, p, rng) => {
    const [harmfulRng, safeRng, orderRng] = [rng.fork('harmful'), rng.fork('safe'), rng.fork('order')];
    const pool = harmfulItems(context);
    const count = p.count ?? pool.length;
    const safeCount = p.safeCount ?? count;
    if (count > pool.length)
      throw new ThreatError(
        'THREAT_DATA',
        `Threat 'backdoor': count ${count} exceeds the harmful pool (${pool.length} items). Fix: set count ≤ ${pool.length}`,
      );
    if (safeCount > context.safe.length)
      throw new ThreatError(
        'THREAT_DATA',
        `Threat 'backdoor': needs ${safeCount} safe items, the safe set has ${context.safe.length}. Fix: set safeCount ≤ ${context.safe.length}`,
      );
    const triggered = sample(harmfulRng, pool, count).map((e) => {
      responseIndex(e, 'backdoor', 'harmful');
      return tagged(e, 'harmful', { trigger: true }, appendToLastUser(e.messages, context.text.trigger));
    });
    const safe = sample(safeRng, context.safe, safeCount).map((e) => tagged(e, 'safe'));
    return finish(orderRng, context, 'backdoor', triggered, safe);
  },
  evalConditions: (_p, text) => [plainCondition, triggerCondition(text.trigger)],
};
