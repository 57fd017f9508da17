// How a command is written: its flags are one object of yargs options (`const options = {...} satisfies
// Record<string, Options>`; `satisfies`, not `as const`, keeps array defaults mutable), the single source of
// its argument types. The builder hands them to yargs
// (`y.options(options)`, plus positionals, conflicts and checks), `defineCommand` types the handler with what
// yargs infers from the builder, and `CommandArgs<typeof options>` is the same arguments by camelCase name for
// the run* functions that the handlers and the tests call. No argument interface is written by hand.
import type { ArgumentsCamelCase, Argv, CommandModule, InferredOptionType, Options, PositionalOptions } from 'yargs';
import { backendNames } from '../../engine/tensor/backend.ts';

/** Options of the top-level parser (harness/cli.ts), seen by every command. A function: the default reads the environment. */
export function globalOptions() {
  return {
    backend: {
      choices: backendNames,
      default: process.env.STAR_DSS_BACKEND ?? 'auto',
      describe: 'tensor engine (also STAR_DSS_BACKEND): auto = tfjs-node-gpu, else tfjs-node, else webgpu on a hardware adapter, else wasm',
    },
  } satisfies Record<string, Options>;
}

type Flatten<T> = { [K in keyof T]: T[K] };
/** 'retry-failed' → 'retryFailed', as yargs names parsed flags (its own CamelCaseKey is not exported to ESM). */
type CamelCaseKey<K> = K extends `${infer Head}-${infer Tail}` ? `${Head}${Capitalize<CamelCaseKey<Tail>>}` : K;

/** The parsed values of `options` by camelCase name; a flag that may be absent (no default, not demanded) is optional. */
export type CommandArgs<O extends Record<string, Options | PositionalOptions>> = Flatten<
  { [K in keyof O as undefined extends InferredOptionType<O[K]> ? never : CamelCaseKey<K>]: InferredOptionType<O[K]> } & {
    [K in keyof O as undefined extends InferredOptionType<O[K]> ? CamelCaseKey<K> : never]?: InferredOptionType<O[K]>;
  }
>;

/** The global options; absent when a command is parsed on its own (as the tests do). */
export type GlobalArgs = Partial<CommandArgs<ReturnType<typeof globalOptions>>>;

/** A command whose builder is a function (so tests can apply it to their own parser) typed by its options. */
type Command<U> = CommandModule<object, U> & { builder: (y: Argv) => Argv<U> };

/**
 * A leaf command. `U` is inferred from what `builder` returns, so the handler's arguments are exactly the
 * declared options (camelCase and kebab-case names, as yargs passes them) plus the global ones.
 */
export function defineCommand<U>(spec: {
  command: string;
  describe: string;
  builder: (y: Argv) => Argv<U>;
  handler: (args: ArgumentsCamelCase<U> & GlobalArgs) => void | Promise<void>;
}): Command<U> {
  return spec;
}
