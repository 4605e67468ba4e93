/**
 * The storage contract, split by role. SQLite (embedded default, sqlite.ts) and PostgreSQL (postgres.ts)
 * implement it and both must pass test/store.contract.ts. Methods are units of work: each one is atomic.
 */
import type { GatewayStore, LoggedEvent } from '../../gateway/ports.ts';
import type { DeviceKind } from '../../gateway/protocol.ts';
import type { Alert, AlertState, HistoryEntry, Severity } from '../alerts/model.ts';
import type { DeviceInput, DeviceState, Grid, Household, Staff, StaffRole } from '../registry.ts';
import type { Room } from '../rooms.ts';
import type { RosterEntry, RosterOverride } from '../routing/roster.ts';

export interface StaffRecord extends Staff {
  passwordHash: string;
}

export interface NewStaff {
  id: string;
  name: string;
  phone: string;
  roles: StaffRole[];
  gridIds: string[];
  username: string;
  passwordHash: string;
}

/** A household search as the store runs it: LIKE patterns (escape character `\`), one per term. */
export interface HouseholdSearch {
  /** `%term%` for address, id and names. */
  text: string[];
  /** `%digits%` per term, or null when the term has no digits (then it never matches a phone). */
  phone: (string | null)[];
}

/**
 * CONSOLE-04: the terms of a search box (whitespace apart, at most 5, each as typed: 张 13号楼, 301, 1380013) as LIKE patterns; null when nothing is left to search for.
 */
export function householdSearch(query: string): HouseholdSearch | null {
  const terms = query.trim().split(/\s+/u).filter(Boolean).slice(0, 5);
  if (terms.length === 0) return null;
  const like = (t: string) => `%${t.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  return {
    text: terms.map(like),
    phone: terms.map((t) => {
      const digits = t.replace(/[\s+()-]/g, '');
      return /^\d+$/.test(digits) ? like(digits) : null;
    }),
  };
}

/** Which alerts to list: every filter given must hold (each is a query, never a filter in memory). */
export interface AlertFilter {
  state?: 'open' | AlertState;
  /** Any of these states. */
  states?: AlertState[];
  gridIds?: string[];
  /** Outside these grids. */
  notGridIds?: string[];
  householdId?: string;
  rule?: string;
  severities?: Severity[];
  /** Raised before this instant (exclusive). */
  raisedBefore?: number;
  /** Assigned to this staff member, or one of the responders it went to. */
  involving?: string;
  /** Nobody accepted it yet. */
  notAccepted?: boolean;
  limit?: number;
}

/** Open alerts counted by state and severity (metrics, today's figures). */
export interface OpenAlertCount {
  state: AlertState;
  severity: Severity;
  count: number;
}

export interface Session {
  tokenHash: string;
  staffId: string;
  createdAt: number;
  expiresAt: number;
}

export interface AuditEntry {
  at: number;
  actor: string;
  action: string;
  target: string;
  detail: Record<string, unknown>;
}

export interface AuditFilter {
  actor?: string;
  target?: string;
  /** Exact action, or a prefix ending in '.' (e.g. "alert.") */
  action?: string;
  /** Inclusive lower and exclusive upper bound on `at`. */
  from?: number;
  to?: number;
  limit: number;
}

export interface StaffPatch {
  name?: string;
  phone?: string;
  roles?: StaffRole[];
  gridIds?: string[];
  disabled?: boolean;
  passwordHash?: string;
}

export interface DeliveryRecord {
  alertId: string;
  staffId: string | null;
  channel: string;
  at: number;
  ok: boolean;
  error: string | null;
  /** The channel's own receipt that the message reached the person's device (not a send attempt). */
  delivered?: boolean;
}

/** What one step of the rules pipeline commits atomically: new and changed alerts and the log cursor. */
export interface RuleCommit {
  cursor: { name: string; seq: number };
  /**
   * DATA-08: each touched home's state, and its `learned` part only when it changed since last stored (absent:
   * the stored one stays).
   */
  homeStates: { homeId: string; state: unknown; learned?: unknown }[];
  raised: Alert[];
  updated: Alert[];
  history: HistoryEntry[];
  /** CLU-03: commit only while this lease stands (separate dispatcher processes). */
  fence?: Fence;
}

/**
 * CLU-03: the lease a dispatcher instance holds on a community. A write that carries it commits only if
 * the lease still stands in the database with this epoch and holder (checked in the write's transaction).
 */
export interface Fence {
  community: string;
  holder: string;
  epoch: number;
}

/** The write carried a lease that no longer stands: another instance works for the community now. */
export class FencedError extends Error {
  constructor(readonly fence: Fence) {
    super(`lease on community ${fence.community} (epoch ${fence.epoch}) no longer held`);
  }
}

export class StaleWriteError extends Error {
  constructor(readonly alertId: string) {
    super(`alert ${alertId} was changed by someone else`);
  }
}

/**
 * The event log (SPEC §3, §9): the gateway's appends (GatewayStore, with device presence), the rules'
 * reading by cursor, the household timeline. Every event committed is handed to a reader following its
 * cursor, whatever order concurrent appends committed in (test/store.contract.ts).
 */
export interface EventLogStore extends GatewayStore {
  readEvents(afterSeq: number, limit: number): Promise<LoggedEvent[]>;
  countEvents(status?: 'accepted' | 'rejected'): Promise<number>;
  getCursor(name: string): Promise<number>;
  /**
   * One home's accepted events whose device time is in [from, to), oldest first, at most `limit`
   * (the household file's activity timeline, SPEC §8). `types` narrows to these event types.
   */
  listHomeEvents(
    homeId: string,
    range: { from: number; to: number; types?: string[] },
    limit: number,
  ): Promise<LoggedEvent[]>;
  /** A store whose household index is kept up apart from the log (SQLite): how far behind it is. */
  homeIndexHealth?(): { lag: number; failures: number };
  /**
   * Every home's rules state, or with `page` at most `limit` of them after the home id `after` (null: from the
   * first), in home id order.
   */
  loadHomeStates(page?: { after: string | null; limit: number }): Promise<Map<string, StoredHomeState>>;
  /** One home's rules state as last committed, or null (the learned baseline view). */
  getHomeState(homeId: string): Promise<StoredHomeState | null>;
}

/**
 * DATA-08: a home's rules state as stored: the part every event rewrites, and the part written only when it
 * changed (`learned`: null when never written apart, as in a state stored before it was).
 */
export interface StoredHomeState {
  state: unknown;
  learned: unknown | null;
}

/**
 * Alerts and their change feed (SPEC §5, §6): one open alert per (household, rule), optimistic writes,
 * and a change sequence that a live catch-up reader follows without passing over a change.
 */
export interface AlertStore {
  commitRules(c: RuleCommit): Promise<void>;
  /**
   * Writes `alert` if its stored version is `alert.version - 1`; otherwise throws StaleWriteError.
   * Assigns (and sets on the object) the next global `changeSeq`, as commitRules does.
   */
  /** `fence` (CLU-03): save only while this lease stands (escalation on separate dispatcher processes). */
  saveAlert(alert: Alert, history: HistoryEntry[], fence?: Fence): Promise<void>;
  getAlert(id: string): Promise<Alert | null>;
  listAlerts(filter: AlertFilter): Promise<Alert[]>;
  /** Open alerts, optionally of these grids, counted by state and severity. */
  countOpenAlerts(gridIds?: string[]): Promise<OpenAlertCount[]>;
  findOpenAlert(householdId: string, rule: string): Promise<Alert | null>;
  alertHistory(alertId: string): Promise<HistoryEntry[]>;
  /** Open alerts with a pending escalation step, for re-arming timers at start. */
  listPendingEscalations(): Promise<Alert[]>;
  currentChangeSeq(): Promise<number>;
  /** Alerts raised in [from, to), oldest first, optionally only of these grids (the SLA report, SPEC §8). */
  listAlertsRaisedBetween(from: number, to: number, gridIds?: string[]): Promise<Alert[]>;
  alertChangesSince(changeSeq: number, limit: number): Promise<Alert[]>;
}

/** The household file and the duty roster (SPEC §4): grids, households, staff, devices, roster. */
export interface RegistryStore {
  upsertGrid(grid: Grid): Promise<void>;
  listGrids(): Promise<Grid[]>;
  getGrid(id: string): Promise<Grid | null>;
  upsertHousehold(h: Household): Promise<void>;
  getHousehold(id: string): Promise<Household | null>;
  /** The households of these ids that exist, retired ones included (as `getHousehold`), in one query. */
  getHouseholds(ids: readonly string[]): Promise<Household[]>;
  listHouseholds(filter?: { gridIds?: string[] }): Promise<Household[]>;
  /**
   * CONSOLE-04: households of these grids (all when absent) that match every term of the search
   * (householdSearch): each term is part of the address, the id, a resident's name, or (digits only) a
   * resident's or a contact's phone. A query in the database, never a scan in memory; ordered by id.
   */
  searchHouseholds(
    search: HouseholdSearch,
    filter: { gridIds?: string[]; limit: number },
  ): Promise<Household[]>;
  createStaff(s: NewStaff): Promise<void>;
  getStaff(id: string): Promise<StaffRecord | null>;
  getStaffByUsername(username: string): Promise<StaffRecord | null>;
  listStaff(): Promise<Staff[]>;
  /** Changes a staff member's profile, roles, grids or disabled flag; false when there is no such staff. */
  updateStaff(id: string, patch: StaffPatch): Promise<boolean>;
  createDevice(d: DeviceInput & { secretHash: string; createdAt: number }): Promise<void>;
  getDeviceState(id: string): Promise<DeviceState | null>;
  setDeviceDisabled(id: string, disabled: boolean): Promise<boolean>;
  /** Moves a device to a room of the vocabulary (clears the unmapped text); false when there is no such device. */
  setDeviceRoom(id: string, room: Room): Promise<boolean>;
  /** Replaces a device's secret hash (rotation, SPEC §3); false when there is no such device. */
  rotateDeviceSecret(id: string, secretHash: string): Promise<boolean>;
  /** A device's rejected messages counted by reason key, for device health (SPEC §3). */
  deviceRejections(id: string): Promise<Record<string, number>>;
  /** Devices in force (not retired), of one home or of several (one query), ordered by id. */
  listDevices(filter?: { homeId?: string; homeIds?: readonly string[] }): Promise<DeviceState[]>;
  /** Devices across households by health, with their grid and address, answered by the database. */
  queryDevices(q: DeviceQuery): Promise<DeviceRow[]>;
  /** The device health figures of the households in scope (enabled devices). */
  countDeviceHealth(q: Pick<DeviceQuery, 'gridIds' | 'lowBattery'>): Promise<DeviceHealthCounts>;
  setRoster(gridId: string, entries: RosterEntry[]): Promise<void>;
  listRoster(gridId?: string): Promise<RosterEntry[]>;
  addOverride(o: RosterOverride): Promise<void>;
  listOverrides(gridId?: string): Promise<RosterOverride[]>;
  /** Removes one override; returns it, or null when there was none. */
  deleteOverride(id: string): Promise<RosterOverride | null>;
  /** Changes a device's registered kind (SPEC §3); false when there is no such device. */
  setDeviceKind(id: string, kind: DeviceKind): Promise<boolean>;
  /**
   * DATA-04: retires a record: it leaves every list (and so routing, rules and exports) but `get…` still
   * reads it for the alerts and audit entries that name it. Staff and devices are disabled with it (no
   * login, CONNACK 5); a household's devices are retired with it. False when there is no such live record.
   */
  retire(kind: RetiredKind, id: string, at: number): Promise<boolean>;
  /** When a record was retired; null when it is live or unknown. */
  retiredAt(kind: RetiredKind, id: string): Promise<number | null>;
}

export type RetiredKind = 'grid' | 'household' | 'staff' | 'device';
/** The table of each retirable kind (a closed list: never interpolate anything else into SQL). */
export const RETIRED_TABLE: Record<RetiredKind, string> = {
  grid: 'grids',
  household: 'households',
  staff: 'staff',
  device: 'devices',
};

/** Login sessions, notification deliveries (SPEC §7) and the audit log (SPEC §8), and settings. */
export interface OperationsStore {
  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;
  recordDelivery(d: DeliveryRecord): Promise<void>;
  listDeliveries(alertId: string): Promise<DeliveryRecord[]>;
  /** Delivery attempts at or after `since`, oldest first (channel health on the dispatch screen, SPEC §7). */
  listDeliveriesSince(since: number, limit: number): Promise<DeliveryRecord[]>;
  createSession(s: Session): Promise<void>;
  getSession(tokenHash: string): Promise<Session | null>;
  deleteSession(tokenHash: string): Promise<void>;
  /** Ends every session of one staff member (disabled, password changed or reset); returns how many. */
  deleteStaffSessions(staffId: string): Promise<number>;
  audit(e: AuditEntry): Promise<void>;
  listAudit(limit: number): Promise<AuditEntry[]>;
  /** Audit entries matching every given filter, newest first (SPEC §8: admins query who did what, when). */
  queryAudit(filter: AuditFilter): Promise<AuditEntry[]>;
}

/* Devices across households as queries (SPEC §3 device health; the SQL is in device-queries.ts). */

/** The device list's filters: what an admin looks for across households. */
export type DeviceFilter = 'offline' | 'low_battery' | 'rejecting' | 'never_seen' | 'disabled';
/**
 * A filter, or what the dispatch screen lists: `problems` (offline, low battery or rejecting messages,
 * enabled devices only, the worst first) and `unmapped_room` (a room the vocabulary upgrade could not map).
 */
export type DeviceSelection = DeviceFilter | 'problems' | 'unmapped_room';

export interface DeviceQuery {
  /** The grids whose households' devices are seen; null: every grid. */
  gridIds: string[] | null;
  /** Narrowed to one grid. */
  grid?: string;
  /** Narrowed to one household. */
  homeId?: string;
  select?: DeviceSelection;
  /** Battery percentage at or below which a device counts as low. */
  lowBattery: number;
  limit: number;
}

export interface DeviceRow extends DeviceState {
  gridId: string;
  address: { building: string; unit: string; room: string };
}

export interface DeviceHealthCounts {
  /** Enabled devices in scope; the other counts are among them. */
  total: number;
  online: number;
  offline: number;
  lowBattery: number;
  rejecting: number;
}

/**
 * The whole storage contract, the ports by role together: what one backend (SQLite or PostgreSQL)
 * provides. Domain rules that are not storage live outside every backend: the SPEC §3 duplicate rule
 * (gateway/duplicates.ts) and which alert states are open (alerts/model.ts OPEN_STATES).
 */
export interface Store extends EventLogStore, AlertStore, RegistryStore, OperationsStore {
  readonly dialect: 'sqlite' | 'postgres';
  /** Applies the migrations not applied yet (migrations.ts: one logical list, per-backend steps). */
  migrate(): Promise<number>;
  /** Whether the database answers, and if not why (/readyz). Absent: an embedded file that always does. */
  health?(): Promise<{ ok: true } | { ok: false; reason: string }>;
  close(): Promise<void>;
}
