// `star-dss strategies` and `star-dss threats`: every registered plug-in with its parameters and defaults,
// read from the registries (engine/registry.ts), so a new plug-in is listed without touching this file.
import type { Options } from 'yargs';
import type { PluginInfo } from '../../engine/registry.ts';
import { describeStrategies } from '../../strategies/index.ts';
import { describeThreats } from '../../threats/index.ts';
import { defineCommand } from './define.ts';

const listOptions = {
  json: { type: 'boolean', default: false, describe: 'print JSON instead of text' },
} satisfies Record<string, Options>;

/** One block per plug-in: name and description, citation, then `name: type = default  (description)` per parameter. */
export function formatPlugins(infos: readonly PluginInfo[]): string {
  return infos
    .map((s) => {
      const params = s.params.map(
        (p) =>
          `    ${p.name}: ${p.type} = ${p.default === undefined ? '(optional)' : JSON.stringify(p.default)}${p.description ? `  (${p.description})` : ''}`,
      );
      return [`${s.name}: ${s.description}`, `    paper: ${s.paper}`, ...(params.length ? params : ['    (no parameters)'])].join('\n');
    })
    .join('\n\n');
}

function listCommand(command: string, describe: string, list: () => PluginInfo[]) {
  return defineCommand({
    command,
    describe,
    builder: (y) => y.options(listOptions),
    handler: (args) => {
      console.log(args.json ? JSON.stringify(list(), null, 2) : formatPlugins(list()));
    },
  });
}

export const strategiesCommand = listCommand(
  'strategies',
  'list the shaping strategies with their parameters and defaults',
  describeStrategies,
);
export const threatsCommand = listCommand('threats', 'list the threats with their parameters and defaults', describeThreats);
