/**
 * The SQL of one event-log batch: device presence, then the events, in one transaction. Shared by the log
 * writer thread (log-writer.thread.ts) and the store's in-thread path for an in-memory database, so there
 * is one copy of it.
 *
 * Duplicates (SPEC §3: the same device and `seq` is recorded once) are found with a window of the last
 * `SEQ_WINDOW` seqs per device, kept in memory by the one writer. A unique index on (device, seq) did this
 * before, at the price of one random index page rewritten per event.
 *
 * What is derived from the log, the household index that the timeline reads (`events_by_home`) and the
 * windows saved on the device rows, is written every `DERIVED_CHUNK` events (and when the writer is idle
 * or closes) in the same transaction as a batch, sorted by home, with a cursor that says which log
 * position they reach. Written with every event, each was a random page rewritten per event: in
 * isolation, 25.6 µs per event from 10,000 devices and 13.2 µs from a few hundred, against 13 and 5.4 µs
 * now (a chunk rewrites a page per home in it, not per event). After a crash the writer rebuilds the
 * windows from the events past the cursor, and the timeline reads those few events from the log itself
 * (sqlite.ts listHomeEvents).
 */
import type Database from 'better-sqlite3';
import type { AppendOutcome, EventRecord, PresenceUpdate } from '../../gateway/ports.ts';

/** Columns of one record in a flat row array (cheaper to post to a thread than objects). */
export const EVENT_COLUMNS = 11;
const STATUS = 4;
const DEVICE_SEQ = 7;

/** Seqs remembered per device below its highest: a resend after a reconnect falls far inside it. */
export const SEQ_WINDOW = 1024;

/** Log positions between two writes of the derived rows. */
export const DERIVED_CHUNK = 8192;
/** The cursor (in `cursors`) up to which the household index and the saved windows reach. */
export const DERIVED_CURSOR = 'event-log-derived';

const INSERT_EVENT = `INSERT INTO events (device_id, home_id, received_at, topic, status, ts, type, device_seq, body, reason, flags)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const UPDATE_DEVICE = `UPDATE devices SET online = COALESCE(?, online), last_seen_at = COALESCE(?, last_seen_at),
  battery = COALESCE(?, battery), rssi = COALESCE(?, rssi), fw = COALESCE(?, fw),
  rejected_count = rejected_count + ? WHERE id = ?`;
const COUNT_REJECTION = `INSERT INTO device_rejections (device_id, reason, count) VALUES (?, ?, ?)
  ON CONFLICT (device_id, reason) DO UPDATE SET count = count + excluded.count`;
const LOAD_WINDOW = 'SELECT seq_high, seq_window FROM devices WHERE id = ?';
const SAVE_WINDOW = 'UPDATE devices SET seq_high = ?, seq_window = ? WHERE id = ?';
const LOAD_CURSOR = `SELECT seq FROM cursors WHERE name = '${DERIVED_CURSOR}'`;
const SAVE_CURSOR = `INSERT INTO cursors (name, seq) VALUES ('${DERIVED_CURSOR}', ?)
  ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`;
const INDEX_HOMES = `INSERT INTO events_by_home (home_id, ts, seq)
  SELECT home_id, ts, seq FROM events WHERE seq > ? AND seq <= ? AND status = 'accepted' ORDER BY home_id, ts, seq`;
const TAIL_SEQS = `SELECT seq, device_id, device_seq FROM events
  WHERE seq > ? AND status = 'accepted' AND device_seq IS NOT NULL ORDER BY seq`;
const LAST_POSITION = 'SELECT COALESCE(MAX(seq), 0) AS seq FROM events';

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

/** The seqs a device has sent: the highest, and a ring of bits for the `SEQ_WINDOW` seqs up to it. */
interface SeqWindow {
  high: number;
  bits: Uint8Array;
}

const bit = (w: SeqWindow, seq: number) => (w.bits[(seq % SEQ_WINDOW) >> 3]! >> (seq & 7)) & 1;
const setBit = (w: SeqWindow, seq: number) => {
  w.bits[(seq % SEQ_WINDOW) >> 3]! |= 1 << (seq & 7);
};
const clearBit = (w: SeqWindow, seq: number) => {
  w.bits[(seq % SEQ_WINDOW) >> 3]! &= ~(1 << (seq & 7));
};

/**
 * True when `seq` is new for the window, which then records it. A seq more than the window below the
 * highest is taken as a device that restarted its count: accepted, and the window starts again there
 * (dropping it as a duplicate could lose a fall).
 */
export function admitSeq(w: SeqWindow, seq: number): boolean {
  if (seq > w.high) {
    if (seq - w.high >= SEQ_WINDOW) w.bits.fill(0);
    else for (let s = w.high + 1; s < seq; s++) clearBit(w, s);
    w.high = seq;
    setBit(w, seq);
    return true;
  }
  if (seq <= w.high - SEQ_WINDOW) {
    w.bits.fill(0);
    w.high = seq;
    setBit(w, seq);
    return true;
  }
  if (bit(w, seq)) return false;
  setBit(w, seq);
  return true;
}

export interface BatchWriter {
  /** Writes the requests in one transaction (BEGIN IMMEDIATE): the log position of each record, 0 for a duplicate. */
  write(requests: { rows: unknown[]; presence: PresenceUpdate[] }[]): number[][];
  /** Writes the derived rows of the events logged since the last time (when idle, and before closing). */
  flush(): void;
}

export function batchWriter(db: Database.Database): BatchWriter {
  const insert = db.prepare(INSERT_EVENT);
  const device = db.prepare(UPDATE_DEVICE);
  const rejection = db.prepare(COUNT_REJECTION);
  const loadWindow = db.prepare(LOAD_WINDOW);
  const saveWindow = db.prepare(SAVE_WINDOW);
  const saveCursor = db.prepare(SAVE_CURSOR);
  const indexHomes = db.prepare(INDEX_HOMES);
  const windows = new Map<string, SeqWindow>();
  /** Windows as they were before the running transaction touched them (restored if it rolls back). */
  let before = new Map<string, SeqWindow | undefined>();
  /** Devices whose window changed since it was last saved. */
  const unsaved = new Set<string>();

  const stored = (deviceId: string): SeqWindow => {
    const r = loadWindow.get(deviceId) as { seq_high: number | null; seq_window: Buffer | null } | undefined;
    const high = r?.seq_high ?? -1;
    // A device row saved before windows existed: every seq up to its highest counts as seen.
    const bits = r?.seq_window
      ? new Uint8Array(r.seq_window)
      : new Uint8Array(SEQ_WINDOW / 8).fill(high >= 0 ? 255 : 0);
    return { high, bits };
  };
  const loaded = (deviceId: string): SeqWindow => {
    let w = windows.get(deviceId);
    if (!w) {
      w = stored(deviceId);
      windows.set(deviceId, w);
    }
    return w;
  };

  /** Log positions: the derived rows reach `derived`; the log itself reaches `last`. */
  let derived = Number((db.prepare(LOAD_CURSOR).get() as { seq: number } | undefined)?.seq ?? 0);
  let last = Number((db.prepare(LAST_POSITION).get() as { seq: number }).seq);
  // After a crash: the windows as they were, from the saved ones and the seqs logged past the cursor.
  for (const r of db.prepare(TAIL_SEQS).iterate(derived) as Iterable<{
    device_id: string;
    device_seq: number;
  }>) {
    admitSeq(loaded(r.device_id), r.device_seq);
    unsaved.add(r.device_id);
  }

  /** The device's window for the running transaction, remembered as it was in case it rolls back. */
  const windowOf = (deviceId: string): SeqWindow => {
    if (!before.has(deviceId)) {
      const w = windows.get(deviceId);
      before.set(deviceId, w && { high: w.high, bits: w.bits.slice() });
    }
    unsaved.add(deviceId);
    return loaded(deviceId);
  };

  const one = (rows: unknown[], presence: PresenceUpdate[]): number[] => {
    for (const u of presence) {
      device.run(
        u.online === undefined ? null : u.online ? 1 : 0,
        u.lastSeenAt ?? null,
        u.battery ?? null,
        u.rssi ?? null,
        u.fw ?? null,
        u.rejectedDelta ?? 0,
        u.deviceId,
      );
      for (const [reason, n] of Object.entries(u.rejectedByReason ?? {}))
        rejection.run(u.deviceId, reason, n);
    }
    const seqs: number[] = new Array(rows.length / EVENT_COLUMNS);
    for (let r = 0, i = 0; i < rows.length; r++, i += EVENT_COLUMNS) {
      const deviceSeq = rows[i + DEVICE_SEQ];
      if (rows[i + STATUS] === 'accepted' && typeof deviceSeq === 'number') {
        if (!admitSeq(windowOf(String(rows[i])), deviceSeq)) {
          seqs[r] = 0;
          continue;
        }
      }
      seqs[r] = Number(insert.run(rows.slice(i, i + EVENT_COLUMNS)).lastInsertRowid);
      last = seqs[r]!;
    }
    return seqs;
  };

  /** The derived rows up to `last`, in the running transaction. */
  const derive = () => {
    indexHomes.run(derived, last);
    for (const id of unsaved) {
      const w = windows.get(id)!;
      saveWindow.run(w.high, Buffer.from(w.bits), id);
    }
    saveCursor.run(last);
    derived = last;
  };

  const transaction = db.transaction((requests: { rows: unknown[]; presence: PresenceUpdate[] }[]) => {
    const out = requests.map((q) => one(q.rows, q.presence));
    if (last - derived >= DERIVED_CHUNK) derive();
    return out;
  });
  const flushing = db.transaction(derive);

  /** Runs `body` in a transaction; if it rolls back, the writer's memory goes back to how it was. */
  const atomically = <T>(body: () => T): T => {
    const positions = [derived, last];
    try {
      const out = body();
      if (derived === last) unsaved.clear();
      return out;
    } catch (e) {
      [derived, last] = positions as [number, number];
      for (const [id, w] of before) {
        if (w) windows.set(id, w);
        else windows.delete(id);
      }
      throw e;
    } finally {
      before = new Map();
    }
  };

  return {
    write: (requests) => atomically(() => transaction.immediate(requests)),
    flush: () => {
      // Nothing logged or changed since the last time: no transaction (this runs on a timer).
      if (last > derived || unsaved.size > 0) atomically(() => flushing.immediate());
    },
  };
}

export function outcomes(seqs: number[]): AppendOutcome[] {
  return seqs.map((seq) => (seq > 0 ? { seq, duplicate: false } : { seq: null, duplicate: true }));
}
