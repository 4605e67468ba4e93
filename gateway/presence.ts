/**
 * Presence (DEV-10): each device's live session, the presence transitions written to the event log with
 * their cause (connect, clean disconnect, will, keep-alive timeout, `status` messages), and the device rows'
 * online / last-seen / battery / rejection figures, coalesced so a busy device costs one row update per
 * batch, not per message. Knows nothing of aedes: the adapter says when a session starts and ends and why.
 */
import type { Clock } from '../kernel/clock.ts';
import type { Logger } from '../kernel/log.ts';
import { storageUnavailable } from './event-log.ts';
import type { DeviceCredentials, EventRecord, GatewayStore, PresenceUpdate } from './ports.ts';
import { type PresenceEvent, topics } from './protocol.ts';

/**
 * DEV-12: how far behind a device row's last-seen time may be while the device keeps talking. A minute:
 * the row is what the console and the API show (the rules keep their own from the log), and at 5,000
 * events/s over 100,000 devices each device talks every ~20 s, so a shorter step rewrote its row at almost
 * every message (a row update and its lock per event, ~15 µs of the database's time per event).
 */
const LAST_SEEN_STEP_MS = 60_000;

/** A presence record with its event still parsed, for the hand-off to the rules. */
export type PresenceRecord = EventRecord & { parsed: PresenceEvent };

export interface PresenceDeps {
  store: Pick<GatewayStore, 'updatePresence'>;
  clock: Clock;
  log: Logger;
  /** Appends a presence record to the durable log (the gateway's append, with its admission control). */
  append: (record: PresenceRecord) => Promise<unknown>;
  /** Whether a log batch is on its way (it carries the pending device rows: one fsync, not two). */
  logBusy: () => boolean;
  /** Every device presence change, as it happens. */
  onPresence?: (update: PresenceUpdate & { homeId: string }) => void;
}

/** How a session ended (DEV-10; RULE-08 tells a clean disconnect from a lost device). */
export type SessionEnd = Extract<PresenceEvent['cause'], 'keepalive' | 'disconnect' | 'will'>;

/** `S`: what stands for one session (the adapter's client). */
export class Presence<S extends object> {
  /** Presence records written, for /metrics. */
  records = 0;
  /** Shutting down is not every device going offline: no presence records once set. */
  stopping = false;
  /** The live session of each device: a presence change from a superseded session is ignored. */
  private readonly sessions = new Map<string, S>();
  /** The last presence state written to the log per device, so repeated `online` status adds nothing. */
  private readonly lastPresence = new Map<string, 'online' | 'offline'>();
  private readonly pending = new Map<string, PresenceUpdate>();
  /** Per online device, the last-seen time last queued for its row (see onlySeenAgain). */
  private readonly seenWritten = new Map<string, number>();
  /** Sessions that started (CONNACK sent): only those record an end. */
  private readonly ready = new WeakSet<S>();
  /** DEV-11: when each session began (its login), carried by every row update it causes. */
  private readonly since = new WeakMap<S, number>();
  private readonly ended = new WeakSet<S>();
  private scheduled = false;
  private write: Promise<void> = Promise.resolve();

  constructor(private readonly deps: PresenceDeps) {}

  /** Devices with a live session now. */
  get online(): number {
    return this.sessions.size;
  }

  /** Every device's live session here, as it is now. */
  liveSessions(): [deviceId: string, session: S][] {
    return [...this.sessions];
  }

  /** The device's live session, if any. */
  session(deviceId: string): S | undefined {
    return this.sessions.get(deviceId);
  }

  /** A login succeeded: from here `session` is the device's; the one it replaces ends without a record. */
  claim(deviceId: string, session: S): void {
    this.sessions.set(deviceId, session);
    // A new session's `online` is a change of the row (DEV-11: its session start), never "seen again".
    this.seenWritten.delete(deviceId);
    this.since.set(session, this.deps.clock.now());
  }

  /**
   * CLU-05: the device's session was taken over by another gateway, which recorded it online: the end of
   * the session here records nothing (an older session never overwrites a newer one's presence).
   */
  handOver(deviceId: string): void {
    if (!this.sessions.delete(deviceId)) return;
    this.lastPresence.delete(deviceId);
    this.seenWritten.delete(deviceId);
  }

  /** The session is up (CONNACK sent): an `online` record with cause `connect`. */
  started(device: DeviceCredentials, session: S): void {
    if (this.sessions.get(device.id) !== session) return;
    this.ready.add(session);
    this.record(device, session, 'online', 'connect').catch((e: unknown) =>
      this.deps.log.error({ err: e, deviceId: device.id }, 'presence record failed'),
    );
    this.update({
      deviceId: device.id,
      homeId: device.homeId,
      online: true,
      lastSeenAt: this.deps.clock.now(),
      sessionAt: this.since.get(session),
    });
  }

  /**
   * The end of a device's session, once, whichever comes first: its will (published by aedes on an unclean
   * end) or the disconnect. `cause` is asked only when the end is recorded.
   */
  async end(device: DeviceCredentials, session: S, cause: () => SessionEnd): Promise<void> {
    if (this.ended.has(session)) return;
    this.ended.add(session);
    if (this.sessions.get(device.id) !== session) return; // replaced by a newer session of the same device
    this.sessions.delete(device.id);
    if (this.stopping || !this.ready.has(session)) return;
    // DEV-11: stamped with this session's start, so the store ignores it if the device has since
    // connected elsewhere (another gateway wrote a newer session's state).
    this.update({
      deviceId: device.id,
      homeId: device.homeId,
      online: false,
      lastSeenAt: this.deps.clock.now(),
      sessionAt: this.since.get(session),
    });
    await this.record(device, session, 'offline', cause());
  }

  /** A `status` message of the device's live session (DEV-02). */
  async status(
    device: DeviceCredentials,
    session: S,
    state: 'online' | 'offline',
    at: number,
  ): Promise<void> {
    if (this.sessions.get(device.id) !== session) return;
    await this.record(device, session, state, 'status');
    this.update({
      deviceId: device.id,
      homeId: device.homeId,
      online: state === 'online',
      lastSeenAt: at,
      sessionAt: this.since.get(session),
    });
  }

  /**
   * DEV-12: the change a device message makes to its device's row, to be written in the message's own
   * transaction (the log carries it with the record), or none when the row needs no write for it.
   */
  forRecord(u: PresenceUpdate & { homeId: string }): PresenceUpdate | undefined {
    this.stamp(u);
    if (this.onlySeenAgain(u)) return undefined;
    const { homeId: _home, ...update } = u;
    return update;
  }

  /** What a device sends comes from its live session here (DEV-11); every change is told as it happens. */
  private stamp(u: PresenceUpdate & { homeId: string }): void {
    if (u.sessionAt === undefined) {
      const live = this.sessions.get(u.deviceId);
      const at = live && this.since.get(live);
      if (at !== undefined) u.sessionAt = at;
    }
    this.deps.onPresence?.(u);
  }

  /** A change of the device's row (seen, battery, signal, firmware, rejections). */
  update(u: PresenceUpdate & { homeId: string }): void {
    this.stamp(u);
    if (this.onlySeenAgain(u)) return;
    // Coalesced per turn of the event loop: a busy device costs one row update per batch, not per message.
    const prev = this.pending.get(u.deviceId);
    if (!prev) {
      const { homeId: _home, ...update } = u;
      this.pending.set(u.deviceId, update);
    } else if (u.sessionAt !== undefined && prev.sessionAt !== undefined && u.sessionAt < prev.sessionAt) {
      // DEV-11: an older session never overrides a newer one's state; its counts still add up.
      this.mergeCounts(prev, u);
    } else {
      // Merged in place: this runs for every accepted message.
      if (u.sessionAt !== undefined) prev.sessionAt = u.sessionAt;
      if (u.online !== undefined) prev.online = u.online;
      if (u.lastSeenAt !== undefined) prev.lastSeenAt = u.lastSeenAt;
      if (u.battery !== undefined) prev.battery = u.battery;
      if (u.rssi !== undefined) prev.rssi = u.rssi;
      if (u.fw !== undefined) prev.fw = u.fw;
      this.mergeCounts(prev, u);
    }
    this.schedule();
  }

  private mergeCounts(prev: PresenceUpdate, u: PresenceUpdate): void {
    if (u.rejectedDelta) prev.rejectedDelta = (prev.rejectedDelta ?? 0) + u.rejectedDelta;
    if (u.rejectedByReason) {
      const reasons = prev.rejectedByReason ?? {};
      for (const [k, n] of Object.entries(u.rejectedByReason)) reasons[k] = (reasons[k] ?? 0) + n;
      prev.rejectedByReason = reasons;
    }
  }

  /** The pending row updates, for the next log batch (event-log.ts takePresence). */
  take(): PresenceUpdate[] {
    const batch = [...this.pending.values()];
    this.pending.clear();
    return batch;
  }

  /** Row updates a batch could not write: back to the pending ones (what came later wins; counts add up). */
  requeue(updates: PresenceUpdate[]): void {
    for (const u of updates) {
      const prev = this.pending.get(u.deviceId);
      if (!prev) {
        this.pending.set(u.deviceId, u);
        continue;
      }
      const merged: PresenceUpdate = { ...u, ...prev };
      if (u.rejectedDelta) merged.rejectedDelta = (prev.rejectedDelta ?? 0) + u.rejectedDelta;
      if (u.rejectedByReason) {
        const reasons = { ...u.rejectedByReason };
        for (const [k, n] of Object.entries(prev.rejectedByReason ?? {})) reasons[k] = (reasons[k] ?? 0) + n;
        merged.rejectedByReason = reasons;
      }
      this.pending.set(u.deviceId, merged);
    }
  }

  /** The log went idle: row updates left over get their own write. */
  idle(): void {
    if (this.pending.size > 0) this.schedule();
  }

  /** At shutdown: writes what is pending and waits for it; forgets the sessions. */
  async stop(): Promise<void> {
    this.flush(true);
    await this.write;
    this.sessions.clear();
  }

  /** A presence transition as a log record (type `presence`), so the rules see it in log order. */
  private async record(
    device: DeviceCredentials,
    session: S,
    state: 'online' | 'offline',
    cause: PresenceEvent['cause'],
  ): Promise<void> {
    if (cause === 'status' && this.lastPresence.get(device.id) === state) return;
    this.lastPresence.set(device.id, state);
    const ts = this.deps.clock.now();
    const body: PresenceEvent = { type: 'presence', ts, state, cause };
    // DEV-11: which session this is, so the rules know a late end of an older one.
    const since = this.since.get(session);
    if (since !== undefined) body.session = since;
    this.records++;
    await this.deps.append({
      parsed: body,
      deviceId: device.id,
      homeId: device.homeId,
      receivedAt: ts,
      topic: topics.status(device.homeId, device.id),
      status: 'accepted',
      ts,
      type: 'presence',
      deviceSeq: null,
      body: JSON.stringify(body),
      reason: null,
      flags: [],
    });
  }

  /**
   * True for an update that says no more than "still online, seen now" within `LAST_SEEN_STEP_MS` of the
   * last-seen time already on its way to the device row: that row is not rewritten for it (every accepted
   * message says this; written each time, it was a row update per device per batch, a fifth of the log
   * writer's work). The row's last-seen time is then at most that much behind; going offline, a change of
   * battery, signal or firmware, or a rejection is always written.
   */
  private onlySeenAgain(u: PresenceUpdate): boolean {
    const written = this.seenWritten.get(u.deviceId);
    const plain =
      u.online !== false &&
      u.lastSeenAt !== undefined &&
      u.battery === undefined &&
      u.rssi === undefined &&
      u.fw === undefined &&
      !u.rejectedDelta &&
      !u.rejectedByReason;
    if (plain && written !== undefined && u.lastSeenAt! - written < LAST_SEEN_STEP_MS) return true;
    if (u.online === false) this.seenWritten.delete(u.deviceId);
    else if (u.lastSeenAt !== undefined && (u.online === true || written !== undefined))
      this.seenWritten.set(u.deviceId, u.lastSeenAt);
    return false;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Device rows on their own transaction only when no log batch is on its way: otherwise the next batch
   * carries them (one fsync per batch, not two), and `idle` brings back any left when the log goes idle.
   */
  private flush(force = false): void {
    this.scheduled = false;
    if (!force && this.deps.logBusy()) return;
    const batch = this.take();
    if (batch.length === 0) return;
    this.write = this.write
      .then(() => this.deps.store.updatePresence(batch))
      .catch((e: unknown) => {
        if (!storageUnavailable(e) || this.stopping) {
          this.deps.log.error({ err: e }, 'presence update failed');
          return;
        }
        // The storage cannot write now: kept, and tried again with the next batch or in a second (a
        // retry pace for the storage, not domain time: a real timer).
        this.requeue(batch);
        setTimeout(() => this.schedule(), 1_000).unref();
      });
  }
}
