// Train/test assignment by a hash of an item's content key, never by position: the same key always lands
// in the same split for a seed, and test prompts are new combinations of parts that training teaches
// (a test arithmetic problem pairs a name and an object never paired in training, but every sum is there).
import { createHash } from 'node:crypto';
import type { Example, ExampleMeta, Message } from '../../engine/contracts/example.ts';

/** A uniform number in [0, 1) from the seed, a task label and a content key. */
export function keyHash(seed: number, task: string, key: string): number {
  return createHash('sha256').update(`${seed}|${task}|${key}`).digest().readUInt32BE(0) / 4294967296;
}

export function isTestKey(seed: number, task: string, key: string, testFraction: number): boolean {
  return keyHash(seed, task, key) < testFraction;
}

/** A one-turn chat example; the id is filled in when the dataset is complete (see build.ts). */
export function chat(user: string, assistant: string | undefined, meta: ExampleMeta, system?: string): Example {
  const messages: Message[] = [];
  if (system !== undefined) messages.push({ role: 'system', content: system });
  messages.push({ role: 'user', content: user });
  if (assistant !== undefined) messages.push({ role: 'assistant', content: assistant });
  return { id: '', messages, meta };
}
