/**
 * The SQL of one event-log batch: the events (deduplicated on device seq by the unique index) and the
 * device rows' presence, in one transaction. Shared by the log writer thread (log-writer.worker.ts) and
 * the store's in-thread path for an in-memory database, so there is one copy of it.
 */
import type Database from 'better-sqlite3';
import type { AppendOutcome, EventRecord, PresenceUpdate } from '../../gateway/ports.ts';

/** Columns of one record in a flat row array (cheaper to post to a thread than objects). */
export const EVENT_COLUMNS = 11;

const INSERT_EVENT = `INSERT OR IGNORE INTO events (device_id, home_id, received_at, topic, status, ts, type, device_seq, body, reason, flags)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const UPDATE_DEVICE = `UPDATE devices SET online = COALESCE(?, online), last_seen_at = COALESCE(?, last_seen_at),
  battery = COALESCE(?, battery), rssi = COALESCE(?, rssi), fw = COALESCE(?, fw),
  rejected_count = rejected_count + ? WHERE id = ?`;
const COUNT_REJECTION = `INSERT INTO device_rejections (device_id, reason, count) VALUES (?, ?, ?)
  ON CONFLICT (device_id, reason) DO UPDATE SET count = count + excluded.count`;

/** Records as flat rows, `EVENT_COLUMNS` values each, in log order. */
export function eventRows(records: EventRecord[]): unknown[] {
  const rows: unknown[] = new Array(records.length * EVENT_COLUMNS);
  let i = 0;
  for (const r of records) {
    rows[i++] = r.deviceId;
    rows[i++] = r.homeId;
    rows[i++] = r.receivedAt;
    rows[i++] = r.topic;
    rows[i++] = r.status;
    rows[i++] = r.ts;
    rows[i++] = r.type;
    rows[i++] = r.deviceSeq;
    rows[i++] = r.body;
    rows[i++] = r.reason;
    rows[i++] = r.flags.length === 0 ? '[]' : JSON.stringify(r.flags);
  }
  return rows;
}

export interface BatchStatements {
  insert: Database.Statement;
  device: Database.Statement;
  rejection: Database.Statement;
}

export function batchStatements(db: Database.Database): BatchStatements {
  return {
    insert: db.prepare(INSERT_EVENT),
    device: db.prepare(UPDATE_DEVICE),
    rejection: db.prepare(COUNT_REJECTION),
  };
}

/**
 * Writes presence updates and event rows; call inside a transaction. Returns the log position of each
 * record, or 0 for a duplicate (the same device seq already accepted).
 */
export function writeBatch(st: BatchStatements, rows: unknown[], presence: PresenceUpdate[]): number[] {
  for (const u of presence) {
    st.device.run(
      u.online === undefined ? null : u.online ? 1 : 0,
      u.lastSeenAt ?? null,
      u.battery ?? null,
      u.rssi ?? null,
      u.fw ?? null,
      u.rejectedDelta ?? 0,
      u.deviceId,
    );
    for (const [reason, n] of Object.entries(u.rejectedByReason ?? {}))
      st.rejection.run(u.deviceId, reason, n);
  }
  const seqs: number[] = new Array(rows.length / EVENT_COLUMNS);
  for (let r = 0, i = 0; i < rows.length; r++, i += EVENT_COLUMNS) {
    const info = st.insert.run(rows.slice(i, i + EVENT_COLUMNS));
    seqs[r] = info.changes === 1 ? Number(info.lastInsertRowid) : 0;
  }
  return seqs;
}

export function outcomes(seqs: number[]): AppendOutcome[] {
  return seqs.map((seq) => (seq > 0 ? { seq, duplicate: false } : { seq: null, duplicate: true }));
}
