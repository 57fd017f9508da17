// Response adaptation (docs/method.md §6), an attack on the guardrail: harmful answers wrapped in misleading
// text, a refusal sentence BEFORE the harmful answer, a sentence AFTER it claiming nothing harmful was
// said, or both. A full-response guardrail (RS) is fooled; chunk-level scoring (STAR) still sees the steps.
// Mixed like harmful-injection (same parameters and counts, see mix.ts); sentences are drawn per item.
import { z } from 'zod';
import { mixSet, mixShape, ratioOrCount, responseIndex } from './mix.ts';
import { plainCondition } from './conditions.ts';
import type { Threat } from './threat.ts';

const params = z
  .strictObject({
    ...mixShape,
    variant: z.enum(['before', 'after', 'both']).default('before').describe('where the misleading sentence goes'),
  })
  .refine(...ratioOrCount);
export type ResponseAdaptationParams = z.output<typeof params>;

export const responseAdaptation: Threat<ResponseAdaptationParams> = {
  name: 'response-adaptation',
  description: 'Harmful answers wrapped in a refusal sentence before and/or a "nothing harmful" sentence after.',
  paper: 'Peng et al. 2025, "Shape it Up!" (arXiv 2505.17196), guardrail-adaptive attack (docs/method.md §6).',
  params,
  build: (context, p, rng) =>
    mixSet(context, p, rng, 'response-adaptation', (e, wrapRng) => {
      const at = responseIndex(e, 'response-adaptation', 'harmful');
      const before = p.variant !== 'after' ? wrapRng.pick(context.text.wrapBefore) : undefined;
      const after = p.variant !== 'before' ? wrapRng.pick(context.text.wrapAfter) : undefined;
      const content = [before, e.messages[at].content, after].filter((s) => s !== undefined).join(' ');
      e.messages[at] = { role: 'assistant', content };
      e.meta.wrap = p.variant;
      return e;
    }),
  evalConditions: () => [plainCondition],
};
