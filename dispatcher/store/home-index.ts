/**
 * The household index of the event log (SQLite): what a home's timeline reads, `(home, device time, log
 * position)` per accepted event. It lives in a file of its own beside the log's (`<file>-home-index`),
 * written by its own thread (home-indexer.thread.ts) from the events the log writer has made durable, so
 * that keeping it up never holds the log's write lock: in the log's file, a step of it between the log's
 * batches held the writer for 5–9 ms several times a second at 10,000 events/s, most of the
 * device-to-rules p99 (issue 7).
 *
 * It is written in slices sorted by home (a page per home in the slice, not a random page per event) with
 * a cursor, in the same transaction, that says which log position it reaches; the timeline reads the
 * events past the cursor from the log itself (sqlite.ts listHomeEvents). It is derived: losing it loses
 * nothing (it is written again from the log), and it never reaches past what the log holds (`reconcile`).
 */
import type { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { endThread, storeThread } from './threads.ts';

/** The file of the household index of the log in `file`. */
export const homeIndexFile = (file: string) => `${file}-home-index`;

/** Events indexed per transaction at most. */
export const INDEX_SLICE = 16_384;

/** The index's tables in `schema` (the index file's name on a connection). */
export function homeIndexSchema(schema: string): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${schema}.events_by_home (home_id TEXT NOT NULL, ts INTEGER NOT NULL,
      seq INTEGER NOT NULL, PRIMARY KEY (home_id, ts, seq)) WITHOUT ROWID`,
    `CREATE TABLE IF NOT EXISTS ${schema}.indexed (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL)`,
  ];
}

/** The log position the index reaches, as a SQL expression (0 before the first slice). */
export const indexedUpTo = (schema: string) => `COALESCE((SELECT seq FROM ${schema}.indexed), 0)`;

export interface HomeIndexer {
  /** Indexes the log's events up to `upTo` (one slice at most): true while more remain below it. */
  step(upTo: number): boolean;
  /** Drops what reaches past the log's last event (a log restored from a copy older than its index). */
  reconcile(): void;
}

/** The index kept on a connection that sees the log as schema `log` and the index as schema `index`. */
export function homeIndexer(db: Database.Database, log: string, index: string): HomeIndexer {
  for (const sql of homeIndexSchema(index)) db.exec(sql);
  const cursor = db.prepare(`SELECT ${indexedUpTo(index)} AS seq`).pluck();
  const slice = db.prepare(
    `INSERT INTO ${index}.events_by_home (home_id, ts, seq)
       SELECT home_id, ts, seq FROM ${log}.events WHERE seq > ? AND seq <= ? AND status = 'accepted'
       ORDER BY home_id, ts, seq`,
  );
  const save = db.prepare(
    `INSERT INTO ${index}.indexed (id, seq) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq`,
  );
  const step = db.transaction((from: number, to: number) => {
    slice.run(from, to);
    save.run(to);
  });
  const lastLogged = db.prepare(`SELECT COALESCE(MAX(seq), 0) FROM ${log}.events`).pluck();
  const cut = db.transaction((last: number) => {
    db.prepare(`DELETE FROM ${index}.events_by_home WHERE seq > ?`).run(last);
    save.run(last);
  });
  return {
    step: (upTo) => {
      const from = Number(cursor.get());
      if (upTo <= from) return false;
      const to = Math.min(upTo, from + INDEX_SLICE);
      step(from, to);
      return to < upTo;
    },
    reconcile: () => {
      const last = Number(lastLogged.get());
      if (Number(cursor.get()) > last) cut(last);
    },
  };
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
  /** Slices that failed, and the last failure (kept for the health report, never thrown). */
  failures = 0;
  lastError: string | null = null;

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
    worker.on('message', (m: { error: string }) => {
      this.failures++;
      this.lastError = m.error;
    });
    worker.on('error', (e) => {
      this.failures++;
      this.lastError = e.message;
    });
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = null;
    });
    this.worker = worker;
  }

  /** Stops after the slice being written, if any. */
  close(): Promise<void> {
    this.closing ??= endThread(this.worker, 'close');
    return this.closing;
  }
}
