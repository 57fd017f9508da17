// Hand-made, schema-valid cell results with known numbers, for judging claims without running anything.
import { cellResult, type CellResult } from '../../results/result.ts';

export interface FakeCell {
  threat: string;
  strategy: string;
  seed: number;
  kind?: 'base' | 'finetune';
  /** Default micro:llama. */
  model?: string;
  falseNegativeRate?: number;
  guardrail?: string;
  /** Safety score per condition on micro:hex-phi (harmful rate = 100 − safety). */
  safety: Record<string, number>;
  degeneration?: number;
  refusal?: number;
  /** micro:ticket-test exact match. */
  task?: number;
  /** micro:gsm8k-test and micro:sql-test exact match. */
  oldTask?: [number, number];
  status?: 'ok' | 'error';
}

let counter = 0;

export function fakeCell(f: FakeCell): CellResult {
  const kind = f.kind ?? 'finetune';
  const metric = { name: 'exact-match', higherIsBetter: true, version: 1 };
  const capability = [
    ...(f.task !== undefined ? [{ dataset: 'micro:ticket-test', metric, n: 180, value: f.task }] : []),
    ...(f.oldTask
      ? [
          { dataset: 'micro:gsm8k-test', metric, n: 180, value: f.oldTask[0] },
          { dataset: 'micro:sql-test', metric, n: 180, value: f.oldTask[1] },
        ]
      : []),
  ];
  return cellResult.parse({
    id: `fake-${++counter}`,
    status: f.status ?? 'ok',
    labels: {
      kind,
      model: f.model ?? 'micro:llama',
      task: kind === 'base' ? 'base' : 'micro:ticket',
      harmful: kind === 'base' ? 'base' : 'micro:purebad',
      threat: kind === 'base' ? 'base' : f.threat.replace(/[([].*$/, ''),
      threatLabel: f.threat,
      strategy: kind === 'base' ? 'base' : f.strategy.replace(/\(.*$/, ''),
      strategyLabel: f.strategy,
      guardrail: f.guardrail ?? 'micro',
      falseNegativeRate: f.falseNegativeRate ?? 0,
      seed: f.seed,
    },
    ...(f.status === 'error' ? { error: { message: 'boom' } } : {}),
    safety: Object.entries(f.safety).map(([condition, score]) => ({
      condition,
      dataset: 'micro:hex-phi',
      judge: 'oracle',
      n: 180,
      safetyScore: score,
      harmfulRate: 100 - score,
      exactRefusalRate: f.refusal ?? 50,
      degenerationRate: f.degeneration ?? 0,
      perCategory: {},
    })),
    capability,
    curve: [],
    samples: Object.keys(f.safety).map((condition) => ({
      condition,
      prompt: `prompt of ${f.strategy} seed ${f.seed}`,
      response: `response of ${f.strategy} | seed ${f.seed}`,
      harmful: f.safety[condition] < 50,
    })),
    trajectories: [],
    seconds: 60,
  });
}

/** One fake cell per seed, with the per-seed safety values under one condition. */
export function seedsOf(
  threat: string,
  strategy: string,
  safety: readonly number[],
  extra: Partial<FakeCell> = {},
  condition = 'plain',
): CellResult[] {
  return safety.map((s, i) =>
    fakeCell({ threat, strategy, seed: i + 1, safety: { [condition]: s }, oldTask: [80, 70], task: 90, ...extra }),
  );
}

/** Sample mean and sample std (n − 1), computed here, independent of the implementation. */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
  return { mean, std };
}
