/**
 * The typed event map through which dispatcher modules talk (Zigbee2MQTT's eventBus, typed). Emitting is
 * synchronous; listeners must not throw (the bus logs and swallows so one listener cannot stop another).
 */

import type { LoggedEvent } from '../gateway/ports.ts';
import type { Logger } from '../kernel/log.ts';
import type { Alert } from './alerts/model.ts';
import type { ChannelHealth } from './notify/notifier.ts';
import type { DutyGapReport, HandoverReport } from './routing/duty-watch.ts';
import type { SystemHealthReport } from './system-health.ts';

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
