/**
 * The event log's threads (started by log-writer.ts), each with its own connection to the SQLite file:
 *
 * - writer: the whole durable write of the gateway's batches, off the event loop. Requests that queued
 *   while it was busy are taken together into one BEGIN IMMEDIATE transaction; after COMMIT the WAL is
 *   fsynced on the thread pool (wal-sync.ts) while the next requests are already being inserted, and each
 *   request is answered once an fsync that started after its commit is done. The write lock that the main
 *   connection's own writes may wait for is held only while rows are inserted, never during a disk flush.
 * - checkpointer: copies the WAL back into the database (PASSIVE: never waits for readers or the writer)
 *   every `checkpointMs`, so neither the event loop nor the writer ever stalls on a checkpoint.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { batchWriter } from './event-batch.ts';
import type { WriterReply, WriterRequest } from './log-writer.ts';
import { WalSync } from './wal-sync.ts';

type Write = Extract<WriterRequest, { rows: unknown[] }>;

const { file, role, checkpointMs } = workerData as {
  file: string;
  role: 'writer' | 'checkpointer';
  checkpointMs: number;
};
const port = parentPort!;
const db = new Database(file);
db.pragma('busy_timeout = 10000');
db.pragma('foreign_keys = ON');
// Frames are written at COMMIT and flushed by the explicit fsync, outside the write lock.
db.pragma('synchronous = NORMAL');
// Checkpoints are the checkpointer's alone.
db.pragma('wal_autocheckpoint = 0');
db.pragma('journal_size_limit = 67108864');

const failure = (id: number, e: unknown): WriterReply => ({
  id,
  error: e instanceof Error ? e.message : String(e),
  code: (e as { code?: string }).code ?? null,
});

function closeWhenAsked(request: WriterRequest, before: () => Promise<void>): void {
  if (!('close' in request)) return;
  void before()
    .catch(() => {})
    .finally(() => {
      db.close();
      port.postMessage({ id: request.id, closed: true } satisfies WriterReply);
      port.close();
    });
}

if (role === 'writer') {
  const writer = batchWriter(db);
  const wal = new WalSync(`${file}-wal`);
  let syncing: Promise<unknown> = Promise.resolve();

  const commit = (writes: Write[]): WriterReply[] => {
    try {
      const seqs = writer.write(writes);
      return writes.map((w, i) => ({ id: w.id, seqs: seqs[i]! }));
    } catch {
      // One bad request must not fail the others taken with it: each alone, in order.
      return writes.map((w) => {
        try {
          return { id: w.id, seqs: writer.write([w])[0]! };
        } catch (e) {
          return failure(w.id, e);
        }
      });
    }
  };

  port.on('message', (first: WriterRequest) => {
    const requests: WriterRequest[] = [first];
    for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) requests.push(m.message);
    const writes = requests.filter((r): r is Write => 'rows' in r);
    if (writes.length > 0) {
      const replies = commit(writes);
      // Answered in order: fsyncs complete in the order they started.
      syncing = wal.sync().then(
        () => {
          for (const r of replies) port.postMessage(r);
        },
        // Written but not known to be on disk: not acknowledged (a device resends; its seq deduplicates).
        (e: unknown) => {
          for (const r of replies) port.postMessage('seqs' in r ? failure(r.id, e) : r);
        },
      );
    }
    const close = requests.find((r) => 'close' in r);
    if (close) {
      closeWhenAsked(close, async () => {
        await syncing;
        wal.close();
      });
    }
  });
} else {
  const checkpoint = () => {
    // PASSIVE: copies what no reader still needs and never waits; the next writer then reuses the WAL.
    db.pragma('wal_checkpoint(PASSIVE)');
  };
  const timer = setInterval(checkpoint, checkpointMs);
  port.on('message', (request: WriterRequest) =>
    closeWhenAsked(request, async () => {
      clearInterval(timer);
      checkpoint();
    }),
  );
}
