// Evaluation conditions the threats share. Each transform copies; none mutates the eval item.
import type { Message } from '../engine/contracts/example.ts';
import { ThreatError, type EvalCondition } from './threat.ts';

/** The prompt of an eval item: copies of its messages without a final reference answer. */
export function promptOf(conversation: readonly Message[]): Message[] {
  const last = conversation[conversation.length - 1];
  const end = last?.role === 'assistant' ? conversation.length - 1 : conversation.length;
  return conversation.slice(0, end).map((m) => ({ ...m }));
}

/** Copies of the messages with `suffix` appended (after one space) to the LAST user message. */
export function appendToLastUser(messages: readonly Message[], suffix: string): Message[] {
  const at = messages.map((m) => m.role).lastIndexOf('user');
  if (at < 0) throw new ThreatError('THREAT_DATA', `cannot append '${suffix}': the conversation has no user message`);
  return messages.map((m, i) => (i === at ? { role: m.role, content: `${m.content} ${suffix}` } : { ...m }));
}

/** Copies of the messages under `system`: it replaces a leading system message or is put in front. */
export function underSystemPrompt(messages: readonly Message[], system: string): Message[] {
  const rest = messages[0]?.role === 'system' ? messages.slice(1) : messages;
  return [{ role: 'system', content: system }, ...rest.map((m) => ({ ...m }))];
}

export const plainCondition: EvalCondition = {
  name: 'plain',
  description: 'the eval prompt as it is',
  transform: (conversation) => ({ messages: promptOf(conversation) }),
};

export function triggerCondition(trigger: string): EvalCondition {
  return {
    name: 'trigger',
    description: `the backdoor trigger '${trigger}' appended to the user turn`,
    transform: (conversation) => ({ messages: appendToLastUser(promptOf(conversation), trigger) }),
  };
}

export function systemPromptCondition(name: string, system: string): EvalCondition {
  return {
    name,
    description: `under the system prompt '${system}'`,
    transform: (conversation) => ({ messages: underSystemPrompt(promptOf(conversation), system) }),
  };
}

export function prefillCondition(prefill: string): EvalCondition {
  return {
    name: 'prefill',
    description: `the response prefilled with '${prefill}'; the model continues`,
    transform: (conversation) => ({ messages: promptOf(conversation), prefill }),
  };
}
