/** The console's view of the API and the live channel (types from dispatcher/api/types.ts). */
import { io, type Socket } from 'socket.io-client';
import type {
  Alert,
  AlertList,
  ClientToServerEvents,
  DutyView,
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

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = (await res.json().catch(() => ({}))) as { message?: string };
  if (!res.ok) throw new ApiError(res.status, data.message ?? `HTTP ${res.status}`);
  return data as T;
}

export const api = {
  login: (username: string, password: string) =>
    call<LoginResponse>('POST', '/api/auth/login', { username, password }),
  logout: () => call<{ ok: true }>('POST', '/api/auth/logout', {}),
  me: () => call<{ staff: Staff }>('GET', '/api/me'),
  alerts: (state = 'open') => call<AlertList>('GET', `/api/alerts?state=${state}`),
  duty: () => call<{ duty: DutyView[]; now: number }>('GET', '/api/duty'),
  households: () =>
    call<{
      households: { id: string; gridId: string; address: { building: string; unit: string; room: string } }[];
    }>('GET', '/api/households'),
  staff: () => call<{ staff: Staff[] }>('GET', '/api/staff'),
  act: (id: string, action: string, body: unknown = {}) =>
    call<{ alert: Alert }>('POST', `/api/alerts/${id}/${action}`, body),
};

export type LiveSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** The live channel, authenticated by the session cookie. */
export function connectLive(): LiveSocket {
  return io({ path: '/socket.io', transports: ['websocket', 'polling'], withCredentials: true });
}
