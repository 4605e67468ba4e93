/**
 * The SQL of one event-log batch: device presence, then the events, in one transaction. Shared by the log
 * writer thread (log-writer.thread.ts) and the store's in-thread path for an in-memory database, so there
 * is one copy of it.
 *
 * Duplicates (SPEC §3: the same device and `seq` is recorded once, whatever its distance to the device's
 * highest; a restarted count told apart by what shows it) are judged by the rule in gateway/duplicates.ts.
 * What it needs to know — the newest `SEQ_DEPTH` seqs each device recorded, exact values with their event
 * times, and the device's session — is kept in memory by the one writer. A unique index on (device, seq)
 * did this before, at the price of one random index page rewritten per event.
 *
 * The seqs are saved on the device rows by `step()`, in small transactions of their own between the
 * log's batches (the writer thread runs a step after each commit), never in a batch's transaction, which a
 * device's PUBACK and the rules wait for: a sweep, `WINDOW_SLICE` devices per step, once `WINDOW_SWEEP`
 * events were logged since the last. Each saved list carries the log position it reflects, and the
 * windows' cursor moves to where the sweep started once it is done. After a crash (or a batch rolled
 * back) the writer rebuilds them from the saved lists and the events past that cursor, skipping those a
 * device's saved list already holds. A failed step loses nothing: it is tried again, or done from the log
 * at the next start.
 *
 * (The household index that the timeline reads is derived from the log too, by a thread of its own:
 * home-index.ts.)
 */
import type Database from 'better-sqlite3';
import { admitSeq, type DeviceSeqs, RecentSeqs } from '../../gateway/duplicates.ts';
import type { AppendOutcome, EventRecord, PresenceUpdate } from '../../gateway/ports.ts';

/** Columns of one record in a flat row array (cheaper to post to a thread than objects). */
export const EVENT_COLUMNS = 12;
/** The first columns are the events table's; the session is only for the duplicate rule. */
const INSERTED_COLUMNS = 11;
const STATUS = 4;
const TS = 5;
const DEVICE_SEQ = 7;
const SESSION = 11;

/**
 * Seqs remembered per device, the newest by value: a resend after a reconnect falls far inside it, whatever
 * the seqs' values (duplicates.ts RecentSeqs).
 */
export const SEQ_DEPTH = 1024;

/** Events logged between two sweeps of the seq windows. */
export const WINDOW_SWEEP = 32_768;
/** Device windows saved per step (about 1 ms of the writer's time). */
const WINDOW_SLICE = 256;
/** The cursor (in `cursors`) up to which every device's saved seq window reflects the log. */
export const WINDOWS_CURSOR = 'event-log-windows';

const INSERT_EVENT = `INSERT INTO events (device_id, home_id, received_at, topic, status, ts, type, device_seq, body, reason, flags)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
/**
 * DEV-11: a device row's state is written only by the newest session that wrote it: the guard is in the
 * UPDATE's WHERE, so a late write of an older session (a gateway the device has left) changes nothing.
 * Counts are apart (COUNT_DEVICE_REJECTED): an older session's rejections still add up.
 */
const UPDATE_DEVICE = `UPDATE devices SET online = COALESCE(?, online), last_seen_at = COALESCE(?, last_seen_at),
  battery = COALESCE(?, battery), rssi = COALESCE(?, rssi), fw = COALESCE(?, fw),
  session_at = COALESCE(?, session_at)
  WHERE id = ? AND (? IS NULL OR session_at IS NULL OR session_at <= ?)`;
const COUNT_DEVICE_REJECTED = 'UPDATE devices SET rejected_count = rejected_count + ? WHERE id = ?';
const COUNT_REJECTION = `INSERT INTO device_rejections (device_id, reason, count) VALUES (?, ?, ?)
  ON CONFLICT (device_id, reason) DO UPDATE SET count = count + excluded.count`;
const LOAD_WINDOW = 'SELECT seq_high, seq_window, seq_recent, seq_window_at FROM devices WHERE id = ?';
const SAVE_WINDOW =
  'UPDATE devices SET seq_high = ?, seq_recent = ?, seq_window = NULL, seq_window_at = ? WHERE id = ?';
const LOAD_CURSOR = 'SELECT seq FROM cursors WHERE name = ?';
const SAVE_CURSOR = `INSERT INTO cursors (name, seq) VALUES (?, ?)
  ON CONFLICT (name) DO UPDATE SET seq = excluded.seq`;
const TAIL_SEQS = `SELECT seq, device_id, device_seq, ts FROM events
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
    rows[i++] = r.session ?? null;
  }
  return rows;
}

/** A device's seqs for the duplicate rule, and the log position its saved copy reflected when loaded. */
interface SeqWindow {
  seqs: DeviceSeqs;
  /** 0: unknown, or none saved. */
  savedAt: number;
}

// ---- the saved form of a device's seqs (devices.seq_recent): varints, each seq as the step from the one
// before, each time as its step from the one before (zigzag, +1; 0: a time not known).

const SAVED_FORMAT = 2;

function putVarint(out: number[], n: number): void {
  while (n >= 128) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
}

const zigzag = (d: number) => (d >= 0 ? d * 2 : -d * 2 - 1);
const unzigzag = (z: number) => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

export function encodeSeqs(r: RecentSeqs): Buffer {
  const out: number[] = [SAVED_FORMAT];
  putVarint(out, r.seqs.length);
  let prev = 0;
  for (const seq of r.seqs) {
    putVarint(out, seq - prev);
    prev = seq;
  }
  let prevTs = 0;
  for (const ts of r.times) {
    if (Number.isNaN(ts)) putVarint(out, 0);
    else {
      putVarint(out, zigzag(ts - prevTs) + 1);
      prevTs = ts;
    }
  }
  return Buffer.from(out);
}

export function decodeSeqs(b: Uint8Array, depth: number): RecentSeqs {
  let i = 1;
  const next = () => {
    let n = 0;
    let scale = 1;
    for (;;) {
      const byte = b[i++]!;
      n += (byte & 127) * scale;
      if (byte < 128) return n;
      scale *= 128;
    }
  };
  const count = next();
  const seqs: number[] = new Array(count);
  const times: number[] = new Array(count);
  let prev = 0;
  for (let k = 0; k < count; k++) {
    prev += next();
    seqs[k] = prev;
  }
  let prevTs = 0;
  for (let k = 0; k < count; k++) {
    const z = next();
    if (z === 0) times[k] = Number.NaN;
    else {
      prevTs += unzigzag(z - 1);
      times[k] = prevTs;
    }
  }
  return new RecentSeqs(depth, seqs, times);
}

/** A device's seqs as the rule sees them (session not known after a load: the next one is a new one). */
function deviceSeqs(recent: RecentSeqs): DeviceSeqs {
  const n = recent.seqs.length;
  return {
    recent,
    state: n
      ? { high: recent.seqs[n - 1]!, highTs: recent.times[n - 1]!, session: null }
      : { high: -1, highTs: 0, session: null },
  };
}

/**
 * The seqs saved on a device row: the list (seq_recent), or a bitmap of the 1,024 seqs up to the highest
 * written before it (migration 5; times not known), or only the highest (older still: every seq up to it
 * counts as recorded, as far as the list reaches).
 */
function savedSeqs(r: { seq_high: number | null; seq_window: Buffer | null; seq_recent: Buffer | null }) {
  if (r.seq_recent) return decodeSeqs(r.seq_recent, SEQ_DEPTH);
  const recent = new RecentSeqs(SEQ_DEPTH);
  const high = r.seq_high === null ? -1 : Number(r.seq_high);
  for (let s = Math.max(0, high - SEQ_DEPTH + 1); s <= high; s++) {
    const bits = r.seq_window;
    if (!bits || (bits[(s % 1024) >> 3]! >> (s & 7)) & 1) recent.add(s, Number.NaN);
  }
  return recent;
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
  const rejected = db.prepare(COUNT_DEVICE_REJECTED);
  const rejection = db.prepare(COUNT_REJECTION);
  const loadWindow = db.prepare(LOAD_WINDOW);
  const saveWindow = db.prepare(SAVE_WINDOW);
  const saveCursor = db.prepare(SAVE_CURSOR);
  const windows = new Map<string, SeqWindow>();
  /** Devices whose window changed since it was last saved (or since the running sweep took them). */
  const unsaved = new Set<string>();
  /** The running sweep: where it started, and the devices it still has to save. */
  let sweep: { from: number; devices: string[] } | null = null;

  const stored = (deviceId: string): SeqWindow => {
    const r = loadWindow.get(deviceId) as
      | {
          seq_high: number | null;
          seq_window: Buffer | null;
          seq_recent: Buffer | null;
          seq_window_at: number | null;
        }
      | undefined;
    const recent = r ? savedSeqs(r) : new RecentSeqs(SEQ_DEPTH);
    return { seqs: deviceSeqs(recent), savedAt: Number(r?.seq_window_at ?? 0) };
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
  /**
   * The windows as the log holds them, from the saved ones and the seqs logged past their cursor that a
   * device's saved window does not hold yet: at the start (after a crash too), and after a rollback.
   */
  const rebuild = () => {
    windows.clear();
    for (const r of db.prepare(TAIL_SEQS).iterate(windowsAt) as Iterable<{
      seq: number;
      device_id: string;
      device_seq: number;
      ts: number;
    }>) {
      const w = loaded(r.device_id);
      if (r.seq <= w.savedAt) continue;
      admitSeq(w.seqs, Number(r.device_seq), Number(r.ts), null);
      unsaved.add(r.device_id);
    }
  };
  rebuild();

  /** The device's window for the running transaction (a rollback rebuilds them all from the log). */
  const windowOf = (deviceId: string): SeqWindow => {
    unsaved.add(deviceId);
    return loaded(deviceId);
  };

  const one = (rows: unknown[], presence: PresenceUpdate[]): number[] => {
    for (const u of presence) {
      const session = u.sessionAt ?? null;
      device.run(
        u.online === undefined ? null : u.online ? 1 : 0,
        u.lastSeenAt ?? null,
        u.battery ?? null,
        u.rssi ?? null,
        u.fw ?? null,
        session,
        u.deviceId,
        session,
        session,
      );
      if (u.rejectedDelta) rejected.run(u.rejectedDelta, u.deviceId);
      for (const [reason, n] of Object.entries(u.rejectedByReason ?? {}))
        rejection.run(u.deviceId, reason, n);
    }
    const seqs: number[] = new Array(rows.length / EVENT_COLUMNS);
    for (let r = 0, i = 0; i < rows.length; r++, i += EVENT_COLUMNS) {
      const deviceSeq = rows[i + DEVICE_SEQ];
      if (rows[i + STATUS] === 'accepted' && typeof deviceSeq === 'number') {
        const session = rows[i + SESSION] as string | null;
        if (!admitSeq(windowOf(String(rows[i])).seqs, deviceSeq, Number(rows[i + TS]), session)) {
          seqs[r] = 0;
          continue;
        }
      }
      seqs[r] = Number(insert.run(rows.slice(i, i + INSERTED_COLUMNS)).lastInsertRowid);
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
      // Rolled back: the writer's memory goes back to what the log holds.
      last = position;
      rebuild();
      throw e;
    }
  };

  /** Saves the windows of `devices` as of `last`; the sweep's last step moves the windows' cursor. */
  const windowStep = db.transaction((devices: string[], done: number | null) => {
    for (const id of devices) {
      const w = windows.get(id);
      if (w) saveWindow.run(w.seqs.state.high, encodeSeqs(w.seqs.recent), last, id);
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
