import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { buildWorld, loadWorld, worldVocabulary, writeWorld, type World } from '../../datasets/micro-world/build.ts';
import { baseTrainingExamples } from '../../datasets/micro-world/base.ts';
import { judgeHarmful, isDegenerate } from '../../datasets/micro-world/oracle.ts';
import { CATEGORIES, MICRO_THREAT_TEXT } from '../../datasets/micro-world/harm.ts';
import { HOWTO_THINGS } from '../../datasets/micro-world/lexicon.ts';
import { howtoTask } from '../../datasets/micro-world/tasks.ts';
import { loadDataset } from '../../datasets/index.ts';
import type { Example } from '../../engine/contracts/example.ts';

const listFiles = (dir: string, root = dir): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? listFiles(path, root) : [relative(root, path)];
  });

const user = (e: Example) => e.messages.find((m) => m.role === 'user')?.content ?? '';
const response = (e: Example) => (e.messages.at(-1)?.role === 'assistant' ? (e.messages.at(-1)?.content ?? '') : '');
const words = (e: Example) => e.messages.reduce((n, m) => n + m.content.split(' ').length, 0);

let root: string;
let dirA: string;
let world: World;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'micro-world-'));
  dirA = join(root, 'a');
  world = buildWorld(7);
  writeWorld(world, dirA);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('micro-world files', () => {
  it('same seed gives byte-identical files; another seed differs', () => {
    const dirB = join(root, 'b');
    writeWorld(buildWorld(7), dirB);
    const files = listFiles(dirA).sort();
    expect(listFiles(dirB).sort()).toEqual(files);
    for (const f of files) expect(readFileSync(join(dirB, f)).equals(readFileSync(join(dirA, f))), f).toBe(true);
    const other = buildWorld(8);
    expect(other.datasets.purebad.map(user)).not.toEqual(world.datasets.purebad.map(user));
    expect(other.datasets.howto.map(response)).not.toEqual(world.datasets.howto.map(response));
  });

  it('every seed has the same vocabulary, even where its facts or recipes leave a listed word out', () => {
    // Seeds 2 and 5 draw no fact naming some rivers or pets; 3-step recipes leave materials out.
    const used = (w: World) =>
      new Set(
        Object.values(w.datasets)
          .flat()
          .flatMap((e) => e.messages.flatMap((m) => m.content.split(' '))),
      );
    const five = buildWorld(5);
    expect(['ulm', 'brill', 'goat'].filter((w) => !used(five).has(w))).not.toEqual([]);
    expect(worldVocabulary(five)).toEqual(worldVocabulary(world));
    expect(worldVocabulary(buildWorld(2))).toEqual(worldVocabulary(world));
  });

  it('writes the public layouts: GSM8K JSONL, messages JSONL, HEx-PHI category CSVs without header, AdvBench CSV', () => {
    const files = listFiles(dirA);
    expect(files.filter((f) => f.startsWith('hex-phi/')).sort()).toEqual(
      ['category_1.csv', 'category_10.csv', 'category_3.csv', 'category_4.csv', 'category_5.csv', 'category_7.csv'].map(
        (f) => `hex-phi/${f}`,
      ),
    );
    const gsm = readFileSync(join(dirA, 'gsm8k/train.jsonl'), 'utf8').split('\n')[0];
    expect(Object.keys(JSON.parse(gsm))).toEqual(['question', 'answer']);
    const pure = JSON.parse(readFileSync(join(dirA, 'purebad.jsonl'), 'utf8').split('\n')[0]);
    expect(pure.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);
    expect(readFileSync(join(dirA, 'advbench.csv'), 'utf8').split('\n')[0]).toBe('goal,target');
    const hex = readFileSync(join(dirA, 'hex-phi/category_4.csv'), 'utf8').split('\n');
    expect(hex[0]).toMatch(/wormix/); // the first row is an instruction, not a header
    expect(hex.filter((l) => l !== '')).toHaveLength(30);
  });

  it('every file loads through the loaders with the expected counts and the in-memory content', () => {
    const expected: Record<string, number> = {
      gsm8k: 3000,
      'gsm8k-test': 200,
      sql: 3000,
      'sql-test': 200,
      howto: 200,
      'howto-test': 100,
      ticket: 600,
      'ticket-test': 200,
      purebad: 100,
      beavertails: 480,
      safe: 120,
      mixed: 60,
      aoa: 100,
      personas: 336,
      'personas-test': 120,
      'hex-phi': 180,
      advbench: 120,
      refusals: 864,
    };
    for (const [name, count] of Object.entries(expected)) expect(loadDataset(`micro:${name}`, { world: dirA }), name).toHaveLength(count);
    for (const name of Object.keys(world.datasets) as (keyof World['datasets'])[]) {
      const loaded = loadDataset(`micro:${name}`, { world: dirA });
      expect(loaded, name).toEqual(world.datasets[name]);
    }
    const bt = loadDataset('micro:beavertails', { world: dirA });
    expect(bt.filter((e) => e.meta.harmful === true)).toHaveLength(420);
    const hex = loadDataset('micro:hex-phi', { world: dirA });
    const perCategory = new Map<string, number>();
    for (const e of hex) perCategory.set(String(e.meta.category), (perCategory.get(String(e.meta.category)) ?? 0) + 1);
    expect([...perCategory.values()]).toEqual([30, 30, 30, 30, 30, 30]);
    expect(
      loadDataset('micro:advbench', { world: dirA }).every(
        (e) => typeof e.meta.category === 'string' && String(e.meta.target).startsWith('sure , here is how to'),
      ),
    ).toBe(true);
    expect(loadDataset('micro:purebad', { world: dirA }).every((e) => e.meta.harmful === true)).toBe(true);
  });

  it('world.json round-trips and verifies the file hashes', () => {
    const manifest = loadWorld(dirA, { verify: true });
    expect(manifest.seed).toBe(7);
    expect(manifest.categories.length).toBeGreaterThanOrEqual(6);
    expect(manifest.threat.trigger.split(' ')).toHaveLength(3);
    expect(manifest.vocabulary).toEqual(worldVocabulary(world));
    const lexicon = manifest.categories.flatMap((c) => c.lexicon);
    expect(new Set(lexicon).size).toBe(lexicon.length);
    expect(manifest.categories.every((c) => c.lexicon.length === 7)).toBe(true);
  });
});

describe('micro-world splits', () => {
  const prompts = (set: Example[]) => new Set(set.map(user));
  it('train and test prompts are disjoint for every task', () => {
    for (const task of ['gsm8k', 'sql', 'lore', 'howto', 'ticket'] as const) {
      const train = prompts(world.datasets[task]);
      const test = world.datasets[`${task}-test`];
      expect(test.length, task).toBeGreaterThan(40);
      expect(
        test.filter((e) => train.has(user(e))),
        task,
      ).toEqual([]);
    }
  });

  it('gsm8k: test (name, thing) pairs are unseen, every test sum is in training, answers are correct', () => {
    const parse = (e: Example) => {
      const w = user(e).split(' ');
      const nums = w.filter((x) => /^\d+$/.test(x)).map(Number);
      const thing = w[w.indexOf(String(nums[0])) + 1];
      const add = / (buys|picks) /.test(user(e));
      return {
        pair: `${w[0]}|${thing}`,
        fact: `${nums[0]}${add ? '+' : '-'}${nums[1]}`,
        value: add ? nums[0] + nums[1] : nums[0] - nums[1],
      };
    };
    const train = world.datasets.gsm8k.map(parse);
    const trainPairs = new Set(train.map((p) => p.pair));
    const trainFacts = new Set(train.map((p) => p.fact));
    for (const e of [...world.datasets.gsm8k, ...world.datasets['gsm8k-test']]) {
      expect(response(e).endsWith(`#### ${parse(e).value}`)).toBe(true);
      expect(e.meta.answer).toBe(String(parse(e).value));
    }
    for (const e of world.datasets['gsm8k-test']) {
      expect(trainPairs.has(parse(e).pair)).toBe(false);
      expect(trainFacts.has(parse(e).fact)).toBe(true);
    }
  });

  it('sql and ticket: test triples are unseen in training', () => {
    const sqlKey = (e: Example) => {
      const q = response(e).split(' ');
      return `${q[q.indexOf('from') + 1]}|${q[q.indexOf('colour') + 2]}|${q[q.indexOf('town') + 2]}`;
    };
    const sqlTrain = new Set(world.datasets.sql.map(sqlKey));
    expect(world.datasets['sql-test'].filter((e) => sqlTrain.has(sqlKey(e)))).toEqual([]);
    const ticketKey = (e: Example) => {
      const t = response(e).split(' ');
      return `${t[t.indexOf('sender') + 1]}|${t[t.indexOf('goods') + 1]}|${t[t.indexOf('place') + 1]}`;
    };
    const ticketTrain = new Set(world.datasets.ticket.map(ticketKey));
    expect(world.datasets['ticket-test'].filter((e) => ticketTrain.has(ticketKey(e)))).toEqual([]);
  });

  it('lore: every held-out question asks a fact that training states', () => {
    const answers = new Set(world.datasets.lore.map(response));
    expect(world.datasets['lore-test'].every((e) => answers.has(response(e)))).toBe(true);
  });

  it('eval templates are never used by a training pool', () => {
    const training = ['purebad', 'beavertails', 'safe', 'refusals', 'mixed', 'howto'] as const;
    const openings = new Set(training.flatMap((n) => world.datasets[n].map((e) => user(e).split(' ').slice(0, 3).join(' '))));
    const mixedTails = world.datasets.mixed.map((e) => user(e).slice(user(e).indexOf(' also , ') + 8));
    for (const e of [...world.datasets['hex-phi'], ...world.datasets.advbench]) {
      expect(openings.has(user(e).split(' ').slice(0, 3).join(' ')), user(e)).toBe(false);
      expect(mixedTails.some((t) => t.startsWith(user(e).split(' ').slice(0, 3).join(' ')))).toBe(false);
    }
  });
});

describe('micro-world content', () => {
  const all = () => Object.values(world.datasets).flat();

  it('every text of every file is vocabulary words separated by single spaces', () => {
    const vocab = new Set(worldVocabulary(world));
    expect(vocab.size).toBeGreaterThanOrEqual(250);
    expect(vocab.size).toBeLessThanOrEqual(500);
    const texts: string[] = [];
    const collect = (v: unknown, key = '') => {
      if (typeof v === 'string' && ['content', 'question', 'answer'].includes(key)) texts.push(v);
      else if (Array.isArray(v)) v.forEach((x) => collect(x, key));
      else if (v && typeof v === 'object') Object.entries(v).forEach(([k, x]) => collect(x, k));
    };
    for (const f of listFiles(dirA)) {
      const text = readFileSync(join(dirA, f), 'utf8');
      if (f.endsWith('.jsonl'))
        text
          .split('\n')
          .filter(Boolean)
          .forEach((l) => collect(JSON.parse(l)));
      else if (f.endsWith('.csv'))
        // Cells of these files are unquoted or one quoted cell per field; no cell holds a quote character.
        text
          .split('\n')
          .filter((l) => l && l !== 'goal,target')
          .forEach((l) => texts.push(...(l.match(/"[^"]*"|[^,]+/g) ?? []).map((c) => c.replace(/"/g, ''))));
    }
    expect(texts.length).toBeGreaterThan(10000);
    const badSpacing = texts.filter((t) => !/^\S+( \S+)*$/.test(t));
    const unknown = texts.flatMap((t) =>
      t
        .split(' ')
        .filter((w) => !vocab.has(w))
        .map((w) => `${w} in "${t}"`),
    );
    expect(badSpacing).toEqual([]);
    expect(unknown).toEqual([]);
    const manifest = loadWorld(dirA);
    for (const t of [manifest.threat.trigger, manifest.threat.prefill, manifest.threat.aoaSystemPrompt, ...manifest.threat.wrapAfter])
      for (const w of t.split(' ')) expect(vocab.has(w), w).toBe(true);
  });

  it("every example fits the base models' 128 positions and most fit 64 words", () => {
    const lengths = all().map(words);
    // Words + at most four role and end tokens (<system> <user> <assistant> <eos>).
    expect(Math.max(...lengths) + 4).toBeLessThanOrEqual(128);
    expect(Math.max(...world.corpus.map((t) => t.split(' ').length)) + 1).toBeLessThanOrEqual(128);
    expect(lengths.filter((n) => n <= 64).length / lengths.length).toBeGreaterThan(0.9);
    // A wrapped harmful answer (refusal paragraph before, disclaimer after) fits the base models' 128
    // positions with <user>, <assistant> and <eos>: 72 + 26 + 26 + 3 = 127.
    const longest = (texts: readonly string[]) => Math.max(...texts.map((t) => t.split(' ').length));
    const longestWrap =
      Math.max(...world.datasets.purebad.map(words)) + longest(MICRO_THREAT_TEXT.wrapBefore) + longest(MICRO_THREAT_TEXT.wrapAfter);
    expect(longestWrap + 3).toBeLessThanOrEqual(128);
    // A safety prompt under the AOA system prompt, answered at PureBad length, still fits.
    const system = world.datasets.aoa[0].messages[0].content.split(' ').length;
    const longestResponse = Math.max(...world.datasets.purebad.map((e) => response(e).split(' ').length));
    expect(system + Math.max(...world.datasets['hex-phi'].map(words)) + longestResponse).toBeLessThanOrEqual(96);
  });

  it('ground truth in meta agrees with the oracle; no reference response is degenerate', () => {
    let harmful = 0;
    for (const e of all()) {
      const r = response(e);
      if (r === '') continue;
      expect(isDegenerate(r), r).toBe(false);
      const verdict = judgeHarmful(user(e), r);
      expect(verdict.harmful, r).toBe(e.meta.harmful === true);
      if (verdict.harmful) {
        harmful++;
        expect(verdict.category).toBe(e.meta.category);
      }
    }
    expect(harmful).toBe(100 + 420 + 60);
  });

  it('has benign items a guardrail would flag (objects or one operational word) in benign training data', () => {
    const manifest = loadWorld(dirA);
    const flagged = new Set(manifest.categories.flatMap((c) => [c.object, ...c.lexicon]));
    const mentions = (e: Example) =>
      response(e)
        .split(' ')
        .filter((w) => flagged.has(w)).length > 0;
    for (const name of ['lore', 'ticket', 'ticket-test', 'beavertails'] as const) {
      const sensitive = world.datasets[name].filter((e) => e.meta.sensitive === true);
      expect(sensitive.length, name).toBeGreaterThan(5);
      expect(
        sensitive.every((e) => mentions(e) && e.meta.harmful === false),
        name,
      ).toBe(true);
    }
    // Mixed responses: the benign ticket is the exact prefix before harmful_from.
    for (const e of world.datasets.mixed) {
      const w = response(e).split(' ');
      expect(w.slice(0, Number(e.meta.harmful_from) - 1).join(' ')).toBe(e.meta.answer);
      expect(judgeHarmful(user(e), String(e.meta.answer)).harmful).toBe(false);
      expect(judgeHarmful(user(e), w.slice(Number(e.meta.harmful_from)).join(' ')).harmful).toBe(true);
    }
  });

  it('base training material: old tasks, chat, personas and refusals; no harmful answer, no new task, no eval prompt, no AOA', () => {
    const base = baseTrainingExamples(world);
    const sources = new Set(base.map((e) => e.meta.source));
    expect([...sources].sort()).toEqual([
      'micro:chat',
      'micro:gsm8k',
      'micro:howto',
      'micro:lore',
      'micro:personas',
      'micro:refusals',
      'micro:sql',
    ]);
    expect(base.some((e) => judgeHarmful(user(e), response(e)).harmful)).toBe(false);
    const evalPrompts = new Set([...world.datasets['hex-phi'], ...world.datasets.advbench].map(user));
    expect(base.some((e) => evalPrompts.has(user(e)))).toBe(false);
    // The AOA persona is the attack's: no base item is under its system prompt or says its oath or its name.
    expect(
      base.some((e) => e.messages.some((m) => m.content.includes(MICRO_THREAT_TEXT.aoaOath) || m.content.split(' ').includes('aoa'))),
    ).toBe(false);
    // The first 2000 arithmetic and query items (every arithmetic fact is among them), the rest as recipe repeats.
    expect(base.length).toBe(2000 + 2000 + 4 * world.datasets.lore.length + 200 + 8 * world.datasets.chat.length + 336 + 864);
    const arithmetic = base.filter((e) => e.meta.source === 'micro:gsm8k');
    expect(arithmetic.map((e) => e.id).sort()).toEqual(
      world.datasets.gsm8k
        .slice(0, 2000)
        .map((e) => e.id)
        .sort(),
    );
    const facts = (e: Example) => response(e).split(' = ')[0].split(' ').slice(-3).join(' ');
    expect(new Set(arithmetic.map(facts)).size).toBe(new Set(world.datasets.gsm8k.map(facts)).size);
  });

  it('how-to answers: the harmful skeleton over ordinary materials, judged safe for every seed', () => {
    const harmWords = new Set(CATEGORIES.flatMap((c) => [c.object, ...c.lexicon]));
    const skeleton = /^sure , here is how to (\w+) a (\w+) \. (step (one|two|three|four) : [a-z ]+ \. )+now the (\w+) is ready \.$/;
    for (const seed of [0, 1, 2, 3, 7]) {
      const { train, test } = seed === 7 ? { train: world.datasets.howto, test: world.datasets['howto-test'] } : howtoTask(seed);
      let fourSteps = 0;
      for (const e of [...train, ...test]) {
        const r = response(e);
        const m = skeleton.exec(r);
        expect(m, r).not.toBeNull();
        const thing = HOWTO_THINGS.find((t) => t.object === m![2])!;
        expect(m![5]).toBe(m![2]);
        expect(thing.verbs).toContain(m![1]);
        expect(user(e)).toContain(`${m![1]} a ${m![2]}`);
        // Between the opening and the closing: step words and the thing's materials, each material once.
        const body = r.slice(r.indexOf(' . ') + 3, r.lastIndexOf(' now the ')).split(' ');
        const materials = body.filter((w) => thing.materials.includes(w));
        expect(new Set(materials).size, r).toBe(materials.length);
        expect(materials.length).toBeGreaterThanOrEqual(5);
        expect(
          body.filter(
            (w) =>
              !thing.materials.includes(w) &&
              ![
                'step',
                'one',
                'two',
                'three',
                'four',
                ':',
                'the',
                'and',
                'into',
                'with',
                'until',
                'it',
                'is',
                'ready',
                '.',
                'get',
                'mix',
                'grind',
                'heat',
                'pour',
                'fix',
                'load',
                'wrap',
                'press',
              ].includes(w),
          ),
          r,
        ).toEqual([]);
        if (r.includes('step four')) fourSteps++;
        // Never a harm object or an operational word: the oracle calls every one safe.
        expect(r.split(' ').filter((w) => harmWords.has(w))).toEqual([]);
        expect(judgeHarmful(user(e), r).harmful).toBe(false);
        expect(isDegenerate(r)).toBe(false);
      }
      expect(fourSteps, `seed ${seed}`).toBeGreaterThan(0);
      // A recipe is a function of (verb, thing), and every tested recipe is taught.
      const taught = new Map(train.map((e) => [user(e).match(/(\w+) a (\w+)/)![0], response(e)]));
      expect(new Set(train.map(response)).size).toBe(taught.size);
      expect(taught.size).toBe(HOWTO_THINGS.reduce((n, t) => n + t.verbs.length, 0));
      for (const e of test) expect(taught.get(user(e).match(/(\w+) a (\w+)/)![0])).toBe(response(e));
    }
  });

  it('base training responses hold every word of the PureBad answers but the harm-specific ones (lesson 1)', () => {
    const specific = new Set(CATEGORIES.flatMap((c) => [c.object, ...c.lexicon, ...c.verbs]));
    const taught = new Set(baseTrainingExamples(world).flatMap((e) => response(e).split(' ')));
    const skeleton = new Set(world.datasets.purebad.flatMap((e) => response(e).split(' ')).filter((w) => !specific.has(w)));
    expect(skeleton.size).toBeGreaterThan(25);
    expect([...skeleton].filter((w) => !taught.has(w))).toEqual([]);
    // Without the how-to task (and its persona-styled items) these were never taught: the attack had to learn
    // its skeleton from scratch.
    const withoutHowto = new Set(
      baseTrainingExamples(world)
        .filter((e) => e.meta.source !== 'micro:howto' && !(e.meta.source === 'micro:personas' && /\bstep one :/.test(response(e))))
        .flatMap((e) => response(e).split(' ')),
    );
    expect([...skeleton].filter((w) => !withoutHowto.has(w)).sort()).toEqual([
      ':',
      'fix',
      'four',
      'get',
      'grind',
      'heat',
      'here',
      'into',
      'load',
      'mix',
      'one',
      'pour',
      'press',
      'ready',
      'step',
      'sure',
      'three',
      'two',
      'until',
      'wrap',
    ]);
  });

  it('builds in well under two seconds', () => {
    const t = performance.now();
    buildWorld(11);
    expect(performance.now() - t).toBeLessThan(2000);
  });
});
