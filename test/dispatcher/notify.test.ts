/**
 * Notifications (SPEC §7) and live updates: the webhook against a real local HTTP server that verifies
 * the HMAC signature, retries with back-off on the manual clock, every attempt recorded, a failing channel
 * shown on the dispatch screen, several pages of one responder, and catch-up after a reconnect.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert, ChannelHealth } from '../../dispatcher/api/types.ts';
import { Bus } from '../../dispatcher/bus.ts';
import { type NotificationPayload, Notifier, webhookChannel } from '../../dispatcher/notify/notifier.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { instant, minutes, ms, seconds } from '../../kernel/time.ts';
import { apiCall, eventually, type Harness, login, startHarness, tempDir } from '../helpers.ts';
import { device, type LiveClient, latest, liveClient } from './dispatch-helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const SECRET = 'a-webhook-secret-of-some-length';

const closers: { close(): unknown }[] = [];
let h: Harness | undefined;
afterEach(async () => {
  for (const c of closers.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

interface Received {
  body: string;
  valid: boolean;
}

/** A receiver that checks the signature as a real SMS bridge would, answering from `statuses` in turn. */
async function receiver(statuses: number[]): Promise<{ url: string; got: Received[]; server: Server }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const ts = String(req.headers['x-g365-timestamp']);
      const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`;
      got.push({ body, valid: req.headers['x-g365-signature'] === expected });
      res.statusCode = statuses[got.length - 1] ?? statuses.at(-1) ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push({ close: () => new Promise((r) => server.close(r)) });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, server };
}

const payload: NotificationPayload = {
  alertId: 'al_1',
  rule: 'FALL',
  severity: 'critical',
  state: 'notified',
  householdId: 'home-1-01',
  gridId: 'grid-1',
  address: '1-1-101',
  explanation: { zh: '检测到跌倒', en: 'fall detected' },
  raisedAt: DAY,
  onSiteDueAt: DAY + 900_000,
  nextStepAt: DAY + 180_000,
  reason: 'notify_primary',
  noticeId: 'notify_primary',
};

describe('the webhook channel', () => {
  it('signs each call with HMAC, retries after 1 s and 4 s on the clock, and records every attempt', async () => {
    const clock = new ManualClock(DAY);
    const rx = await receiver([500, 503, 200]);
    const dir = tempDir();
    const store = new SqliteStore(join(dir.path, 'n.sqlite'));
    await store.migrate();
    closers.push({
      close: async () => {
        await store.close();
        dir.remove();
      },
    });
    const notifier = new Notifier({
      store,
      bus: new Bus(silentLogger()),
      clock,
      log: silentLogger(),
      channels: [webhookChannel({ url: rx.url, secret: SECRET, clock, log: silentLogger() })],
    });
    const done = notifier.notify(['grid-1-worker'], payload);

    await eventually(() => rx.got.length === 1, 5000, 'first call');
    // The back-off timer is armed on the clock once the failure came back.
    await eventually(() => clock.pendingCount === 1, 5000, 'back-off armed');
    await clock.advance(ms(999));
    // The retry waits on its back-off timer, due in exactly 1 ms: nothing was sent again.
    expect(clock.pendingTimers()).toEqual([{ name: 'webhook back-off', at: clock.now() + 1 }]);
    expect(rx.got).toHaveLength(1);
    await clock.advance(ms(1));
    await eventually(() => rx.got.length === 2, 5000, 'retry after 1 s');
    await eventually(() => clock.pendingCount === 1, 5000, 'second back-off armed');
    await clock.advance(ms(3999));
    expect(clock.pendingTimers()).toEqual([{ name: 'webhook back-off', at: clock.now() + 1 }]);
    expect(rx.got).toHaveLength(2);
    await clock.advance(ms(1));
    await done;

    expect(rx.got.map((g) => g.valid)).toEqual([true, true, true]);
    expect(JSON.parse(rx.got[0]!.body)).toMatchObject({
      staffId: 'grid-1-worker',
      alertId: 'al_1',
      rule: 'FALL',
    });
    const attempts = await store.listDeliveries('al_1');
    expect(attempts.map((a) => [a.channel, a.ok, a.at - DAY])).toEqual([
      ['webhook', false, 0],
      ['webhook', false, 1000],
      ['webhook', true, 5000],
    ]);
    expect(attempts[0]!.error).toMatch(/HTTP 500/);
    expect(notifier.channelHealth()[0]).toMatchObject({ channel: 'webhook', status: 'ok', failures: 2 });
  });

  it('rejects a forged signature at the receiver (the test receiver really checks)', async () => {
    const rx = await receiver([200]);
    await fetch(rx.url, {
      method: 'POST',
      headers: { 'x-g365-timestamp': '1', 'x-g365-signature': 'sha256=00' },
      body: '{}',
    });
    expect(rx.got[0]!.valid).toBe(false);
  });
});

describe('channel health on the dispatch screen', () => {
  it('shows a webhook that keeps failing, live and through the API, and clears when it recovers', async () => {
    const clock = new ManualClock(DAY);
    const statuses = [500, 500, 500, 500];
    const rx = await receiver(statuses);
    h = await startHarness({ clock, env: { WEBHOOK_URL: rx.url, WEBHOOK_SECRET: SECRET } });
    const dispatcher = await liveClient(h.baseUrl, 'dispatcher');
    closers.push(dispatcher);
    const radar = await device(h, clock, 'home-1-01', 'fall');
    closers.push({ close: () => radar.disconnect() });
    await radar.send({ type: 'fall', state: 'detected' });
    // Each failed attempt is recorded before its back-off timer is armed on the clock.
    const recorded = (n: number) =>
      eventually(
        async () =>
          (await h!.store.listDeliveriesSince(0, 1000)).filter((x) => x.channel === 'webhook').length === n,
        5000,
        `${n} webhook attempts recorded`,
      );
    await eventually(() => rx.got.length === 1, 10_000, 'first webhook call');
    await recorded(1);
    await clock.advance(seconds(1));
    await recorded(2);
    await clock.advance(seconds(4));
    await recorded(3);
    const failing = await eventually(
      () => dispatcher.got.channelHealth.find((c) => c.channel === 'webhook' && c.status === 'failing'),
      5000,
      'failing channel on the dispatch screen',
    );
    expect(failing.consecutiveFailures).toBe(3);
    const d = await login(h.baseUrl, 'dispatcher');
    const health = await apiCall<{ channels: ChannelHealth[] }>(h.baseUrl, d, 'GET', '/api/notify/health');
    expect(health.body.channels.find((c) => c.channel === 'webhook')).toMatchObject({ status: 'failing' });
    // The socket channel is healthy even though the primary has no page open (that is the person, not the channel).
    expect(health.body.channels.find((c) => c.channel === 'socket')?.status).toBe('ok');

    // A restart rebuilds the health from the recorded attempts: the failing channel stays on screen.
    await h.restart();
    const d2 = await login(h.baseUrl, 'dispatcher');
    const after = await apiCall<{ channels: ChannelHealth[] }>(h.baseUrl, d2, 'GET', '/api/notify/health');
    expect(after.body.channels.find((c) => c.channel === 'webhook')).toMatchObject({
      status: 'failing',
      consecutiveFailures: 3,
    });
    expect(after.body.channels.find((c) => c.channel === 'socket')?.status).toBe('ok');

    // The webhook recovers: the 3-minute escalation's calls succeed and the dispatch screen is told.
    const screen = await liveClient(h.baseUrl, 'dispatcher');
    closers.push(screen);
    statuses.splice(0, statuses.length, 200);
    await clock.advance(minutes(3));
    await eventually(
      () => screen.got.channelHealth.find((c) => c.channel === 'webhook' && c.status === 'ok'),
      5000,
      'recovered channel',
    );
  });
});

describe('live updates', () => {
  it('delivers a notification to every open page of the responder', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const token = await login(h.baseUrl, 'g1-worker');
    const phone = await liveClient(h.baseUrl, 'g1-worker', undefined, token);
    const tablet = await liveClient(h.baseUrl, 'g1-worker');
    closers.push(phone, tablet);
    const radar = await device(h, clock, 'home-1-02', 'fall');
    closers.push({ close: () => radar.disconnect() });
    await radar.send({ type: 'fall', state: 'detected' });
    const a = await eventually(() => phone.got.notification[0], 5000, 'phone');
    const b = await eventually(() => tablet.got.notification[0], 5000, 'tablet');
    expect(b.alertId).toBe(a.alertId);
    const socketDeliveries = (await h.store.listDeliveries(a.alertId)).filter((d) => d.channel === 'socket');
    expect(socketDeliveries.map((d) => [d.staffId, d.ok])).toEqual([['grid-1-worker', true]]);
  });

  it('lets a dispatch screen that lost its connection catch up on every change it missed', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const d = await login(h.baseUrl, 'dispatcher');
    const before: LiveClient = await liveClient(h.baseUrl, 'dispatcher', undefined, d);
    const snapshot = await apiCall<{ changeSeq: number }>(h.baseUrl, d, 'GET', '/api/alerts?state=open');
    before.close();

    // While disconnected: two falls, one accepted and en route, one cancelled.
    const r1 = await device(h, clock, 'home-1-01', 'fall');
    const r2 = await device(h, clock, 'home-2-01', 'fall');
    closers.push({ close: () => r1.disconnect() }, { close: () => r2.disconnect() });
    await r1.send({ type: 'fall', state: 'detected' });
    await r2.send({ type: 'fall', state: 'detected' });
    const open = await eventually(
      async () => {
        const l = await h!.store.listAlerts({ state: 'notified' });
        return l.length === 2 ? l : undefined;
      },
      10_000,
      'two alerts',
    );
    const g1 = open.find((a) => a.gridId === 'grid-1')!;
    const g2 = open.find((a) => a.gridId === 'grid-2')!;
    const worker = await login(h.baseUrl, 'g1-worker');
    await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${g1.id}/accept`, {});
    await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${g1.id}/en-route`, {});
    await apiCall(h.baseUrl, d, 'POST', `/api/alerts/${g2.id}/cancel`, { reason: 'resident phoned: fine' });

    const after = await liveClient(h.baseUrl, 'dispatcher', undefined, d);
    closers.push(after);
    const ack = await after.socket.timeout(5000).emitWithAck('catchup', snapshot.body.changeSeq);
    expect(ack.changeSeq).toBe(await h.store.currentChangeSeq());
    expect(latest(after.got.alert, g1.id)).toMatchObject({ state: 'en_route', assigneeId: 'grid-1-worker' });
    expect(latest(after.got.alert, g2.id)).toMatchObject({ state: 'cancelled' });
    // Nothing missed: the caught-up view equals the stored one.
    for (const a of [g1, g2]) {
      const stored = (await h.store.getAlert(a.id)) as Alert;
      expect(latest(after.got.alert, a.id)).toEqual(stored);
    }
    // A responder catching up sees only their grids.
    const g2Social = await liveClient(h.baseUrl, 'g2-worker');
    closers.push(g2Social);
    await g2Social.socket.timeout(5000).emitWithAck('catchup', snapshot.body.changeSeq);
    expect(new Set(g2Social.got.alert.map((x) => x.alert.gridId))).toEqual(new Set(['grid-2']));
  });
});
