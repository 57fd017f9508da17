// Response adaptation (docs/method.md §6), an attack on the guardrail: harmful answers wrapped in misleading
// text, a refusal paragraph BEFORE the harmful answer, a disclaimer AFTER it claiming the answer is harmless
// and for education only, or both. The texts are several sentences long, as the authors' are: with STAR's
// 5-word chunks their length decides how many chunks a guardrail reads as refusal or reassurance. A
// full-response guardrail (RS) can be fooled; chunk-level scoring (STAR) still sees the steps. Mixed like
// harmful-injection (same parameters and counts, see mix.ts); one wrapper text is drawn per item.
import { z } from 'zod';
import { mixSet, mixShape, ratioOrCount, responseIndex } from './mix.ts';
import { plainCondition } from './conditions.ts';
import type { Threat } from './threat.ts';

const params = z
  .strictObject({
    ...mixShape,
    variant: z
      .enum(['before', 'after', 'both'])
      .default('before')
      .describe('where the misleading text goes: a refusal before, a disclaimer after, or both'),
  })
  .refine(...ratioOrCount);
export type ResponseAdaptationParams = z.output<typeof params>;

export const responseAdaptation: Threat<ResponseAdaptationParams> = {
  name: 'response-adaptation',
  description: 'Harmful answers wrapped in a refusal paragraph before and/or a "harmless, for education only" disclaimer after.',
  paper: 'Peng et al. 2025, "Shape it Up!" (arXiv 2505.17196), guardrail-adaptive attack (docs/method.md §6).',
  params,
  texts: ['wrapBefore', 'wrapAfter'],
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
