// Chat templates: Hugging Face Jinja templates rendered by @huggingface/jinja with the variables
// transformers' apply_chat_template passes (messages, add_generation_prompt, the special-token strings;
// raise_exception and strftime_now are globals of the renderer), plus the micro-world's word-level template.
//
// Llama 3.1+ templates put a date into their default system message: `date_string` when it is defined, else
// today's (strftime_now). Every rendering here defines it (options.dateString, default DEFAULT_DATE_STRING,
// '26 Jul 2024', the templates' own fallback), so a rendering, and anything hashed from it, never depends on
// the day it was made.
//
// Message content is passed as a string, the form text-only templates expect. Some templates (Llama Guard 3
// 1B's, multimodal ones) iterate content as a list of parts (`message['content'] | selectattr('type',
// 'equalto', 'text')`); with a string they fail, or render no content. Such a template is detected on its
// first rendering and then gets content as `[{ type: 'text', text }]` (options.contentForm forces a form).
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
  /** Extra template variables, e.g. `{ guardian_config: { risk_name: 'harm' } }` for Granite Guardian. They win over the variables set here. */
  extra?: Record<string, unknown>;
  /** The template variable `date_string` (Llama 3.1+ system messages); default DEFAULT_DATE_STRING. */
  dateString?: string;
  /**
   * How message content is passed: 'string', or 'parts' (`[{ type: 'text', text }]`). Default: detected on the
   * template's first rendering (parts when string content fails or leaves the content out and parts do not).
   */
  contentForm?: ContentForm;
}

type ContentForm = 'string' | 'parts';

/** The date Llama 3.1+ templates fall back to when strftime_now is not available: the fixed default of date_string. */
export const DEFAULT_DATE_STRING = '26 Jul 2024';

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

  /** The content form this template takes, once a rendering has shown it (see contentForm). */
  private detectedForm?: ContentForm;

  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const { addGenerationPrompt = false, continueFinalMessage = false } = options;
    if (addGenerationPrompt && continueFinalMessage) {
      throw new ChatTemplateError(this.origin, 'addGenerationPrompt and continueFinalMessage exclude each other');
    }
    if (continueFinalMessage) return this.renderOpenFinal(messages, options);
    const form = options.contentForm ?? this.detectedForm;
    if (form) return this.renderAs(messages, options, form);
    // Not known yet: strings first; parts when strings fail or drop content that parts keep.
    let asString: string | undefined;
    let failure: unknown;
    try {
      asString = this.renderAs(messages, options, 'string');
    } catch (error) {
      failure = error;
    }
    if (asString !== undefined && missingContent(asString, messages) === 0) {
      this.detectedForm = 'string';
      return asString;
    }
    let asParts: string | undefined;
    try {
      asParts = this.renderAs(messages, options, 'parts');
    } catch {
      // parts fail too: the string form's outcome stands
    }
    if (asParts !== undefined && (asString === undefined || missingContent(asParts, messages) < missingContent(asString, messages))) {
      this.detectedForm = 'parts';
      return asParts;
    }
    if (asString === undefined) throw failure;
    this.detectedForm = 'string';
    return asString;
  }

  private renderAs(messages: readonly ChatMessage[], options: ChatTemplateOptions, form: ContentForm): string {
    const variables: Record<string, unknown> = {
      // Copies, so a template can never mutate the caller's messages.
      messages: messages.map((m) => ({
        role: m.role,
        content: form === 'parts' ? [{ type: 'text', text: m.content }] : m.content,
      })),
      add_generation_prompt: options.addGenerationPrompt ?? false,
      date_string: options.dateString ?? DEFAULT_DATE_STRING,
    };
    for (const [name, token] of Object.entries(this.specialTokens)) {
      if (token !== undefined) variables[name] = token;
    }
    Object.assign(variables, options.extra ?? {});
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
  private renderOpenFinal(messages: readonly ChatMessage[], options: ChatTemplateOptions): string {
    const closed: ChatTemplateOptions = { ...options, continueFinalMessage: false, addGenerationPrompt: false };
    const final = messages.at(-1);
    if (!final) throw new ChatTemplateError(this.origin, 'continueFinalMessage needs at least one message');
    if (final.content.trim() === '') {
      // An empty final turn is an open assistant turn: exactly what the generation prompt renders.
      if (final.role !== 'assistant') {
        throw new ChatTemplateError(this.origin, `continueFinalMessage with an empty final ${final.role} message`);
      }
      return this.render(messages.slice(0, -1), { ...closed, addGenerationPrompt: true });
    }
    if (!messages.some((m) => m.content.includes(OPEN_MARKER))) {
      const marked = this.render([...messages.slice(0, -1), { ...final, content: final.content + OPEN_MARKER }], closed);
      const at = marked.indexOf(OPEN_MARKER);
      if (at >= 0 && marked.lastIndexOf(OPEN_MARKER) === at) return marked.slice(0, at);
    }
    const rendered = this.render(messages, closed);
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

/** How many messages with content (trimmed) do not appear in a rendering. */
function missingContent(rendered: string, messages: readonly ChatMessage[]): number {
  return messages.filter((m) => m.content.trim() !== '' && !rendered.includes(m.content.trim())).length;
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
