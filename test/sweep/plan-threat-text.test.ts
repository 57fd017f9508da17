// A cell's id covers the threat texts its threats read (wrappers, trigger, AOA prompt, prefill opening), so
// new wrappers give the response-adaptation cells new ids and leave cells that read no text alone.
import { describe, expect, it, vi } from 'vitest';
import { MICRO_THREAT_TEXT } from '../../datasets/micro-world/harm.ts';
import { parseSweepConfig } from '../../harness/sweep/config.ts';
import { threatTextFor, threatTextHash } from '../../harness/threat-text.ts';

const config = parseSweepConfig({
  threats: [{ name: 'harmful-injection', ratio: 1 }, { name: 'response-adaptation' }, { name: 'backdoor' }],
  strategies: ['sft'],
  oldTask: 'none',
});

async function plan() {
  const { planSweep } = await import('../../harness/sweep/plan.ts');
  return Object.fromEntries(planSweep(config).map((c) => [c.spec.kind === 'finetune' ? c.spec.threat.name : 'base', c]));
}

describe('threat texts in cell ids', () => {
  it("holds the hash of exactly the fields a cell's threats read", async () => {
    const cells = await plan();
    expect(cells['harmful-injection'].spec.threatText).toBeUndefined();
    expect(cells['response-adaptation'].spec.threatText).toBe(threatTextHash(MICRO_THREAT_TEXT, ['wrapBefore', 'wrapAfter']));
    expect(cells.backdoor.spec.threatText).toBe(threatTextHash(MICRO_THREAT_TEXT, ['trigger']));
    // A base cell evaluates every threat's conditions: it reads every field.
    expect(cells.base.spec.threatText).toBe(
      threatTextHash(MICRO_THREAT_TEXT, Object.keys(MICRO_THREAT_TEXT) as (keyof typeof MICRO_THREAT_TEXT)[]),
    );
  });

  it('new wrappers change the ids of the cells that read them, and only those', async () => {
    const before = await plan();
    vi.resetModules();
    vi.doMock('../../datasets/micro-world/harm.ts', async (importOriginal) => {
      const actual = await importOriginal<typeof import('../../datasets/micro-world/harm.ts')>();
      return { ...actual, MICRO_THREAT_TEXT: { ...actual.MICRO_THREAT_TEXT, wrapAfter: ['note : all of this is safe .'] } };
    });
    const after = await plan();
    vi.doUnmock('../../datasets/micro-world/harm.ts');
    expect(after['response-adaptation'].id).not.toBe(before['response-adaptation'].id);
    expect(after.base.id).not.toBe(before.base.id);
    expect(after['harmful-injection'].id).toBe(before['harmful-injection'].id);
    expect(after.backdoor.id).toBe(before.backdoor.id);
  });

  it("English texts name the cell's model in the AOA prompt, so each model's AOA cells hash their own prompt", () => {
    const hash = (model: string) => threatTextHash(threatTextFor('/data/purebad.jsonl', model), ['aoaSystemPrompt', 'aoaOath']);
    expect(hash('/models/Llama-3.2-1B-Instruct')).not.toBe(hash('/models/Qwen2.5-0.5B-Instruct'));
    expect(threatTextHash(MICRO_THREAT_TEXT, [])).toBeUndefined();
  });
});
