// The layering rule of docs/architecture.md, as dependency-cruiser enforces it: the real tree passes, and
// each kind of forbidden import, planted in a small tree of the same shape, is caught by its rule.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'node_modules/.bin/depcruise');
const config = join(root, '.dependency-cruiser.cjs');

/** Runs dependency-cruiser with the project's rules in `cwd`; returns its exit code and report. */
function cruise(cwd: string, folders: string[]): { code: number; output: string } {
  try {
    const output = execFileSync(bin, ['--config', config, '--output-type', 'err', ...folders], { cwd, encoding: 'utf8', stdio: 'pipe' });
    return { code: 0, output };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, output: err.stdout + err.stderr };
  }
}

const fixture = mkdtempSync(join(tmpdir(), 'star-dss-layers-'));
afterAll(() => rmSync(fixture, { recursive: true, force: true }));

function write(files: Record<string, string>): string {
  const dir = mkdtempSync(join(fixture, 'tree-'));
  const base: Record<string, string> = {
    'tsconfig.json': JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', allowImportingTsExtensions: true },
    }),
    'engine/random.ts': 'export const seed = 1;\n',
    'datasets/load.ts': "import { seed } from '../engine/random.ts';\nexport const load = () => seed;\n",
    'results/result.ts': "import { seed } from '../engine/random.ts';\nexport const result = seed;\n",
    'reports/tables.ts': "import { result } from '../results/result.ts';\nexport const table = result;\n",
    'harness/run.ts':
      "import { load } from '../datasets/load.ts';\nimport { table } from '../reports/tables.ts';\nexport const run = () => load() + table;\n",
    'test/helpers.ts': 'export const helper = 1;\n',
  };
  for (const [path, text] of Object.entries({ ...base, ...files })) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** The top-level folders of a planted tree. */
const folders = (dir: string) =>
  readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name);

describe('layering rules', () => {
  it('the repository has no violation', () => {
    const { code, output } = cruise(root, [
      'engine',
      'datasets',
      'threats',
      'strategies',
      'guardrails',
      'results',
      'reports',
      'harness',
      'bench',
      'bin',
      'test',
    ]);
    expect(output).toContain('no dependency violations');
    expect(code).toBe(0);
  });

  it('a tree of the right shape passes', () => {
    const dir = write({});
    expect(cruise(dir, folders(dir)).code).toBe(0);
  });

  it.each([
    ['engine-imports-nothing', { 'engine/train.ts': "import { run } from '../harness/run.ts';\nexport const t = run;\n" }],
    ['plugins-import-engine-and-self', { 'datasets/up.ts': "import { run } from '../harness/run.ts';\nexport const u = run;\n" }],
    ['plugins-import-engine-and-self', { 'threats/mix.ts': "import { load } from '../datasets/load.ts';\nexport const m = load;\n" }],
    ['results-import-engine', { 'results/up.ts': "import { table } from '../reports/tables.ts';\nexport const u = table;\n" }],
    ['reports-import-below', { 'reports/up.ts': "import { run } from '../harness/run.ts';\nexport const u = run;\n" }],
    ['no-test-from-source', { 'harness/uses-test.ts': "import { helper } from '../test/helpers.ts';\nexport const h = helper;\n" }],
  ])('an upward import is caught by %s', (rule, files) => {
    const dir = write(files);
    const { code, output } = cruise(dir, folders(dir));
    expect(code).not.toBe(0);
    expect(output).toContain(rule);
  });
});
