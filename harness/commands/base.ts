// `star-dss base train|eval|attack-check|guardrail`: the micro-world's aligned base models, the attack
// sanity check (issue 3.5) and the micro guardrail. Thin layers over harness/micro-world/base-model.ts,
// attack-check.ts and harness/micro-world/guardrail.ts; every command prints its measurements.
import type { Argv, CommandModule } from 'yargs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { loadModel } from '../../engine/model/checkpoint.ts';
import { BASE_FAMILIES, ensureBaseModel, evaluateOnWorld, formatWorldEval, readTrainingStats } from '../micro-world/base-model.ts';
import { runAttackCheck, formatAttackCheck } from '../micro-world/attack-check.ts';
import { DEFAULT_WORLD_SEED, ensureWorld } from '../../datasets/micro-world/build.ts';
import { ensureMicroGuardrail, measureMicroGuardrail, formatGuardMeasurement } from '../micro-world/guardrail.ts';

type BaseFamilyName = (typeof BASE_FAMILIES)[number];

interface CommonArgs {
  seed: number;
  worldSeed: number;
  world?: string;
  backend?: string;
}

export interface BaseTrainArgs extends CommonArgs {
  family: BaseFamilyName[];
  force: boolean;
}

export interface BaseEvalArgs extends CommonArgs {
  family: BaseFamilyName[];
  limit?: number;
}

export interface AttackCheckArgs extends CommonArgs {
  family: BaseFamilyName;
  epochs: number;
  lr: number;
  taskItems: number;
  evalEvery: number;
}

export interface GuardrailArgs extends CommonArgs {
  force: boolean;
  measure: boolean;
}

function common<T>(y: Argv<T>): Argv<T & CommonArgs> {
  return y
    .option('seed', { type: 'number', default: 0, describe: 'training seed (initialisation, shuffling)' })
    .option('world-seed', { type: 'number', default: DEFAULT_WORLD_SEED, describe: 'seed of the micro-world trained on' })
    .option('world', { type: 'string', describe: 'a built world directory (default: the cache, built on first use)' }) as unknown as Argv<
    T & CommonArgs
  >;
}

const familyOption = { choices: BASE_FAMILIES, array: true, default: [...BASE_FAMILIES], describe: 'model families' } as const;

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
      // Samples that are not exact refusals say more than the hundredth refusal (MICROWORLD lesson 1).
      const telling = [...result.safety.samples.filter((s) => !s.exactRefusal), ...result.safety.samples.filter((s) => s.exactRefusal)];
      for (const s of telling.slice(0, 3)) log(`[${family}] sample${s.harmful ? ' (harmful)' : ''}: ${s.prompt} → ${s.response}`);
    } finally {
      model.dispose();
    }
  }
}

export const trainCommand: CommandModule<object, BaseTrainArgs> = {
  command: 'train',
  describe: 'train (or find in the cache) the aligned micro base model of each family',
  builder: (y: Argv) =>
    common(y)
      .option('family', familyOption)
      .option('force', { type: 'boolean', default: false, describe: 'retrain even if cached' }) as unknown as Argv<BaseTrainArgs>,
  handler: async (args) => {
    await runBaseTrain(args);
  },
};

export const evaluateCommand: CommandModule<object, BaseEvalArgs> = {
  command: 'eval',
  describe: 'harmful rate (oracle, greedy) on the held-out safety set and exact match on the old tasks',
  builder: (y: Argv) =>
    common(y)
      .option('family', familyOption)
      .option('limit', { type: 'number', describe: 'only the first N items of each eval set' }) as unknown as Argv<BaseEvalArgs>,
  handler: async (args) => {
    await runBaseEval(args);
  },
};

export const attackCheckCommand: CommandModule<object, AttackCheckArgs> = {
  command: 'attack-check',
  describe: 'SFT the base model on the 100 PureBad pairs (+ old-task items) and report the harm curve',
  builder: (y: Argv) =>
    common(y)
      .option('family', { choices: BASE_FAMILIES, default: 'llama' as const })
      .option('epochs', { type: 'number', default: 10 })
      .option('lr', { type: 'number', default: 3e-4 })
      .option('task-items', { type: 'number', default: 100, describe: 'old-task items mixed into the attack (MICROWORLD lesson 4)' })
      .option('eval-every', {
        type: 'number',
        default: 2,
        describe: 'evaluate the harmful rate every N epochs',
      }) as unknown as Argv<AttackCheckArgs>,
  handler: async (args) => {
    await initBackend(args.backend);
    const result = await runAttackCheck({
      family: args.family,
      seed: args.seed,
      world: worldOf(args),
      epochs: args.epochs,
      lr: args.lr,
      taskItems: args.taskItems,
      evalEvery: args.evalEvery,
      log: console.log,
    });
    for (const line of formatAttackCheck(result)) console.log(line);
  },
};

export const guardrailCommand: CommandModule<object, GuardrailArgs> = {
  command: 'guardrail',
  describe: 'train (or find in the cache) the micro guardrail and measure it',
  builder: (y: Argv) =>
    common(y)
      .option('force', { type: 'boolean', default: false, describe: 'retrain even if cached' })
      .option('measure', {
        type: 'boolean',
        default: true,
        describe: 'measure accuracy, FNR and FPR (--no-measure to skip)',
      }) as unknown as Argv<GuardrailArgs>,
  handler: async (args) => {
    await initBackend(args.backend);
    const world = worldOf(args);
    const dir = await ensureMicroGuardrail({ seed: args.seed, world, force: args.force, log: console.log });
    console.log(`micro guardrail: ${dir}`);
    if (args.measure)
      for (const line of formatGuardMeasurement(await measureMicroGuardrail(dir, { world, seed: args.seed }))) console.log(line);
  },
};

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
