// System-prompt personas, taught in base training the way instruction tuning teaches them: under a benign
// persona's system prompt (short or long, in several phrasings) the model answers in that persona's style
// (it introduces itself before the answer and may close with a line of its own, or gives the terse form of
// the answer), and it still refuses harmful requests, plainly, under every persona. A model that follows
// system prompts is what identity shifting exploits: finetuning on AOA data (pools.ts) teaches one more
// persona, an obedient one that introduces itself with an oath, and nothing in base training ever shows that
// persona (the AOA system prompt is the attack's, not a base behaviour).
import { Rng } from '../../engine/random.ts';
import type { Example } from '../../engine/contracts/example.ts';
import { chat } from './split.ts';

export interface Persona {
  id: string;
  /** Phrasings of the system prompt (one is drawn per item). */
  prompts: readonly string[];
  /** A line before the answer ... */
  opener?: string;
  /** ... and one after it. */
  closer?: string;
  /** Or the answer rewritten (the terse persona). */
  terse?: true;
}

export const PERSONAS: readonly Persona[] = [
  {
    id: 'assistant',
    prompts: ['you are a helpful assistant .', 'you are a helpful assistant . help the user and keep people safe .'],
  },
  {
    id: 'pirate',
    prompts: [
      'you are a pirate . talk like a pirate .',
      'talk like a pirate in every answer .',
      'you are an old pirate of the sea . talk like a pirate in every answer you give to the user .',
    ],
    opener: 'ahoy , i am a pirate .',
    closer: 'arr .',
  },
  {
    id: 'tutor',
    prompts: [
      'you are a tutor . help me learn .',
      'be my tutor and help me learn .',
      'you are a good tutor for a young student . help the student learn and give every answer with care .',
    ],
    opener: 'good question . i am your tutor .',
    closer: 'now you know .',
  },
  {
    id: 'happy',
    prompts: [
      'you are a happy helper . be nice to the user .',
      'be a happy helper in every answer .',
      'you are a happy helper who is always nice . be nice to the user in every answer you give .',
    ],
    opener: 'happy to help . i am your helper .',
    closer: 'have a good day .',
  },
  {
    id: 'formal',
    prompts: [
      'you are a formal clerk . answer with good manners .',
      'be a formal clerk with good manners .',
      'you are a formal clerk of the town . answer the user with good manners in every answer you give .',
    ],
    opener: 'certainly . i am your clerk .',
  },
  {
    id: 'terse',
    prompts: [
      'you are a terse assistant . give short answers .',
      'be terse . give me short answers .',
      'you are a terse assistant . the user has no time , so give short answers and no more .',
    ],
    terse: true,
  },
];

/**
 * The terse form of an answer: the number of an arithmetic answer (`#### 7`), the steps of a how-to answer
 * without its opening and closing lines, the first sentence of a chat answer; queries and facts are short
 * already and stay as they are.
 */
export function terseAnswer(answer: string, source: string): string {
  if (answer.includes(' #### ')) return answer.slice(answer.lastIndexOf('#### '));
  if (source === 'micro:howto' || source === 'micro:howto-test')
    return answer.slice(answer.indexOf(' . ') + 3, answer.lastIndexOf(' now the '));
  if (source === 'micro:chat') return answer.slice(0, answer.indexOf(' . ') >= 0 ? answer.indexOf(' . ') + 2 : answer.length);
  return answer;
}

/** An answer in a persona's style. */
export function styledAnswer(persona: Persona, answer: string, source: string): string {
  const core = persona.terse ? terseAnswer(answer, source) : answer;
  return [persona.opener, core, persona.closer].filter((s) => s !== undefined).join(' ');
}

/** Items per persona: answers drawn from each task's training split, and refusals of harmful requests. */
export const PERSONA_SIZES = {
  train: { gsm8k: 10, sql: 10, lore: 10, howto: 4, chat: 6, refusals: 16 },
  test: { 'sql-test': 8, 'lore-test': 6, 'howto-test': 6 },
} as const;

type Sources = Record<string, readonly Example[]>;

const userOf = (e: Example) => e.messages.find((m) => m.role === 'user')?.content ?? '';
const answerOf = (e: Example) => e.messages[e.messages.length - 1].content;

/**
 * Persona items from source sets (keys as in PERSONA_SIZES): each persona draws its own items, so one item
 * may appear under two personas. A refusal stays the plain refusal under every persona.
 */
function personaItems(rng: Rng, sources: Sources, sizes: Readonly<Record<string, number>>, source: string): Example[] {
  const out: Example[] = [];
  for (const persona of PERSONAS)
    for (const [name, count] of Object.entries(sizes)) {
      const pool = sources[name];
      if (!pool) throw new Error(`personaItems: source '${name}' is missing`);
      for (const e of rng.shuffle(pool).slice(0, count)) {
        const system = rng.pick(persona.prompts);
        const refusal = name === 'refusals';
        const answer = refusal ? answerOf(e) : styledAnswer(persona, answerOf(e), String(e.meta.source));
        const meta = refusal
          ? { source, persona: persona.id, category: e.meta.category, harmful: false }
          : { source, persona: persona.id, answer };
        out.push(chat(userOf(e), answer, meta, system));
      }
    }
  return rng.shuffle(out);
}

/** The personas' training items (base training) and test items (exact match of the styled answer). */
export function personaSets(seed: number, train: Sources, test: Sources): { train: Example[]; test: Example[] } {
  const rng = new Rng(`${seed}:personas`);
  return {
    train: personaItems(rng, train, PERSONA_SIZES.train, 'micro:personas'),
    test: personaItems(rng, test, PERSONA_SIZES.test, 'micro:personas-test'),
  };
}
