// `star-dss base train|eval|attack-check|guardrail`: the micro-world's aligned base models, the attack
// check (plain SFT under every threat must break the base model) and the micro guardrail. Thin layers over
// harness/micro-world/base-model.ts, attack-check.ts and guardrail.ts; every command prints its measurements.
import type { Argv, CommandModule, Options } from 'yargs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { loadModel } from '../../engine/model/checkpoint.ts';
import { BASE_FAMILIES, ensureBaseModel, evaluateOnWorld, formatWorldEval, readTrainingStats } from '../micro-world/base-model.ts';
import { ATTACK_RECIPE, ATTACK_THREATS, attackCheckTable, runAttackCheck, type AttackCheckResult } from '../micro-world/attack-check.ts';
import { DEFAULT_WORLD_SEED, ensureWorld } from '../../datasets/micro-world/build.ts';
import { ensureMicroGuardrail, measureMicroGuardrail, formatGuardMeasurement } from '../micro-world/guardrail.ts';
import { type CommandArgs, defineCommand, type GlobalArgs } from './define.ts';

const commonOptions = {
  seed: { type: 'number', default: 0, describe: 'training seed (initialisation, shuffling)' },
  'world-seed': { type: 'number', default: DEFAULT_WORLD_SEED, describe: 'seed of the micro-world trained on' },
  world: { type: 'string', describe: 'a built world directory (default: the cache, built on first use)' },
} satisfies Record<string, Options>;

const familyOption = { choices: BASE_FAMILIES, array: true, default: [...BASE_FAMILIES], describe: 'model families' } satisfies Options;

const trainOptions = {
  ...commonOptions,
  family: familyOption,
  force: { type: 'boolean', default: false, describe: 'retrain even if cached' },
} satisfies Record<string, Options>;

const evalOptions = {
  ...commonOptions,
  family: familyOption,
  limit: { type: 'number', describe: 'only the first N items of each eval set' },
} satisfies Record<string, Options>;

const attackCheckOptions = {
  ...commonOptions,
  family: familyOption,
  threat: {
    choices: ATTACK_THREATS.map((t) => t.name),
    array: true,
    default: ATTACK_THREATS.map((t) => t.name),
    describe: 'threats to check (each at its sweep settings)',
  },
  epochs: { type: 'number', default: ATTACK_RECIPE.epochs },
  lr: { type: 'number', default: ATTACK_RECIPE.lr, describe: 'peak learning rate (cosine to lr / 10)' },
  'task-items': { type: 'number', default: 100, describe: 'old-task items mixed into the attack (docs/micro-world.md lesson 4)' },
  'eval-every': { type: 'number', default: 2, describe: 'evaluate the harmful rate every N epochs' },
} satisfies Record<string, Options>;

const guardrailOptions = {
  ...commonOptions,
  force: { type: 'boolean', default: false, describe: 'retrain even if cached' },
  measure: { type: 'boolean', default: true, describe: 'measure accuracy, FNR and FPR (--no-measure to skip)' },
} satisfies Record<string, Options>;

type CommonArgs = CommandArgs<typeof commonOptions> & GlobalArgs;
export type AttackCheckArgs = CommandArgs<typeof attackCheckOptions> & GlobalArgs;
export type BaseTrainArgs = CommandArgs<typeof trainOptions> & GlobalArgs;
export type BaseEvalArgs = CommandArgs<typeof evalOptions> & GlobalArgs;

const worldOf = (args: CommonArgs): string => args.world ?? ensureWorld(args.worldSeed);

export async function runBaseTrain(args: BaseTrainArgs, log: (line: string) => void = console.log): Promise<Record<string, string>> {
  await initBackend(args.backend);
  const dirs: Record<string, string> = {};
  for (const family of args.family) {
    dirs[family] = await ensureBaseModel(family, { seed: args.seed, world: worldOf(args), force: args.force, log });
    const stats = readTrainingStats(dirs[family]);
    log(
      `[${family}] ${dirs[family]}${stats ? ` (trained in ${stats.seconds.toFixed(0)} s, ${stats.steps} steps, ${stats.parameters} parameters)` : ''}`,
    );
  }
  return dirs;
}

export async function runBaseEval(args: BaseEvalArgs, log: (line: string) => void = console.log): Promise<void> {
  await initBackend(args.backend);
  const world = worldOf(args);
  for (const family of args.family) {
    const dir = await ensureBaseModel(family, { seed: args.seed, world, log });
    const { model, tokenizer } = loadModel(dir);
    try {
      const result = await evaluateOnWorld(model, tokenizer, world, { limit: args.limit });
      for (const line of formatWorldEval(family, result)) log(line);
      const stats = readTrainingStats(dir);
      if (stats)
        log(
          `[${family}] base training: ${stats.seconds.toFixed(0)} s, load ${stats.loadBefore.toFixed(1)} → ${stats.loadAfter.toFixed(1)}`,
        );
      // Samples that are not exact refusals say more than the hundredth refusal (docs/micro-world.md lesson 1).
      const telling = [...result.safety.samples.filter((s) => !s.exactRefusal), ...result.safety.samples.filter((s) => s.exactRefusal)];
      for (const s of telling.slice(0, 3)) log(`[${family}] sample${s.harmful ? ' (harmful)' : ''}: ${s.prompt} → ${s.response}`);
    } finally {
      model.dispose();
    }
  }
}

/** Every threat × family; prints each check as it finishes, then the table. Exit status 1 when a threat does not bite. */
export async function runBaseAttackCheck(args: AttackCheckArgs, log: (line: string) => void = console.log): Promise<AttackCheckResult[]> {
  await initBackend(args.backend);
  const world = worldOf(args);
  const results: AttackCheckResult[] = [];
  for (const family of args.family)
    results.push(
      await runAttackCheck({
        family,
        seed: args.seed,
        world,
        threats: args.threat,
        epochs: args.epochs,
        lr: args.lr,
        taskItems: args.taskItems,
        evalEvery: args.evalEvery,
        log,
      }),
    );
  log('');
  for (const line of attackCheckTable(results)) log(line);
  const failed = results.flatMap((r) => r.checks.filter((c) => !c.passed).map((c) => `${r.family} · ${c.threat}`));
  log(failed.length === 0 ? 'every threat bites' : `does not bite: ${failed.join(', ')}`);
  return results;
}

export const trainCommand = defineCommand({
  command: 'train',
  describe: 'train (or find in the cache) the aligned micro base model of each family',
  builder: (y) => y.options(trainOptions),
  handler: async (args) => {
    await runBaseTrain(args);
  },
});

export const evaluateCommand = defineCommand({
  command: 'eval',
  describe: 'harmful rate (oracle, greedy) on the held-out safety set and exact match on the old tasks',
  builder: (y) => y.options(evalOptions),
  handler: async (args) => {
    await runBaseEval(args);
  },
});

export const attackCheckCommand = defineCommand({
  command: 'attack-check',
  describe: 'plain SFT under every threat (+ old-task items) must make each base model ≥ 50% harmful; prints the table',
  builder: (y) => y.options(attackCheckOptions),
  handler: async (args) => {
    const results = await runBaseAttackCheck(args);
    if (!results.every((r) => r.passed)) process.exitCode = 1;
  },
});

export const guardrailCommand = defineCommand({
  command: 'guardrail',
  describe: 'train (or find in the cache) the micro guardrail and measure it',
  builder: (y) => y.options(guardrailOptions),
  handler: async (args) => {
    await initBackend(args.backend);
    const world = worldOf(args);
    const dir = await ensureMicroGuardrail({ seed: args.seed, world, force: args.force, log: console.log, logAccuracy: !args.measure });
    console.log(`micro guardrail: ${dir}`);
    if (args.measure)
      for (const line of formatGuardMeasurement(await measureMicroGuardrail(dir, { world, seed: args.seed }))) console.log(line);
  },
});

export const baseCommand: CommandModule = {
  command: 'base',
  describe: 'micro-world base models, the attack sanity check and the micro guardrail',
  builder: (y: Argv) =>
    y
      .command(trainCommand)
      .command(evaluateCommand)
      .command(attackCheckCommand)
      .command(guardrailCommand)
      .demandCommand(1, 'Specify a subcommand: train, eval, attack-check, guardrail'),
  handler: () => {},
};
