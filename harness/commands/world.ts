// `star-dss world build [--seed S] [--out DIR]`: writes the micro-world's files (default: the cache
// directory of the seed) and prints what was written, the vocabulary size and the length statistics.
import type { Argv, CommandModule, Options } from 'yargs';
import {
  buildWorld,
  defaultWorldDir,
  DEFAULT_WORLD_SEED,
  lengthStats,
  worldVocabulary,
  writeWorld,
} from '../../datasets/micro-world/build.ts';
import { MICRO_FILES, MICRO_NAMES } from '../../datasets/micro-world/files.ts';
import { type CommandArgs, defineCommand } from './define.ts';

const worldBuildOptions = {
  seed: { type: 'number', default: DEFAULT_WORLD_SEED, describe: 'world seed (same seed, byte-identical files)' },
  out: { type: 'string', describe: 'output directory (default: the cache directory of the seed)' },
} satisfies Record<string, Options>;

export type WorldBuildArgs = CommandArgs<typeof worldBuildOptions>;

export interface WorldBuildSummary {
  dir: string;
  vocabularySize: number;
  lines: string[];
}

/** Builds and writes a world; returns the directory and a printable summary. */
export function runWorldBuild(args: WorldBuildArgs): WorldBuildSummary {
  if (!Number.isInteger(args.seed) || args.seed < 0) throw new Error(`--seed must be a non-negative integer, got ${args.seed}`);
  const world = buildWorld(args.seed);
  const dir = writeWorld(world, args.out ?? defaultWorldDir(args.seed));
  const vocabularySize = worldVocabulary(world).length;
  const lines = [
    `micro-world seed ${args.seed} (version ${world.version}) written to ${dir}`,
    `vocabulary: ${vocabularySize} words`,
    `${'dataset'.padEnd(12)} ${'file'.padEnd(20)} ${'items'.padStart(5)} ${'max'.padStart(4)} ${'mean'.padStart(5)} ${'>64'.padStart(4)} ${'resp'.padStart(4)}`,
    ...MICRO_NAMES.map((name) => {
      const s = lengthStats(world.datasets[name]);
      return `${name.padEnd(12)} ${MICRO_FILES[name].path.padEnd(20)} ${String(s.count).padStart(5)} ${String(s.maxWords).padStart(4)} ${s.meanWords.toFixed(1).padStart(5)} ${String(s.over64).padStart(4)} ${String(s.maxResponseWords).padStart(4)}`;
    }),
    '(lengths in words of a full example; resp = longest reference response)',
  ];
  return { dir, vocabularySize, lines };
}

const worldBuildCommand = defineCommand({
  command: 'build',
  describe: 'Generate the micro-world files in their public formats',
  builder: (y) => y.options(worldBuildOptions),
  handler: (args) => {
    for (const line of runWorldBuild({ seed: args.seed, out: args.out }).lines) console.log(line);
  },
});

export const worldCommand: CommandModule = {
  command: 'world',
  describe: 'The embedded micro-world',
  builder: (y: Argv) => y.command(worldBuildCommand).demandCommand(1, 'Specify a subcommand: build'),
  handler: () => {},
};
