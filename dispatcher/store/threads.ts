/** What the store's threads (the log writer, the household indexer) share on the main thread's side. */
import { Worker } from 'node:worker_threads';

/** Starts the thread whose module is `entry` (relative to this folder) through the TypeScript entry. */
export function storeThread(entry: string, data: Record<string, unknown>): Worker {
  const worker = new Worker(new URL('./thread.worker.mjs', import.meta.url), {
    workerData: { entry, ...data },
    // What the threads keep is small: a small young generation collects what they are done with often.
    resourceLimits: { maxYoungGenerationSizeMb: 8 },
  });
  worker.unref();
  return worker;
}

/**
 * Sends `message` (the thread's "close") and resolves once the thread has ended, however it ends (an
 * error in it too); at once without one.
 */
export function endThread(worker: Worker | null, message: unknown): Promise<void> {
  if (!worker) return Promise.resolve();
  worker.ref();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.postMessage(message);
  return exited;
}
