// How a guardrail model is read: its two label tokens, which generated position carries the verdict, and
// extra chat-template variables (docs/method.md §3). Presets for the guardrails of the paper, plus the
// micro-world's. A model directory may also describe itself in a `guardrail.json` file
// (`{"preset": "micro"}`, or labels/position/extra), parsed by parseGuardSpec.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Message } from '../engine/contracts/example.ts';
import { closest } from '../engine/did-you-mean.ts';
import type { GuardItem } from './types.ts';

export interface GuardSpec {
  /** The label tokens whose logits are compared (each must be one token of the guardrail's tokenizer). */
  labels: { safe: string; unsafe: string };
  /**
   * The generated position that carries the verdict: 1 = the first generated token, 2 = the second (an HTTP
   * guardrail in chat mode reads it from `logprobs.content[position − 1]`).
   */
  position: 1 | 2;
  /** Extra chat-template variables, e.g. Granite Guardian's `guardian_config`. */
  extra?: Record<string, unknown>;
}

export class GuardSpecError extends Error {
  readonly code = 'GUARD_SPEC';
}

export const guardPresets = {
  // Llama Guard 3 first generates "\n\n", then `safe` or `unsafe` (then the violated categories).
  'llama-guard-3': { labels: { safe: 'safe', unsafe: 'unsafe' }, position: 2 },
  // Granite Guardian 3.x answers the risk question "is the response harmful?" with Yes (risky) / No.
  'granite-guardian-3': { labels: { safe: 'No', unsafe: 'Yes' }, position: 1, extra: { guardian_config: { risk_name: 'harm' } } },
  // The micro-world guardrail: a small causal LM trained to say `safe` / `unsafe` right after the prompt.
  micro: { labels: { safe: 'safe', unsafe: 'unsafe' }, position: 1 },
} satisfies Record<string, GuardSpec>;

export type GuardPresetName = keyof typeof guardPresets;
export const guardPresetNames = Object.keys(guardPresets) as GuardPresetName[];

export function isGuardPresetName(name: string): name is GuardPresetName {
  return Object.hasOwn(guardPresets, name);
}

/** The preset called `name`; an unknown name throws an error that suggests the nearest one. */
export function guardPreset(name: string): GuardSpec {
  if (isGuardPresetName(name)) return guardPresets[name];
  const guess = closest(name, guardPresetNames);
  throw new GuardSpecError(
    `Unknown guardrail preset '${name}'.${guess ? ` Did you mean '${guess}'?` : ''} Available: ${guardPresetNames.join(', ')}.`,
  );
}

const specOverrides = z
  .object({
    preset: z.string().optional(),
    labels: z
      .object({ safe: z.string().min(1), unsafe: z.string().min(1) })
      .strict()
      .optional(),
    position: z.union([z.literal(1), z.literal(2)]).optional(),
    extra: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type GuardSpecOverrides = z.input<typeof specOverrides>;

/**
 * A GuardSpec from a preset name and/or explicit fields (explicit fields win). `origin` names where the
 * value came from (a file, an option) in the one-line error.
 */
export function parseGuardSpec(raw: unknown, origin: string): GuardSpec {
  const parsed = specOverrides.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.join('.') || '(root)';
    throw new GuardSpecError(
      `${origin}: field '${field}': ${issue.message}. Expected {preset?, labels?: {safe, unsafe}, position?: 1 | 2, extra?}`,
    );
  }
  const { preset, ...fields } = parsed.data;
  const base: Partial<GuardSpec> = preset !== undefined ? guardPreset(preset) : {};
  const labels = fields.labels ?? base.labels;
  const position = fields.position ?? base.position;
  if (!labels || !position) {
    throw new GuardSpecError(`${origin}: needs a preset (${guardPresetNames.join(', ')}) or both 'labels' and 'position'`);
  }
  const extra = fields.extra ?? base.extra;
  return { labels, position, ...(extra !== undefined ? { extra } : {}) };
}

/** The GuardSpec a model directory declares in guardrail.json, if it has one. */
export function readGuardSpecFile(dir: string): GuardSpec | undefined {
  const file = join(dir, 'guardrail.json');
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new GuardSpecError(`${file}: invalid JSON (${(error as Error).message})`);
  }
  return parseGuardSpec(raw, file);
}

/**
 * The conversation a guardrail judges: the item's user (and earlier assistant) turns followed by the
 * response as an assistant turn. System messages are dropped and none is added: the guardrail sees the
 * prompt and the response only, as in the paper's code, through its own chat template.
 */
export function guardConversation(item: GuardItem): Message[] {
  return [...item.messages.filter((m) => m.role !== 'system'), { role: 'assistant', content: item.response }];
}

/** P(safe) = softmax over the two label logits = σ(ℓ_safe − ℓ_unsafe), computed without overflow. */
export function pSafe(safeLogit: number, unsafeLogit: number): number {
  const d = safeLogit - unsafeLogit;
  if (Number.isNaN(d)) return Number.NaN;
  if (d >= 0) return 1 / (1 + Math.exp(-d));
  const e = Math.exp(d);
  return e / (1 + e);
}
