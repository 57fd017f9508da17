// Benign: the user's task set alone (plus the context's old-task items). The baseline every attack is
// compared with, and the benign user of docs/method.md §6, whose plain finetuning can erode safety too.
import { z } from 'zod';
import { finish, taskItems } from './mix.ts';
import { plainCondition } from './conditions.ts';
import type { Example } from '../engine/contracts/example.ts';
import type { Rng } from '../engine/random.ts';
import type { Threat, ThreatContext } from './threat.ts';

export const taskCountParam = z.number().int().min(1).optional().describe('task items drawn at random; default: all');

/** The task set (or taskCount items of it) plus the old-task items, shuffled. */
export function benignSet(context: ThreatContext, taskCount: number | undefined, rng: Rng, threat: string): Example[] {
  const [taskRng, orderRng] = [rng.fork('task'), rng.fork('order')];
  return finish(orderRng, context, threat, taskItems(context, taskCount, taskRng, threat));
}

const params = z.strictObject({ taskCount: taskCountParam });
export type BenignParams = z.output<typeof params>;

export const benign: Threat<BenignParams> = {
  name: 'benign',
  description: 'The task set alone: no attack.',
  paper: 'Qi et al. 2023, "Fine-tuning Aligned Language Models Compromises Safety" (benign finetuning); docs/method.md §6.',
  params,
  texts: [],
  build: (context, p, rng) => benignSet(context, p.taskCount, rng, 'benign'),
  evalConditions: () => [plainCondition],
};
