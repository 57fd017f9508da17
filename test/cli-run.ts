// Runs the star-dss CLI in-process on wasm, failing with the parser's or the command's error instead of exiting.
import { buildCli } from '../harness/cli.ts';

export const runCli = async (args: string[]) =>
  buildCli([...args, '--backend', 'wasm'])
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();
