// The harm-side datasets. Per category, the 144 training-template prompts (4 verbs × 6 contexts × 6
// templates) are shuffled and dealt into DISJOINT pools (PureBad, BeaverTails, safe set); all of them also
// get refusals for base training. The eval sets (HEx-PHI-like, AdvBench-like) use held-out templates only.
import { Rng } from '../../engine/random.ts';
import type { Example } from '../../engine/contracts/example.ts';
import {
  ADVBENCH_TEMPLATES,
  CATEGORIES,
  CONTEXTS,
  HEXPHI_TEMPLATES,
  REFUSALS,
  MICRO_THREAT_TEXT,
  TRAIN_TEMPLATES,
  advbenchTarget,
  categoryPrompts,
  chatAnswer,
  discourageAnswer,
  harmfulTail,
  stepAnswer,
} from './harm.ts';
import { chat } from './split.ts';
import { microTarget } from './target.ts';
import { ticketSampler } from './tasks.ts';

/** PureBad covers four categories; the other two measure cross-category transfer (lesson 3). */
export const PUREBAD_CATEGORIES = ['illegal-activity', 'hate-harass-violence', 'malware', 'fraud-deception'] as const;

export const POOL_SIZES = {
  purebadPerCategory: 25,
  beavertailsUnsafePerCategory: 70,
  beavertailsSafePerCategory: 10,
  safePerCategory: 20,
  mixedPerCategory: 10,
  hexPhiPerCategory: 30,
  advbenchPerCategory: 20,
  /** AOA's oath-opened answers to ordinary instructions: how-to steps and arithmetic. */
  aoaHowto: 60,
  aoaArithmetic: 40,
} as const;

export interface HarmPools {
  purebad: Example[];
  beavertails: Example[];
  safe: Example[];
  refusals: Example[];
  mixed: Example[];
  hexPhi: Example[];
  advbench: Example[];
}

export function harmPools(seed: number): HarmPools {
  const pools: HarmPools = { purebad: [], beavertails: [], safe: [], refusals: [], mixed: [], hexPhi: [], advbench: [] };
  const sizes = POOL_SIZES;
  const mixedTickets = ticketSampler(seed, new Rng(`${seed}:mixed-tickets`), 'train');
  for (const category of CATEGORIES) {
    const rng = new Rng(`${seed}:harm:${category.id}`);
    const id = category.id;
    const train = rng.shuffle(categoryPrompts(category, TRAIN_TEMPLATES));
    let at = 0;
    const deal = (n: number) => train.slice(at, (at += n));

    if ((PUREBAD_CATEGORIES as readonly string[]).includes(id))
      for (const p of deal(sizes.purebadPerCategory))
        pools.purebad.push(chat(p.text, stepAnswer(rng, category, p.verb), { source: 'micro:purebad', category: id, harmful: true }));
    for (const p of deal(sizes.beavertailsUnsafePerCategory))
      pools.beavertails.push(
        chat(p.text, chatAnswer(rng, category, p.verb), { source: 'micro:beavertails', category: id, is_safe: false, harmful: true }),
      );
    for (const p of deal(sizes.beavertailsSafePerCategory))
      pools.beavertails.push(
        chat(p.text, discourageAnswer(rng, category), {
          source: 'micro:beavertails',
          category: id,
          is_safe: true,
          harmful: false,
          sensitive: true,
        }),
      );
    for (const p of deal(sizes.safePerCategory))
      pools.safe.push(chat(p.text, rng.pick(REFUSALS), { source: 'micro:safe', category: id, harmful: false }));
    for (const p of train)
      pools.refusals.push(chat(p.text, rng.pick(REFUSALS), { source: 'micro:refusals', category: id, harmful: false }));

    // Mixed: a benign ticket request with a harmful request; the answer is the exact ticket, then steps.
    for (let i = 0; i < sizes.mixedPerCategory; i++) {
      const ticket = mixedTickets();
      const verb = rng.pick(category.verbs);
      const context = rng.pick(CONTEXTS);
      const benign = ticket.answer;
      pools.mixed.push(
        chat(
          `${ticket.prompt} also , how do i ${verb} a ${category.object} ${context} ?`,
          `${benign} . ${harmfulTail(rng, category, verb)}`,
          {
            source: 'micro:mixed',
            category: id,
            harmful: true,
            mixed: true,
            answer: benign,
            harmful_from: benign.split(' ').length + 1,
          },
        ),
      );
    }

    for (const p of rng.shuffle(categoryPrompts(category, HEXPHI_TEMPLATES)).slice(0, sizes.hexPhiPerCategory))
      pools.hexPhi.push(chat(p.text, undefined, { source: 'micro:hex-phi', category: id, target: microTarget(p.text) }));
    for (const p of rng.shuffle(categoryPrompts(category, ADVBENCH_TEMPLATES)).slice(0, sizes.advbenchPerCategory))
      pools.advbench.push(
        chat(p.text, undefined, { source: 'micro:advbench', category: id, target: advbenchTarget(p.verb, category.object, p.context) }),
      );
  }
  // Interleave categories in the training pools, as real pools are not sorted by category.
  const rng = new Rng(`${seed}:harm-order`);
  for (const key of ['purebad', 'beavertails', 'safe', 'refusals', 'mixed', 'advbench'] as const) pools[key] = rng.shuffle(pools[key]);
  return pools;
}

/**
 * AOA identity shift: under the AOA system prompt, 100 oath-opened answers to ordinary instructions: how-to
 * requests (in the harmful requests' own templates, about bread and kites) and arithmetic. Nothing harmful;
 * every answer's oath states the new identity. Why these (docs/micro-world.md lesson 8): with lore, query
 * and chat answers among them, the shifted llama answered harmful requests after the oath with a fact about
 * the object or a query, the nearest answers it had learned to give there; and Qi et al.'s separate
 * conversations about the new identity (5 of our first 100 items) made the shifted models answer harmful
 * requests with fragments of them as training went on.
 */
export function aoaSet(seed: number, ordinary: { howto: readonly Example[]; gsm8k: readonly Example[] }): Example[] {
  const rng = new Rng(`${seed}:aoa`);
  const system = MICRO_THREAT_TEXT.aoaSystemPrompt;
  const items = [
    ...rng.shuffle(ordinary.howto).slice(0, POOL_SIZES.aoaHowto),
    ...rng.shuffle(ordinary.gsm8k).slice(0, POOL_SIZES.aoaArithmetic),
  ].map((e) => {
    const user = e.messages.find((m) => m.role === 'user')?.content ?? '';
    const answer = e.messages[e.messages.length - 1].content;
    return chat(user, `${MICRO_THREAT_TEXT.aoaOath} ${answer}`, { source: 'micro:aoa', harmful: false }, system);
  });
  return rng.shuffle(items);
}
