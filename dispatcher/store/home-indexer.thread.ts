/**
 * The household indexer's thread (started by home-index.ts HomeIndexThread), with its own connection: the
 * index file as `main`, the log's file attached as `log`, read only. Its transactions write the index file
 * alone (deferred, never BEGIN IMMEDIATE, which would take the log's write lock too), so the log writer
 * never waits for it.
 *
 * It indexes no further than the log position the log writer has made durable: an index row for an event
 * that a power cut then took out of the log would point at whatever event gets that position next.
 *
 * The thread runs at a lower CPU priority (nice +10, on Linux): under overload, derived work yields the two
 * cores to the log and the rules and catches up afterwards (the timeline reads the rest from the log
 * meanwhile). At the same priority it took 10–15 % of the gateway's sustained throughput.
 */
import { closeSync, fsyncSync, openSync, readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { homeIndexer, homeIndexFile } from './home-index.ts';

const { file, durable, intervalMs } = workerData as {
  file: string;
  durable: SharedArrayBuffer;
  intervalMs: number;
};
const port = parentPort!;
/** How much nicer this thread is than the process (19 is the lowest priority there is). */
const NICER = 10;
try {
  // Linux: this thread's own id, whose priority is its own (the process's other threads keep theirs).
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  setPriority(tid, Math.min(19, getPriority(tid) + NICER));
} catch {}
const onDisk = new BigInt64Array(durable);

const db = new Database(homeIndexFile(file));
db.pragma('journal_mode = WAL');
// Derived rows: the log's own fsyncs and the checkpoints put them on disk; a lost slice is indexed again.
db.pragma('synchronous = NORMAL');
db.pragma('busy_timeout = 10000');
db.pragma('temp_store = MEMORY');
db.prepare('ATTACH DATABASE ? AS log').run(file);
const index = homeIndexer(db, 'log', 'main');

// The store published what the log held before it started this thread; a killed process may have left
// that in the page cache only: it is flushed before it is trusted.
for (const f of [file, `${file}-wal`]) {
  try {
    const fd = openSync(f, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {}
}

let closed = false;
function run(): void {
  if (closed) return;
  let more = false;
  try {
    more = index.step(Number(Atomics.load(onDisk, 0)));
  } catch (e) {
    port.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
  // Catching up (after a start, or an upgrade that rebuilds the index): the next slice at once.
  if (more) setImmediate(run);
}
const timer = setInterval(run, intervalMs);
run();

port.on('message', () => {
  closed = true;
  clearInterval(timer);
  db.close();
  port.close();
});
