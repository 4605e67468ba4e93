/** The console's view of the API and the live channel (types from dispatcher/api/types.ts). */
import { io, type Socket } from 'socket.io-client';
import type {
  Alert,
  AlertList,
  ClientToServerEvents,
  DeviceState,
  DutyView,
  Grid,
  HistoryEntry,
  LoginResponse,
  ServerToClientEvents,
  Staff,
} from '../../dispatcher/api/types.ts';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Called when any request answers 401: the session ended (expired or logged out elsewhere). */
let onUnauthenticated: (() => void) | null = null;
export function whenUnauthenticated(fn: () => void): void {
  onUnauthenticated = fn;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = (await res.json().catch(() => ({}))) as { message?: string };
  if (res.status === 401 && !path.startsWith('/api/auth/')) onUnauthenticated?.();
  if (!res.ok) throw new ApiError(res.status, data.message ?? `HTTP ${res.status}`);
  return data as T;
}

// Shapes of the routes the console owns (session, reports, timeline) and of the household file. They
// belong in dispatcher/api/types.ts with the other API types; they are here until that file takes them.

export type Permission =
  | 'alerts.read.all'
  | 'alerts.act.all'
  | 'alerts.respond'
  | 'households.read.all'
  | 'households.read.own'
  | 'households.sensitive'
  | 'registry.write'
  | 'registry.read'
  | 'reports.read'
  | 'audit.read';

export interface SessionInfo {
  staff: Staff;
  permissions: Permission[];
  zone: string;
  shifts: { dayStart: string; nightStart: string };
  now: number;
}

export interface Address {
  building: string;
  unit: string;
  room: string;
}

export interface HouseholdFile {
  id: string;
  gridId: string;
  address: Address;
  residents: { name: string; age?: number; phone?: string; healthNotes?: string }[];
  contacts: { name: string; relation?: string; phone: string }[];
  accessNotes?: string;
  hasAccessNotes?: boolean;
  routine: { nightStart: string; nightEnd: string; wakeTime: string };
  awayUntil: number | null;
  awayReason: string | null;
}

export interface TimelineEvent {
  seq: number;
  ts: number;
  deviceId: string;
  type: string;
  state: string | null;
  room: string | null;
  door: string | null;
}

export interface Timeline {
  householdId: string;
  from: number;
  to: number;
  events: TimelineEvent[];
  truncated: boolean;
  alerts: Pick<Alert, 'id' | 'rule' | 'severity' | 'state' | 'raisedAt'>[];
}

export interface SlaRow {
  key: string;
  label: string;
  alerts: number;
  acceptedWithin3: number;
  acceptedShare: number | null;
  onSiteWithin15: number;
  onSiteShare: number | null;
  acceptMedianMs: number | null;
  acceptP90Ms: number | null;
  onSiteMedianMs: number | null;
  onSiteP90Ms: number | null;
  breaches: number;
}

export interface SlaReport {
  from: number;
  to: number;
  zone: string;
  total: SlaRow;
  byGrid: SlaRow[];
  byShift: SlaRow[];
  byResponder: SlaRow[];
  byWeek: SlaRow[];
  falseAlarmsByRule: { key: string; resolved: number; falseAlarms: number; rate: number | null }[];
  falseAlarmsByDevice: { key: string; resolved: number; falseAlarms: number; rate: number | null }[];
  deviceUptime: { gridId: string; label: string; devices: number; uptime: number | null }[];
}

export interface TodayFigures {
  from: number;
  now: number;
  open: number;
  raised: number;
  acceptedWithin3: number;
  acceptedShare: number | null;
  onSiteWithin15: number;
  onSiteShare: number | null;
  breaches: number;
}

export interface DeviceHealth {
  total: number;
  online: number;
  offline: number;
  lowBattery: number;
  rejecting: number;
  problems: (DeviceState & { gridId: string; lowBattery: boolean })[];
}

export interface RosterEntry {
  gridId: string;
  shift: 'day' | 'night';
  weekdays: number[];
  staffIds: string[];
}

export interface RosterOverride {
  id: string;
  gridId: string;
  date: string;
  shift: 'day' | 'night';
  kind: 'leave' | 'cover' | 'swap';
  staffId: string | null;
  replacementId: string | null;
}

const q = (params: Record<string, string | number | undefined>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') s.set(k, String(v));
  const text = s.toString();
  return text ? `?${text}` : '';
};

export const api = {
  login: (username: string, password: string) =>
    call<LoginResponse>('POST', '/api/auth/login', { username, password }),
  logout: () => call<{ ok: true }>('POST', '/api/auth/logout', {}),
  session: () => call<SessionInfo>('GET', '/api/session'),
  alerts: (state = 'open') => call<AlertList>('GET', `/api/alerts?state=${state}`),
  alert: (id: string) =>
    call<{ alert: Alert; history: HistoryEntry[]; deliveries: unknown[] }>(
      'GET',
      `/api/alerts/${encodeURIComponent(id)}`,
    ),
  duty: () => call<{ duty: DutyView[]; now: number }>('GET', '/api/duty'),
  grids: () => call<{ grids: Grid[] }>('GET', '/api/grids'),
  saveGrid: (g: Grid) => call<{ grid: Grid }>('POST', '/api/grids', g),
  households: () => call<{ households: HouseholdFile[] }>('GET', '/api/households'),
  household: (id: string, withAccessNotes = false) =>
    call<{ household: HouseholdFile; devices: DeviceState[]; alerts: Alert[] }>(
      'GET',
      `/api/households/${encodeURIComponent(id)}${withAccessNotes ? '?include=accessNotes' : ''}`,
    ),
  saveHousehold: (h: unknown) => call<{ household: HouseholdFile }>('POST', '/api/households', h),
  timeline: (id: string, from?: number, to?: number) =>
    call<Timeline>('GET', `/api/households/${encodeURIComponent(id)}/timeline${q({ from, to })}`),
  staff: () => call<{ staff: Staff[] }>('GET', '/api/staff'),
  createStaff: (s: unknown) => call<{ staff: Staff }>('POST', '/api/staff', s),
  roster: (grid?: string) =>
    call<{ entries: RosterEntry[]; overrides: RosterOverride[] }>('GET', `/api/roster${q({ grid })}`),
  setRoster: (gridId: string, entries: Omit<RosterEntry, 'gridId'>[]) =>
    call<{ entries: RosterEntry[] }>('POST', '/api/roster', { gridId, entries }),
  addOverride: (o: Omit<RosterOverride, 'id'>) =>
    call<{ override: RosterOverride }>('POST', '/api/roster/overrides', o),
  provision: (d: { id: string; homeId: string; kind: string; room: string }) =>
    call<{ id: string; secret: string }>('POST', '/api/devices', d),
  today: () => call<TodayFigures>('GET', '/api/reports/today'),
  deviceHealth: () => call<DeviceHealth>('GET', '/api/reports/devices'),
  sla: (p: { from?: string; to?: string; grid?: string }) =>
    call<SlaReport>('GET', `/api/reports/sla${q(p)}`),
  slaCsvUrl: (p: { from?: string; to?: string; grid?: string }) =>
    `/api/reports/sla${q({ ...p, format: 'csv' })}`,
  act: (id: string, action: string, body: unknown = {}) =>
    call<{ alert: Alert }>('POST', `/api/alerts/${encodeURIComponent(id)}/${action}`, body),
};

export type LiveSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** The live channel, authenticated by the session cookie. */
export function connectLive(): LiveSocket {
  return io({ path: '/socket.io', transports: ['websocket', 'polling'], withCredentials: true });
}
