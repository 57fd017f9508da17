// `star-dss serve guardrail --guardrail micro|DIR --port N [--host 127.0.0.1] [--api-key-env NAME]`: serves a
// local LM guardrail over the OpenAI-compatible completions and chat-completions APIs with logprobs
// (harness/guardrail-server.ts; the chat endpoint applies the guardrail's own chat template and template
// variables) until the process is stopped, so several processes, or the HTTP guardrail, can share one model.
// The server's limits (prompts per request, queued requests, tokens per prompt) are flags; a host other than
// loopback is warned about on stderr.
import { basename, resolve } from 'node:path';
import type { Argv, CommandModule, Options } from 'yargs';
import { initBackend } from '../../engine/tensor/backend.ts';
import { resolveLocalGuardrail, type ResolveGuardrailOptions } from '../../guardrails/index.ts';
import { startGuardrailServer, type RunningServer } from '../guardrail-server.ts';
import { type CommandArgs, defineCommand, type GlobalArgs } from './define.ts';

const serveGuardrailOptions = {
  guardrail: { type: 'string', demandOption: true, describe: 'micro, <preset>:DIR or DIR (a causal LM checkpoint)' },
  port: { type: 'number', demandOption: true, describe: 'TCP port (0 = any free port)' },
  host: { type: 'string', default: '127.0.0.1', describe: 'interface to listen on (anything but loopback is warned about)' },
  name: { type: 'string', describe: 'served model name (default: micro, or the directory name)' },
  'api-key-env': {
    type: 'string',
    describe: 'require `Authorization: Bearer <key>` on every request but GET /health, the key read from this environment variable',
  },
  'max-prompts': { type: 'number', default: 64, describe: 'most prompts in one request (more: 400)' },
  'max-pending': {
    type: 'number',
    default: 8,
    describe: 'most requests being scored or waiting to be; one more is answered 429 with Retry-After',
  },
  'max-context-tokens': {
    type: 'number',
    describe: "most tokens of a prompt plus its generated tokens (more: 400); default and upper bound: the model's context length",
  },
} satisfies Record<string, Options>;

export type ServeGuardrailArgs = CommandArgs<typeof serveGuardrailOptions> & GlobalArgs;

export interface ServeDeps {
  /** Where the micro-world guardrail lives (for `--guardrail micro`). */
  microGuardrailDir?: ResolveGuardrailOptions['microGuardrailDir'];
  /** Resolves when the server should stop. Default: SIGINT or SIGTERM. */
  untilStopped?: (server: RunningServer) => Promise<void>;
  log?: (line: string) => void;
  /** Where warnings go. Default: stderr. */
  warn?: (line: string) => void;
}

/** The API key named by --api-key-env; a one-line error when the variable is unset or empty. */
function apiKeyFrom(name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const value = process.env[name];
  if (value === undefined || value === '')
    throw new Error(
      `--api-key-env: environment variable ${name} is ${value === undefined ? 'unset' : 'empty'}; set it to the key clients must send`,
    );
  return value;
}

function untilSignal(): Promise<void> {
  return new Promise((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** Loads the guardrail, serves it, and closes everything once `untilStopped` resolves. */
export async function serveGuardrail(args: ServeGuardrailArgs, deps: ServeDeps = {}): Promise<void> {
  const apiKey = apiKeyFrom(args.apiKeyEnv);
  await initBackend(args.backend);
  const guard = await resolveLocalGuardrail(args.guardrail, { microGuardrailDir: deps.microGuardrailDir });
  try {
    const name = args.name ?? (args.guardrail === 'micro' ? 'micro' : basename(resolve(args.guardrail.replace(/^[\w.-]+:/, ''))));
    const server = await startGuardrailServer(guard, {
      name,
      host: args.host,
      port: args.port,
      apiKey,
      maxPrompts: args.maxPrompts,
      maxPending: args.maxPending,
      maxContextTokens: args.maxContextTokens,
      warn: deps.warn,
    });
    try {
      (deps.log ?? console.log)(
        `serving guardrail ${guard.id} as model '${name}' at ${server.url}/v1 (POST /v1/completions, POST /v1/chat/completions, GET /v1/models${apiKey === undefined ? '' : `; API key from $${args.apiKeyEnv}`}); stop with Ctrl-C`,
      );
      await (deps.untilStopped ?? untilSignal)(server);
    } finally {
      await server.close();
    }
  } finally {
    guard.dispose();
  }
}

export function makeServeCommand(deps: ServeDeps = {}): CommandModule {
  const guardrail = defineCommand({
    command: 'guardrail',
    describe: 'serve a local LM guardrail over the OpenAI-compatible completions and chat-completions APIs with logprobs',
    builder: (y) =>
      y.options(serveGuardrailOptions).check((a) => {
        if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535)
          throw new Error(`--port must be an integer in [0, 65535], got ${a.port}`);
        const counts: [string, unknown][] = [
          ['--max-prompts', a.maxPrompts],
          ['--max-pending', a.maxPending],
          ['--max-context-tokens', a.maxContextTokens],
        ];
        for (const [flag, value] of counts) {
          if (value !== undefined && !(Number.isInteger(value) && (value as number) >= 1))
            throw new Error(`${flag} must be a positive integer, got ${String(value)}`);
        }
        return true;
      }),
    handler: (args) => serveGuardrail(args, deps),
  });
  return {
    command: 'serve',
    describe: 'serve models over HTTP',
    builder: (y: Argv) => y.command(guardrail).demandCommand(1, 'Name what to serve: guardrail.'),
    handler: () => {},
  };
}
