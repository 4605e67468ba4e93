/**
 * The SQL of one event-log batch: device presence, then the events, in one transaction. Shared by the log
 * writer thread (log-writer.thread.ts) and the store's in-thread path for an in-memory database, so there
 * is one copy of it.
 *
 * Duplicates (SPEC §3: the same device and `seq` is recorded once) are found with a window of the last
 * `SEQ_WINDOW` seqs per device, kept in memory by the one writer. A unique index on (device, seq) did this
 * before, at the price of one random index page rewritten per event.
 *
 * The windows are saved on the device rows by `step()`, in small transactions of their own between the
 * log's batches (the writer thread runs a step after each commit), never in a batch's transaction, which a
 * device's PUBACK and the rules wait for: a sweep, `WINDOW_SLICE` devices per step, once `WINDOW_SWEEP`
 * events were logged since the last. Each saved window carries the log position it reflects, and the
 * windows' cursor moves to where the sweep started once it is done. After a crash the writer rebuilds the
 * windows from the events past that cursor, skipping those a device's saved window already holds. A
 * failed step loses nothing: it is tried again, or done from the log at the next start.
 *
 * (The household index that the timeline reads is derived from the log too, by a thread of its own:
 * home-index.ts.)
 */
import type Database from 'better-sqlite3';
import type { AppendOutcome, EventRecord, PresenceUpdate } from '../../gateway/ports.ts';

/** Columns of one record in a flat row array (cheaper to post to a thread than objects). */
export const EVENT_COLUMNS = 11;
const STATUS = 4;
const DEVICE_SEQ = 7;

/** Seqs remembered per device below its highest: a resend after a reconnect falls far inside it. */
export const SEQ_WINDOW = 1024;

/** Events logged between two sweeps of the seq windows. */
export const WINDOW_SWEEP = 32_768;
/** Device windows saved per step (about 1 ms of the writer's time). */
const WINDOW_SLICE = 256;
/** The cursor (in `cursors`) up to which every device's saved seq window reflects the log. */
export const WINDOWS_CURSOR = 'event-log-windows';

const INSERT_EVENT = `INSERT INTO events (device_id, home_id, received_at, topic, status, ts, type, device_seq, body, reason, flags)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
const UPDATE_DEVICE = `UPDATE devices SET online = COALESCE(?, online), last_seen_at = COALESCE(?, last_seen_at),
  battery = COALESCE(?, battery), rssi = COALESCE(?, rssi), fw = COALESCE(?, fw),
  rejected_count = rejected_count + ? WHERE id = ?`;
const COUNT_REJECTION = `INSERT INTO device_rejections (device_id, reason, count) VALUES (?, ?, ?)
  ON CONFLICT (device_id, reason) DO UPDATE SET count = count + excluded.count`;
const LOAD_WINDOW = 'SELECT seq_high, seq_window, seq_window_at FROM devices WHERE id = ?';
const SAVE_WINDOW = 'UPDATE devices SET seq_high = ?, seq_window = ?, seq_window_at = ? WHERE id = ?';
const LOAD_CURSOR = 'SELECT seq FROM cursors WHERE name = ?';
const SAVE_CURSOR = `INSERT INTO cursors (name, seq) VALUES (?, ?)
  ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`;
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
  /** The log position the saved window reflected when it was loaded (0: unknown, or none saved). */
  savedAt: number;
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
  /**
   * One step of the derived rows' upkeep, if one is due, in its own transaction: true while more are due.
   * `all`: whatever is not done yet is due (when the writer is idle), still a step at a time.
   */
  step(all?: boolean): boolean;
  /** All the derived rows, step after step (before closing). */
  flush(): void;
  /** The log position of the last event this writer committed (or found at its start). */
  readonly position: number;
}

export function batchWriter(db: Database.Database): BatchWriter {
  const insert = db.prepare(INSERT_EVENT);
  const device = db.prepare(UPDATE_DEVICE);
  const rejection = db.prepare(COUNT_REJECTION);
  const loadWindow = db.prepare(LOAD_WINDOW);
  const saveWindow = db.prepare(SAVE_WINDOW);
  const saveCursor = db.prepare(SAVE_CURSOR);
  const windows = new Map<string, SeqWindow>();
  /** Windows as they were before the running transaction touched them (restored if it rolls back). */
  let before = new Map<string, SeqWindow | undefined>();
  /** Devices whose window changed since it was last saved (or since the running sweep took them). */
  const unsaved = new Set<string>();
  /** The running sweep: where it started, and the devices it still has to save. */
  let sweep: { from: number; devices: string[] } | null = null;

  const stored = (deviceId: string): SeqWindow => {
    const r = loadWindow.get(deviceId) as
      | { seq_high: number | null; seq_window: Buffer | null; seq_window_at: number | null }
      | undefined;
    const high = r?.seq_high ?? -1;
    // A device row saved before windows existed: every seq up to its highest counts as seen.
    const bits = r?.seq_window
      ? new Uint8Array(r.seq_window)
      : new Uint8Array(SEQ_WINDOW / 8).fill(high >= 0 ? 255 : 0);
    return { high, bits, savedAt: Number(r?.seq_window_at ?? 0) };
  };
  const loaded = (deviceId: string): SeqWindow => {
    let w = windows.get(deviceId);
    if (!w) {
      w = stored(deviceId);
      windows.set(deviceId, w);
    }
    return w;
  };

  const cursor = (name: string) => (db.prepare(LOAD_CURSOR).get(name) as { seq: number } | undefined)?.seq;
  /** Log positions: the saved windows reach `windowsAt`, the log `last`. */
  let windowsAt = Number(cursor(WINDOWS_CURSOR) ?? 0);
  let last = Number((db.prepare(LAST_POSITION).get() as { seq: number }).seq);
  // After a crash: the windows as they were, from the saved ones and the seqs logged past their cursor
  // that a device's saved window does not hold yet.
  for (const r of db.prepare(TAIL_SEQS).iterate(windowsAt) as Iterable<{
    seq: number;
    device_id: string;
    device_seq: number;
  }>) {
    const w = loaded(r.device_id);
    if (r.seq <= w.savedAt) continue;
    admitSeq(w, r.device_seq);
    unsaved.add(r.device_id);
  }

  /** The device's window for the running transaction, remembered as it was in case it rolls back. */
  const windowOf = (deviceId: string): SeqWindow => {
    if (!before.has(deviceId)) {
      const w = windows.get(deviceId);
      before.set(deviceId, w && { ...w, bits: w.bits.slice() });
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

  const transaction = db.transaction((requests: { rows: unknown[]; presence: PresenceUpdate[] }[]) =>
    requests.map((q) => one(q.rows, q.presence)),
  );
  const write = (requests: { rows: unknown[]; presence: PresenceUpdate[] }[]): number[][] => {
    const position = last;
    try {
      return transaction.immediate(requests);
    } catch (e) {
      // Rolled back: the writer's memory goes back to how it was.
      last = position;
      for (const [id, w] of before) {
        if (w) windows.set(id, w);
        else windows.delete(id);
      }
      throw e;
    } finally {
      before = new Map();
    }
  };

  /** Saves the windows of `devices` as of `last`; the sweep's last step moves the windows' cursor. */
  const windowStep = db.transaction((devices: string[], done: number | null) => {
    for (const id of devices) {
      const w = windows.get(id);
      if (w) saveWindow.run(w.high, Buffer.from(w.bits), last, id);
    }
    if (done !== null) saveCursor.run(WINDOWS_CURSOR, done);
  });

  const sweepDue = (all: boolean) =>
    sweep !== null ||
    (unsaved.size > 0 && (all || last - windowsAt >= WINDOW_SWEEP)) ||
    (all && last > windowsAt);

  /** One step of whatever is due (`all`: whatever is not done yet); false when there was nothing. */
  const stepOnce = (all: boolean): boolean => {
    if (!sweepDue(all)) return false;
    if (!sweep) {
      sweep = { from: last, devices: [...unsaved] };
      unsaved.clear();
    }
    const devices = sweep.devices.slice(0, WINDOW_SLICE);
    const done = devices.length === sweep.devices.length ? sweep.from : null;
    windowStep.immediate(devices, done);
    sweep.devices.splice(0, devices.length);
    if (done !== null) {
      windowsAt = done;
      sweep = null;
    }
    return true;
  };

  return {
    write,
    // Nothing logged or changed since the last time: no transaction (the writer steps on a timer too).
    step: (all = false) => stepOnce(all) && sweepDue(all),
    flush: () => {
      while (stepOnce(true)) {}
    },
    get position() {
      return last;
    },
  };
}

export function outcomes(seqs: number[]): AppendOutcome[] {
  return seqs.map((seq) => (seq > 0 ? { seq, duplicate: false } : { seq: null, duplicate: true }));
}
