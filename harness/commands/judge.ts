// `star-dss judge --run DIR --judge SPEC [--cells id,...] [--no-primary]`: re-judges the generations a run's cells
// saved (cells/<id>/generations.jsonl) with another judge, without loading a model or training anything;
// writes cells/<id>/judgments/<judge>.jsonl, updates each result.json, then rewrites the reports.
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Options } from 'yargs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { writeReports } from '../../reports/index.ts';
import { judgeKinds, resolveJudge } from '../evaluate/judges.ts';
import type { Judge } from '../evaluate/safety.ts';
import { cellGuardrail, rejudgeCell, type RejudgeOutcome } from '../sweep/run-cell.ts';
import { readPlans } from '../sweep/store.ts';
import { type CommandArgs, defineCommand, type GlobalArgs } from './define.ts';

const judgeOptions = {
  run: { type: 'string', demandOption: true, describe: 'run directory (the one holding cells/<id>/generations.jsonl)' },
  judge: { type: 'string', demandOption: true, describe: `judge spec: ${judgeKinds.join(' | ')}` },
  cells: { type: 'string', describe: "only these cell ids, comma-separated (default: every cell of the run's plans)" },
  primary: {
    type: 'boolean',
    default: true,
    describe:
      "make it the judge the reports show (the one it replaces moves to result.json's otherJudges); --no-primary records it in otherJudges only",
  },
} satisfies Record<string, Options>;

export type JudgeArgs = CommandArgs<typeof judgeOptions> & GlobalArgs;

export interface JudgeSummary {
  outcomes: RejudgeOutcome[];
  /** Cells whose judging failed, with the one-line reason. */
  failed: { id: string; message: string }[];
  /** The report files written. */
  files: string[];
}

/** The cells to judge: those of the run's plans (every folder under cells/ when it has none), or `--cells`. */
function cellIds(runDir: string, only: string | undefined): string[] {
  const cellsDir = join(runDir, 'cells');
  if (!existsSync(cellsDir)) throw new Error(`${cellsDir}: no cells directory. Fix: pass the directory a sweep printed (--run DIR)`);
  const plans = readPlans(runDir);
  const all = plans.length > 0 ? [...new Set(plans.flatMap((p) => p.cells.map((c) => c.id)))] : readdirSync(cellsDir);
  const present = all.filter((id) => existsSync(join(cellsDir, id))).sort();
  if (only === undefined) return present;
  const wanted = only
    .split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  const missing = wanted.filter((id) => !existsSync(join(cellsDir, id)));
  if (missing.length > 0) throw new Error(`--cells: no such cell in ${cellsDir}: ${missing.join(', ')}`);
  return wanted;
}

/** Re-judges a run's saved generations with `--judge` and rewrites its reports. */
export async function runJudgeCommand(args: JudgeArgs, log: (line: string) => void = console.log): Promise<JudgeSummary> {
  const runDir = resolve(args.run);
  const ids = cellIds(runDir, args.cells);
  // The spec parses (a one-line error otherwise) before any cell is touched; a guardrail is loaded per cell.
  await resolveJudge(args.judge, async () => ({ id: 'unused', calls: 0, scoreSafe: async () => [] }));
  if (args.judge.startsWith('guardrail:')) await initBackend(args.backend); // an LM guardrail runs a model
  // One judge per world seed (a `guardrail:micro` judge is the world's guardrail), resolved once.
  const judges = new Map<number, Promise<Judge>>();
  const judgeFor = (worldSeed: number) => {
    const known = judges.get(worldSeed);
    if (known) return known;
    const made = resolveJudge(args.judge, (s) => cellGuardrail(s, 0, 0, worldSeed));
    judges.set(worldSeed, made);
    return made;
  };
  const outcomes: RejudgeOutcome[] = [];
  const failed: JudgeSummary['failed'] = [];
  try {
    for (const id of ids) {
      try {
        const outcome = await rejudgeCell(runDir, id, (spec) => judgeFor(spec.worldSeed), { primary: args.primary });
        outcomes.push(outcome);
        if (!outcome.judged) log(`${id}: skipped (${outcome.reason})`);
        else {
          const scores = outcome.safety.map((s) => `${s.condition} ${s.safetyScore.toFixed(1)}%`).join(', ');
          log(`${id}: ${outcome.responses} responses judged by ${outcome.safety[0]?.judge ?? args.judge}: safety ${scores || '–'}`);
        }
      } catch (error) {
        const message = (error as Error).message.split('\n')[0];
        failed.push({ id, message });
        log(`${id}: FAILED ${message}`);
      }
    }
  } finally {
    for (const judge of judges.values()) (await judge.catch(() => undefined))?.dispose?.();
  }
  const { files } = await writeReports(runDir);
  const judged = outcomes.filter((o) => o.judged).length;
  log(`${judged} of ${ids.length} cells judged with ${args.judge}${failed.length ? `, ${failed.length} failed` : ''}`);
  for (const f of files) log(`wrote ${f}`);
  if (failed.length > 0)
    throw new Error(
      `${failed.length} ${failed.length === 1 ? 'cell' : 'cells'} could not be judged (first: ${failed[0].id}: ${failed[0].message})`,
    );
  return { outcomes, failed, files };
}

export const judgeCommand = defineCommand({
  command: 'judge',
  describe: "re-judge a run's saved generations with another judge (no model, no training) and rewrite its reports",
  builder: (y) => y.options(judgeOptions),
  handler: async (args) => {
    await runJudgeCommand(args);
  },
});
