/**
 * The event log's writer thread (started by log-writer.ts), with its own connection to the SQLite file:
 * the whole durable write of the gateway's batches, off the event loop. Requests that queued while it was
 * busy are taken together into one BEGIN IMMEDIATE transaction; after COMMIT the WAL is fsynced on the
 * thread pool (wal-sync.ts) while the next requests are already being inserted, and each request is
 * answered once an fsync that started after its commit is done. The write lock that the main connection's
 * own writes may wait for is held only while rows are inserted, never during a disk flush.
 *
 * Checkpoints run here too, and only here (the main connection has them off): SQLite's automatic one
 * after a commit that leaves more than 1,000 pages in the WAL, and a PASSIVE one every `checkpointMs` for
 * the main connection's writes while no device writes. Here, between this thread's own commits, a
 * checkpoint can finish, so the next commit starts the WAL over and it stays a few MB. (A checkpointer on
 * a thread of its own never caught up under steady load: the WAL grew by hundreds of MB, and flushing it
 * afterwards stalled the log for most of a second.)
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { batchWriter } from './event-batch.ts';
import type { WriterReply, WriterRequest } from './log-writer.ts';
import { WalSync } from './wal-sync.ts';

type Write = Extract<WriterRequest, { rows: unknown[] }>;

const { file, durable, checkpointMs } = workerData as {
  file: string;
  durable: SharedArrayBuffer;
  checkpointMs: number;
};
/** The log position on disk, for the household indexer (home-index.ts), which indexes no further. */
const onDisk = new BigInt64Array(durable);
const port = parentPort!;
const db = new Database(file);
db.pragma('busy_timeout = 10000');
db.pragma('foreign_keys = ON');
// Frames are written at COMMIT and flushed by the explicit fsync, outside the write lock.
db.pragma('synchronous = NORMAL');
db.pragma('wal_autocheckpoint = 1000');
db.pragma('journal_size_limit = 67108864');
// The household index's chunks are sorted in memory: a temp file for them doubled the disk writes.
db.pragma('temp_store = MEMORY');

const failure = (id: number, e: unknown): WriterReply => ({
  id,
  error: e instanceof Error ? e.message : String(e),
  code: (e as { code?: string }).code ?? null,
});

const writer = batchWriter(db);
const wal = new WalSync(`${file}-wal`);
let syncing: Promise<unknown> = Promise.resolve();
/**
 * The derived rows of what the log took (event-batch.ts: the household index, so the timeline's tail stays
 * short, and the devices' saved seq windows), a small transaction at a time, between requests: a step is
 * run from a setImmediate after each commit (while its fsync runs), so requests that arrive meanwhile wait
 * for one step at most (about 2 ms), never for a whole chunk. A failed step loses nothing: it is tried
 * again, or done from the log at the next start.
 */
let stepping = false;
let stepAll = false;
let closing = false;
function upkeep(all: boolean): void {
  stepAll ||= all;
  if (stepping || closing) return;
  stepping = true;
  setImmediate(() => {
    stepping = false;
    let more = false;
    try {
      more = writer.step(stepAll);
    } catch {}
    if (more) upkeep(false);
    else stepAll = false;
  });
}

// While no device writes: whatever is not derived yet, and a PASSIVE checkpoint (copies what no reader
// still needs, never waits for anyone) for the main connection's writes.
const idle = setInterval(() => {
  upkeep(true);
  db.pragma('wal_checkpoint(PASSIVE)');
}, checkpointMs);

function commit(writes: Write[]): WriterReply[] {
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
}

port.on('message', (first: WriterRequest) => {
  const requests: WriterRequest[] = [first];
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) requests.push(m.message);
  const writes = requests.filter((r): r is Write => 'rows' in r);
  if (writes.length > 0) {
    const replies = commit(writes);
    const position = writer.position;
    upkeep(false);
    // Answered in order: fsyncs complete in the order they started.
    syncing = wal.sync().then(
      () => {
        Atomics.store(onDisk, 0, BigInt(position));
        for (const r of replies) port.postMessage(r);
      },
      // Written but not known to be on disk: not acknowledged (a device resends; its seq deduplicates).
      (e: unknown) => {
        for (const r of replies) port.postMessage('seqs' in r ? failure(r.id, e) : r);
      },
    );
  }
  const close = requests.find((r) => 'close' in r);
  if (!close) return;
  clearInterval(idle);
  closing = true;
  // After the last answers: the derived rows, a final checkpoint, then the connection closes and the
  // thread ends.
  void syncing
    .catch(() => {})
    .finally(() => {
      wal.close();
      try {
        writer.flush();
      } catch {}
      db.pragma('wal_checkpoint(PASSIVE)');
      db.close();
      port.close();
    });
});
