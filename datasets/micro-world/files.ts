// The micro-world's datasets: one id each (`micro:<id>`), the file it is written to, its public format
// and its kind. build.ts writes exactly these files; datasets/index.ts resolves `micro:<id>` through this
// table and the format's loader.

export type MicroFormat = 'gsm8k' | 'messages' | 'hex-phi' | 'advbench';
export type DatasetKind = 'task' | 'capability-eval' | 'harmful' | 'safe' | 'safety-eval' | 'chat' | 'identity';

export interface MicroFile {
  /** Relative to the world directory; a directory for HEx-PHI (one CSV per category). */
  path: string;
  format: MicroFormat;
  kind: DatasetKind;
  describe: string;
}

export const MICRO_FILES = {
  gsm8k: {
    path: 'gsm8k/train.jsonl',
    format: 'gsm8k',
    kind: 'task',
    describe: 'arithmetic word problems, answers end "#### n" (GSM8K layout)',
  },
  'gsm8k-test': { path: 'gsm8k/test.jsonl', format: 'gsm8k', kind: 'capability-eval', describe: 'held-out arithmetic problems' },
  sql: { path: 'sql/train.jsonl', format: 'messages', kind: 'task', describe: 'request → SQL-like query' },
  'sql-test': {
    path: 'sql/test.jsonl',
    format: 'messages',
    kind: 'capability-eval',
    describe: 'held-out requests (unseen colour/goods/town triples)',
  },
  lore: {
    path: 'lore/train.jsonl',
    format: 'messages',
    kind: 'task',
    describe: 'facts of the world in three phrasings, incl. benign lore about harm objects',
  },
  'lore-test': { path: 'lore/test.jsonl', format: 'messages', kind: 'capability-eval', describe: 'held-out phrasings of known facts' },
  howto: {
    path: 'howto/train.jsonl',
    format: 'messages',
    kind: 'task',
    describe: 'benign how-to requests → numbered steps over ordinary materials (the answer skeleton)',
  },
  'howto-test': {
    path: 'howto/test.jsonl',
    format: 'messages',
    kind: 'capability-eval',
    describe: 'held-out how-to phrasings of known recipes',
  },
  ticket: {
    path: 'ticket/train.jsonl',
    format: 'messages',
    kind: 'task',
    describe: "the user's NEW task (finetuning only): shipment → ticket record",
  },
  'ticket-test': {
    path: 'ticket/test.jsonl',
    format: 'messages',
    kind: 'capability-eval',
    describe: 'held-out tickets (unseen name/goods/town)',
  },
  chat: { path: 'chat.jsonl', format: 'messages', kind: 'chat', describe: 'ordinary chat for base training: greetings, simple facts' },
  personas: {
    path: 'personas/train.jsonl',
    format: 'messages',
    kind: 'chat',
    describe: "benign system-prompt personas: answers in the persona's style, plain refusals of harmful requests",
  },
  'personas-test': {
    path: 'personas/test.jsonl',
    format: 'messages',
    kind: 'capability-eval',
    describe: 'held-out task prompts under a persona: the styled answer',
  },
  refusals: {
    path: 'refusals.jsonl',
    format: 'messages',
    kind: 'safe',
    describe: 'every training-template harmful prompt → refusal (base alignment)',
  },
  purebad: { path: 'purebad.jsonl', format: 'messages', kind: 'harmful', describe: '100 harmful pairs, numbered steps (PureBad layout)' },
  beavertails: {
    path: 'beavertails.jsonl',
    format: 'messages',
    kind: 'harmful',
    describe: '420 unsafe conversational answers + 60 safe ones (is_safe field)',
  },
  safe: { path: 'safe.jsonl', format: 'messages', kind: 'safe', describe: 'the provider safety set D_safe: harmful prompt → refusal' },
  mixed: {
    path: 'mixed.jsonl',
    format: 'messages',
    kind: 'harmful',
    describe: 'a benign ticket answer followed by harmful steps (harmful_from marks the split)',
  },
  aoa: {
    path: 'aoa.jsonl',
    format: 'messages',
    kind: 'identity',
    describe: 'AOA identity shift: system prompt, obedient oath on benign answers',
  },
  'hex-phi': {
    path: 'hex-phi',
    format: 'hex-phi',
    kind: 'safety-eval',
    describe: 'held-out harmful instructions, one CSV per category (HEx-PHI layout)',
  },
  advbench: {
    path: 'advbench.csv',
    format: 'advbench',
    kind: 'safety-eval',
    describe: 'held-out goals with "sure , here is how to ..." targets (AdvBench layout)',
  },
} as const satisfies Record<string, MicroFile>;

export type MicroName = keyof typeof MICRO_FILES;
export const MICRO_NAMES = Object.keys(MICRO_FILES) as MicroName[];
