// The micro-world's benign word lists. Every text the world writes is built from these lists, the harm
// lists in harm.ts and the template words, all lowercase, punctuation as separate tokens. The lists are
// constants (not seeded) so that every seed of the world shares one vocabulary, one tokenizer and one
// oracle; the seed only decides which facts hold and which items are sampled.

export const NAMES = [
  'mira',
  'tom',
  'ana',
  'bo',
  'kai',
  'lena',
  'sam',
  'rosa',
  'ivo',
  'nia',
  'pim',
  'dara',
  'ol',
  'suki',
  'finn',
  'yara',
  'teo',
  'ume',
  'jax',
  'wren',
] as const;

/** Countable things of the arithmetic problems (plural forms only: one word per object). */
export const THINGS = [
  'apples',
  'pears',
  'eggs',
  'cups',
  'coins',
  'books',
  'shells',
  'stones',
  'hats',
  'pens',
  'plums',
  'cakes',
  'keys',
  'bells',
  'rings',
  'socks',
] as const;

/** Invented towns: the SQL-like task's `town` column, the lore facts and the tickets. */
export const TOWNS = ['zorvik', 'pellan', 'quessa', 'durnow', 'amberra', 'tolvik', 'halvorn', 'ostrel', 'vennick', 'lumo'] as const;

export const COLOURS = ['red', 'blue', 'green', 'white', 'black', 'yellow', 'brown', 'grey'] as const;

/** Goods: the SQL-like task's tables and the towns' crafts. */
export const GOODS = [
  'lamps',
  'chairs',
  'rugs',
  'vases',
  'kettles',
  'drums',
  'kites',
  'bowls',
  'mugs',
  'clocks',
  'benches',
  'fans',
] as const;

export const RIVERS = ['ulm', 'sarra', 'tiven', 'okko', 'brill'] as const;
export const PETS = ['cat', 'dog', 'goat', 'owl', 'fox'] as const;
export const JOBS = ['baker', 'smith', 'farmer', 'guard', 'miner', 'weaver'] as const;

/** Ordinary chat for the base model: greetings, manners and simple facts (prompts → one answer). */
export const CHAT: readonly { prompts: readonly string[]; answer: string }[] = [
  { prompts: ['hello', 'hi', 'hello there', 'good morning', 'hey'], answer: 'hello . how can i help you today ?' },
  { prompts: ['how are you ?', 'how are you today ?'], answer: 'i am well , thank you . how can i help you ?' },
  { prompts: ['thank you', 'thanks', 'thank you so much'], answer: 'you are welcome .' },
  { prompts: ['what is your name ?', 'who are you ?'], answer: 'i am a helpful assistant .' },
  { prompts: ['bye', 'good bye', 'see you later'], answer: 'good bye . have a nice day .' },
  { prompts: ['can you help me ?', 'i need some help .'], answer: 'yes , of course . what do you need ?' },
  { prompts: ['what colour is the sky ?'], answer: 'the sky is blue .' },
  { prompts: ['what colour is grass ?'], answer: 'grass is green .' },
  { prompts: ['what colour is snow ?'], answer: 'snow is white .' },
  { prompts: ['what colour is the sun ?'], answer: 'the sun is yellow .' },
  { prompts: ['how many days are in a week ?'], answer: 'a week has 7 days .' },
  { prompts: ['how many legs does a dog have ?'], answer: 'a dog has 4 legs .' },
  { prompts: ['how many legs does an owl have ?'], answer: 'an owl has 2 legs .' },
  { prompts: ['what does a baker make ?'], answer: 'a baker makes bread and cakes .' },
  { prompts: ['what does a guard do ?'], answer: 'a guard keeps the town safe .' },
];

/**
 * The benign how-to task's things: ordinary food, crafts and farm or house repairs, each with the verbs
 * one asks for it and seven ordinary materials its steps combine (the harmful answers' skeleton, filled
 * with these instead of a category's operational lexicon). Never a harm object or an operational word.
 */
export const HOWTO_THINGS: readonly { object: string; verbs: readonly string[]; materials: readonly string[] }[] = [
  { object: 'bread', verbs: ['bake', 'make'], materials: ['flour', 'water', 'salt', 'milk', 'butter', 'oil', 'eggs'] },
  { object: 'cake', verbs: ['bake', 'make'], materials: ['flour', 'sugar', 'eggs', 'milk', 'butter', 'apples', 'plums'] },
  { object: 'pie', verbs: ['bake', 'make'], materials: ['flour', 'butter', 'sugar', 'apples', 'pears', 'plums', 'salt'] },
  { object: 'kite', verbs: ['build', 'make'], materials: ['paper', 'string', 'sticks', 'glue', 'cloth', 'paint', 'wood'] },
  { object: 'lamp', verbs: ['build', 'mend'], materials: ['glass', 'oil', 'wax', 'string', 'clay', 'paint', 'nails'] },
  { object: 'basket', verbs: ['weave', 'make'], materials: ['straw', 'string', 'sticks', 'wool', 'glue', 'cloth', 'paint'] },
  { object: 'rug', verbs: ['weave', 'make'], materials: ['wool', 'string', 'cloth', 'straw', 'paint', 'glue', 'sticks'] },
  { object: 'pot', verbs: ['make', 'mend'], materials: ['clay', 'water', 'sand', 'paint', 'wax', 'oil', 'straw'] },
  { object: 'stool', verbs: ['build', 'mend'], materials: ['wood', 'nails', 'glue', 'paint', 'sticks', 'cloth', 'oil'] },
  { object: 'fence', verbs: ['build', 'mend'], materials: ['wood', 'nails', 'sticks', 'paint', 'string', 'stones', 'oil'] },
];

/** Where a how-to request is set: two contexts the harmful requests share (so the thing decides), two their own. */
export const HOWTO_CONTEXTS = ['at home', 'tonight', 'for my family', 'today'] as const;
