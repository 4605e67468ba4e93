/**
 * Small helpers shared by the dispatch tests: a live socket.io client that records what it receives, and
 * simulated devices of the seeded community. Real clients against the real service; nothing is mocked.
 */
import { io, type Socket } from 'socket.io-client';
import { expect } from 'vitest';
import type { Alert, ClientToServerEvents, Grid, ServerToClientEvents } from '../../dispatcher/api/types.ts';
import type { Clock, Timer } from '../../kernel/clock.ts';
import { addTo, type Duration, type Instant, instant } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import { apiCall, eventually, type Harness, login, TEST_PASSWORD } from '../helpers.ts';

export type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
type Received = { [K in keyof ServerToClientEvents]: Parameters<ServerToClientEvents[K]>[0][] };

export interface LiveClient {
  token: string;
  socket: Client;
  got: Received;
  close(): void;
}

export async function liveClient(
  baseUrl: string,
  username: string,
  password?: string,
  token?: string,
): Promise<LiveClient> {
  const t = token ?? (await login(baseUrl, username, password));
  const socket: Client = io(baseUrl, { auth: { token: t }, transports: ['websocket'], reconnection: false });
  const got: Received = {
    alert: [],
    notification: [],
    delivery: [],
    channelHealth: [],
    systemHealth: [],
    dutyGap: [],
    handover: [],
    arrivalSuggested: [],
    scope: [],
    responderUnreachable: [],
  };
  for (const k of Object.keys(got) as (keyof Received)[]) {
    socket.on(k, ((p: never) => (got[k] as unknown[]).push(p)) as never);
  }
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return { token: t, socket, got, close: () => socket.close() };
}

export async function device(h: Harness, clock: Clock, homeId: string, kind: 'fall' | 'door' | 'motion') {
  const id = h.devices.find((d) => d.homeId === homeId && d.kind === kind)!;
  const dev = new SimDevice(id, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
  await dev.connect();
  return dev;
}

/**
 * A fall detected by the home's radar, once the service has routed it: the notified FALL alert. The radar
 * stays connected until `closers` are closed.
 */
export async function raiseFall(
  h: Harness,
  clock: Clock,
  homeId: string,
  closers: { close(): unknown }[],
): Promise<Alert> {
  const radar = await device(h, clock, homeId, 'fall');
  closers.push({ close: () => radar.disconnect() });
  await radar.send({ type: 'fall', state: 'detected', room: 'bathroom' });
  return eventually(
    async () => (await h.store.listAlerts({ householdId: homeId, state: 'notified' }))[0],
    10_000,
    `a notified FALL alert at ${homeId}`,
  );
}

export const latest = (alerts: { alert: Alert }[], id: string): Alert | undefined =>
  alerts
    .filter((a) => a.alert.id === id)
    .sort((a, b) => a.alert.changeSeq - b.alert.changeSeq)
    .at(-1)?.alert;

/**
 * A clock shared by separate processes: simulated time = `simStart` + (real time since `realStart`) ×
 * `speed`. Two processes given the same anchor agree on the time, so a child service killed and restarted
 * continues the same timeline (the SIGKILL test).
 */
export class AnchoredClock implements Clock {
  constructor(
    private readonly simStart: number,
    private readonly realStart: number,
    private readonly speed: number,
  ) {}

  now(): Instant {
    return instant(this.simStart + (Date.now() - this.realStart) * this.speed);
  }

  at(at: Instant, fn: () => void): Timer {
    let handle: NodeJS.Timeout | undefined;
    let cancelled = false;
    const arm = () => {
      if (cancelled) return;
      const wait = (at - this.now()) / this.speed;
      if (wait <= 0) return fn();
      handle = setTimeout(arm, Math.min(Math.ceil(wait), 2_147_483_647));
    };
    handle = setTimeout(arm, 0);
    return {
      cancel: () => {
        cancelled = true;
        clearTimeout(handle);
      },
    };
  }

  after(d: Duration, fn: () => void): Timer {
    return this.at(addTo(this.now(), d), fn);
  }
}

/**
 * Two communities with a dispatch desk each: grid-2 moves to 东风社区 (grid-1 stays in 阳光社区), and
 * dispatchers `desk-a` (grid-1) and `desk-b` (grid-2) log in with TEST_PASSWORD. The seeded `dispatcher`
 * covers no grid: the central desk of every community.
 */
export async function communityDesks(h: Harness, admin: string): Promise<void> {
  const grids = await apiCall<{ grids: Grid[] }>(h.baseUrl, admin, 'GET', '/api/grids');
  const grid2 = grids.body.grids.find((g) => g.id === 'grid-2')!;
  expect(
    (await apiCall(h.baseUrl, admin, 'POST', '/api/grids', { ...grid2, community: '东风社区' })).status,
  ).toBe(201);
  for (const [id, grid] of [
    ['desk-a', 'grid-1'],
    ['desk-b', 'grid-2'],
  ] as const) {
    const r = await apiCall(h.baseUrl, admin, 'POST', '/api/staff', {
      id,
      name: id,
      roles: ['dispatcher'],
      gridIds: [grid],
      username: id,
      password: TEST_PASSWORD,
    });
    expect(r.status).toBe(201);
  }
}
