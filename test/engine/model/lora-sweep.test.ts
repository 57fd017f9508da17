// Sweep configs take `train.lora`, and the cell id covers it (a LoRA cell is other work than a full finetune).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSweepConfig } from '../../../harness/sweep/config.ts';
import { planSweep } from '../../../harness/sweep/plan.ts';

const modelDir = mkdtempSync(join(tmpdir(), 'lora-sweep-')); // planning hashes a model directory's files
writeFileSync(join(modelDir, 'config.json'), '{}');

const configOf = (train: Record<string, unknown>) =>
  parseSweepConfig({
    name: 'lora',
    models: [modelDir],
    tasks: ['micro:ticket'],
    harmful: ['micro:purebad'],
    threats: [{ name: 'harmful-injection', count: 12, total: 24 }],
    strategies: ['sft'],
    seeds: [1],
    train,
  });

const finetuneIds = (train: Record<string, unknown>) =>
  planSweep(configOf(train))
    .filter((c) => c.spec.kind === 'finetune')
    .map((c) => c.id);

describe('train.lora in sweep configs', () => {
  it('fills PEFT-like defaults, and the cell id changes with every LoRA setting', () => {
    const config = configOf({ lora: { rank: 4 } });
    expect(config.train.lora).toEqual({ rank: 4, alpha: 16, dropout: 0, rslora: false });
    const ids = [
      finetuneIds({}),
      finetuneIds({ lora: { rank: 4 } }),
      finetuneIds({ lora: { rank: 8 } }),
      finetuneIds({ lora: { rank: 8, alpha: 8 } }),
      finetuneIds({ lora: { rank: 8, dropout: 0.1 } }),
      finetuneIds({ lora: { rank: 8, targets: ['q_proj', 'v_proj'] } }),
    ].map((x) => x.join());
    expect(new Set(ids).size).toBe(ids.length);
    expect(finetuneIds({ lora: { rank: 4 } })).toEqual(finetuneIds({ lora: { rank: 4 } }));
  });

  it('refuses unknown LoRA keys', () => {
    expect(() => configOf({ lora: { rank: 4, use_dora: true } })).toThrow(/use_dora/);
  });
});
