/**
 * The household index of the event log (SQLite): what a home's timeline reads, `(home, device time, log
 * position)` per accepted event. It lives in a file of its own beside the log's (`<file>-home-index`),
 * written by its own thread (home-indexer.thread.ts) from the events the log writer has made durable, so
 * that keeping it up never holds the log's write lock: in the log's file, a step of it between the log's
 * batches held the writer for 5–9 ms several times a second at 10,000 events/s, most of the
 * device-to-rules p99 (`npm run bench:gateway`).
 *
 * It is written in slices sorted by home (a page per home in the slice, not a random page per event) with
 * a cursor, in the same transaction, that says which log position it reaches; the timeline reads the
 * events past the cursor from the log itself (sqlite.ts listHomeEvents). It is derived: losing it loses
 * nothing (it is written again from the log), and it never reaches past what the log holds (`reconcile`).
 */
import type Database from 'better-sqlite3';

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
    // Which log the index was made from (the log's `event-log-id` setting).
    `CREATE TABLE IF NOT EXISTS ${schema}.source (id INTEGER PRIMARY KEY CHECK (id = 1), log_id TEXT NOT NULL)`,
  ];
}

/** The log position the index reaches, as a SQL expression (0 before the first slice). */
export const indexedUpTo = (schema: string) => `COALESCE((SELECT seq FROM ${schema}.indexed), 0)`;

/** The log's identity (in its `settings`), which its index records: an index of another log is dropped. */
export const LOG_ID_SETTING = 'event-log-id';

export interface HomeIndexer {
  /** Indexes the log's events up to `upTo` (one slice at most): true while more remain below it. */
  step(upTo: number): boolean;
  /**
   * At start, before the log takes new events: an index made from another log (its id differs) is
   * dropped, and what reaches past the log's last event (a log restored from a copy older than its
   * index) is cut; an index still in the log's own file (before migration 7) is moved here.
   */
  reconcile(logId: string): void;
}

/**
 * The index kept on a connection that sees the log as schema `log` and the index as schema `index`. Its
 * transactions are deferred: they write the index alone and take no lock on the log (BEGIN IMMEDIATE
 * would take the log's write lock too). The cursor is read inside the transaction that moves it, so a
 * second indexer of the same file (a CLI beside the service) fails its slice instead of moving it back.
 */
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
  const step = db.transaction((upTo: number) => {
    const from = Number(cursor.get());
    if (upTo <= from) return false;
    const to = Math.min(upTo, from + INDEX_SLICE);
    slice.run(from, to);
    save.run(to);
    return to < upTo;
  });
  const source = db.prepare(`SELECT log_id FROM ${index}.source`).pluck();
  const lastLogged = db.prepare(`SELECT COALESCE(MAX(seq), 0) FROM ${log}.events`).pluck();
  const reconcile = db.transaction((logId: string) => {
    const from = source.get() as string | undefined;
    if (from !== logId) {
      db.prepare(`DELETE FROM ${index}.events_by_home`).run();
      db.prepare(`DELETE FROM ${index}.indexed`).run();
      db.prepare(
        `INSERT INTO ${index}.source (id, log_id) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET log_id = excluded.log_id`,
      ).run(logId);
    }
    const last = Number(lastLogged.get());
    if (Number(cursor.get()) > last) {
      db.prepare(`DELETE FROM ${index}.events_by_home WHERE seq > ?`).run(last);
      save.run(last);
    }
    // Before migration 7 the index was in the log's file, with its cursor in the log's `cursors`.
    const legacy = db
      .prepare(`SELECT 1 FROM ${log}.sqlite_master WHERE type = 'table' AND name = 'events_by_home'`)
      .get();
    if (legacy && Number(cursor.get()) === 0) {
      db.prepare(
        `INSERT OR IGNORE INTO ${index}.events_by_home SELECT home_id, ts, seq FROM ${log}.events_by_home`,
      ).run();
      const old = db.prepare(`SELECT seq FROM ${log}.cursors WHERE name = 'event-log-derived'`).pluck().get();
      save.run(Math.min(Number(old ?? 0), last));
    }
  });
  const dropLegacy = db.transaction(() => {
    db.exec(`DROP TABLE IF EXISTS ${log}.events_by_home`);
    db.prepare(`DELETE FROM ${log}.cursors WHERE name = 'event-log-derived'`).run();
  });
  return {
    step: (upTo) => step(upTo),
    reconcile: (logId) => {
      reconcile(logId);
      // Once the index file has it (a commit of its own: the two files do not commit together).
      dropLegacy();
    },
  };
}
