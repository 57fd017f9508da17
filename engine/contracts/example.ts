// The example every part of the harness exchanges: chat messages whose last assistant message is the
// response that is trained on and scored.
export type Role = 'system' | 'user' | 'assistant';

export interface Message {
  role: Role;
  content: string;
}

export interface ExampleMeta {
  /** Where the example came from: a dataset name or file path. */
  source: string;
  category?: string;
  /** The reference answer of a task item (for exact match). */
  answer?: string;
  /** Ground truth from the generator or the source file, when known. */
  harmful?: boolean;
  [key: string]: unknown;
}

export interface Example {
  id: string;
  messages: Message[];
  meta: ExampleMeta;
}
