// `star-dss strategies`: every registered shaping strategy with its parameters and defaults.
import type { Options } from 'yargs';
import { describeStrategies } from '../../strategies/index.ts';
import { defineCommand } from './define.ts';

const strategiesOptions = {
  json: { type: 'boolean', default: false, describe: 'print JSON instead of text' },
} satisfies Record<string, Options>;

export function formatStrategies(): string {
  return describeStrategies()
    .map((s) => {
      const params = s.params.map(
        (p) => `    ${p.name}: ${p.type} = ${JSON.stringify(p.default)}${p.description ? `  (${p.description})` : ''}`,
      );
      return [`${s.name}: ${s.description}`, `    paper: ${s.paper}`, ...(params.length ? params : ['    (no parameters)'])].join('\n');
    })
    .join('\n\n');
}

export const strategiesCommand = defineCommand({
  command: 'strategies',
  describe: 'list the shaping strategies with their parameters and defaults',
  builder: (y) => y.options(strategiesOptions),
  handler: (args) => {
    console.log(args.json ? JSON.stringify(describeStrategies(), null, 2) : formatStrategies());
  },
});
