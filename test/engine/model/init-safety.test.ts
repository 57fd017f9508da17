// `model init` and saveModel never delete what they did not create: a non-empty folder that is not a
// checkpoint is refused, an existing checkpoint is replaced only with --force (saveModel's existing: 'force'
// or 'checkpoint'), and even then only checkpoint files are replaced, in the folder itself.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../engine/tensor/index.ts';
import { buildCli } from '../../../harness/cli.ts';
import { loadModel, saveModel } from '../../../engine/model/checkpoint.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const run = async (args: string[]) =>
  buildCli(args)
    .exitProcess(false)
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    })
    .parseAsync();

const tiny = ['--family', 'gpt2', '--hidden', '16', '--layers', '1', '--heads', '2', '--vocab', '20', '--max-positions', '16'];
const init = (out: string, ...extra: string[]) => run(['model', 'init', ...tiny, '--out', out, '--backend', 'wasm', ...extra]);
const weights = (dir: string) => readFileSync(join(dir, 'model.safetensors'));

/** A folder that looks like a project: a source file at the top and one in a subfolder. */
function projectDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'init-safety-'));
  writeFileSync(join(dir, 'index.ts'), 'export const precious = 1;\n');
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'main.ts'), 'console.log("keep me");\n');
  return dir;
}

const intact = (dir: string) => {
  expect(readFileSync(join(dir, 'index.ts'), 'utf8')).toBe('export const precious = 1;\n');
  expect(readFileSync(join(dir, 'src', 'main.ts'), 'utf8')).toBe('console.log("keep me");\n');
};

describe('model init --out DIR never deletes what it did not create', () => {
  it('refuses a non-empty folder that is not a checkpoint, and leaves it as it was', async () => {
    const dir = projectDir();
    await expect(init(dir)).rejects.toThrow(/not empty and holds no checkpoint.*--force/);
    intact(dir);
    expect(readdirSync(dir).sort()).toEqual(['index.ts', 'src']);
  });

  it('with --force writes the checkpoint into the folder itself and keeps every other file', async () => {
    const dir = projectDir();
    const inode = statSync(dir).ino;
    await init(dir, '--force');
    intact(dir);
    expect(statSync(dir).ino).toBe(inode); // the same folder, not a new one renamed over it
    expect(readdirSync(dir).sort()).toEqual([
      'config.json',
      'index.ts',
      'model.safetensors',
      'src',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    loadModel(dir).model.dispose();
  });

  it('replaces an existing checkpoint only with --force, keeping its other files', async () => {
    const root = mkdtempSync(join(tmpdir(), 'init-safety-'));
    const dir = join(root, 'ckpt');
    await init(dir, '--seed', '1');
    writeFileSync(join(dir, 'notes.md'), 'my notes\n');
    const first = weights(dir);
    await expect(init(dir, '--seed', '2')).rejects.toThrow(/already holds a checkpoint.*--force/);
    expect(weights(dir).equals(first)).toBe(true);
    await init(dir, '--seed', '2', '--force');
    expect(weights(dir).equals(first)).toBe(false);
    expect(readFileSync(join(dir, 'notes.md'), 'utf8')).toBe('my notes\n');
    expect(readdirSync(root)).toEqual(['ckpt']); // no staging folder left behind
  });

  it('writes into an existing empty folder, and refuses a file', async () => {
    const root = mkdtempSync(join(tmpdir(), 'init-safety-'));
    mkdirSync(join(root, 'empty'));
    await init(join(root, 'empty'));
    expect(existsSync(join(root, 'empty', 'model.safetensors'))).toBe(true);
    writeFileSync(join(root, 'file'), 'x');
    await expect(init(join(root, 'file'), '--force')).rejects.toThrow(/not a directory/);
    expect(readFileSync(join(root, 'file'), 'utf8')).toBe('x');
  });
});

describe('saveModel over an existing directory', () => {
  it('replaces a checkpoint in place (stale shards removed, other files kept) and refuses other folders', async () => {
    const root = mkdtempSync(join(tmpdir(), 'save-safety-'));
    const a = join(root, 'a');
    await init(a);
    const { model } = loadModel(a);
    try {
      const b = join(root, 'b');
      await saveModel(b, model, { dir: a }, { maxShardBytes: 2_000 });
      expect(readdirSync(b).filter((f) => f.startsWith('model-')).length).toBeGreaterThan(1);
      writeFileSync(join(b, 'README.md'), 'keep\n');
      await saveModel(b, model, { dir: a }); // default: an existing checkpoint is replaced
      expect(readdirSync(b).sort()).toEqual(['README.md', 'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
      await expect(saveModel(b, model, { dir: a }, { existing: 'refuse' })).rejects.toThrow(/already holds a checkpoint/);
      // 'keep' (caches filled by several processes): a checkpoint already there is left as it is.
      writeFileSync(join(b, 'config.json'), '{"kept": true}\n');
      expect(await saveModel(b, model, { dir: a }, { existing: 'keep' })).toBe('kept');
      expect(readFileSync(join(b, 'config.json'), 'utf8')).toBe('{"kept": true}\n');
      expect(await saveModel(join(root, 'c'), model, { dir: a }, { existing: 'keep' })).toBe('written');
      expect(existsSync(join(root, 'c', 'model.safetensors'))).toBe(true);

      const project = projectDir();
      await expect(saveModel(project, model, { dir: a })).rejects.toThrow(/not empty and holds no checkpoint/);
      intact(project);
      expect(readdirSync(project).sort()).toEqual(['index.ts', 'src']);
      expect(readdirSync(root).sort()).toEqual(['a', 'b', 'c']);
    } finally {
      model.dispose();
    }
  });
});
