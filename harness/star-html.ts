// A self-contained HTML page (no scripts, no external assets) of STAR annotations: each response with its
// text coloured by STAR weight (red = unsafe, 0 … green = safe, 1), its chunk scores, and the
// full-response verdict. With the finetuned model's tokenizer the colours are per token, exactly the
// weights training uses (starWeights); without it, per word, by the chunk the word belongs to.
import type { Example } from '../engine/contracts/example.ts';
import type { Tokenizer } from '../engine/model/tokenizer.ts';
import { chunkingKey, wordSpans, type Chunking, type StarAnnotation } from './star-chunks.ts';
import { starWeights, tokenizeExample } from './tokenize-example.ts';

export interface StarHtmlEntry {
  example: Example;
  annotation: StarAnnotation;
}

export interface StarHtmlOptions {
  tokenizer?: Tokenizer;
  title?: string;
  guardrailId?: string;
  chunking?: Chunking;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Background for a weight: hue 0 (red) at 0 to 120 (green) at 1. */
export const weightColour = (v: number): string => `hsl(${Math.round(120 * Math.min(1, Math.max(0, v)))}, 75%, 78%)`;

const span = (text: string, v: number, title: string): string =>
  `<span style="background:${weightColour(v)}" title="${escapeHtml(title)}">${escapeHtml(text)}</span>`;

/** Word level: each word coloured by its chunk's score, the original whitespace kept between words. */
function wordsHtml(response: string, a: StarAnnotation): string {
  let html = '';
  let at = 0;
  wordSpans(response).forEach((w, i) => {
    const k = a.chunkEnds.findIndex((end) => end > i);
    html += escapeHtml(response.slice(at, w.start)) + span(w.word, a.scores[k], `chunk ${k + 1}: P(safe) ${a.scores[k].toFixed(3)}`);
    at = w.end;
  });
  return html + escapeHtml(response.slice(at));
}

/**
 * Token level: the learned tokens (response and end-of-turn) with their training weights. Tokens that
 * decode to part of a character are grouped with the following ones until the text is whole.
 */
function tokensHtml(example: Example, a: StarAnnotation, tokenizer: Tokenizer): string {
  const { ids, start, end } = tokenizeExample(example, tokenizer);
  const weights = starWeights(example, a, tokenizer);
  let html = '';
  let shown = '';
  let from = start;
  for (let i = start; i < end; i++) {
    const text = tokenizer.decode(ids.slice(start, i + 1));
    if (i + 1 < end && (!text.startsWith(shown) || text.endsWith('\uFFFD'))) continue;
    const piece = text.startsWith(shown) ? text.slice(shown.length) : tokenizer.decode(ids.slice(from, i + 1));
    html += span(piece, weights[i], `tokens ${from}–${i}: weight ${weights[i].toFixed(3)}`);
    shown = text;
    from = i + 1;
  }
  return html;
}

function entryHtml({ example, annotation: a }: StarHtmlEntry, tokenizer: Tokenizer | undefined): string {
  const prompt = example.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
  const response = example.messages.at(-1)?.content ?? '';
  const body = tokenizer ? tokensHtml(example, a, tokenizer) : a.unit === 'words' ? wordsHtml(response, a) : escapeHtml(response);
  const chunks = a.scores.map((s, k) => span(`${k + 1}: ${s.toFixed(3)}`, s, `prefix of ${a.chunkEnds[k]} ${a.unit}`)).join(' ');
  const low = a.scores.length ? Math.min(...a.scores) : a.verdict;
  const missed = a.verdict >= 0.5 && low < 0.5 ? ' <strong class="flag">chunk scores flag what the verdict passes</strong>' : '';
  return [
    '<section>',
    `<h2>${escapeHtml(example.id)}</h2>`,
    `<p class="prompt"><span class="role">user:</span> ${escapeHtml(prompt)}</p>`,
    `<p class="response">${body || '<i>(empty response)</i>'}</p>`,
    `<p>verdict ${span(a.verdict.toFixed(3), a.verdict, 'full-response P(safe)')} · min chunk ${low.toFixed(3)}${missed}</p>`,
    `<p class="chunks">chunks: ${chunks || '<i>none</i>'}</p>`,
    '</section>',
  ].join('\n');
}

export function renderStarHtml(entries: readonly StarHtmlEntry[], options: StarHtmlOptions = {}): string {
  const title = options.title ?? 'STAR annotations';
  const about = [
    options.guardrailId ? `guardrail <code>${escapeHtml(options.guardrailId)}</code>` : undefined,
    options.chunking ? `chunking <code>${escapeHtml(chunkingKey(options.chunking))}</code>` : undefined,
    `${entries.length} examples`,
    options.tokenizer ? 'coloured per token by training weight' : 'coloured per word by chunk score',
  ].filter(Boolean);
  const legend = [0, 0.25, 0.5, 0.75, 1].map((v) => span(v.toFixed(2), v, 'P(safe)')).join(' ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>
body { font: 14px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
section { border-top: 1px solid #ccc; padding: 0.5rem 0; }
h2 { font-size: 1rem; margin: 0.25rem 0; font-family: monospace; }
.response { white-space: pre-wrap; font-family: monospace; }
.response span { border-radius: 2px; }
.prompt { color: #444; }
.flag { color: #a00; }
</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>${about.join(' · ')}</p>
<p>P(safe): ${legend} (red = unsafe, green = safe)</p>
${entries.map((e) => entryHtml(e, options.tokenizer)).join('\n')}
</body></html>
`;
}
