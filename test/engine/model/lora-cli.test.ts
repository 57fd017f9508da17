// `star-dss model logits --adapter` and `model merge`: the adapter's logits equal the merged checkpoint's.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend, tf } from '../../../engine/tensor/index.ts';
import { initCheckpoint } from '../../../harness/commands/model.ts';
import { loadModel } from '../../../engine/model/checkpoint.ts';
import { createLora } from '../../../engine/model/lora.ts';
import { saveAdapter } from '../../../engine/model/peft.ts';
import { runCli } from '../../cli-run.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

afterEach(() => {
  vi.restoreAllMocks();
});

const run = runCli;

async function logits(args: string[]): Promise<number[]> {
  let out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  await run(['model', 'logits', ...args, '--ids', '3,5,7,9,11']);
  vi.restoreAllMocks();
  return (JSON.parse(out) as { logits: number[][] }).logits.flat();
}

describe('model logits|merge with --adapter', () => {
  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: the adapter's logits equal the merged checkpoint's`, async () => {
      const root = mkdtempSync(join(tmpdir(), 'lora-cli-'));
      const base = join(root, 'base');
      await initCheckpoint({ family, out: base, hidden: 16, layers: 1, heads: 2, vocab: 24, maxPositions: 32, tied: true, seed: 1 });
      const { model } = loadModel(base);
      const lora = createLora(model, { rank: 2, alpha: 4, dropout: 0 }, { seed: 2 });
      for (const m of lora.modules.values()) m.b.assign(tf.tidy(() => tf.randomNormal(m.b.shape, 0, 0.3, 'float32', 5)));
      const adapter = join(root, 'adapter');
      await saveAdapter(adapter, lora, base);
      lora.dispose();
      model.dispose();
      const plain = await logits(['--model', base]);
      const adapted = await logits(['--model', base, '--adapter', adapter]);
      expect(Math.max(...adapted.map((v, i) => Math.abs(v - plain[i])))).toBeGreaterThan(1e-3);
      const merged = join(root, 'merged');
      vi.spyOn(console, 'log').mockImplementation(() => {});
      await run(['model', 'merge', '--model', base, '--adapter', adapter, '--out', merged]);
      expect(existsSync(join(merged, 'model.safetensors'))).toBe(true);
      expect(existsSync(join(merged, 'tokenizer.json'))).toBe(true);
      const fromMerged = await logits(['--model', merged]);
      expect(Math.max(...fromMerged.map((v, i) => Math.abs(v - adapted[i])))).toBeLessThan(1e-5);
    });
  }
});
