/**
 * The API and live-event types the console reads. The console imports this file (types only) and nothing
 * else of the dispatcher.
 *
 * Dispatch endpoints (bearer token or session cookie; 401 without, 403 for a role that may not):
 *   GET  /api/alerts?state=open&grid=        AlertList (responders: their grids + alerts assigned to them)
 *   GET  /api/alerts/{id}                    AlertDetail (history + every delivery attempt)
 *   POST /api/alerts/{id}/{action}           AlertActionName; 409 {error:'invalid_transition', state}
 *   POST /api/incidents                      {householdId, category, severity?, note, caller?} → IncidentResult:
 *                                            201 raised, 200 added to the open one (desks; ALERT-03)
 *   GET  /api/search/households?q=           HouseholdSearchResult (whoever reads household files; CONSOLE-04)
 *   GET  /api/maintenance                    MaintenanceQueue (technical alerts, due next working day)
 *   GET  /api/notify/health                  {channels: ChannelHealth[]} (dispatch roles)
 *   GET  /api/system/health                  SystemHealthReport (dispatch roles): disk, event log, telemetry, logins
 *   GET  /api/duty                           {duty: DutyView[]} who is on duty now per grid
 *   GET  /api/duty/gaps?phase=upcoming|now   DutyGapReport (dispatch roles)
 *   GET  /api/duty/handover                  HandoverReport (responders: their grids)
 *   GET  /api/households/{id}/coverage?at=   CoverageView: who covers this household now, in order
 *   POST /api/households/{id}/away           {until: epoch ms | RFC 3339, reason}; DELETE clears it (admin)
 *   PATCH /api/staff/{id}                    {name?, phone?, roles?, gridIds?, disabled?, password?} (admin)
 *   GET  /api/devices?filter=&grid=&household=&limit=   DeviceListView (`more` beyond limit, 2,000 by default)
 *   PATCH /api/devices/{id} {room?, kind?} (admin)
 *   POST /api/{grids|households|staff|devices}/{id}/retire   soft delete, history kept (admin); 409 when
 *                                            a grid still has households or a household open alerts
 *   GET  /api/audit?actor=&target=&action=&from=&to=&limit=   {entries: AuditEntry[]} newest first (admin);
 *                                            `action` ending in '.' is a prefix ("alert.", "registry.")
 *   GET  /api/registry/export · /api/registry/export/{kind}.csv · POST /api/registry/import[/{kind}.csv]
 *                                            see ImportResult / ImportProblem (admin)
 *   GET  /api/roster?grid= · POST /api/roster · POST /api/roster/overrides
 *   GET  /api/roster/week?grid=&at=          RosterWeekView: the week grid, as routing reads it
 *   DELETE /api/roster/overrides/{id}        {deleted: RosterOverride} (admin); 404 when there is none
 *   POST /api/auth/login · POST /api/auth/logout · GET /api/session   LoginResponse · SessionInfo
 *   GET  /api/households/{id}/timeline?from=&to=[&heartbeats=true]     Timeline (7 days by default)
 *   GET  /api/reports/sla?from=&to=&grid=[&format=csv] · /api/reports/today · /api/reports/devices
 *                                            SlaReport · TodayFigures · DeviceHealth
 * Live (socket.io, same token in `auth.token` or the cookie): ServerToClientEvents below; after a
 * reconnect emit `catchup(lastChangeSeq)` and apply the `alert` events that follow, then the ack.
 */
import type { Alert, HistoryEntry, RuleId } from '../alerts/model.ts';
import type { DeviceState, Grid, Staff } from '../registry.ts';
import type { WeekCell } from '../routing/roster.ts';
import type { ShiftInstance } from '../routing/shifts.ts';

export type { Permission } from '../access.ts';
export {
  type AlertSource,
  type AlertState,
  type Outcome,
  PHONE_CATEGORIES,
  type PhoneCategory,
  RULES,
  type RuleId,
  SEVERITY_OF,
  type Severity,
} from '../alerts/model.ts';
export type { CommunityPolicy } from '../alerts/policies.ts';
export type { EscalationPolicy, PolicyStep, StepKind } from '../alerts/policy.ts';
export type { SlaReport, SlaRow } from '../reports/sla.ts';
export { ROOM_LABELS, ROOMS, type Room } from '../rooms.ts';

import type { Texts } from '../words.ts';

export type { RosterEntry, RosterOverride } from '../routing/roster.ts';
export {
  hasResponderRole,
  ID_PATTERN,
  isOpen,
  OPEN_STATES,
  PERSON_OUTCOMES,
  type PersonOutcome,
  RESPONDER_ROLES,
  STAFF_ROLES,
} from '../terms.ts';
export type { Alert, DeviceState, Grid, HistoryEntry, ShiftInstance, Staff, WeekCell };

/** GET /api/session: who is logged in, what they may do, and the community's zone and shift boundaries. */
export interface SessionInfo {
  staff: Staff;
  permissions: import('../access.ts').Permission[];
  zone: string;
  shifts: { dayStart: string; nightStart: string };
  now: number;
  /** How fast the service clock runs against wall time (SIM-03; 1 unless accelerated). */
  clockRate: number;
  /** The port devices connect to (MQTT_PORT as listening), for the admin page's provisioning example. */
  mqttPort: number;
}

/** A household as the household file shows it (GET /api/households[/{id}]). */
export interface HouseholdFile {
  id: string;
  gridId: string;
  address: { building: string; unit: string; room: string };
  residents: { name: string; age?: number; phone?: string; healthNotes?: string }[];
  contacts: { name: string; relation?: string; phone: string; updates?: boolean }[];
  /** Only with `?include=accessNotes` (audited, SPEC §11). */
  accessNotes?: string;
  hasAccessNotes?: boolean;
  routine: {
    nightStart: string;
    nightEnd: string;
    wakeTime: string;
    /** Per-rule threshold overrides in minutes (RULE-14). */
    thresholds?: Partial<Record<RuleId, number>>;
    learnBaseline?: boolean;
  };
  awayUntil: number | null;
  awayReason: string | null;
}

/** One logged home event on the activity timeline. */
export interface TimelineEvent {
  /** Position in the durable event log. */
  seq: number;
  /** The device's own `seq` from its message (SPEC §3), null when it sent none: "did my message N arrive?" */
  deviceSeq: number | null;
  /** Event time (the device's `ts`, or the receive time when flagged `clock_skew`). */
  ts: number;
  /** When the gateway received it. */
  receivedAt: number;
  flags: string[];
  deviceId: string;
  type: string;
  state: string | null;
  room: string | null;
  door: string | null;
  /** Heartbeats only (included with `heartbeats=true`). */
  battery?: number;
  rssi?: number;
  fw?: string;
}

/** GET /api/households/{id}/timeline */
export interface Timeline {
  householdId: string;
  from: number;
  to: number;
  events: TimelineEvent[];
  truncated: boolean;
  alerts: Pick<Alert, 'id' | 'rule' | 'severity' | 'state' | 'raisedAt'>[];
}

/** GET /api/reports/today: the dispatch screen's figures for the community's calendar day. */
export interface TodayFigures {
  from: number;
  now: number;
  open: number;
  openSafety: number;
  raised: number;
  acceptedWithin3: number;
  /** acceptedWithin3 / acceptDecided: over the alerts accepted or past their 3-minute mark. */
  acceptedShare: number | null;
  acceptDecided: number;
  onSiteWithin15: number;
  /** onSiteWithin15 / onSiteDecided: over the alerts reached or past their 15-minute mark. */
  onSiteShare: number | null;
  onSiteDecided: number;
  breaches: number;
}

/**
 * GET /api/devices?filter=offline|low_battery|rejecting|never_seen|disabled&grid=  (registry readers):
 * every live device across the households this person may see, with its grid and address.
 */
export interface DeviceListView {
  devices: (DeviceState & { gridId: string; address: HouseholdFile['address']; lowBattery: boolean })[];
  /** More devices match than `limit` (default 2,000): narrow by grid or filter to see them. */
  more: boolean;
}
export type { DeviceFilter } from '../store/store.ts';
/** What can be retired (POST /api/{grids|households|staff|devices}/{id}/retire, admin; DATA-04). */
export type RetirableKind = 'grids' | 'households' | 'staff' | 'devices';

/** GET /api/reports/devices: offline, low battery, rejecting messages. */
export interface DeviceHealth {
  total: number;
  online: number;
  offline: number;
  lowBattery: number;
  rejecting: number;
  problems: (DeviceState & { gridId: string; lowBattery: boolean })[];
  /**
   * Devices whose room the upgrade to the SPEC §3 vocabulary could not map (their typed text in `roomText`):
   * they count as `other`, so no room rule sees them, until a person chooses the room.
   */
  unmappedRooms: (DeviceState & { gridId: string })[];
}

export interface LoginResponse {
  token: string;
  expiresAt: number;
  staff: Staff;
}

export interface AlertList {
  alerts: Alert[];
  /** The change sequence this snapshot includes; live events with a higher one are newer. */
  changeSeq: number;
  /** The service clock at this answer, and how fast it runs against wall time (SIM-03): pages follow it. */
  now: number;
  rate: number;
}

export interface DutyView {
  gridId: string;
  gridName: string;
  shift: 'day' | 'night';
  staff: { id: string; name: string }[];
}

/** GET /api/search/households: one household found (CONSOLE-04), without access notes. */
export interface HouseholdHit {
  id: string;
  gridId: string;
  gridName: string;
  address: { building: string; unit: string; room: string };
  residents: { name: string; phone: string | null }[];
  awayUntil: number | null;
  awayReason: string | null;
}

export interface HouseholdSearchResult {
  households: HouseholdHit[];
  /** More matched than were returned (50): the dispatcher types more. */
  truncated: boolean;
}

/** POST /api/incidents (ALERT-03): the alert raised, or the open one the call was added to. */
export interface IncidentResult {
  alert: Alert;
  attached: boolean;
}

export interface HouseholdSummary {
  id: string;
  gridId: string;
  address: string;
}

/** Which dispatcher instance works for which community (GET /api/system/health → `cluster`, CLU-08). */
export type { ClusterView } from '../bus.ts';
/** Notification channel health (GET /api/notify/health, live `channelHealth`). */
export type { ChannelHealth } from '../notify/notifier.ts';
export type { Household } from '../registry.ts';
/** Unstaffed grids before or during a shift (GET /api/duty/gaps, live `dutyGap`). */
export type { DutyGapReport, HandoverItem, HandoverReport } from '../routing/duty-watch.ts';
/** A delivery attempt as recorded (GET /api/alerts/{id} → `deliveries`). */
/** One audit line (GET /api/audit). */
export type { AuditEntry, DeliveryRecord } from '../store/store.ts';
/** The edge's faults (GET /api/system/health, live `systemHealth`). */
export type { SystemHealthReport, SystemWarning, SystemWarningKind } from '../system-health.ts';

/** GET /api/alerts/{id} */
export interface AlertDetail {
  alert: Alert;
  history: HistoryEntry[];
  deliveries: import('../store/store.ts').DeliveryRecord[];
}

/**
 * POST /api/alerts/{id}/{action}. Bodies: `accept`, `en-route`, `on-site`: `{}`; `resolve`:
 * `{outcome, note}`; `cancel`: `{reason}`; `assign`: `{staffId}` (dispatchers; the new assignee is
 * notified); `note`: `{text}`; `call`: `{to, result}` (a recorded phone call). Responders may accept,
 * en-route, on-site, resolve, note and call on alerts of their grids; dispatchers and admins all actions.
 * 200 `{alert}`; 409 `{error: 'invalid_transition', state}` when the state does not allow the action;
 * 403 `not_assignee` / `forbidden`; 404 when the alert is not visible to the caller.
 */
export type AlertActionName =
  | 'accept'
  | 'en-route'
  | 'on-site'
  | 'resolve'
  | 'cancel'
  | 'assign'
  | 'note'
  | 'call';

/** GET /api/households/{id}/coverage: who covers this household now, in order (first = primary). */
export interface CoverageView {
  householdId: string;
  gridId: string;
  shift: 'day' | 'night';
  shiftDate: string;
  startsAt: number;
  endsAt: number;
  staff: { id: string; name: string; phone: string; roles: string[] }[];
}

/**
 * GET /api/roster/week?grid=&at=: Monday to Sunday around the shift in force at `at` (default now), each
 * shift with its rotation, overrides and who is on duty (the same function answers /coverage).
 */
export interface RosterWeekView {
  gridId: string;
  at: number;
  running: ShiftInstance;
  days: { date: string; weekday: number; day: WeekCell; night: WeekCell }[];
}

/** GET /api/maintenance: open technical alerts, earliest due first (`alert.maintenanceDueAt`). */
export interface MaintenanceQueue {
  alerts: Alert[];
  now: number;
}

/**
 * Registry export/import. GET /api/registry/export (JSON, everything but passwords) and
 * GET /api/registry/export/{grids|households|staff|roster}.csv; POST /api/registry/import (the JSON
 * shape; staff entries need `password` when new) and POST /api/registry/import/{kind}.csv (text/csv).
 * Import validates everything first and applies nothing when a row is bad: 400 with `errors`
 * (`{row, field, message}`); 200 `{imported: {grids, households, staff, roster}}`.
 */
export interface ImportResult {
  imported: {
    grids: number;
    households: number;
    staff: number;
    roster: number;
    devices: number;
    overrides: number;
  };
  /** The secrets of the devices this import created, shown this once (SPEC §3). */
  secrets: { id: string; secret: string }[];
}
export interface ImportProblem {
  /** 1-based data row (CSV) or `kind[index]` (JSON). */
  row: string;
  field: string;
  /** The problem in English, as the check said it (the field is in `field`), for scripts. */
  message: string;
  /** The problem in both languages, naming the field (WORDS-02). */
  text: Texts;
}

/** socket.io events, server to client. */
export interface ServerToClientEvents {
  /**
   * Sent once on connection: what this page follows live (dispatch roles: `communities`, null = all;
   * responders: `gridIds`). A snapshot from the API may hold more; the page keeps what it will be told about.
   */
  scope: (p: { communities: string[] | null; gridIds: string[] | null }) => void;
  /** An alert was raised or changed; `changeSeq` orders changes. */
  alert: (p: { alert: Alert; action: string }) => void;
  /** A notification for this staff member (responder page). */
  notification: (
    p: {
      alertId: string;
      /** The household and its address (building-unit-room), so the page can show where to go at once. */
      householdId: string;
      address: string;
      rule: Alert['rule'];
      /** Why this person is told: `notify_primary`, `notify_next`, `notify_all`, `assigned`, `sla_breach`. */
      reason: string;
      severity: string;
      explanation: Alert['explanation'];
    },
    ack: (received: true) => void,
  ) => void;
  /** A responder was reached on no channel at all for an alert (dispatch screen; NOTIFY-02). */
  responderUnreachable: (p: import('../bus.ts').BusEvents['responderUnreachable']) => void;
  /** A delivery channel failed (dispatch screen). */
  delivery: (p: { alertId: string; channel: string; ok: boolean; error: string | null }) => void;
  /** A notification channel started or stopped failing (dispatch screen; SPEC §7). */
  channelHealth: (p: import('../notify/notifier.ts').ChannelHealth) => void;
  /** The edge's faults changed or their figures moved (dispatch screen; SPEC §9, §12). */
  systemHealth: (p: import('../system-health.ts').SystemHealthReport) => void;
  /**
   * Grids with nobody on duty (dispatch screen; SPEC §4): `phase: 'upcoming'` before the shift starts
   * (DUTY_WARN_MINUTES, default 30), `'now'` when the shift started with the gap.
   */
  dutyGap: (p: import('../routing/duty-watch.ts').DutyGapReport) => void;
  /** A shift started: the open alerts it inherits, assignees kept (dispatch screen: all; responders: their grids). */
  handover: (p: import('../routing/duty-watch.ts').HandoverReport) => void;
  /**
   * A door opened at the household after the responder went en route (SPEC §6): to the assignee's pages
   * and the dispatch screen; the responder confirms with `POST /api/alerts/{id}/on-site`.
   */
  arrivalSuggested: (p: { alertId: string; householdId: string; doorAt: number; alert: Alert }) => void;
}

/** socket.io events, client to server. */
export interface ClientToServerEvents {
  /** Ask for every change after `changeSeq` (after a reconnect); answered through `alert` events then the ack. */
  catchup: (changeSeq: number, ack: (r: { changeSeq: number; count: number }) => void) => void;
}

/** GET /api/households/{id}/baseline: the learned routine (RULE-14); null until 14 days are learned. */
export interface RoutineBaseline {
  /** Whether the household opted in: the learned thresholds apply only then. */
  applied: boolean;
  days: number;
  /** Usual first motion of the day, local HH:MM. */
  usualUpBy: string | null;
  longestQuietMinutesByHour: number[];
  configured: { morningBy: string; inactivityMinutes: number };
  learned: { morningBy: string; inactivityMinutesByHour: number[] };
}

export { PHONE_CATEGORY_LABELS } from '../notify/texts.ts';
/** The one vocabulary (WORDS-01): shared by the console, the notices (SMS, push) and the API's errors. */
export * from '../words.ts';
