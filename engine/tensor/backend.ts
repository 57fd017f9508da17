// Backend selection. One code path for every engine; the backend is a flag (`--backend`) or the
// STAR_DSS_BACKEND environment variable. tfjs-node(-gpu) are optional dependencies (their install
// downloads libtensorflow, which not every machine can reach), so they are imported dynamically.
// webgpu is @tensorflow/tfjs-backend-webgpu on Dawn (the optional `webgpu` package): a hardware adapter
// (Vulkan) when there is one, else Mesa's software OpenGL (llvmpipe) in compatibility mode, which only an
// explicit `--backend webgpu` accepts (`auto` never picks it). Node has no OffscreenCanvas, so on webgpu
// tensors can only be read asynchronously (`await t.data()`); dataSync throws a BackendError.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { installWasmKernels } from './wasm-kernels.ts';

// Our wasm kernels (matrix products, transposes, rotary embedding) replace the stock ones they beat.
installWasmKernels();

export const backendNames = ['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu', 'webgpu'] as const;
export type BackendName = (typeof backendNames)[number];

export class BackendError extends Error {
  readonly code = 'BACKEND_UNAVAILABLE';
}

const nodePackages = { tensorflow: '@tensorflow/tfjs-node', 'tensorflow-gpu': '@tensorflow/tfjs-node-gpu' } as const;

async function loadNative(name: 'tensorflow' | 'tensorflow-gpu'): Promise<void> {
  const pkg = nodePackages[name];
  try {
    await import(/* @vite-ignore */ pkg);
  } catch (error) {
    throw new BackendError(
      `Backend '${name}' needs ${pkg}, which is not installed or failed to load (${(error as Error).message.split('\n')[0]}). ` +
        `Install it with 'npm install ${pkg}' on a machine that can download libtensorflow, or use --backend wasm.`,
    );
  }
  // Both packages register the backend under the name 'tensorflow'.
  if (!(await tf.setBackend('tensorflow'))) throw new BackendError(`${pkg} loaded but its backend did not initialise.`);
}

/** The WebGPU adapter in use: what Dawn reports, and whether it is a software rasteriser (llvmpipe and kin). */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  type: 'hardware' | 'software';
  dawnBackend: 'default' | 'opengl';
}

const softwarePattern = /llvmpipe|lavapipe|softpipe|swiftshader|software/i;
let adapter: AdapterInfo | undefined;
let concrete: Exclude<BackendName, 'auto'> | undefined;

/** The adapter of the webgpu backend, when that is the one in use. */
export function backendAdapter(): AdapterInfo | undefined {
  return active === 'webgpu' ? adapter : undefined;
}

/** The backend in use as a `--backend` value (auto resolved), for child processes: undefined before initBackend. */
export function backendRequest(): string | undefined {
  return concrete;
}

/** One line naming the adapter, e.g. `llvmpipe (LLVM 15.0.6, 256 bits), software, Dawn opengl`. */
export function describeAdapter(a: AdapterInfo): string {
  const name = [a.vendor, a.architecture, a.device].filter(Boolean).join(' ') || a.description || 'unknown adapter';
  return `${name} (${a.description || 'no description'}), ${a.type}, Dawn ${a.dawnBackend}`;
}

type WebGPUModule = { create: (options: string[]) => GPU; globals: object };
type GPU = { requestAdapter(options?: object): Promise<GPUAdapterLike | null> };
type GPUAdapterLike = {
  info: Record<string, unknown>;
  limits: Record<string, number>;
  features: Set<string>;
  requestDevice(descriptor?: object): Promise<unknown>;
};

async function findAdapter(allowSoftware: boolean): Promise<{ gpu: GPU; adapter: GPUAdapterLike; info: AdapterInfo } | undefined> {
  let webgpu: WebGPUModule;
  try {
    webgpu = (await import(/* @vite-ignore */ 'webgpu')) as unknown as WebGPUModule;
  } catch (error) {
    throw new BackendError(
      `Backend 'webgpu' needs the optional packages webgpu and @tensorflow/tfjs-backend-webgpu (${(error as Error).message.split('\n')[0]}). Install them with 'npm install', or use --backend wasm.`,
    );
  }
  Object.assign(globalThis, webgpu.globals); // GPUBufferUsage, GPUMapMode, ... which tfjs-backend-webgpu reads as globals
  process.env.EGL_PLATFORM ??= 'surfaceless'; // Mesa's EGL without a display (read when Dawn opens OpenGL)
  const attempts: { options: string[]; request: object; dawnBackend: AdapterInfo['dawnBackend'] }[] = [
    { options: [], request: { powerPreference: 'high-performance' }, dawnBackend: 'default' },
    { options: ['backend=opengl'], request: { featureLevel: 'compatibility' }, dawnBackend: 'opengl' },
  ];
  // `auto` wants a hardware adapter, which on Linux means Vulkan: it skips the OpenGL (software) attempt. Without
  // a Vulkan loader the default attempt is skipped (it would only print Dawn's warning).
  const tried = attempts.filter((a) => (a.dawnBackend === 'default' ? hasVulkanLoader() : allowSoftware));
  for (const attempt of tried) {
    const gpu = webgpu.create(attempt.options);
    const found = await gpu.requestAdapter(attempt.request).catch(() => null);
    if (!found) continue;
    const raw = found.info;
    const text = (k: string) => (typeof raw[k] === 'string' ? (raw[k] as string) : '');
    const info: AdapterInfo = {
      vendor: text('vendor'),
      architecture: text('architecture'),
      device: text('device'),
      description: text('description'),
      type: raw.isFallbackAdapter === true || softwarePattern.test(`${text('device')} ${text('description')}`) ? 'software' : 'hardware',
      dawnBackend: attempt.dawnBackend,
    };
    if (info.type === 'software' && !allowSoftware) continue;
    return { gpu, adapter: found, info };
  }
  return undefined;
}

/**
 * Whether a hardware adapter is worth looking for under `auto`: on Linux only where a Vulkan loader is installed
 * (else Dawn prints a warning on every start for nothing); elsewhere always.
 */
function hasVulkanLoader(): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':'),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  return dirs.some((dir) => dir && existsSync(join(dir, 'libvulkan.so.1')));
}

async function loadWebGPU(allowSoftware: boolean): Promise<void> {
  // One Dawn instance and device per process: the backend stays registered (and its device alive) when another
  // backend is set, and a later initBackend('webgpu') switches back to it. (Creating a second OpenGL device in
  // one process crashed Dawn/Mesa.)
  if (adapter && tf.findBackend('webgpu')) {
    if (adapter.type === 'software' && !allowSoftware) throw new BackendError('no hardware WebGPU adapter');
    if (!(await tf.setBackend('webgpu'))) throw new BackendError("Backend 'webgpu' did not initialise.");
    return;
  }
  const found = await findAdapter(allowSoftware);
  if (!found)
    throw new BackendError(
      allowSoftware
        ? "Backend 'webgpu' found no WebGPU adapter: Dawn saw neither a Vulkan GPU nor Mesa's OpenGL (install libegl1 libegl-mesa0 libgl1-mesa-dri for the software one), so use --backend wasm."
        : 'no hardware WebGPU adapter',
    );
  let WebGPUBackend: new (device: unknown, info: unknown) => tf.KernelBackend;
  try {
    ({ WebGPUBackend } = (await import(/* @vite-ignore */ '@tensorflow/tfjs-backend-webgpu')) as unknown as {
      WebGPUBackend: typeof WebGPUBackend;
    });
  } catch (error) {
    throw new BackendError(`Backend 'webgpu' needs @tensorflow/tfjs-backend-webgpu (${(error as Error).message.split('\n')[0]}).`);
  }
  const { gpu, adapter: a, info } = found;
  const limits = a.limits;
  const device = await a.requestDevice({
    requiredFeatures: a.features.has('timestamp-query') ? ['timestamp-query'] : [],
    requiredLimits: Object.fromEntries(
      [
        'maxComputeWorkgroupStorageSize',
        'maxComputeWorkgroupsPerDimension',
        'maxStorageBufferBindingSize',
        'maxBufferSize',
        'maxComputeWorkgroupSizeX',
        'maxComputeInvocationsPerWorkgroup',
      ].map((k) => [k, limits[k]]),
    ),
  });
  // tfjs-backend-webgpu checks navigator.gpu in its constructor; Node has no navigator.gpu.
  const g = globalThis as { navigator?: object };
  if (!g.navigator) g.navigator = {};
  if (!('gpu' in g.navigator)) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  tf.registerBackend('webgpu', () => {
    const backend = new WebGPUBackend(device, a.info);
    // Reading a GPU tensor synchronously needs OffscreenCanvas, which Node lacks: fail with a clear message.
    const readSync = backend.readSync.bind(backend);
    backend.readSync = (dataId: object) => {
      try {
        return readSync(dataId);
      } catch (error) {
        if (error instanceof ReferenceError && /OffscreenCanvas/.test(error.message))
          throw new BackendError('dataSync/arraySync cannot read a GPU tensor on the webgpu backend in Node: use `await tensor.data()`.');
        throw error;
      }
    };
    return backend;
  });
  if (!(await tf.setBackend('webgpu'))) throw new BackendError("Backend 'webgpu' found an adapter but did not initialise.");
  adapter = info;
  console.error(`webgpu adapter: ${describeAdapter(info)}`);
}

export function parseBackendName(value: string | undefined): BackendName {
  const name = (value ?? 'auto').trim();
  if ((backendNames as readonly string[]).includes(name)) return name as BackendName;
  throw new BackendError(`Unknown backend '${name}' (from --backend or STAR_DSS_BACKEND). Available: ${backendNames.join(', ')}.`);
}

let active: string | undefined;

/** Initialises the requested backend once per process and returns the name of the one in use. */
export async function initBackend(requested: string | undefined = process.env.STAR_DSS_BACKEND): Promise<string> {
  const name = parseBackendName(requested);
  if (active && (name === 'auto' || active === name || (active === 'tensorflow' && name.startsWith('tensorflow')))) return active;
  if (name === 'tensorflow' || name === 'tensorflow-gpu') {
    await loadNative(name);
    concrete = name;
  } else if (name === 'webgpu') {
    await loadWebGPU(true);
    concrete = name;
  } else if (name === 'auto') {
    concrete = undefined;
    for (const native of ['tensorflow-gpu', 'tensorflow'] as const) {
      try {
        await loadNative(native);
        concrete = native;
        break;
      } catch {
        // fall through to the next engine
      }
    }
    if (!concrete && hasVulkanLoader()) {
      try {
        await loadWebGPU(false); // a hardware adapter only
        concrete = 'webgpu';
      } catch {
        // no GPU: wasm
      }
    }
    if (!concrete) {
      await setOrThrow('wasm');
      concrete = 'wasm';
    }
  } else {
    await setOrThrow(name);
    concrete = name;
  }
  await tf.ready();
  active = tf.getBackend();
  return active;
}

async function setOrThrow(name: 'wasm' | 'cpu'): Promise<void> {
  if (!(await tf.setBackend(name))) throw new BackendError(`The ${name} backend failed to initialise.`);
}

export { tf };
