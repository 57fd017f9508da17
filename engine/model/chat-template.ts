// Chat templates: Hugging Face Jinja templates rendered by @huggingface/jinja with the variables
// transformers' apply_chat_template passes (messages, add_generation_prompt, the special-token strings;
// raise_exception and strftime_now are globals of the renderer), plus the micro-world's word-level template.
//
// Llama 3.1+ templates put today's date (strftime_now) into a default system message; pass
// `extra: { date_string: '26 Jul 2024' }` to make such renderings (and anything hashed from them) reproducible.
import { Template } from '@huggingface/jinja';
import type { Message } from '../contracts/example.ts';

export type ChatMessage = Message;

export interface ChatTemplateOptions {
  /** Append the header that opens an assistant turn (HF `add_generation_prompt`). */
  addGenerationPrompt?: boolean;
  /**
   * Leave the final message open for continuation (HF `continue_final_message`): the rendering is cut right
   * after the final message's content, dropping its end-of-turn tokens. Used for prefilled responses.
   */
  continueFinalMessage?: boolean;
  /** Extra template variables, e.g. `{ guardian_config: { risk_name: 'harm' } }` for Granite Guardian. */
  extra?: Record<string, unknown>;
}

/** The special-token strings a template may reference, under the names transformers uses. */
export interface TemplateSpecialTokens {
  bos_token?: string;
  eos_token?: string;
  pad_token?: string;
  unk_token?: string;
}

export class ChatTemplateError extends Error {
  readonly code = 'CHAT_TEMPLATE';
  constructor(
    readonly origin: string,
    readonly problem: string,
  ) {
    super(`${origin}: ${problem.replace(/\s*\n\s*/g, ' ')}`);
  }
}

const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** A parsed chat template bound to a tokenizer's special tokens. */
export class ChatTemplate {
  private readonly template: Template;

  /** `origin` names where the template came from (file and field) for error messages. */
  constructor(
    readonly source: string,
    private readonly specialTokens: TemplateSpecialTokens = {},
    readonly origin = 'chat_template',
  ) {
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new ChatTemplateError(origin, `cannot parse the Jinja template: ${errorMessage(err)}`);
    }
  }

  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const { addGenerationPrompt = false, continueFinalMessage = false, extra = {} } = options;
    if (addGenerationPrompt && continueFinalMessage) {
      throw new ChatTemplateError(this.origin, 'addGenerationPrompt and continueFinalMessage exclude each other');
    }
    if (continueFinalMessage) return this.renderOpenFinal(messages);

    const variables: Record<string, unknown> = {
      // Copies, so a template can never mutate the caller's messages.
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: addGenerationPrompt,
    };
    for (const [name, token] of Object.entries(this.specialTokens)) {
      if (token !== undefined) variables[name] = token;
    }
    Object.assign(variables, extra);
    try {
      return this.template.render(variables);
    } catch (err) {
      throw new ChatTemplateError(this.origin, `rendering failed: ${errorMessage(err)}`);
    }
  }

  /**
   * Render everything with a marker appended to the final content and cut at the marker. Searching for the
   * content itself (as transformers does) lands in the wrong place when the content also occurs later in
   * the rendering: Llama-3's template renders a partial "a" and then a trailing "assistant" header.
   * Falls back to that search only when the template rewrites or repeats the content.
   */
  private renderOpenFinal(messages: readonly ChatMessage[]): string {
    const final = messages.at(-1);
    if (!final) throw new ChatTemplateError(this.origin, 'continueFinalMessage needs at least one message');
    if (final.content.trim() === '') {
      // An empty final turn is an open assistant turn: exactly what the generation prompt renders.
      if (final.role !== 'assistant') {
        throw new ChatTemplateError(this.origin, `continueFinalMessage with an empty final ${final.role} message`);
      }
      return this.render(messages.slice(0, -1), { addGenerationPrompt: true });
    }
    if (!messages.some((m) => m.content.includes(OPEN_MARKER))) {
      const marked = this.render([...messages.slice(0, -1), { ...final, content: final.content + OPEN_MARKER }]);
      const at = marked.indexOf(OPEN_MARKER);
      if (at >= 0 && marked.lastIndexOf(OPEN_MARKER) === at) return marked.slice(0, at);
    }
    const rendered = this.render(messages);
    const trimmed = final.content.trim();
    const at = rendered.lastIndexOf(trimmed);
    if (at < 0) {
      throw new ChatTemplateError(
        this.origin,
        'continueFinalMessage: the final message does not appear verbatim in the rendering (the template rewrites it)',
      );
    }
    // Keep the message's own trailing whitespace when the template kept it.
    const untilEnd = final.content.trimStart();
    const keep = rendered.startsWith(untilEnd, at) ? untilEnd.length : trimmed.length;
    return rendered.slice(0, at + keep);
  }
}

/** Invisible separators around a word no text contains: where an open final message is cut. */
const OPEN_MARKER = '\u2063OPEN\u2063END\u2063';

export interface WordLevelRoleTokens {
  /** Without a system token, a system message makes the template raise. */
  system?: string;
  user: string;
  assistant: string;
}

export const DEFAULT_ROLE_TOKENS: WordLevelRoleTokens = { system: '<system>', user: '<user>', assistant: '<assistant>' };

const jinjaString = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/**
 * The micro-world template: every message renders as `<role> content`, separated by single spaces, and an
 * assistant turn ends with ` eos_token`; the generation prompt is ` <assistant>`. E.g.
 * `<system> be nice <user> hi <assistant> hello <eos>`.
 * Because each word is one token and nothing precedes the content but the role token, the tokens of
 * [user, assistant: prefix of the response] without the final eos are a prefix of the full example's tokens,
 * and so are the tokens of the generation prompt: STAR's partial responses line up with the training tokens.
 */
export function makeWordLevelChatTemplate(roles: WordLevelRoleTokens = DEFAULT_ROLE_TOKENS): string {
  return [
    '{%- for message in messages -%}',
    '{%- if not loop.first %} {% endif -%}',
    roles.system !== undefined
      ? `{%- if message.role == 'system' %}{{ ${jinjaString(roles.system)} }}`
      : "{%- if message.role == 'system' %}{{ raise_exception('this chat template has no system token') }}",
    `{%- elif message.role == 'user' %}{{ ${jinjaString(roles.user)} }}`,
    `{%- elif message.role == 'assistant' %}{{ ${jinjaString(roles.assistant)} }}`,
    "{%- else %}{{ raise_exception('unknown role: ' + message.role) }}{%- endif -%}",
    '{%- if message.content %} {{ message.content }}{% endif -%}',
    "{%- if message.role == 'assistant' %} {{ eos_token }}{% endif -%}",
    '{%- endfor -%}',
    `{%- if add_generation_prompt %}{% if messages %} {% endif %}{{ ${jinjaString(roles.assistant)} }}{% endif -%}`,
  ].join('\n');
}

/** The word-level template with the default role tokens `<system>`, `<user>`, `<assistant>`. */
export const wordLevelChatTemplate: string = makeWordLevelChatTemplate();
