/**
 * The store's threads (the log writer, the household indexer), on the main thread's side. A thread runs
 * its module bundled by esbuild into one script (once per process, ~40 ms): started through tsx's loader
 * instead, each thread cost ~30 MB more (a loader thread of its own and the compiler in it), ~5 MB now.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { buildSync } from 'esbuild';

const scripts = new Map<string, string>();
const BETTER_SQLITE3 = 'require("better-sqlite3")';

/** The module `entry` (relative to this folder) and what it imports, as one CommonJS script. */
function script(entry: string): string {
  let code = scripts.get(entry);
  if (code) return code;
  const out = buildSync({
    entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    write: false,
    logLevel: 'silent',
    // The native module stays where npm put it: required by its absolute path (the script has no folder).
    external: ['better-sqlite3'],
  });
  code = out.outputFiles[0]!.text;
  if (!code.includes(BETTER_SQLITE3)) throw new Error(`${entry}: bundled without ${BETTER_SQLITE3}`);
  const path = createRequire(import.meta.url).resolve('better-sqlite3');
  code = code.replaceAll(BETTER_SQLITE3, `require(${JSON.stringify(path)})`);
  scripts.set(entry, code);
  return code;
}

/** Starts the thread whose module is `entry` (relative to this folder), with `data` as its workerData. */
export function storeThread(entry: string, data: Record<string, unknown>): Worker {
  const worker = new Worker(script(entry), {
    eval: true,
    workerData: data,
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

/**
 * The indexer's thread (home-indexer.thread.ts), started by the store with the log: every `intervalMs` it
 * indexes what the log writer has made durable (`durable`, published by log-writer.thread.ts), a slice at
 * a time. Failures are counted and retried at the next tick (the timeline stays whole meanwhile: it reads
 * whatever is not indexed from the log).
 */
export class HomeIndexThread {
  private worker: Worker | null = null;
  private closing: Promise<void> | null = null;
  /** Slices that failed and threads that ended unasked (each is started again a second later). */
  failures = 0;

  constructor(
    private readonly file: string,
    private readonly durable: SharedArrayBuffer,
    private readonly intervalMs = 200,
  ) {}

  start(): void {
    if (this.worker || this.closing) return;
    // Derived work: it never keeps the process alive.
    const worker = storeThread('./home-indexer.thread.ts', {
      file: this.file,
      durable: this.durable,
      intervalMs: this.intervalMs,
    });
    // A failed slice (its message), or the thread's own error (then it ends, and is started again).
    worker.on('message', () => this.failures++);
    worker.on('error', () => this.failures++);
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = null;
      if (this.closing) return;
      this.failures++;
      setTimeout(() => this.start(), 1000).unref();
    });
    this.worker = worker;
  }

  /** Stops after the slice being written, if any. */
  close(): Promise<void> {
    this.closing ??= endThread(this.worker, 'close');
    return this.closing;
  }
}
