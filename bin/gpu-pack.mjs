#!/usr/bin/env node
// `npm run gpu-pack [-- --out DIR] [-- --no-node]`: builds a self-contained folder (default runs/gpu-pack, under
// 60 MiB) to copy to a GPU machine: bench/gpu-pack.ts bundled into one script, Dawn's dawn.node for
// linux-x64 (gzipped; run.sh unpacks it on first use), this Node binary gzipped (run.sh uses it only when the
// machine has no Node ≥ 20), and run.sh. On the GPU machine: `./run.sh` (flags: --size 1b|tiny, --batch, --seq, --steps, --new-tokens,
// --backend, --no-torch). Needs a Vulkan loader (libvulkan.so.1) and the NVIDIA driver there.
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const out = resolve(outIndex >= 0 ? args[outIndex + 1] : join(root, 'runs', 'gpu-pack'));
const withNode = !args.includes('--no-node');
const LIMIT = 60 * 1024 * 1024;

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

// 1. The program, one ES module. tfjs's CommonJS parts need `require`; webgpu stays a package beside it (it
// finds dawn.node relative to its own file); tfjs-node is not packed (auto falls through to webgpu).
await build({
  stdin: {
    contents: "import { gpuPackMain } from './bench/gpu-pack.ts';\nprocess.exit(await gpuPackMain(process.argv.slice(2)));\n",
    resolveDir: root,
    sourcefile: 'gpu-pack-entry.ts',
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'none',
  outfile: join(out, 'gpu-pack.mjs'),
  external: ['webgpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
});

// 2. The webgpu package with the linux-x64 dawn.node only (gzipped).
const webgpuSrc = join(root, 'node_modules', 'webgpu');
const webgpuDst = join(out, 'node_modules', 'webgpu');
mkdirSync(join(webgpuDst, 'dist', 'linux-x64'), { recursive: true });
for (const f of ['package.json', 'index.js', 'LICENSE.md']) copyFileSync(join(webgpuSrc, f), join(webgpuDst, f));
const gzip = (file) => gzipSync(readFileSync(file), { level: 9 });
writeFileSync(join(webgpuDst, 'dist', 'linux-x64', 'dawn.node.gz'), gzip(join(webgpuSrc, 'dist', 'linux-x64', 'dawn.node')));

// 3. Node, compressed, for machines without Node ≥ 20.
if (withNode) writeFileSync(join(out, 'node.gz'), gzip(process.execPath));

// 4. The launcher.
writeFileSync(
  join(out, 'run.sh'),
  `#!/usr/bin/env bash
# Runs the GPU pack: adapter, parity against cpu, Llama-3.2-1B-sized training and generation speed, PyTorch's.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dawn="$here/node_modules/webgpu/dist/linux-x64/dawn.node"
[ -f "$dawn" ] || gzip -dc "$dawn.gz" > "$dawn"
node_bin=node
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  [ -f "$here/node.gz" ] || { echo "needs Node >= 20 (or a pack built with its node.gz)"; exit 1; }
  node_bin="$here/node"
  [ -x "$node_bin" ] || { gzip -dc "$here/node.gz" > "$node_bin" && chmod +x "$node_bin"; }
fi
exec "$node_bin" "$here/gpu-pack.mjs" "$@"
`,
);
chmodSync(join(out, 'run.sh'), 0o755);

const size = (p) => (statSync(p).isDirectory() ? readdirSync(p).reduce((n, f) => n + size(join(p, f)), 0) : statSync(p).size);
const total = size(out);
console.log(`gpu pack: ${out}, ${(total / 1024 / 1024).toFixed(1)} MiB${existsSync(join(out, 'node.gz')) ? ' (with node.gz)' : ''}`);
if (total > LIMIT) {
  console.error(`the pack is over ${LIMIT / 1024 / 1024} MiB`);
  process.exit(1);
}
