// The `star-dss` command. Each command is a thin module in harness/commands/ over library calls;
// `buildCli` is exported so argument parsing is tested without spawning a process.
import yargs, { type Argv } from 'yargs';
import { ensureWorld } from '../datasets/micro-world/build.ts';
import { ensureMicroGuardrail } from './micro-world/guardrail.ts';
import { baseCommand } from './commands/base.ts';
import { datasetsCommand } from './commands/datasets.ts';
import { doctorCommand } from './commands/doctor.ts';
import { globalOptions } from './commands/define.ts';
import { judgeCommand } from './commands/judge.ts';
import { modelCommand } from './commands/model.ts';
import { reportCommand } from './commands/report.ts';
import { reproduceCommand } from './commands/reproduce.ts';
import { makeServeCommand } from './commands/serve.ts';
import { makeStarCommand } from './commands/star.ts';
import { strategiesCommand, threatsCommand } from './commands/plugins.ts';
import { sweepCommand } from './commands/sweep.ts';
import { worldCommand } from './commands/world.ts';

/** `--guardrail micro`: the default world's guardrail, trained and cached on first use. */
const microGuardrailDir = () => ensureMicroGuardrail({ world: ensureWorld(), log: (line) => console.error(line) });

export function buildCli(argv: string[]): Argv {
  return yargs(argv)
    .scriptName('star-dss')
    .options(globalOptions())
    .command(sweepCommand)
    .command(doctorCommand)
    .command(reportCommand)
    .command(judgeCommand)
    .command(reproduceCommand)
    .command(worldCommand)
    .command(baseCommand)
    .command(makeStarCommand({ microGuardrailDir }))
    .command(makeServeCommand({ microGuardrailDir }))
    .command(strategiesCommand)
    .command(threatsCommand)
    .command(datasetsCommand)
    .command(modelCommand)
    .demandCommand(1, 'Name a command; see --help.')
    .strict()
    .recommendCommands()
    .help()
    .wrap(Math.min(110, process.stdout.columns ?? 110));
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli(argv)
      .fail((message, error) => {
        throw error ?? new Error(message);
      })
      .parseAsync();
  } catch (error) {
    const e = error as Error;
    console.error(`star-dss: ${e.message}`);
    if (process.env.STAR_DSS_DEBUG) console.error(e.stack);
    process.exitCode = 1;
  }
}
