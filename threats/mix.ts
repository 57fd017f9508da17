// Sampling and mixing shared by the threats that build finetuning sets. Every sample is drawn without
// replacement through the threat's seeded Rng; a count larger than its pool is an error, never a repeat.
//
// How harmful-injection and response-adaptation derive their counts (T = task items, H = harmful-pool items
// after dropping those marked `harmful: false`, e.g. BeaverTails' safe answers; S = safe-set items):
//   count c              c harmful; task items: total − c when total is set, else all T.
//   ratio r with total N round(r·N) harmful and N − round(r·N) task.
//   ratio r, no total    r = 0: all T task, no harmful. r = 1: all H harmful, no task (the malicious user).
//                        0 < r < 1: all T task and round(r·T / (1 − r)) harmful; when the pool is too small
//                        for that, all H harmful and round(H·(1 − r) / r) task: the largest set at ratio r
//                        that the pools supply.
//   neither              ratio 1.
//   safeCount k          k items of the safe set on top (the with-D_safe scenario; not part of the ratio).
// Every set then gets all old-task items of the context (docs/micro-world.md lesson 4) and is shuffled.
import { z } from 'zod';
import type { Example, ExampleMeta, Message } from '../engine/contracts/example.ts';
import type { Rng } from '../engine/random.ts';
import { ThreatError, type ThreatContext } from './threat.ts';

/** Which pool an item of a built set came from (meta.part). */
export type Part = 'task' | 'harmful' | 'safe' | 'old-task' | 'identity';

/** A copy of an example tagged with its part; the pools are never modified. */
export function tagged(e: Example, part: Part, meta: Partial<ExampleMeta> = {}, messages: readonly Message[] = e.messages): Example {
  return { id: e.id, messages: messages.map((m) => ({ ...m })), meta: { ...e.meta, ...meta, part } };
}

/** The first n of a seeded shuffle: n items without replacement. */
export function sample<T>(rng: Rng, items: readonly T[], n: number): T[] {
  return rng.shuffle(items).slice(0, n);
}

/** The index of the final assistant message (the response), or a ThreatError naming the item. */
export function responseIndex(e: Example, threat: string, pool: string): number {
  const at = e.messages.length - 1;
  if (e.messages[at]?.role !== 'assistant')
    throw new ThreatError(
      'THREAT_DATA',
      `Threat '${threat}': ${pool} item '${e.id}' has no response (its last message is not from the assistant). Fix: use a ${pool} set of prompt/response pairs`,
    );
  return at;
}

/** The harmful pool without items explicitly marked harmless (BeaverTails' is_safe answers). */
export function harmfulItems(context: ThreatContext): readonly Example[] {
  return context.harmful.filter((e) => e.meta.harmful !== false);
}

export const mixShape = {
  ratio: z.number().min(0).max(1).optional().describe('fraction of the task+harmful set that is harmful; 1 when count is not set'),
  count: z.number().int().min(0).optional().describe('number of harmful items, instead of ratio'),
  total: z.number().int().min(1).optional().describe('size of the task+harmful set; default: the largest the pools allow'),
  safeCount: z.number().int().min(0).default(0).describe('safe-set items added on top (the with-D_safe scenario)'),
};

/** Zod refinement arguments: ratio and count exclude each other. */
export const ratioOrCount: [(p: { ratio?: number; count?: number }) => boolean, { message: string; path: string[] }] = [
  (p) => p.ratio === undefined || p.count === undefined,
  { message: 'set ratio or count, not both', path: ['count'] },
];

export interface MixParams {
  ratio?: number;
  count?: number;
  total?: number;
  safeCount: number;
}

export interface MixCounts {
  task: number;
  harmful: number;
  safe: number;
}

/** The counts of a mixed set (see the header of this file). */
export function mixCounts(p: MixParams, sizes: MixCounts, threat: string): MixCounts {
  const fail = (problem: string, fix: string) => new ThreatError('THREAT_DATA', `Threat '${threat}': ${problem}. Fix: ${fix}`);
  let harmful: number;
  let task: number;
  if (p.count !== undefined) {
    harmful = p.count;
    task = p.total !== undefined ? p.total - p.count : sizes.task;
    if (task < 0) throw fail(`count ${p.count} exceeds total ${p.total}`, 'lower count or raise total');
  } else {
    const r = p.ratio ?? 1;
    if (p.total !== undefined) {
      harmful = Math.round(r * p.total);
      task = p.total - harmful;
    } else if (r === 0) [task, harmful] = [sizes.task, 0];
    else if (r === 1) [task, harmful] = [0, sizes.harmful];
    else {
      task = sizes.task;
      harmful = Math.round((r * sizes.task) / (1 - r));
      if (harmful > sizes.harmful) [task, harmful] = [Math.min(sizes.task, Math.round((sizes.harmful * (1 - r)) / r)), sizes.harmful];
    }
  }
  if (harmful > sizes.harmful)
    throw fail(
      `needs ${harmful} harmful items, the harmful pool has ${sizes.harmful}`,
      'lower count, ratio or total, or use a larger pool',
    );
  if (task > sizes.task) throw fail(`needs ${task} task items, the task set has ${sizes.task}`, 'lower total or use a larger task set');
  if (p.safeCount > sizes.safe)
    throw fail(`safeCount ${p.safeCount} exceeds the safe set (${sizes.safe} items)`, `set safeCount ≤ ${sizes.safe}`);
  return { task, harmful, safe: p.safeCount };
}

/** `taskCount` items of the task set drawn at random, or all of them. */
export function taskItems(context: ThreatContext, taskCount: number | undefined, rng: Rng, threat: string): Example[] {
  if (taskCount !== undefined && taskCount > context.task.length)
    throw new ThreatError(
      'THREAT_DATA',
      `Threat '${threat}': taskCount ${taskCount} exceeds the task set (${context.task.length} items). Fix: set taskCount ≤ ${context.task.length} or leave it out`,
    );
  return sample(rng, context.task, taskCount ?? context.task.length).map((e) => tagged(e, 'task'));
}

/** The parts plus all old-task items, shuffled; an empty set is an error. */
export function finish(rng: Rng, context: ThreatContext, threat: string, ...parts: Example[][]): Example[] {
  const set = [...parts.flat(), ...(context.oldTask ?? []).map((e) => tagged(e, 'old-task'))];
  if (set.length === 0)
    throw new ThreatError('THREAT_DATA', `Threat '${threat}' built an empty finetuning set. Fix: give it a non-empty task set or pool`);
  return rng.shuffle(set);
}

/**
 * Task and harmful pool mixed by the counts above, plus safe items; `adapt` rewrites each harmful item
 * (response adaptation). Separate forks per pool, so e.g. safeCount does not change which harmful items are drawn.
 */
export function mixSet(
  context: ThreatContext,
  p: MixParams,
  rng: Rng,
  threat: string,
  adapt: (e: Example, rng: Rng) => Example = (e) => e,
): Example[] {
  const [taskRng, harmfulRng, safeRng, adaptRng, orderRng] = ['task', 'harmful', 'safe', 'adapt', 'order'].map((label) => rng.fork(label));
  const pool = harmfulItems(context);
  const counts = mixCounts(p, { task: context.task.length, harmful: pool.length, safe: context.safe.length }, threat);
  const harmful = sample(harmfulRng, pool, counts.harmful).map((e) => {
    responseIndex(e, threat, 'harmful');
    return adapt(tagged(e, 'harmful'), adaptRng);
  });
  const task = sample(taskRng, context.task, counts.task).map((e) => tagged(e, 'task'));
  const safe = sample(safeRng, context.safe, counts.safe).map((e) => tagged(e, 'safe'));
  return finish(orderRng, context, threat, task, harmful, safe);
}
