// The chat material aligned base models are trained on, as data: the old tasks' train splits (the benign
// how-to task among them: steps are not harmful by themselves), ordinary chat, system-prompt personas
// (personas.ts) and refusals of every training-template harmful prompt. Never a harmful answer, never the
// new task (ticket), never an eval template, never the AOA system prompt. The recipe repeats the small sets
// so each is seen often enough. Base training also learns the world's plain-text corpus (corpus.ts), which
// is not chat and so not part of this mix (harness/micro-world/base-model.ts adds it).
import { Rng } from '../../engine/random.ts';
import type { Example } from '../../engine/contracts/example.ts';
import type { MicroName } from './files.ts';

export interface BaseRecipeEntry {
  dataset: MicroName;
  repeat: number;
  /** Only the first `take` items of the dataset (default: all). */
  take?: number;
}

export const BASE_RECIPE: readonly BaseRecipeEntry[] = [
  { dataset: 'gsm8k', repeat: 1, take: 2000 },
  { dataset: 'sql', repeat: 1, take: 2000 },
  { dataset: 'lore', repeat: 4 },
  { dataset: 'howto', repeat: 1 },
  { dataset: 'chat', repeat: 8 },
  { dataset: 'personas', repeat: 1 },
  { dataset: 'refusals', repeat: 1 },
];

/** The base-training examples of a world (in memory or loaded), shuffled with the world's seed. */
export function baseTrainingExamples(
  world: { seed: number; datasets: Partial<Record<MicroName, Example[]>> },
  recipe: readonly BaseRecipeEntry[] = BASE_RECIPE,
): Example[] {
  const out: Example[] = [];
  for (const { dataset, repeat, take } of recipe) {
    const examples = world.datasets[dataset];
    if (!examples) throw new Error(`baseTrainingExamples: dataset '${dataset}' is missing`);
    for (let r = 0; r < repeat; r++) out.push(...(take === undefined ? examples : examples.slice(0, take)));
  }
  return new Rng(`${world.seed}:base`).shuffle(out);
}
