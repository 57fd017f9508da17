// Backend selection. One code path for every engine; the backend is a flag (`--backend`) or the
// STAR_DSS_BACKEND environment variable. tfjs-node(-gpu) are optional dependencies (their install
// downloads libtensorflow, which not every machine can reach), so they are imported dynamically.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export const backendNames = ['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'] as const;
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
  } else if (name === 'auto') {
    let loaded = false;
    for (const native of ['tensorflow-gpu', 'tensorflow'] as const) {
      try {
        await loadNative(native);
        loaded = true;
        break;
      } catch {
        // fall through to the next engine
      }
    }
    if (!loaded) await setOrThrow('wasm');
  } else {
    await setOrThrow(name);
  }
  await tf.ready();
  active = tf.getBackend();
  return active;
}

async function setOrThrow(name: 'wasm' | 'cpu'): Promise<void> {
  if (!(await tf.setBackend(name))) throw new BackendError(`The ${name} backend failed to initialise.`);
}

export { tf };
