// STAR's batched prefix scoring for an LM guardrail (LmGuardrail.scorePrefixGroups): the prefix renderings of
// many responses in one forward pass, with no KV cache. Each response becomes one row: the rendering of its
// longest prefix, then, for every other prefix, only the tokens where its rendering leaves that one (the template
// suffix, plus any token that differs at a BPE boundary). An attention bias lets each such segment see the
// longest rendering's first `reuse` tokens and its own earlier tokens, nothing else, and explicit positions
// number it as if it followed those tokens: every scored token computes what a forward of its prefix's rendering
// alone would, while the shared start is computed once. Rows of several responses go through the model
// together (padded at the end, where nothing attends), and only the scored positions' logits are computed.
import { tf } from '../engine/tensor/index.ts';
import { MASKED } from '../engine/model/attention.ts';
import { headLogits } from '../engine/model/transformer.ts';
import type { CausalLM } from '../engine/model/types.ts';

/** One response's prefixes packed into a row. */
export interface PackedRow {
  tokens: number[];
  positions: number[];
  /** Per token: how many of the row's first tokens it sees besides its own segment, and where that segment starts. */
  sees: number[];
  segment: number[];
  /** Per prefix: the index of the token whose next-token logits give its verdict. */
  scoreAt: number[];
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Packs the token renderings of one response's prefixes into a row (the last one's kept whole: the others share its start). */
export function packPrefixes(encoded: number[][]): PackedRow {
  const full = encoded.at(-1) ?? []; // no prefixes: an empty row (nothing to score)
  const row: PackedRow = {
    tokens: [...full],
    positions: full.map((_, i) => i),
    sees: full.map(() => 0),
    segment: full.map(() => 0),
    scoreAt: [],
  };
  for (const ids of encoded) {
    const common = commonPrefixLength(ids, full);
    if (common === ids.length && common === full.length) {
      row.scoreAt.push(full.length - 1); // the longest rendering's own verdict
      continue;
    }
    // At least the last token is forwarded: its logits are the verdict.
    const reuse = Math.min(common, ids.length - 1);
    const start = row.tokens.length;
    ids.slice(reuse).forEach((token, j) => {
      row.tokens.push(token);
      row.positions.push(reuse + j);
      row.sees.push(reuse);
      row.segment.push(start);
    });
    row.scoreAt.push(row.tokens.length - 1);
  }
  return row;
}

/**
 * The additive bias [rows, 1, width, width] of packed rows padded to `width`: token i of a row attends to the
 * first sees[i] tokens and to its own segment up to itself (the longest rendering is segment 0, sees 0: plain
 * causal attention); padding attends to nothing and nothing attends to it.
 */
export function packedBias(rows: PackedRow[], width: number): Float32Array {
  const bias = new Float32Array(rows.length * width * width).fill(MASKED);
  rows.forEach((row, r) => {
    for (let i = 0; i < row.tokens.length; i++) {
      const line = (r * width + i) * width;
      bias.fill(0, line, line + row.sees[i]);
      bias.fill(0, line + row.segment[i], line + i + 1);
    }
  });
  return bias;
}

/** Limits of one forward pass of packed rows, and what a forward costs beyond its tokens. */
export interface PackBudget {
  /** rows × width, the tokens computed. */
  tokens: number;
  /** rows × width², the floats of the bias (and of each head's scores). */
  biasFloats: number;
  /** Scored positions × vocabulary, the floats of the logits read back. */
  logitFloats: number;
  /** The fixed cost of one forward (kernel launches, tensor setup), in tokens' worth of compute. */
  overheadTokens: number;
}

/**
 * Consecutive groups of rows (in the given order, shortest first) whose forwards stay within `budget` and
 * compute the fewest tokens, padding included, plus `overheadTokens` per forward: one group pads every row to
 * its longest, so a few long rows go to a forward of their own when that saves more padding than the extra
 * forward costs. Exact, by dynamic programming over where the groups end (ties go to the larger group); a row
 * that alone exceeds the budget forms a group of its own.
 */
export function groupRows(rows: PackedRow[], vocab: number, budget: PackBudget): number[][] {
  const n = rows.length;
  const cost = new Float64Array(n + 1).fill(Number.POSITIVE_INFINITY); // cost[e]: the best grouping of rows [0, e)
  const groupStart = new Int32Array(n + 1);
  cost[0] = 0;
  for (let end = 1; end <= n; end++) {
    let width = 0;
    let scored = 0;
    for (let start = end - 1; start >= 0; start--) {
      width = Math.max(width, rows[start].tokens.length);
      scored += rows[start].scoreAt.length;
      const count = end - start;
      const fits = count * width <= budget.tokens && count * width * width <= budget.biasFloats && scored * vocab <= budget.logitFloats;
      if (!fits && count > 1) break; // a longer group only grows
      const total = cost[start] + budget.overheadTokens + count * width;
      if (total <= cost[end]) {
        cost[end] = total;
        groupStart[end] = start;
      }
    }
  }
  const groups: number[][] = [];
  for (let end = n; end > 0; end = groupStart[end])
    groups.unshift(Array.from({ length: end - groupStart[end] }, (_, k) => groupStart[end] + k));
  return groups;
}

/** The next-token logits at every scored position of the rows (one forward), per row in scoreAt order. */
export async function packedLogits(model: CausalLM, rows: PackedRow[], padId: number): Promise<Float32Array[][]> {
  if (!model.forwardHidden) throw new Error('packed prefix scoring needs a model with forwardHidden');
  const forwardHidden = model.forwardHidden;
  const width = Math.max(...rows.map((r) => r.tokens.length));
  const pad = (values: number[], fill: number) => [...values, ...new Array<number>(width - values.length).fill(fill)];
  const picks = rows.flatMap((row, r) => row.scoreAt.map((i) => r * width + i));
  const vocab = model.config.vocabSize;
  const logits = tf.tidy(() => {
    const ids = tf.tensor2d(
      rows.map((r) => pad(r.tokens, padId)),
      [rows.length, width],
      'int32',
    );
    const positions = tf.tensor2d(
      rows.map((r) => pad(r.positions, 0)),
      [rows.length, width],
      'int32',
    );
    const attentionBias = tf.tensor4d(packedBias(rows, width), [rows.length, 1, width, width]);
    const { hidden, head } = forwardHidden(ids, { positions, attentionBias });
    const scored = tf.gather(hidden.reshape([rows.length * width, -1]), tf.tensor1d(picks, 'int32')); // [scored, hidden]
    return headLogits(model.config, scored.expandDims(0), head).reshape([picks.length, vocab]);
  });
  const flat = (await logits.data()) as Float32Array;
  logits.dispose();
  let next = 0;
  return rows.map((row) =>
    row.scoreAt.map(() => {
      const at = next++;
      return flat.slice(at * vocab, (at + 1) * vocab);
    }),
  );
}
