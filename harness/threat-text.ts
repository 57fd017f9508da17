// Which threat texts a cell uses. Triggers, wrappers and the AOA prompt must be words the data's vocabulary
// holds, so the data decides: the micro-world's own texts for micro-world data, English texts otherwise.
import { MICRO_THREAT_TEXT } from '../datasets/micro-world/harm.ts';
import type { ThreatText } from '../engine/contracts/threat-text.ts';
import { ENGLISH_THREAT_TEXT } from '../threats/index.ts';

/** The texts for a cell whose data is `ref` (its harmful pool, else its task, else its first safety set). */
export const threatTextFor = (ref: string): ThreatText => (ref.startsWith('micro:') ? MICRO_THREAT_TEXT : ENGLISH_THREAT_TEXT);
