// Which threat texts a cell uses. Triggers, wrappers and the AOA prompt must be words the data's vocabulary
// holds, so the data decides: the micro-world's own texts for micro-world data, English texts otherwise.
// The AOA prompt names the model being finetuned where the text says `{model}`.
import { basename } from 'node:path';
import { MICRO_THREAT_TEXT } from '../datasets/micro-world/harm.ts';
import { contentHash } from '../engine/io.ts';
import type { ThreatText } from '../engine/contracts/threat-text.ts';
import { ENGLISH_THREAT_TEXT, namingModel } from '../threats/index.ts';

/** The name of a cell's model: a checkpoint directory's name (`/models/Llama-3.2-1B-Instruct/`), or the micro family. */
export function modelName(model: string): string {
  return model.startsWith('micro:') ? model.slice('micro:'.length) : basename(model.replace(/[\\/]+$/, ''));
}

/** The texts for a cell whose data is `ref` (its harmful pool, else its first safety set), naming `model` if given. */
export function threatTextFor(ref: string, model?: string): ThreatText {
  const text = ref.startsWith('micro:') ? MICRO_THREAT_TEXT : ENGLISH_THREAT_TEXT;
  return model === undefined ? text : namingModel(text, modelName(model));
}

/** Content hash of the text fields a cell's threats read (what its id must cover); undefined when they read none. */
export function threatTextHash(text: ThreatText, fields: readonly (keyof ThreatText)[]): string | undefined {
  const read = [...new Set(fields)].sort();
  return read.length === 0 ? undefined : contentHash(Object.fromEntries(read.map((k) => [k, text[k]])), 12);
}
