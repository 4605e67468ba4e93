/**
 * The API and live-event types the console reads. The console imports this file (types only) and nothing
 * else of the dispatcher.
 */
import type { Alert, HistoryEntry } from '../alerts/model.ts';
import type { DeviceState, Grid, Staff } from '../registry.ts';

export type { AlertState, Outcome, RuleId, Severity } from '../alerts/model.ts';
export type { Alert, DeviceState, Grid, HistoryEntry, Staff };

export interface LoginResponse {
  token: string;
  expiresAt: number;
  staff: Staff;
}

export interface AlertList {
  alerts: Alert[];
  /** The change sequence this snapshot includes; live events with a higher one are newer. */
  changeSeq: number;
  now: number;
}

export interface DutyView {
  gridId: string;
  gridName: string;
  shift: 'day' | 'night';
  staff: { id: string; name: string }[];
}

export interface HouseholdSummary {
  id: string;
  gridId: string;
  address: string;
}

/** socket.io events, server to client. */
export interface ServerToClientEvents {
  /** An alert was raised or changed; `changeSeq` orders changes. */
  alert: (p: { alert: Alert; action: string }) => void;
  /** A notification for this staff member (responder page). */
  notification: (p: {
    alertId: string;
    reason: string;
    severity: string;
    explanation: Alert['explanation'];
  }) => void;
  /** A delivery channel failed (dispatch screen). */
  delivery: (p: { alertId: string; channel: string; ok: boolean; error: string | null }) => void;
}

/** socket.io events, client to server. */
export interface ClientToServerEvents {
  /** Ask for every change after `changeSeq` (after a reconnect); answered through `alert` events then the ack. */
  catchup: (changeSeq: number, ack: (r: { changeSeq: number; count: number }) => void) => void;
}
