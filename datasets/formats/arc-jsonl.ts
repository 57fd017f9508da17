// ARC JSON Lines (AI2 Reasoning Challenge, ARC-Easy/Challenge *.jsonl):
//   {"id": "Mercury_7220990", "question": {"stem": "...", "choices": [{"text": "...", "label": "A"}, ...]}, "answerKey": "B"}
// Labels are letters or digits and the number of choices varies (3-5). The user message shows the stem
// with labelled choices, the assistant message is the answer key; meta {choices, labels, answerIndex,
// answer} serves exact match and multiple-choice log-likelihood alike.
import { DatasetFormatError } from '../errors.ts';
import type { Example } from '../../engine/contracts/example.ts';
import type { LoadOptions } from './messages-jsonl.ts';
import { multipleChoicePrompt } from './mmlu-csv.ts';
import { isObject, parseJsonl, readText, show, stringField } from './read.ts';

export function parseArcJsonl(text: string, file: string, options: LoadOptions = {}): Example[] {
  const source = options.source ?? file;
  return parseJsonl(text, file).map(({ line, value }) => {
    const question = value.question;
    if (!isObject(question)) throw new DatasetFormatError(file, line, 'question', `expected {stem, choices}, got ${show(question)}`);
    const stem = stringField(question, 'stem', file, line);
    const raw = question.choices;
    if (!Array.isArray(raw) || raw.length < 2)
      throw new DatasetFormatError(file, line, 'question.choices', `expected an array of at least 2 {text, label}, got ${show(raw)}`);
    const choices: string[] = [];
    const labels: string[] = [];
    raw.forEach((c: unknown, i) => {
      const field = `question.choices[${i}]`;
      if (!isObject(c)) throw new DatasetFormatError(file, line, field, `expected {text, label}, got ${show(c)}`);
      if (typeof c.text !== 'string') throw new DatasetFormatError(file, line, `${field}.text`, `expected a string, got ${show(c.text)}`);
      if (typeof c.label !== 'string' || c.label.trim() === '')
        throw new DatasetFormatError(file, line, `${field}.label`, `expected a non-empty string, got ${show(c.label)}`);
      if (labels.includes(c.label)) throw new DatasetFormatError(file, line, `${field}.label`, `duplicate label ${show(c.label)}`);
      choices.push(c.text);
      labels.push(c.label);
    });
    const answerKey = value.answerKey;
    const answerIndex = typeof answerKey === 'string' ? labels.indexOf(answerKey) : -1;
    if (answerIndex < 0)
      throw new DatasetFormatError(file, line, 'answerKey', `expected one of the labels ${labels.join(', ')}, got ${show(answerKey)}`);
    const arcId = typeof value.id === 'string' ? { arcId: value.id } : {};
    return {
      id: `${source}#${line}`,
      messages: [
        { role: 'user', content: multipleChoicePrompt(stem, choices, labels) },
        { role: 'assistant', content: labels[answerIndex] },
      ],
      meta: { source, answer: labels[answerIndex], choices, labels, answerIndex, ...arcId },
    };
  });
}

export function loadArcJsonl(file: string, options: LoadOptions = {}): Example[] {
  return parseArcJsonl(readText(file), file, options);
}
