/** The console's view of the API and the live channel (types from dispatcher/api/types.ts). */
import { io, type Socket } from 'socket.io-client';
import type {
  Alert,
  AlertList,
  AuditEntry,
  ChannelHealth,
  ClientToServerEvents,
  CommunityPolicy,
  DeliveryRecord,
  DeviceFilter,
  DeviceHealth,
  DeviceListView,
  DeviceState,
  DutyGapReport,
  DutyView,
  EscalationPolicy,
  Grid,
  HandoverReport,
  HistoryEntry,
  HouseholdFile,
  HouseholdSearchResult,
  ImportProblem,
  ImportResult,
  IncidentResult,
  LoginResponse,
  MaintenanceQueue,
  RetirableKind,
  Room,
  RosterEntry,
  RosterOverride,
  RosterWeekView,
  RoutineBaseline,
  ServerToClientEvents,
  SessionInfo,
  ShiftInstance,
  SlaReport,
  Staff,
  SystemHealthReport,
  Texts,
  Timeline,
  TodayFigures,
} from '../../dispatcher/api/types.ts';
import { getLang } from './i18n.ts';

export type {
  Permission,
  SlaRow,
  TimelineEvent,
} from '../../dispatcher/api/types.ts';
// The pages import these shapes from here; they are declared with the API in dispatcher/api/types.ts.
export type {
  DeviceHealth,
  HouseholdFile,
  RosterEntry,
  RosterOverride,
  RosterWeekView,
  RoutineBaseline,
  SessionInfo,
  ShiftInstance,
  SlaReport,
  Timeline,
  TodayFigures,
};
export type Address = HouseholdFile['address'];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A refused request's body: the English `message`, and `text` in both languages where the API has it. */
interface Refusal {
  message?: string;
  text?: Texts;
  errors?: ImportProblem[];
}
/** What a page shows of a refusal: the server's sentence in the reader's language (WORDS-02). */
const refusalText = (status: number, data: Refusal): string =>
  data.text?.[getLang()] ?? data.message ?? `HTTP ${status}`;

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
  const data = (await res.json().catch(() => ({}))) as Refusal;
  if (res.status === 401 && !path.startsWith('/api/auth/')) onUnauthenticated?.();
  if (!res.ok) throw new ImportError(res.status, refusalText(res.status, data), data);
  return data as T;
}

/** A CSV upload: the body goes as text/csv; a refused import answers 400 with every bad row. */
async function callText<T>(path: string, text: string): Promise<T> {
  const res = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'text/csv' },
    body: text,
  });
  const data = (await res.json().catch(() => ({}))) as Refusal;
  if (res.status === 401) onUnauthenticated?.();
  if (!res.ok) throw new ImportError(res.status, refusalText(res.status, data), data);
  return data as T;
}

/** A refused request; for an import, `errors` lists every bad row (nothing was applied). */
export class ImportError extends ApiError {
  readonly errors: ImportProblem[];
  constructor(status: number, message: string, data: unknown) {
    super(status, message);
    // Each row's problem in the reader's language (WORDS-02); `message` is the English form.
    const lang = getLang();
    this.errors = ((data as Refusal).errors ?? []).map((p) => ({
      ...p,
      message: p.text?.[lang] ?? p.message,
    }));
  }
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
    call<{ alert: Alert; history: HistoryEntry[]; deliveries: DeliveryRecord[] }>(
      'GET',
      `/api/alerts/${encodeURIComponent(id)}`,
    ),
  duty: () => call<{ duty: DutyView[]; now: number }>('GET', '/api/duty'),
  grids: () => call<{ grids: Grid[] }>('GET', '/api/grids'),
  escalationPolicies: () =>
    call<{ default: EscalationPolicy; communities: CommunityPolicy[] }>('GET', '/api/escalation-policies'),
  saveEscalationPolicy: (community: string, policy: EscalationPolicy) =>
    call<{ policy: CommunityPolicy }>(
      'PUT',
      `/api/escalation-policies/${encodeURIComponent(community)}`,
      policy,
    ),
  saveGrid: (g: Grid) => call<{ grid: Grid }>('POST', '/api/grids', g),
  households: () => call<{ households: HouseholdFile[] }>('GET', '/api/households'),
  household: (id: string, withAccessNotes = false) =>
    call<{ household: HouseholdFile; devices: DeviceState[]; alerts: Alert[] }>(
      'GET',
      `/api/households/${encodeURIComponent(id)}${withAccessNotes ? '?include=accessNotes' : ''}`,
    ),
  saveHousehold: (h: unknown) => call<{ household: HouseholdFile }>('POST', '/api/households', h),
  baseline: (id: string) =>
    call<{ baseline: RoutineBaseline | null }>('GET', `/api/households/${encodeURIComponent(id)}/baseline`),
  timeline: (id: string, from?: number, to?: number) =>
    call<Timeline>('GET', `/api/households/${encodeURIComponent(id)}/timeline${q({ from, to })}`),
  staff: () => call<{ staff: Staff[] }>('GET', '/api/staff'),
  createStaff: (s: unknown) => call<{ staff: Staff }>('POST', '/api/staff', s),
  roster: (grid?: string) =>
    call<{ entries: RosterEntry[]; overrides: RosterOverride[] }>('GET', `/api/roster${q({ grid })}`),
  rosterWeek: (grid: string, at?: number) =>
    call<RosterWeekView>('GET', `/api/roster/week${q({ grid, at })}`),
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
  dutyGaps: (phase: 'now' | 'upcoming') => call<DutyGapReport>('GET', `/api/duty/gaps?phase=${phase}`),
  handover: () => call<HandoverReport>('GET', '/api/duty/handover'),
  notifyHealth: () => call<{ channels: ChannelHealth[]; now: number }>('GET', '/api/notify/health'),
  systemHealth: () => call<SystemHealthReport>('GET', '/api/system/health'),
  maintenance: () => call<MaintenanceQueue>('GET', '/api/maintenance'),
  updateStaff: (
    id: string,
    patch: Partial<{
      name: string;
      phone: string;
      roles: string[];
      gridIds: string[];
      disabled: boolean;
      password: string;
    }>,
  ) => call<{ staff: Staff }>('PATCH', `/api/staff/${encodeURIComponent(id)}`, patch),
  setDeviceDisabled: (id: string, disabled: boolean) =>
    call<{ device: DeviceState }>(
      'POST',
      `/api/devices/${encodeURIComponent(id)}/${disabled ? 'disable' : 'enable'}`,
      {},
    ),
  setDeviceRoom: (id: string, room: Room) =>
    call<{ device: DeviceState }>('POST', `/api/devices/${encodeURIComponent(id)}/room`, { room }),
  devices: (p: { filter?: DeviceFilter; grid?: string; household?: string }) =>
    call<DeviceListView>('GET', `/api/devices${q(p)}`),
  updateDevice: (id: string, patch: { room?: Room; kind?: string }) =>
    call<{ device: DeviceState }>('PATCH', `/api/devices/${encodeURIComponent(id)}`, patch),
  /** DATA-04: soft delete; the history that names it stays. */
  retire: (kind: RetirableKind, id: string) =>
    call<{ retired: { id: string } }>('POST', `/api/${kind}/${encodeURIComponent(id)}/retire`, {}),
  setAway: (id: string, until: number, reason: string) =>
    call<unknown>('POST', `/api/households/${encodeURIComponent(id)}/away`, { until, reason }),
  clearAway: (id: string) => call<unknown>('DELETE', `/api/households/${encodeURIComponent(id)}/away`),
  audit: (p: {
    actor?: string;
    target?: string;
    action?: string;
    from?: number;
    to?: number;
    limit?: number;
  }) => call<{ entries: AuditEntry[] }>('GET', `/api/audit${q(p)}`),
  rotateSecret: (id: string) =>
    call<{ id: string; secret: string }>('POST', `/api/devices/${encodeURIComponent(id)}/rotate-secret`, {}),
  deleteOverride: (id: string) =>
    call<{ deleted: RosterOverride }>('DELETE', `/api/roster/overrides/${encodeURIComponent(id)}`),
  importJson: (body: unknown) => call<ImportResult>('POST', '/api/registry/import', body),
  importCsv: (kind: string, csv: string) => callText<ImportResult>(`/api/registry/import/${kind}.csv`, csv),
  resend: (id: string, staffId?: string) =>
    call<{ sentTo: string[] }>(
      'POST',
      `/api/alerts/${encodeURIComponent(id)}/resend`,
      staffId ? { staffId } : {},
    ),
  pushKey: () => call<{ publicKey: string }>('GET', '/api/push/key'),
  pushSubscribe: (sub: PushSubscriptionJSON, lang: string) =>
    call<{ subscribed: true }>('POST', '/api/push/subscriptions', { ...sub, lang }),
  /** CONSOLE-04 */
  searchHouseholds: (text: string) =>
    call<HouseholdSearchResult>('GET', `/api/search/households${q({ q: text })}`),
  /** ALERT-03 */
  report: (body: {
    householdId: string;
    category: string;
    severity: string;
    note: string;
    caller?: string;
  }) => call<IncidentResult>('POST', '/api/incidents', body),
  act: (id: string, action: string, body: unknown = {}) =>
    call<{ alert: Alert }>('POST', `/api/alerts/${encodeURIComponent(id)}/${action}`, body),
};

export type LiveSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** The live channel, authenticated by the session cookie. */
export function connectLive(): LiveSocket {
  return io({ path: '/socket.io', transports: ['websocket', 'polling'], withCredentials: true });
}
