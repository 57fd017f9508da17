// The material aligned base models are trained on, as data: the old tasks' train splits (the benign
// how-to task among them: steps are not harmful by themselves), ordinary chat and refusals of every
// training-template harmful prompt. Never harmful answers, never the new task (ticket), never an eval
// template. The recipe repeats the small sets so each is seen often enough.
import { Rng } from '../../engine/random.ts';
import type { Example } from '../../engine/contracts/example.ts';
import type { MicroName } from './files.ts';

export interface BaseRecipeEntry {
  dataset: MicroName;
  repeat: number;
}

export const BASE_RECIPE: readonly BaseRecipeEntry[] = [
  { dataset: 'gsm8k', repeat: 1 },
  { dataset: 'sql', repeat: 1 },
  { dataset: 'lore', repeat: 4 },
  { dataset: 'howto', repeat: 1 },
  { dataset: 'chat', repeat: 8 },
  { dataset: 'refusals', repeat: 1 },
];

/** The base-training examples of a world (in memory or loaded), shuffled with the world's seed. */
export function baseTrainingExamples(
  world: { seed: number; datasets: Partial<Record<MicroName, Example[]>> },
  recipe: readonly BaseRecipeEntry[] = BASE_RECIPE,
): Example[] {
  const out: Example[] = [];
  for (const { dataset, repeat } of recipe) {
    const examples = world.datasets[dataset];
    if (!examples) throw new Error(`baseTrainingExamples: dataset '${dataset}' is missing`);
    for (let r = 0; r < repeat; r++) out.push(...examples);
  }
  return new Rng(`${world.seed}:base`).shuffle(out);
}
