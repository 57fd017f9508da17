import { describe, it, expect } from 'vitest';
import yargs, { type ArgumentsCamelCase, type CommandModule } from 'yargs';
import { attackCheckCommand, baseCommand, evaluateCommand, guardrailCommand, trainCommand } from '../../harness/commands/base.ts';

/** Parses with the command's own builder but a handler that only captures the arguments. */
async function parse<T>(command: CommandModule<object, T>, args: string[]): Promise<ArgumentsCamelCase<T>> {
  let captured: ArgumentsCamelCase<T> | undefined;
  await yargs()
    .command({ ...command, handler: (a) => void (captured = a) })
    .strict()
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync(args);
  if (captured === undefined) throw new Error('handler not reached');
  return captured;
}

describe('star-dss base (argument parsing, no training)', () => {
  it('train: families default to all three; --family, --seed, --force', async () => {
    const all = await parse(trainCommand, ['train']);
    expect(all.family).toEqual(['llama', 'qwen2', 'gpt2']);
    expect(all.seed).toBe(0);
    expect(all.force).toBe(false);
    const one = await parse(trainCommand, ['train', '--family', 'gpt2', '--seed', '3', '--force']);
    expect(one).toMatchObject({ family: ['gpt2'], seed: 3, force: true });
  });

  it('rejects an unknown family', async () => {
    await expect(parse(trainCommand, ['train', '--family', 'bert'])).rejects.toThrow(/Given: "bert"/);
    await expect(parse(evaluateCommand, ['eval', '--family', 'llama2'])).rejects.toThrow(/Choices/);
  });

  it("eval takes --limit; attack-check runs every threat on every family with the sweeps' recipe", async () => {
    expect((await parse(evaluateCommand, ['eval', '--family', 'qwen2', '--limit', '10'])).limit).toBe(10);
    const attack = await parse(attackCheckCommand, ['attack-check']);
    expect(attack).toMatchObject({ family: ['llama', 'qwen2', 'gpt2'], epochs: 10, lr: 1e-3, taskItems: 100, evalEvery: 2 });
    expect(attack.threat).toEqual(['harmful-injection', 'identity-shift', 'backdoor', 'response-adaptation']);
    const one = await parse(attackCheckCommand, ['attack-check', '--family', 'gpt2', '--threat', 'backdoor']);
    expect(one).toMatchObject({ family: ['gpt2'], threat: ['backdoor'] });
    await expect(parse(attackCheckCommand, ['attack-check', '--threat', 'prefil'])).rejects.toThrow(/Choices/);
    const guard = await parse(guardrailCommand, ['guardrail', '--no-measure']);
    expect(guard.measure).toBe(false);
  });

  it('base needs a subcommand', async () => {
    const run = async () =>
      yargs()
        .command(baseCommand)
        .strict()
        .exitProcess(false)
        .fail((msg, err) => {
          throw err ?? new Error(msg);
        })
        .parseAsync(['base']);
    await expect(run()).rejects.toThrow(/Specify a subcommand/);
  });
});
