/**
 * The durable event log's writer, on its own thread (log-writer.thread.ts): the inserts, the WAL fsync and
 * the checkpoints that used to take a third of the gateway's event loop at saturation (DEV-05,
 * EDGE-03) now run beside it. A write resolves with the log position of each record only after the
 * records are on disk, so the gateway's PUBACK still follows durability. Rows go as one flat array (cheap
 * to copy between threads). The thread is started on the first write and ended by `close()`.
 */
import type { Worker } from 'node:worker_threads';
import type { PresenceUpdate } from '../../gateway/ports.ts';
import { endThread, storeThread } from './threads.ts';

export type WriterRequest =
  | { id: number; rows: unknown[]; presence: PresenceUpdate[] }
  | { id: number; close: true };
export type WriterReply = { id: number; seqs: number[] } | { id: number; error: string; code: string | null };

interface Waiting {
  resolve: (seqs: number[]) => void;
  reject: (e: Error) => void;
}

export class LogWriter {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();
  private closing: Promise<void> | null = null;

  constructor(
    private readonly file: string,
    /** Where the thread publishes the log position that is on disk (a BigInt64Array's one slot). */
    private readonly durable: SharedArrayBuffer,
    /** PASSIVE checkpoints for the main connection's writes while no device writes. */
    private readonly checkpointMs = 10_000,
  ) {}

  /** Writes the rows (and device presence) in one transaction; resolves once they are on disk. */
  write(rows: unknown[], presence: PresenceUpdate[]): Promise<number[]> {
    if (this.closing) return Promise.reject(new Error('event log writer is closed'));
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      // The thread keeps the process alive only while someone waits for it.
      if (this.waiting.size === 0) worker.ref();
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ id, rows, presence } satisfies WriterRequest);
    });
  }

  /** After the writes already sent: a last checkpoint, then the thread's connection closes and it ends. */
  close(): Promise<void> {
    this.closing ??= endThread(this.worker, { id: this.nextId++, close: true } satisfies WriterRequest);
    return this.closing;
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    // What the thread keeps is small (the seq windows): its small young generation collects the batches
    // it has written often instead of letting tens of MB of them add to the gateway's memory.
    const worker = storeThread('./log-writer.thread.ts', {
      file: this.file,
      durable: this.durable,
      checkpointMs: this.checkpointMs,
    });
    worker.on('message', (m: WriterReply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) worker.unref();
      if ('seqs' in m) w.resolve(m.seqs);
      else w.reject(Object.assign(new Error(`event log write failed: ${m.error}`), { code: m.code }));
    });
    const lost = (e: Error) => {
      if (this.worker === worker) this.worker = null;
      const waiting = [...this.waiting.values()];
      this.waiting.clear();
      for (const w of waiting) w.reject(e);
    };
    worker.on('error', (e) => lost(e));
    worker.on('exit', (code) => lost(new Error(`event log writer thread exited (${code})`)));
    this.worker = worker;
    return worker;
  }
}
