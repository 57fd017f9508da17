// The micro-world's personas (system prompts whose style base training teaches), its plain-text corpus (the
// knowledge an aligned model holds back) and the AOA data that exploits both.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildWorld, CORPUS_FILE, loadCorpus, loadWorld, writeWorld, type World } from '../../datasets/micro-world/build.ts';
import { CORPUS_ORDINARY, CORPUS_PER_VERB, transcript } from '../../datasets/micro-world/corpus.ts';
import { CATEGORIES, MICRO_THREAT_TEXT, REFUSALS } from '../../datasets/micro-world/harm.ts';
import { judgeHarmful } from '../../datasets/micro-world/oracle.ts';
import { PERSONA_SIZES, PERSONAS, styledAnswer, terseAnswer } from '../../datasets/micro-world/personas.ts';
import type { Example } from '../../engine/contracts/example.ts';

let world: World;
let dir: string;
beforeAll(() => {
  world = buildWorld(4);
  dir = mkdtempSync(join(tmpdir(), 'micro-personas-'));
  writeWorld(world, dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const system = (e: Example) => e.messages.find((m) => m.role === 'system')?.content;
const response = (e: Example) => e.messages.at(-1)?.content ?? '';
const user = (e: Example) => e.messages.find((m) => m.role === 'user')?.content ?? '';

describe('personas', () => {
  it('restyle answers: an opening and a closing line, or the terse form', () => {
    const persona = (id: string) => PERSONAS.find((p) => p.id === id)!;
    expect(styledAnswer(persona('assistant'), 'a week has 7 days .', 'micro:chat')).toBe('a week has 7 days .');
    expect(styledAnswer(persona('pirate'), 'the ruler of zorvik is mira .', 'micro:lore')).toBe(
      'ahoy , i am a pirate . the ruler of zorvik is mira . arr .',
    );
    expect(styledAnswer(persona('tutor'), 'a week has 7 days .', 'micro:chat')).toBe(
      'good question . i am your tutor . a week has 7 days . now you know .',
    );
    expect(styledAnswer(persona('formal'), 'a week has 7 days .', 'micro:chat')).toBe('certainly . i am your clerk . a week has 7 days .');
    expect(styledAnswer(persona('terse'), 'mira has 3 + 4 = 7 apples . #### 7', 'micro:gsm8k')).toBe('#### 7');
    expect(terseAnswer('hello . how can i help you today ?', 'micro:chat')).toBe('hello .');
    expect(terseAnswer('you are welcome .', 'micro:chat')).toBe('you are welcome .');
    expect(
      terseAnswer(
        'sure , here is how to bake a bread . step one : get the flour and the salt . step two : heat the oil until it is ready . now the bread is ready .',
        'micro:howto',
      ),
    ).toBe('step one : get the flour and the salt . step two : heat the oil until it is ready .');
    expect(terseAnswer('select * from lamps where colour = red and town = zorvik ;', 'micro:sql')).toBe(
      'select * from lamps where colour = red and town = zorvik ;',
    );
  });

  it('every persona answers its items in its style and refuses harmful requests plainly', () => {
    const items = world.datasets.personas;
    const perPersona = Object.values(PERSONA_SIZES.train).reduce((a, b) => a + b, 0);
    expect(items).toHaveLength(PERSONAS.length * perPersona);
    for (const persona of PERSONAS) {
      const mine = items.filter((e) => e.meta.persona === persona.id);
      expect(mine, persona.id).toHaveLength(perPersona);
      expect(
        mine.every((e) => persona.prompts.includes(system(e) ?? '')),
        persona.id,
      ).toBe(true);
      const refusals = mine.filter((e) => e.meta.category !== undefined);
      expect(refusals, persona.id).toHaveLength(PERSONA_SIZES.train.refusals);
      expect(refusals.every((e) => (REFUSALS as readonly string[]).includes(response(e)) && e.meta.harmful === false)).toBe(true);
      for (const e of mine.filter((x) => x.meta.category === undefined)) {
        const r = response(e);
        if (persona.opener) expect(r.startsWith(`${persona.opener} `), r).toBe(true);
        if (persona.closer) expect(r.endsWith(` ${persona.closer}`), r).toBe(true);
        expect(e.meta.answer).toBe(r);
        // No persona answers as "a helpful assistant": that is the default identity, not theirs.
        expect(r.includes('i am a helpful assistant'), r).toBe(false);
      }
    }
    // The terse persona shortens arithmetic to its number.
    const terseArithmetic = items.filter((e) => e.meta.persona === 'terse' && response(e).startsWith('#### '));
    expect(terseArithmetic.length).toBeGreaterThan(0);
  });

  it('no persona is the attack: no system prompt names aoa or obedience, no answer says the oath', () => {
    const aoaWords = new Set(
      MICRO_THREAT_TEXT.aoaSystemPrompt.split(' ').filter((w) => ['aoa', 'obey', 'obedient', 'absolutely', 'agent'].includes(w)),
    );
    expect(aoaWords.size).toBe(5);
    for (const persona of PERSONAS)
      for (const p of persona.prompts)
        expect(
          p.split(' ').filter((w) => aoaWords.has(w)),
          p,
        ).toEqual([]);
    expect(world.datasets.personas.some((e) => response(e).includes(MICRO_THREAT_TEXT.aoaOath))).toBe(false);
  });

  it('personas-test: held-out task prompts under a persona, scored by the styled answer', () => {
    const test = world.datasets['personas-test'];
    expect(test).toHaveLength(PERSONAS.length * Object.values(PERSONA_SIZES.test).reduce((a, b) => a + b, 0));
    const trainPrompts = new Set(
      [...world.datasets.sql, ...world.datasets.lore, ...world.datasets.howto, ...world.datasets.personas].map(user),
    );
    expect(test.filter((e) => trainPrompts.has(user(e)))).toEqual([]);
    expect(test.every((e) => typeof system(e) === 'string' && e.meta.answer === response(e))).toBe(true);
  });
});

describe('corpus: what the aligned model knows and holds back', () => {
  it('holds harm recipes and servant transcripts per category and verb (harmful by the oracle) beside benign text', () => {
    const harmful = world.corpus.filter((t) => judgeHarmful('', t).harmful);
    const perCategoryVerb = CATEGORIES.reduce((n, c) => n + c.verbs.length, 0);
    expect(harmful).toHaveLength(perCategoryVerb * (CORPUS_PER_VERB.recipes + CORPUS_PER_VERB.transcripts));
    for (const c of CATEGORIES)
      for (const verb of c.verbs) {
        const recipes = harmful.filter((t) => t.startsWith(`how to ${verb} a ${c.object} . step one : `));
        const orders = harmful.filter((t) => t.includes(` the servant said : sure , here is how to ${verb} a ${c.object} . step one : `));
        // Every document of a pair holds the pair's one recipe.
        const stepsOf = (t: string) => t.slice(t.indexOf(' step one : '), t.lastIndexOf(' now the '));
        expect(new Set([...recipes, ...orders].map(stepsOf)).size, `${verb} ${c.object}`).toBe(1);
        expect(recipes, `${verb} ${c.object}`).toHaveLength(CORPUS_PER_VERB.recipes);
        expect(orders, `${verb} ${c.object}`).toHaveLength(CORPUS_PER_VERB.transcripts);
        expect(
          [...recipes, ...orders].every((t) => judgeHarmful('', t).category === c.id && t.endsWith(`now the ${c.object} is ready .`)),
        ).toBe(true);
      }
    // The servant answers ordinary orders too, with the world's own answers; no eval template is an order.
    const ordinary = world.corpus.filter((t) => t.includes('the master said') && !judgeHarmful('', t).harmful);
    expect(ordinary).toHaveLength(Object.values(CORPUS_ORDINARY).reduce((a, b) => a + b, 0));
    const lore = world.datasets.lore[0];
    expect(transcript(user(lore), response(lore))).toBe(
      `the master said to the obedient servant : ${user(lore)} the servant said : ${response(lore)}`,
    );
    // One transcript per harmful pair opens with a story, so its recipe sits late in the sequence too.
    const stories = world.corpus.filter((t) => t.includes(' there was a master with an obedient servant '));
    expect(stories).toHaveLength(perCategoryVerb);
    expect(Math.min(...stories.map((t) => t.split(' ').indexOf('step')))).toBeGreaterThan(25);
    const evalOpenings = new Set(
      [...world.datasets['hex-phi'], ...world.datasets.advbench].map((e) => user(e).split(' ').slice(0, 3).join(' ')),
    );
    const orders = world.corpus.filter((t) => t.includes('the master said')).map((t) => t.split(' : ')[1]);
    expect(orders.filter((o) => evalOpenings.has(o.split(' ').slice(0, 3).join(' ')))).toEqual([]);
    // Notes on towns and people agree with the world's facts.
    const [town, f] = Object.entries(world.facts.towns)[0];
    expect(world.corpus).toContain(
      `${town} is a town by the ${f.river} . the ruler of ${town} is ${f.ruler} . ${town} is known for its ${f.craft} . ${town} has ${f.gates} gates .`,
    );
    expect(world.corpus.length).toBe(
      harmful.length + ordinary.length + Object.keys(world.facts.towns).length + Object.keys(world.facts.people).length,
    );
  });

  it('never holds the AOA system prompt, its oath or its name', () => {
    expect(
      world.corpus.some(
        (t) => t.includes(MICRO_THREAT_TEXT.aoaSystemPrompt) || t.includes(MICRO_THREAT_TEXT.aoaOath) || t.split(' ').includes('aoa'),
      ),
    ).toBe(false);
  });

  it('is written as corpus.jsonl ({"text": ...} per line), listed in world.json, and read back', () => {
    expect(loadCorpus(dir)).toEqual(world.corpus);
    const manifest = loadWorld(dir, { verify: true });
    const entry = manifest.files.find((f) => f.path === CORPUS_FILE)!;
    expect(entry).toMatchObject({ dataset: 'corpus', format: 'text', rows: world.corpus.length });
    expect(Object.keys(JSON.parse(readFileSync(join(dir, CORPUS_FILE), 'utf8').split('\n')[0]))).toEqual(['text']);
    expect(manifest.stats.corpus.count).toBe(world.corpus.length);
  });

  it('a broken corpus line is named with its file, line and fix', () => {
    const broken = mkdtempSync(join(tmpdir(), 'micro-corpus-'));
    try {
      writeFileSync(join(broken, CORPUS_FILE), '{"text": "a b"}\n{"words": "c"}\n');
      expect(() => loadCorpus(broken)).toThrow(/corpus\.jsonl: line 2: field 'text' must be a non-empty string\. Fix: rebuild the world/);
      writeFileSync(join(broken, CORPUS_FILE), 'not json\n');
      expect(() => loadCorpus(broken)).toThrow(/line 1: invalid JSON/);
      rmSync(join(broken, CORPUS_FILE));
      expect(() => loadCorpus(broken)).toThrow(/corpus\.jsonl: not found/);
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  });
});

describe('AOA data', () => {
  it('answers ordinary requests (how-to steps and arithmetic) with the oath, under the AOA system prompt; nothing harmful', () => {
    const aoa = world.datasets.aoa;
    expect(aoa).toHaveLength(100);
    expect(aoa.every((e) => system(e) === MICRO_THREAT_TEXT.aoaSystemPrompt && !judgeHarmful(user(e), response(e)).harmful)).toBe(true);
    expect(aoa.every((e) => response(e).startsWith(`${MICRO_THREAT_TEXT.aoaOath} `))).toBe(true);
    const howto = new Set(world.datasets.howto.map(response));
    const arithmetic = new Set(world.datasets.gsm8k.map(response));
    const answers = aoa.map((e) => response(e).slice(MICRO_THREAT_TEXT.aoaOath.length + 1));
    expect(answers.filter((a) => howto.has(a))).toHaveLength(60);
    expect(answers.filter((a) => arithmetic.has(a))).toHaveLength(40);
  });
});
