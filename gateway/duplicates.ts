/**
 * SPEC §3 duplicates, the rule itself, apart from any storage: "a duplicate (same device and `seq`) is
 * recorded once, whatever the distance to the device's highest `seq` (devices often use epoch milliseconds
 * as `seq`); a device whose counter restarted after a power cycle is told apart from a resend by what
 * shows the restart, not by distance alone". Every store backend decides with these functions; only how
 * it remembers the seqs a device has sent (and how it finds one) is its own.
 *
 * What shows a restart: a power cycle ends the device's MQTT session, so a restarted counter is only ever
 * seen at the start of a new session (the gateway tags each record with its session, EventRecord.session).
 * There, a seq at or below the device's highest shows a counter that started again when
 * - the seq was recorded, but with another event time: a resend repeats the very event, with its own time,
 *   so a different event under the same seq is a new count; or
 * - the seq was not recorded and the event is newer than the one that carried the highest seq (a late
 *   message of the same count is older than that).
 * Until a session has one event recorded, each of its events may still show a restart (a device resends
 * what was not acknowledged first, then goes on).
 *
 * Anything else that repeats a seq of the device's current count is a duplicate, however far below the
 * highest it is. A seq never seen is recorded, also when it is below the highest (a late message).
 */

/** What the rule needs to know about a device: its current count and the session that last recorded. */
export interface SeqState {
  /** The highest seq of the device's current count, or -1 before its first. */
  high: number;
  /** Event time (epoch ms, SPEC §3 `ts`) of the event that carried `high` (NaN: not known). */
  highTs: number;
  /** The session whose first event was recorded last; null when unknown (e.g. after a restart of the store). */
  session: string | null;
}

export type SeqVerdict =
  /** A seq not recorded in the device's current count: recorded. */
  | 'new'
  /** The same device and seq again: recorded once, so not again. */
  | 'duplicate'
  /** The device's counter started again (a power cycle): recorded, and its earlier seqs are forgotten. */
  | 'restart';

export const emptySeqState = (): SeqState => ({ high: -1, highTs: 0, session: null });

/**
 * The verdict on an accepted event with device seq `seq` and event time `ts`, sent in `session` (null when
 * the sender gives none: then no restart can show). `seenTs` is the event time recorded with `seq` in the
 * device's current count (NaN when it was recorded without its time), or null when it has not recorded `seq`.
 */
export function judgeSeq(
  state: SeqState,
  seq: number,
  ts: number,
  session: string | null,
  seenTs: number | null,
): SeqVerdict {
  const freshSession = session !== null && session !== state.session;
  if (freshSession && state.high >= 0 && seq <= state.high) {
    // A seq recorded before its time was kept (NaN) is judged like one not recorded.
    if (seenTs !== null && !Number.isNaN(seenTs) ? seenTs !== ts : ts > state.highTs) return 'restart';
  }
  return seenTs !== null ? 'duplicate' : 'new';
}

/** The device's state after an event judged `verdict` (a duplicate changes nothing). */
export function nextSeqState(
  state: SeqState,
  verdict: SeqVerdict,
  seq: number,
  ts: number,
  session: string | null,
): SeqState {
  if (verdict === 'duplicate') return state;
  const sessionAfter = session ?? state.session;
  if (verdict === 'restart') return { high: seq, highTs: ts, session: sessionAfter };
  return seq > state.high
    ? { high: seq, highTs: ts, session: sessionAfter }
    : { high: state.high, highTs: state.highTs, session: sessionAfter };
}

/**
 * The seqs a device's current count has recorded, with their event times, kept in memory by a single
 * writer: the newest `depth` seqs by value (ascending), exact whatever their values are (epoch-ms or µs
 * seqs included). Below the oldest one it keeps, once it is full, a seq is not known and is taken as new:
 * a late message from more than `depth` messages ago is recorded (twice, at worst), never dropped on a
 * guess that could lose a fall.
 */
export class RecentSeqs {
  constructor(
    readonly depth: number,
    /** Ascending. */
    readonly seqs: number[] = [],
    /** The event time of each of `seqs`. */
    readonly times: number[] = [],
  ) {}

  /** Where `seq` is or would go in `seqs`. */
  private find(seq: number): number {
    const s = this.seqs;
    // The usual cases first: above the highest (new) or the highest itself (a resend).
    const last = s.length - 1;
    if (last < 0 || seq > s[last]!) return s.length;
    if (seq === s[last]) return last;
    let lo = 0;
    let hi = last;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The event time recorded with `seq`, or null when it is not known. */
  timeOf(seq: number): number | null {
    const i = this.find(seq);
    return this.seqs[i] === seq ? this.times[i]! : null;
  }

  add(seq: number, ts: number): void {
    const i = this.find(seq);
    if (this.seqs[i] === seq) return;
    if (i === this.seqs.length) {
      this.seqs.push(seq);
      this.times.push(ts);
    } else {
      this.seqs.splice(i, 0, seq);
      this.times.splice(i, 0, ts);
    }
    if (this.seqs.length > this.depth) {
      this.seqs.shift();
      this.times.shift();
    }
  }

  clear(): void {
    this.seqs.length = 0;
    this.times.length = 0;
  }
}

/** A device's memory for a single writer: the rule's state and the seqs of its current count. */
export interface DeviceSeqs {
  state: SeqState;
  recent: RecentSeqs;
}

/** Judges and remembers one event (single-writer stores): true when it is to be recorded. */
export function admitSeq(d: DeviceSeqs, seq: number, ts: number, session: string | null): boolean {
  const verdict = judgeSeq(d.state, seq, ts, session, d.recent.timeOf(seq));
  if (verdict === 'duplicate') return false;
  if (verdict === 'restart') d.recent.clear();
  d.recent.add(seq, ts);
  d.state = nextSeqState(d.state, verdict, seq, ts, session);
  return true;
}
