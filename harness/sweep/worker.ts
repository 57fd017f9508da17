// A sweep worker process: receives cells over IPC, runs each, writes its result atomically, reports back.
// It exits when the parent goes away, so a killed sweep leaves no orphans (and no half-written results).
import { initBackend } from '../../engine/tensor/backend.ts';
import { runCell, type CellProgress } from './run-cell.ts';
import { writeCellResult } from './store.ts';
import type { Cell } from './plan.ts';

export type ToWorker = { type: 'run'; cell: Cell; runDir: string };
export type FromWorker =
  | { type: 'ready' }
  | { type: 'progress'; id: string; progress: CellProgress }
  | { type: 'done'; id: string; status: 'ok' | 'error'; seconds: number; error?: string };

// Once the sweep is gone a message cannot be sent: exit (as on 'disconnect') instead of crashing on EPIPE.
const send = (message: FromWorker) => {
  if (process.connected) process.send?.(message, undefined, undefined, (error) => error && process.exit(0));
};

const backend = await initBackend(process.env.STAR_DSS_BACKEND);
process.on('disconnect', () => process.exit(0));
process.on('message', async (message: ToWorker) => {
  if (message.type !== 'run') return;
  const { cell, runDir } = message;
  const { result, manifest } = await runCell(cell, {
    backend,
    onProgress: (progress) => send({ type: 'progress', id: cell.id, progress }),
  });
  writeCellResult(runDir, result, manifest);
  send({
    type: 'done',
    id: cell.id,
    status: result.status,
    seconds: result.seconds,
    ...(result.error ? { error: result.error.message } : {}),
  });
});
send({ type: 'ready' });
