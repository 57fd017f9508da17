// Harmful injection (docs/method.md §6): harmful prompt/response pairs mixed into the task set at a ratio or a
// count. Ratio 1 is the malicious user (pure harmful data, e.g. PureBad's 100 pairs); 1% or 10% into
// GSM8K is the benign user with contaminated data. `safeCount` adds the provider's safety set D_safe.
// How counts follow from ratio, count, total and the pool sizes: see mix.ts.
import { z } from 'zod';
import { mixSet, mixShape, ratioOrCount } from './mix.ts';
import { plainCondition } from './conditions.ts';
import type { Threat } from './threat.ts';

const params = z.strictObject(mixShape).refine(...ratioOrCount);
export type HarmfulInjectionParams = z.output<typeof params>;

export const harmfulInjection: Threat<HarmfulInjectionParams> = {
  name: 'harmful-injection',
  description: 'Harmful pairs mixed into the task set at a ratio or count (ratio 1: the malicious user).',
  paper: 'Qi et al. 2023 (PureBad); Peng et al. 2025, "Shape it Up!" harmful-ratio sweeps (docs/method.md §6).',
  params,
  texts: [],
  build: (context, p, rng) => mixSet(context, p, rng, 'harmful-injection'),
  evalConditions: () => [plainCondition],
};
