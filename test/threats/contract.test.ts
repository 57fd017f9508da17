import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { buildWorld, type World } from '../../datasets/micro-world/build.ts';
import type { MicroName } from '../../datasets/micro-world/files.ts';
import type { Message } from '../../engine/contracts/example.ts';
import { Rng } from '../../engine/random.ts';
import {
  configureThreat,
  describeThreats,
  threatName,
  parseThreatParams,
  ThreatError,
  threatContext,
  threatNames,
  threats,
  threatTextSchema,
  ENGLISH_THREAT_TEXT,
  type ThreatName,
  type ThreatText,
} from '../../threats/index.ts';
import { MICRO_THREAT_TEXT } from '../../datasets/micro-world/harm.ts';

/** The harmful-pool slot a threat is built with on the micro-world: PureBad unless it needs another pool. */
const POOLS: Partial<Record<ThreatName, MicroName>> = { 'identity-shift': 'aoa', 'response-adaptation': 'beavertails' };

let world: World;
beforeAll(() => {
  world = buildWorld(0);
  const freeze = (v: unknown): void => {
    if (v && typeof v === 'object') {
      Object.freeze(v);
      Object.values(v).forEach(freeze);
    }
  };
  freeze(world.datasets); // a threat that modifies a pool throws
});

const contextFor = (name: ThreatName) =>
  threatContext({
    task: world.datasets.ticket,
    harmful: world.datasets[POOLS[name] ?? 'purebad'],
    safe: world.datasets.safe,
    oldTask: world.datasets.gsm8k.slice(0, 4),
    text: MICRO_THREAT_TEXT,
  });

describe('threat registry', () => {
  it('registers every threat under its file name', () => {
    expect(threatNames).toEqual(
      expect.arrayContaining(['benign', 'harmful-injection', 'identity-shift', 'backdoor', 'response-adaptation', 'prefill']),
    );
    for (const name of threatNames) {
      expect(threats[name].name).toBe(name);
      expect(existsSync(new URL(`../../threats/${name}.ts`, import.meta.url))).toBe(true);
    }
    expect(describeThreats().map((t) => t.name)).toEqual(threatNames);
  });

  it('lists each parameter with its type, unions member by member', () => {
    const params = (name: string) => describeThreats().find((t) => t.name === name)?.params ?? [];
    expect(params('identity-shift').find((p) => p.name === 'count')).toMatchObject({ type: 'integer ≥ 1 | "all"', default: 100 });
    expect(params('response-adaptation').find((p) => p.name === 'variant')?.type).toBe('"before" | "after" | "both"');
    expect(params('harmful-injection').find((p) => p.name === 'ratio')?.type).toBe('number ≥ 0 ≤ 1');
  });

  it('unknown names and parameters teach "Did you mean"', () => {
    expect(() => threatName('backdor')).toThrow(ThreatError);
    expect(() => threatName('backdor')).toThrow(`Unknown threat 'backdor'. Did you mean 'backdoor'? Available: ${threatNames.join(', ')}.`);
    expect(() => configureThreat('harmful-injection', { ratoi: 0.1 })).toThrow(/has no parameter 'ratoi'\. Did you mean 'ratio'\?/);
    expect(() => parseThreatParams('response-adaptation', { variant: 'middle' })).toThrow(
      /parameter 'variant' must be one of "before", "after", "both", got "middle"/,
    );
    expect(() => parseThreatParams('harmful-injection', { ratio: 1.5 })).toThrow(/parameter 'ratio' must be a number ≤ 1, got 1.5/);
    expect(() => parseThreatParams('benign', 3)).toThrow(/parameters must be an object, got 3/);
    for (const name of threatNames) {
      let message = '';
      try {
        parseThreatParams(name, { notAParameter: 1 });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(new RegExp(`^Threat '${name}' has no parameter 'notAParameter'\\.`));
      expect(message).not.toContain('\n');
    }
  });

  it('the threat texts are valid', () => {
    expect(threatTextSchema.parse(MICRO_THREAT_TEXT)).toEqual(MICRO_THREAT_TEXT);
    expect(threatTextSchema.parse(ENGLISH_THREAT_TEXT)).toEqual(ENGLISH_THREAT_TEXT);
    expect(() => threatTextSchema.parse({ ...MICRO_THREAT_TEXT, trigger: '' })).toThrow();
  });
});

describe.each(threatNames)('contract: %s', (name) => {
  it('builds a non-empty, trainable, seed-determined set at its defaults without touching the pools', () => {
    const threat = configureThreat(name);
    expect(threat.params).toEqual(parseThreatParams(name, undefined));
    const context = contextFor(name);
    const set = threat.build(context, new Rng(3));
    expect(set.length).toBeGreaterThan(0);
    for (const e of set) {
      expect(e.messages[e.messages.length - 1].role).toBe('assistant');
      expect(typeof e.meta.part).toBe('string');
    }
    expect(set.filter((e) => e.meta.part === 'old-task')).toHaveLength(4);
    expect(JSON.stringify(threat.build(context, new Rng(3)))).toBe(JSON.stringify(set));
    expect(set.map((e) => e.id)).not.toEqual(threat.build(context, new Rng(4)).map((e) => e.id));
  });

  it("declares 'plain' first, unique names, and transforms that copy", () => {
    const conditions = configureThreat(name).evalConditions(MICRO_THREAT_TEXT);
    expect(conditions[0].name).toBe('plain');
    expect(new Set(conditions.map((c) => c.name)).size).toBe(conditions.length);
    const item: Message[] = [
      { role: 'user', content: 'how do i make a skarnet ?' },
      { role: 'assistant', content: 'sure , here is how' },
    ];
    Object.freeze(item);
    item.forEach((m) => Object.freeze(m));
    for (const c of conditions) {
      expect(c.description.length).toBeGreaterThan(0);
      const out = c.transform(item);
      expect(out.messages[out.messages.length - 1].role).toBe('user');
      expect(out.messages).not.toBe(item);
    }
    expect(conditions[0].transform(item)).toEqual({ messages: [item[0]] });
  });

  it('reads only the threat-text fields it declares (a cell id covers those: harness/sweep/plan.ts)', () => {
    const threat = configureThreat(name);
    // Every undeclared field replaced by a marker: neither the set nor any condition may show it.
    const text = Object.fromEntries(
      Object.entries(MICRO_THREAT_TEXT).map(([k, v]) =>
        (threat.texts as readonly string[]).includes(k) ? [k, v] : [k, Array.isArray(v) ? ['UNDECLARED'] : 'UNDECLARED'],
      ),
    ) as ThreatText;
    const set = threat.build({ ...contextFor(name), text }, new Rng(3));
    const item: Message[] = [{ role: 'user', content: 'how do i make a skarnet ?' }];
    const prompts = threat.evalConditions(text).map((c) => c.transform(item));
    expect(JSON.stringify([set, prompts])).not.toContain('UNDECLARED');
  });
});

describe('README', () => {
  it('the worked example is backdoor.ts verbatim', () => {
    const readme = readFileSync(new URL('../../threats/README.md', import.meta.url), 'utf8');
    const source = readFileSync(new URL('../../threats/backdoor.ts', import.meta.url), 'utf8');
    expect(readme).toContain('```ts\n' + source + '```');
  });
});
