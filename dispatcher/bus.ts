/**
 * The typed event map through which dispatcher modules talk (Zigbee2MQTT's eventBus, typed). Emitting is
 * synchronous; listeners must not throw (the bus logs and swallows so one listener cannot stop another).
 */

import type { LoggedEvent } from '../gateway/ports.ts';
import type { Logger } from '../kernel/log.ts';
import type { Alert } from './alerts/model.ts';
import type { ShiftName } from './routing/shifts.ts';

// The bus owns its payload types: the modules that emit them import them from here, so the bus imports
// none of its emitters (no import cycle through it).

/** SPEC §7: a channel that keeps failing is shown on the dispatch screen. */
export interface ChannelHealth {
  channel: string;
  status: 'ok' | 'failing';
  /** Channel failures in a row (recipient-unreachable attempts do not count). */
  consecutiveFailures: number;
  attempts: number;
  failures: number;
  lastOkAt: number | null;
  lastFailureAt: number | null;
  lastError: string | null;
}

export interface DutyGapReport {
  /** `upcoming`: sent before the shift starts; `now`: the shift in force has the gap. */
  phase: 'upcoming' | 'now';
  shift: ShiftName;
  /** Local date the shift starts on (a night shift belongs to its evening). */
  date: string;
  startsAt: number;
  endsAt: number;
  grids: { gridId: string; gridName: string }[];
  /** When this report was computed. */
  at: number;
}

export interface HandoverItem {
  alertId: string;
  gridId: string;
  householdId: string;
  rule: Alert['rule'];
  severity: Alert['severity'];
  state: Alert['state'];
  raisedAt: number;
  onSiteDueAt: number | null;
  slaBreached: boolean;
  /** Kept across the shift change (SPEC §6). */
  assigneeId: string | null;
  /** Whether the assignee is on the incoming shift's roster for the grid. */
  assigneeOnDuty: boolean;
}

export interface HandoverReport {
  shift: ShiftName;
  date: string;
  startsAt: number;
  items: HandoverItem[];
  at: number;
}

export type SystemWarningKind =
  | 'disk_low'
  | 'disk_full'
  | 'event_log_failing'
  | 'telemetry_failing'
  | 'login_flood'
  /** CLU-04: Redis unreachable: live events stay on the dispatcher instance where they happen. */
  | 'live_relay_down';

export interface SystemWarning {
  kind: SystemWarningKind;
  /** When this warning started (service clock). */
  since: number;
  /** Plain figures for the screen: free bytes, the folder, the storage error, refusals per minute. */
  detail: Record<string, string | number>;
}

export interface DiskSpace {
  path: string;
  freeBytes: number;
  totalBytes: number;
  lowBytes: number;
}

/** GET /api/system/health and the live `systemHealth` event. */
export interface SystemHealthReport {
  ready: boolean;
  /** Why not ready (empty when ready). */
  reasons: string[];
  /** Working, but with less than everything (CLU-04: live events not crossing instances). */
  degraded: string[];
  warnings: SystemWarning[];
  disk: DiskSpace | null;
  now: number;
  /** CLU-08: separate dispatchers: which instance works for which community, as this instance last read it. */
  cluster?: ClusterView;
}

/** Who holds what among the dispatcher instances (CLU-08). */
export interface ClusterView {
  /** The instance that answered. */
  self: string;
  /** The live instances and the communities each holds (by its lease), by instance. */
  instances: { id: string; leases: string[] }[];
  /** Communities nobody holds now (between a release and the takeover, or after a crash until expiry). */
  free: string[];
}

export interface BusEvents {
  /** An alert was raised or changed; carries the stored state after the change. */
  alertChanged: { alert: Alert; action: string };
  /** Events the rules just processed, in log order (after their alerts were committed). */
  deviceEvents: { events: LoggedEvent[] };
  /** A delivery attempt on one channel. */
  delivery: {
    alertId: string;
    staffId: string | null;
    channel: string;
    ok: boolean;
    error: string | null;
    delivered?: boolean;
  };
  /** A notice reached a responder on no channel at all (NOTIFY-02): the dispatch room must know at once. */
  responderUnreachable: {
    alertId: string;
    gridId: string;
    staffId: string;
    at: number;
    reason: string;
    channels: { channel: string; error: string | null }[];
  };
  /** A notification channel started or stopped failing (SPEC §7). */
  channelHealth: ChannelHealth;
  /** Grids with nobody on duty, before a shift starts or while it runs (SPEC §4). */
  dutyGap: DutyGapReport;
  /** A shift started: the open alerts it inherits (SPEC §6). */
  handover: HandoverReport;
  /** A door opened at the household after the responder went en route (SPEC §6). */
  arrivalSuggested: { alert: Alert };
  /** The edge's faults changed or their figures moved (system-health.ts): disk, event log, telemetry, logins. */
  systemHealth: SystemHealthReport;
}

type Listener<K extends keyof BusEvents> = (payload: BusEvents[K]) => void;

export class Bus {
  private listeners: { [K in keyof BusEvents]?: Listener<K>[] } = {};

  constructor(private readonly log: Logger) {}

  on<K extends keyof BusEvents>(event: K, fn: Listener<K>): () => void {
    if (!this.listeners[event]) this.listeners[event] = [];
    const list = this.listeners[event] as Listener<K>[];
    list.push(fn);
    return () => {
      const i = list.indexOf(fn);
      if (i >= 0) list.splice(i, 1);
    };
  }

  emit<K extends keyof BusEvents>(event: K, payload: BusEvents[K]): void {
    for (const fn of (this.listeners[event] ?? []) as Listener<K>[]) {
      try {
        fn(payload);
      } catch (e) {
        this.log.error({ err: e, event }, 'bus listener failed');
      }
    }
  }
}
