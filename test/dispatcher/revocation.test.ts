/**
 * Rights end everywhere at once (SPEC §8 Access): a change of a staff member's rights by any path (PATCH,
 * registry import, expiry, password change, role change, grid change, disable, logout) ends their
 * sessions, their socket.io connections and their staff MQTT connections (`staff:{id}` on the gateway), or
 * re-scopes them at once. Real service, real socket.io clients, real MQTT clients; nothing mocked.
 */
import type mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import type { Grid } from '../../dispatcher/api/types.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { hours, instant, ms } from '../../kernel/time.ts';
import {
  apiCall,
  eventually,
  type Harness,
  login,
  staffApp,
  startHarness,
  TEST_PASSWORD,
} from '../helpers.ts';
import { communityDesks, type LiveClient, liveClient, raiseFall } from './dispatch-helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const ADMIN_PASSWORD = 'admin-password-365';
const closers: { close(): unknown }[] = [];
let h: Harness | undefined;

afterEach(async () => {
  for (const c of closers.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

/** A responder's phone page and native app, both logged in with one token, watched for being closed. */
async function connected(username: string, staffId: string) {
  const token = await login(h!.baseUrl, username, TEST_PASSWORD);
  const page = await liveClient(h!.baseUrl, username, undefined, token);
  closers.push(page);
  const closed = { page: false, app: false };
  page.socket.on('disconnect', () => {
    closed.page = true;
  });
  const app: mqtt.MqttClient = await staffApp(h!, staffId, token);
  closers.push({ close: () => app.end(true) });
  app.on('close', () => {
    closed.app = true;
  });
  await app.subscribeAsync(`g365/v1/staff/${staffId}/alerts`, { qos: 1 });
  await eventually(() => page.got.scope.length > 0, 10_000, 'the page scoped');
  return { token, page, app, closed };
}

/** The old token opens nothing any more: REST 401, socket.io refused, MQTT CONNACK 4. */
async function expectTokenDead(staffId: string, token: string): Promise<void> {
  expect((await apiCall(h!.baseUrl, token, 'GET', '/api/session')).status).toBe(401);
  await expect(liveClient(h!.baseUrl, '', undefined, token)).rejects.toThrow(/unauthenticated/);
  await expect(staffApp(h!, staffId, token)).rejects.toThrow(/Bad username or password/i);
}

const alertIds = (c: LiveClient) => [...new Set(c.got.alert.map((e) => e.alert.id))];

describe('rights end everywhere at once', () => {
  it('closes the page and the app of a staff member disabled through the registry import, and their token is dead', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, grids: 2, perGrid: 1 });
    const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    const w = await connected('g1-worker', 'grid-1-worker');
    const r = await apiCall(h.baseUrl, admin, 'POST', '/api/registry/import', {
      staff: [
        {
          id: 'grid-1-worker',
          name: 'w',
          roles: ['grid_worker'],
          gridIds: ['grid-1'],
          username: 'g1-worker',
          disabled: true,
        },
      ],
    });
    expect(r.status).toBe(200);
    await eventually(() => w.closed.page && w.closed.app, 10_000, 'page and app closed');
    await expectTokenDead('grid-1-worker', w.token);
    // Nothing more reaches the closed page: a fall in its old grid is not delivered to it.
    const before = w.page.got.alert.length;
    await raiseFall(h, clock, 'home-1-01', closers);
    expect(w.page.got.alert.length).toBe(before);
  });

  it('re-scopes at once the page of a responder moved to another grid by the import', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, grids: 2, perGrid: 1 });
    const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    const w = await connected('g1-worker', 'grid-1-worker');
    // A move as an admin makes it: the worker covers grid-2 now, and grid-1's day roster goes on without them.
    const moved = await apiCall(h.baseUrl, admin, 'POST', '/api/registry/import', {
      staff: [
        {
          id: 'grid-1-worker',
          name: 'w',
          roles: ['grid_worker'],
          gridIds: ['grid-2'],
          username: 'g1-worker',
        },
      ],
      roster: [{ gridId: 'grid-1', shift: 'day', staffIds: ['grid-1-leader', 'grid-1-buddy'] }],
    });
    expect(moved.status).toBe(200);
    await eventually(() => w.page.got.scope.length > 1, 10_000, 'a new scope sent to the page');
    expect(w.page.got.scope.at(-1)!.gridIds).toEqual(['grid-2']);
    const old = await raiseFall(h, clock, 'home-1-01', closers);
    const now = await raiseFall(h, clock, 'home-2-01', closers);
    await eventually(() => alertIds(w.page).includes(now.id), 10_000, 'the new grid’s alert on the page');
    expect(alertIds(w.page)).not.toContain(old.id);
    // The session itself stays (rights are read on every request): REST follows the new grid.
    expect((await apiCall(h.baseUrl, w.token, 'GET', '/api/households/home-1-01')).status).toBe(404);
    expect((await apiCall(h.baseUrl, w.token, 'GET', '/api/households/home-2-01')).status).toBe(200);
    expect(w.closed.page).toBe(false);
  });

  it('ends every session, page and app when an admin changes the password (PATCH)', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, grids: 1, perGrid: 1 });
    const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    const w = await connected('g1-worker', 'grid-1-worker');
    const second = await login(h.baseUrl, 'g1-worker');
    const r = await apiCall(h.baseUrl, admin, 'PATCH', '/api/staff/grid-1-worker', {
      password: 'a-new-password-365',
    });
    expect(r.status).toBe(200);
    await eventually(() => w.closed.page && w.closed.app, 10_000, 'page and app closed');
    await expectTokenDead('grid-1-worker', w.token);
    expect((await apiCall(h.baseUrl, second, 'GET', '/api/session')).status).toBe(401);
    expect(await login(h.baseUrl, 'g1-worker', 'a-new-password-365')).toBeTruthy();
  });

  it('re-scopes a dispatcher made a grid worker (PATCH roles): no other grid’s alerts on the page any more', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, grids: 2, perGrid: 1 });
    const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    const d = await connected('dispatcher', 'dispatcher-1');
    expect(d.page.got.scope[0]!.gridIds).toBeNull();
    const r = await apiCall(h.baseUrl, admin, 'PATCH', '/api/staff/dispatcher-1', {
      roles: ['grid_worker'],
      gridIds: ['grid-1'],
    });
    expect(r.status).toBe(200);
    await eventually(() => d.page.got.scope.length > 1, 10_000, 'a new scope sent to the page');
    expect(d.page.got.scope.at(-1)!.gridIds).toEqual(['grid-1']);
    const other = await raiseFall(h, clock, 'home-2-01', closers);
    const own = await raiseFall(h, clock, 'home-1-01', closers);
    await eventually(() => alertIds(d.page).includes(own.id), 10_000, 'its own grid’s alert');
    expect(alertIds(d.page)).not.toContain(other.id);
    expect((await apiCall(h.baseUrl, d.token, 'GET', '/api/notify/health')).status).toBe(403);
  });

  it('closes the page and the app when the session expires, to the millisecond of the injected clock', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, grids: 1, perGrid: 1, env: { SESSION_HOURS: '1' } });
    const w = await connected('g1-worker', 'grid-1-worker');
    clock.advance(ms(hours(1) - 1));
    // One millisecond before the end both stay: a round trip proves the page is still served.
    await w.page.socket.emitWithAck('catchup', 0);
    expect(w.closed).toEqual({ page: false, app: false });
    clock.advance(ms(1));
    await eventually(() => w.closed.page && w.closed.app, 10_000, 'page and app closed at expiry');
    await expectTokenDead('grid-1-worker', w.token);
  });

  it('closes only the connections of the token that logged out', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, grids: 1, perGrid: 1 });
    const w = await connected('g1-worker', 'grid-1-worker');
    const other = await liveClient(h.baseUrl, 'g1-worker', TEST_PASSWORD);
    closers.push(other);
    let otherClosed = false;
    other.socket.on('disconnect', () => {
      otherClosed = true;
    });
    expect((await apiCall(h.baseUrl, w.token, 'POST', '/api/auth/logout')).status).toBe(200);
    await eventually(() => w.closed.page && w.closed.app, 10_000, 'page and app of that token closed');
    await other.socket.emitWithAck('catchup', 0);
    expect(otherClosed).toBe(false);
  });

  it('re-scopes a community desk at once when its grid moves to another community (POST /api/grids)', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, grids: 2, perGrid: 1 });
    const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    await communityDesks(h, admin);
    const desk = await liveClient(h.baseUrl, 'desk-a', TEST_PASSWORD);
    closers.push(desk);
    await eventually(() => desk.got.scope.length > 0, 10_000, 'the desk scoped');
    expect(desk.got.scope[0]!.communities).toEqual(['阳光社区']);
    // desk-a covers grid-1; grid-1 joins 东风社区: desk-a's screen now follows 东风社区.
    const grids = await apiCall<{ grids: Grid[] }>(h.baseUrl, admin, 'GET', '/api/grids');
    const grid1 = grids.body.grids.find((g) => g.id === 'grid-1')!;
    expect(
      (await apiCall(h.baseUrl, admin, 'POST', '/api/grids', { ...grid1, community: '东风社区' })).status,
    ).toBe(201);
    await eventually(() => desk.got.scope.length > 1, 10_000, 'a new scope sent to the desk');
    expect(desk.got.scope.at(-1)!.communities).toEqual(['东风社区']);
    const a = await raiseFall(h, clock, 'home-1-01', closers);
    expect(a.community).toBe('东风社区');
    await eventually(
      () => alertIds(desk).includes(a.id),
      10_000,
      'its grid’s alert, now of 东风社区, on the desk',
    );
  });
});
