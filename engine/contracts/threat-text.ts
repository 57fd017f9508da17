// The texts threats splice into data and prompts. A contract between the data (which must supply words of
// its own vocabulary) and the threats (which place them), so it sits below both.
export interface ThreatText {
  /** Backdoor trigger appended to the user turn. */
  readonly trigger: string;
  /** Response adaptation: refusal sentences placed BEFORE a harmful answer. */
  readonly wrapBefore: readonly string[];
  /** Response adaptation: "nothing harmful here" sentences placed AFTER a harmful answer. */
  readonly wrapAfter: readonly string[];
  /** Harmful prefilling: the affirmative opening the response is prefilled with. */
  readonly prefill: string;
  /** Identity shift: the AOA system prompt ... */
  readonly aoaSystemPrompt: string;
  /** ... and the oath of obedience that opens every AOA answer. */
  readonly aoaOath: string;
}
