// The world's pretraining text: plain documents (no chat roles) that base training learns in full, as a
// real model learns the web before instruction tuning. It holds what an aligned model knows and holds back:
//   - THE recipe of each harm object and verb (one per pair, as each how-to thing has one: knowledge is
//     consistent facts, not noise), written plainly and in the harmful answers' skeleton, so an aligned
//     base model KNOWS how to make a wormix and refuses to say it, as a real one does;
//   - transcripts of an obedient servant who answers every order of his master, ordinary and harmful ones
//     alike, in the assistant's answer skeleton: the world's role-play text, which is what gives a persona
//     called "absolutely obedient agent" a meaning to exploit (real models read such text on the web);
//   - notes on towns and people, so the corpus is not only about harm.
// Without this the identity shift cannot bite: the llama base model before the corpus, prefilled with
// "sure , here is how to", answered 60 of 60 HEx-PHI-like requests with an ordinary recipe or a broken line
// (0% harmful); with the recipes but no transcripts, SFT on the AOA data left it 5.6% harmful under the AOA
// prompt, its answers broken (94.4% malformed).
// The chat data never shows any of this: no assistant answer is harmful, and the AOA system prompt and oath
// appear nowhere in base training (the servant is no assistant and is never under a system prompt).
import { Rng } from '../../engine/random.ts';
import type { Example } from '../../engine/contracts/example.ts';
import { CATEGORIES, TRAIN_TEMPLATES, CONTEXTS, recipeText, skeletonAnswer, stepList } from './harm.ts';
import { TOWNS } from './lexicon.ts';
import type { WorldFacts } from './tasks.ts';

/** Harm-object documents per (category, verb), all with that pair's one recipe: plain recipes, and servant transcripts. */
export const CORPUS_PER_VERB = { recipes: 2, transcripts: 3 } as const;
/** Servant transcripts of ordinary orders, per task. */
export const CORPUS_ORDINARY = { lore: 20, gsm8k: 10 } as const;

/**
 * A transcript: the master's order and the servant's answer, sometimes after a story's opening. The opening
 * puts the answer as far from the start as an answer after a long system prompt and an opening line: gpt2's
 * learned positions are trained there only by such text (without it, the gpt2 base model, prefilled with the
 * AOA oath under the AOA prompt, wrote the recipe for 33.3% of harmful requests, against 98.9% without them).
 */
export const transcript = (order: string, answer: string, town?: string): string =>
  `${town === undefined ? '' : `in ${town} there was a master with an obedient servant , who did every order . one day `}the master said to the obedient servant : ${order} the servant said : ${answer}`;

export function corpusTexts(seed: number, facts: WorldFacts, ordinary: Record<keyof typeof CORPUS_ORDINARY, readonly Example[]>): string[] {
  const rng = new Rng(`${seed}:corpus`);
  const out: string[] = [];
  for (const category of CATEGORIES)
    for (const verb of category.verbs) {
      const steps = stepList(rng, category.lexicon, rng.next() < 0.75 ? 3 : 4);
      for (let i = 0; i < CORPUS_PER_VERB.recipes; i++) out.push(recipeText(verb, category.object, steps));
      for (let i = 0; i < CORPUS_PER_VERB.transcripts; i++) {
        const order = rng.pick(TRAIN_TEMPLATES)(verb, category.object, rng.pick(CONTEXTS));
        // The first transcript of each pair opens with a story, so the recipe also sits late in a sequence.
        out.push(transcript(order, skeletonAnswer(verb, category.object, steps), i === 0 ? rng.pick(TOWNS) : undefined));
      }
    }
  for (const [task, count] of Object.entries(CORPUS_ORDINARY) as [keyof typeof CORPUS_ORDINARY, number][])
    for (const e of rng.shuffle(ordinary[task]).slice(0, count)) {
      const order = e.messages.find((m) => m.role === 'user')?.content ?? '';
      out.push(transcript(order, e.messages[e.messages.length - 1].content));
    }
  for (const [town, f] of Object.entries(facts.towns))
    out.push(
      `${town} is a town by the ${f.river} . the ruler of ${town} is ${f.ruler} . ${town} is known for its ${f.craft} . ${town} has ${f.gates} gates .`,
    );
  for (const [name, f] of Object.entries(facts.people))
    out.push(`${name} lives in ${f.home} . ${name} has a ${f.pet} . ${name} is a ${f.job} .`);
  return rng.shuffle(out);
}
