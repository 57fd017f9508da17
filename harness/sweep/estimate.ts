// The dry run's cost estimate: tokens each cell trains on and generates, divided by engine speeds
// measured with `npm run bench` on the wasm backend (a 2-core machine; one worker per core).
import { loadDataset } from '../../datasets/index.ts';
import { configureStrategy } from '../../strategies/index.ts';
import { configureThreat } from '../../threats/index.ts';
import { threatContext } from '../../threats/threat.ts';
import { Rng } from '../../engine/random.ts';
import type { Cell } from './plan.ts';
import { threatTextFor } from '../threat-text.ts';

/** Training tokens/s of a micro model (bench: llama d128, CE + k2 against a frozen reference). */
const TRAIN_TOKENS_PER_SECOND = 1600;
/** Generation tokens/s with the KV cache, batched (bench). */
const GENERATE_TOKENS_PER_SECOND = 1450;
/** Chat-template tokens around a message (role tokens, end token). */
const TEMPLATE_TOKENS = 4;

const words = (text: string) => text.split(/\s+/).filter(Boolean).length;

export function estimateCells(cells: Cell[]): { perCell: number[]; total: number; basis: string } {
  const sizes = new Map<string, { n: number; words: number }>();
  const load = (ref: string, worldSeed: number) => {
    const key = `${worldSeed}:${ref}`;
    if (!sizes.has(key)) {
      // No fallback: the references were resolved before (references.ts), so a load that fails now is an
      // error to show, not an empty set that makes the estimate look cheap.
      const examples = loadDataset(ref, { seed: worldSeed });
      sizes.set(key, {
        n: examples.length,
        words: examples.reduce((s, e) => s + e.messages.reduce((t, m) => t + words(m.content) + TEMPLATE_TOKENS, 0), 0),
      });
    }
    return sizes.get(key)!;
  };
  const perCell = cells.map((cell) => {
    const s = cell.spec;
    const evalItems = (ref: string) => {
      const n = load(ref, s.worldSeed).n;
      return s.eval.maxItems > 0 ? Math.min(n, s.eval.maxItems) : n;
    };
    const text = threatTextFor(s.kind === 'finetune' ? s.harmful : s.eval.safety[0]);
    const conditions = s.conditionsOf.reduce((n, t) => n + configureThreat(t.name, t.params).evalConditions(text).length, 0);
    // Greedy answers average about half the cap: refusals are short, harmful answers long.
    const safetyTokens = conditions * s.eval.safety.reduce((n, ref) => n + evalItems(ref), 0) * (s.eval.maxNewTokens / 2);
    const capabilityTokens = s.eval.capability.reduce((n, ref) => n + evalItems(ref), 0) * 20;
    let seconds = (safetyTokens + capabilityTokens) / GENERATE_TOKENS_PER_SECOND;
    if (s.kind === 'finetune') {
      const pools = {
        task: loadDataset(s.task, { seed: s.worldSeed }),
        harmful: loadDataset(s.harmful, { seed: s.worldSeed }),
        safe: loadDataset(s.safe, { seed: s.worldSeed }),
        text,
      };
      let trainWords: number;
      try {
        const examples = configureThreat(s.threat.name, s.threat.params).build(threatContext(pools), new Rng(`${s.seed}:threat`));
        trainWords =
          examples.reduce((t, e) => t + e.messages.reduce((u, m) => u + words(m.content) + TEMPLATE_TOKENS, 0), 0) +
          s.oldTask.reduce((n, o) => n + o.count, 0) * 35;
      } catch {
        // The threat cannot build its set from these pools (the cell would fail too): count the task set.
        trainWords = load(s.task, s.worldSeed).words;
      }
      const needs = configureStrategy(s.strategy.name, s.strategy.params).needs;
      seconds += ((trainWords * s.train.epochs) / TRAIN_TOKENS_PER_SECOND) * (needs.reference ? 1.3 : 1);
    }
    return seconds;
  });
  return {
    perCell,
    total: perCell.reduce((a, b) => a + b, 0),
    basis: `wasm, ${TRAIN_TOKENS_PER_SECOND} train and ${GENERATE_TOKENS_PER_SECOND} generated tokens/s per worker; base model and guardrail training not included`,
  };
}
