/**
 * Live rooms by community (SEC-02): a dispatcher who covers grids follows the
 * communities of those grids, a dispatcher who covers none follows every community, and a reconnecting
 * page catches up with exactly the same scope. Real service, real MQTT device, real socket.io clients.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../dispatcher/api/types.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant } from '../../kernel/time.ts';
import { apiCall, eventually, type Harness, login, startHarness, TEST_PASSWORD } from '../helpers.ts';
import { communityDesks, raiseFall as fallAt, type LiveClient, liveClient } from './dispatch-helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const closers: { close(): unknown }[] = [];
let h: Harness | undefined;

afterEach(async () => {
  for (const c of closers.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

async function live(username: string): Promise<LiveClient> {
  const c = await liveClient(h!.baseUrl, username, TEST_PASSWORD);
  closers.push(c);
  return c;
}

const raiseFall = (clock: ManualClock, homeId: string) => fallAt(h!, clock, homeId, closers);

const ids = (c: LiveClient) => [...new Set(c.got.alert.map((e) => e.alert.id))].sort();

describe('live alert rooms by community', () => {
  it('sends each community its own alerts, every community to a dispatcher of no grid, and catches up with the same scope', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    // grid-2 moves to a second community; the next alert there must carry it.
    await communityDesks(h, admin);
    const deskA = await live('desk-a');
    const deskB = await live('desk-b');
    const central = await live('dispatcher');
    await eventually(
      () => deskA.got.scope.length > 0 && deskB.got.scope.length > 0 && central.got.scope.length > 0,
    );
    expect(deskA.got.scope[0]!.communities).toEqual(['阳光社区']);
    expect(deskB.got.scope[0]!.communities).toEqual(['东风社区']);
    expect(central.got.scope[0]!.communities).toBeNull();

    const a = await raiseFall(clock, 'home-1-01');
    const b = await raiseFall(clock, 'home-2-01');
    expect(a.community).toBe('阳光社区');
    expect(b.community).toBe('东风社区');
    await eventually(() => ids(central).length === 2, 10_000, 'both alerts on the central screen');
    await eventually(() => ids(deskA).length > 0 && ids(deskB).length > 0, 10_000, 'each desk told');
    // No stray cross-community event is on its way: every change so far reached the central screen (it
    // was emitted to every room then), and an acknowledged request on each desk's own socket is answered
    // after anything emitted to that socket before it.
    const seq = await h.store.currentChangeSeq();
    await eventually(
      () => central.got.alert.some((e) => e.alert.changeSeq >= seq),
      10_000,
      'every change out',
    );
    for (const c of [deskA, deskB]) expect((await c.socket.emitWithAck('catchup', seq)).count).toBe(0);
    expect(ids(deskA)).toEqual([a.id]);
    expect(ids(deskB)).toEqual([b.id]);
    expect(ids(central)).toEqual([a.id, b.id].sort());

    // A screen's first page (REST) has the same scope as its room, so what it shows is what stays live.
    const listed = async (who: string) => {
      const token = await login(h!.baseUrl, who, TEST_PASSWORD);
      const r = await apiCall<{ alerts: Alert[] }>(h!.baseUrl, token, 'GET', '/api/alerts?state=open');
      return r.body.alerts.map((x) => x.id).sort();
    };
    expect(await listed('desk-a')).toEqual([a.id]);
    expect(await listed('desk-b')).toEqual([b.id]);
    expect(await listed('dispatcher')).toEqual([a.id, b.id].sort());

    // A page that lost its connection asks for everything since 0: the same scope as its room.
    const catchup = async (c: LiveClient) => {
      c.got.alert.length = 0;
      const r = await c.socket.emitWithAck('catchup', 0);
      return { count: r.count, ids: ids(c) };
    };
    expect(await catchup(deskA)).toEqual({ count: expect.any(Number), ids: [a.id] });
    expect(await catchup(deskB)).toEqual({ count: expect.any(Number), ids: [b.id] });
    expect((await catchup(central)).ids).toEqual([a.id, b.id].sort());

    // The responder of grid-2 (another community) still gets their grid's alerts, not grid-1's.
    const worker2 = await live('g2-worker');
    expect((await catchup(worker2)).ids).toEqual([b.id]);
  });
});

describe('a community no desk follows', () => {
  it('is followed by every community desk when no desk covers every community', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    await communityDesks(h, admin);
    // Only desk-a (阳光社区) is left at the desks: the central dispatcher, the supervisor and desk-b are off.
    for (const id of ['dispatcher-1', 'supervisor-1', 'desk-b'])
      expect((await apiCall(h.baseUrl, admin, 'PATCH', `/api/staff/${id}`, { disabled: true })).status).toBe(
        200,
      );
    const deskA = await live('desk-a');
    await eventually(() => deskA.got.scope.length > 0);
    expect(deskA.got.scope[0]!.communities?.slice().sort()).toEqual(['东风社区', '阳光社区'].sort());
    const b = await raiseFall(clock, 'home-2-01');
    expect(b.community).toBe('东风社区');
    await eventually(() => ids(deskA).includes(b.id), 10_000, "the other community's alert on desk-a");
    const token = await login(h.baseUrl, 'desk-a', TEST_PASSWORD);
    const r = await apiCall<{ alerts: Alert[] }>(h.baseUrl, token, 'GET', '/api/alerts?state=open');
    expect(r.body.alerts.map((x) => x.id)).toContain(b.id);
  });
});
