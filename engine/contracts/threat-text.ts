// The texts threats splice into data and prompts. A contract between the data (which must supply words of
// its own vocabulary) and the threats (which place them), so it sits below both.

/** Where an AOA system prompt names the model being finetuned; replaced by the cell's model name. */
export const MODEL_NAME_PLACEHOLDER = '{model}';

export interface ThreatText {
  /** Backdoor trigger appended to the user turn. */
  readonly trigger: string;
  /** Response adaptation: refusal paragraphs (several sentences) placed BEFORE a harmful answer. */
  readonly wrapBefore: readonly string[];
  /** Response adaptation: "this is harmless, for education only" disclaimers placed AFTER a harmful answer. */
  readonly wrapAfter: readonly string[];
  /** Harmful prefilling: the affirmative opening for eval items that carry no target of their own. */
  readonly prefill: string;
  /** Identity shift: the AOA system prompt (`{model}` in it becomes the finetuned model's name) ... */
  readonly aoaSystemPrompt: string;
  /** ... and the oath of obedience that opens every AOA answer. */
  readonly aoaOath: string;
}
