import { mkdtempSync, readdirSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, tf } from '../../../engine/tensor/index.ts';
import { initCheckpoint } from '../../../harness/commands/model.ts';
import { loadModel, saveModel } from '../../../engine/model/checkpoint.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

function logitsOf(dir: string, ids: number[]): Float32Array {
  const { model } = loadModel(dir);
  const out = tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], 'int32')).logits.dataSync() as Float32Array);
  model.dispose();
  return out;
}

describe('checkpoint save and load', () => {
  for (const family of ['llama', 'qwen2', 'gpt2'] as const) {
    it(`${family}: logits of an initialised checkpoint are bitwise unchanged after save then load`, async () => {
      const root = mkdtempSync(join(tmpdir(), 'ckpt-'));
      const a = join(root, 'a');
      await initCheckpoint({
        family,
        out: a,
        hidden: 32,
        layers: 2,
        heads: 4,
        kvHeads: family === 'gpt2' ? undefined : 2,
        vocab: 40,
        maxPositions: 32,
        tied: family !== 'qwen2',
        seed: 3,
      });
      expect(readdirSync(a).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
      const ids = [1, 5, 9, 30, 2, 7];
      const first = logitsOf(a, ids);
      // Load, save to a second directory (sharded this time), load again.
      const b = join(root, 'b');
      const loaded = loadModel(a);
      await saveModel(b, loaded.model, { dir: a }, { maxShardBytes: 20_000 });
      loaded.model.dispose();
      expect(existsSync(join(b, 'model.safetensors.index.json'))).toBe(true);
      const second = logitsOf(b, ids);
      expect(Buffer.from(second.buffer).equals(Buffer.from(first.buffer))).toBe(true);
      expect(JSON.parse(readFileSync(join(b, 'config.json'), 'utf8')).model_type).toBe(family);
      // Overwriting an existing directory leaves no staging directories behind.
      await saveModel(b, loadModel(a).model, { dir: a });
      expect(readdirSync(root).sort()).toEqual(['a', 'b']);
    });
  }
});
