/**
 * What the gateway needs from storage, stated by the gateway. The dispatcher's store implements it; the
 * gateway never imports the dispatcher.
 */
import type { DeviceKind, LogEvent } from './protocol.ts';

export interface DeviceCredentials {
  id: string;
  homeId: string;
  kind: DeviceKind;
  room: string;
  secretHash: string;
  disabled: boolean;
  /** The grid of the device's household: a telemetry tag (SPEC §9). */
  gridId: string;
}

/** One device message as written to the durable event log: accepted or rejected, never lost. */
export interface EventRecord {
  deviceId: string;
  homeId: string;
  receivedAt: number;
  topic: string;
  status: 'accepted' | 'rejected';
  /** Device time in epoch ms (receive time when the device's clock was skewed). */
  ts: number;
  type: string | null;
  deviceSeq: number | null;
  /**
   * The device's MQTT session that sent it (an id unique to one connection), so a counter that restarted
   * after a power cycle can be told from a resend (SPEC §3, duplicates.ts). Absent: no restart can show.
   */
  session?: string | null;
  /** The parsed event (accepted) or the raw payload text, truncated (rejected). */
  body: string;
  reason: string | null;
  flags: string[];
}

/**
 * A record's outcome: its log position, or a duplicate. `announced` (RULE-16): the store told the
 * dispatchers of the urgent record in its commit, so nobody needs to send a notification after it.
 */
export type AppendOutcome =
  | { seq: number; duplicate: false; announced?: true }
  | { seq: null; duplicate: true };

/** An accepted event as the rules see it: log position, origin and the parsed payload. */
export interface LoggedEvent {
  seq: number;
  deviceId: string;
  homeId: string;
  receivedAt: number;
  ts: number;
  flags: string[];
  event: LogEvent;
}

export interface PresenceUpdate {
  deviceId: string;
  online?: boolean;
  lastSeenAt?: number;
  battery?: number;
  rssi?: number;
  fw?: string;
  rejectedDelta?: number;
  /** Rejections since the last update by reason key (`invalid state`, `payload too large`, …). */
  rejectedByReason?: Record<string, number>;
  /**
   * DEV-11: when the session that wrote this started (the gateway's clock, epoch ms). The store applies the
   * state (online, last seen, readings) only when no newer session has written the row; the counts of an
   * older session still add up. Absent: applied as it comes.
   */
  sessionAt?: number;
}

/** A device's stored secret hash re-hashed to the current format after a good login (SEC-05). */
export interface SecretHashUpgrade {
  deviceId: string;
  /** The hash the secret was verified against: the row changes only if it still holds this one. */
  from: string;
  to: string;
}

export interface GatewayStore {
  findDevice(id: string): Promise<DeviceCredentials | null>;
  /**
   * CLU-02: the credentials of those of `ids` that exist, as they are now, in one query: for checking the
   * devices connected to a gateway again (nothing else is read or cached, so logins do not wait on it).
   */
  credentialsNow(ids: readonly string[]): Promise<Map<string, { secretHash: string; disabled: boolean }>>;
  /**
   * Replaces each device's secret hash `from` by `to`, each only if the row still holds `from` (a rotation
   * in between wins: its new hash stays, the old secret is never brought back). In one transaction; for
   * each upgrade, whether its row changed.
   */
  upgradeDeviceSecretHashes(upgrades: SecretHashUpgrade[]): Promise<boolean[]>;
  /**
   * Appends in one transaction and returns when the records are durable on disk. Presence updates passed
   * along are applied in the same transaction (one fsync for both), so a device row never lags the
   * presence records the rules have been handed.
   *
   * `urgent` (RULE-16: a fall, a help button): written in a transaction of its own at once, not behind the
   * batches this store is writing or has queued (a store whose writes all share one writer may ignore it).
   */
  appendEvents(
    records: EventRecord[],
    presence?: PresenceUpdate[],
    opts?: { urgent?: boolean },
  ): Promise<AppendOutcome[]>;
  updatePresence(updates: PresenceUpdate[]): Promise<void>;
}
