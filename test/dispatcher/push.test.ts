/**
 * Reaching a responder whose phone is locked in a pocket, and the family (NOTIFY-02..05), end to end
 * through the real service: a push service on loopback that speaks RFC 8030 over HTTPS, decrypts each
 * message with the subscription's own keys (RFC 8291, aes128gcm) and checks the VAPID signature
 * (RFC 8292), as a browser vendor's push service and the phone would; an SMS bridge that checks the
 * webhook's signature. Nothing of ours is imitated.
 */
import { createHmac } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, DeliveryRecord } from '../../dispatcher/api/types.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes, seconds } from '../../kernel/time.ts';
import { apiCall, eventually, type Harness, login, startHarness } from '../helpers.ts';
import { loopbackCert, type Phone, phone, pushService, type Tls } from '../push-service.ts';
import { device, liveClient, raiseFall } from './dispatch-helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const SECRET = 'a-webhook-secret-of-some-length';
const SUBJECT = 'mailto:ops@guardian365.example';
const ORIGIN = 'https://guardian.example.org';
const WORKER = 'grid-1-worker';

const closers: { close(): unknown }[] = [];
let h: Harness | undefined;
let tls: Tls;
beforeAll(async () => {
  tls = await loopbackCert();
  return () => tls.remove();
});
afterEach(async () => {
  for (const c of closers.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

/** An SMS bridge: checks each call's signature and keeps the bodies and idempotency keys. */
async function bridge(statuses: number[] = [200]) {
  const got: { body: Record<string, unknown>; key: string | undefined; valid: boolean }[] = [];
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const ts = String(req.headers['x-g365-timestamp']);
      const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`;
      got.push({
        body: JSON.parse(body) as Record<string, unknown>,
        key: req.headers['idempotency-key'] as string | undefined,
        valid: req.headers['x-g365-signature'] === expected,
      });
      res.statusCode = statuses[got.length - 1] ?? statuses.at(-1) ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push({ close: () => new Promise((r) => server.close(r)) });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sms`, got };
}

async function subscribe(h: Harness, username: string, sub: Phone['subscription'], lang = 'zh') {
  const token = await login(h.baseUrl, username);
  const r = await apiCall(h.baseUrl, token, 'POST', '/api/push/subscriptions', { ...sub, lang });
  expect(r.status).toBe(201);
  return token;
}

const deliveries = async (h: Harness, alertId: string): Promise<DeliveryRecord[]> =>
  h.store.listDeliveries(alertId);

describe('Web Push to a locked phone', () => {
  it('sends the primary responder an encrypted, VAPID-signed, high-urgency push naming the rule and the household', async () => {
    const clock = new ManualClock(DAY);
    const phones = new Map<string, Phone>();
    const ps = await pushService(tls, phones);
    closers.push(ps);
    h = await startHarness({ clock, env: { PUSH_CA_FILE: tls.certFile, PUSH_SUBJECT: SUBJECT } });
    const p = phone(`${ps.base}/push/worker-phone`);
    phones.set('/push/worker-phone', p);
    const token = await subscribe(h, 'g1-worker', p.subscription);
    const { body: key } = await apiCall<{ publicKey: string }>(h.baseUrl, token, 'GET', '/api/push/key');

    const alert = await raiseFall(h, clock, 'home-1-01', closers);
    const pushed = await eventually(() => ps.got[0], 10_000, 'a push message');
    expect(ps.problems).toEqual([]);
    const household = (await h.store.getHousehold('home-1-01'))!;
    const address = [household.address.building, household.address.unit, household.address.room].join('-');
    expect(pushed.message).toMatchObject({
      alertId: alert.id,
      rule: 'FALL',
      severity: 'critical',
      url: `/#/respond/${alert.id}`,
      reason: 'notify_primary',
    });
    expect(pushed.message.title).toBe(`【跌倒】${address}`);
    expect(pushed.message.body).toContain(alert.explanation.zh);
    // RFC 8030 §5.3: wakes a phone in power saving; §5.2: held until the next escalation step (3 min).
    expect(pushed.headers.urgency).toBe('high');
    expect(Number(pushed.headers.ttl)).toBe(180);
    // RFC 8292: signed by the deployment's key, for this push service, with its contact, within 24 h.
    expect(pushed.vapidKey).toBe(key.publicKey);
    expect(pushed.jwt.aud).toBe(ps.base);
    expect(pushed.jwt.sub).toBe(SUBJECT);
    expect(pushed.jwt.exp * 1000).toBeGreaterThan(Date.now());
    expect(pushed.jwt.exp * 1000).toBeLessThanOrEqual(Date.now() + 24 * 3_600_000);
    await eventually(
      async () =>
        (await deliveries(h!, alert.id)).find((d) => d.channel === 'push' && d.staffId === WORKER && d.ok),
      5_000,
      'the push attempt recorded as sent',
    );

    // The phone's service worker showed it and says so: a receipt beside the attempt.
    expect(
      (await apiCall(h.baseUrl, token, 'POST', '/api/push/receipts', { alertId: alert.id })).status,
    ).toBe(204);
    const receipt = (await deliveries(h, alert.id)).find((d) => d.channel === 'push' && d.delivered);
    expect(receipt).toMatchObject({ staffId: WORKER, ok: true });
    // Another responder cannot confirm what was never sent to them.
    const other = await login(h.baseUrl, 'g2-worker');
    expect(
      (await apiCall(h.baseUrl, other, 'POST', '/api/push/receipts', { alertId: alert.id })).status,
    ).toBe(404);
  });

  it('writes the notice in the language of the phone that subscribed', async () => {
    const clock = new ManualClock(DAY);
    const phones = new Map<string, Phone>();
    const ps = await pushService(tls, phones);
    closers.push(ps);
    h = await startHarness({ clock, env: { PUSH_CA_FILE: tls.certFile } });
    const p = phone(`${ps.base}/push/en`);
    phones.set('/push/en', p);
    await subscribe(h, 'g1-worker', p.subscription, 'en');
    const alert = await raiseFall(h, clock, 'home-1-01', closers);
    const pushed = await eventually(() => ps.got[0], 10_000, 'a push message');
    expect(pushed.message.title).toMatch(/^Fall: /);
    expect(pushed.message.body).toContain(alert.explanation.en);
  });

  it('removes a subscription the push service says is gone, and tells the dispatch room the responder was reached nowhere', async () => {
    const clock = new ManualClock(DAY);
    const phones = new Map<string, Phone>();
    const ps = await pushService(tls, phones, new Map([['/push/old', 410]]));
    closers.push(ps);
    h = await startHarness({ clock, env: { PUSH_CA_FILE: tls.certFile } });
    const p = phone(`${ps.base}/push/old`);
    phones.set('/push/old', p);
    await subscribe(h, 'g1-worker', p.subscription);
    const desk = await liveClient(h.baseUrl, 'dispatcher');
    closers.push(desk);

    const alert = await raiseFall(h, clock, 'home-1-01', closers);
    await eventually(() => ps.got.length === 1, 10_000, 'the push attempt');
    // No page open, no app, the only phone's subscription gone: the desk hears of it at once.
    const flagged = await eventually(
      () => desk.got.responderUnreachable.find((u) => u.alertId === alert.id && u.staffId === WORKER),
      10_000,
      'the unreachable responder on the dispatch screen',
    );
    expect(flagged.channels.map((c) => c.channel).sort()).toEqual(['mqtt', 'push', 'socket']);
    expect(await h.service.pushSubscriptions.list(WORKER)).toEqual([]);
    const push = (await deliveries(h, alert.id)).find((d) => d.channel === 'push');
    expect(push).toMatchObject({ ok: false, error: 'push subscription expired' });
    // A gone subscription is the phone's state, not a failing push service.
    expect(h.service.notifier.channelHealth().find((c) => c.channel === 'push')).toMatchObject({
      status: 'ok',
    });
  });

  it('shows a push service that keeps failing as a failing channel on the dispatch screen', async () => {
    const clock = new ManualClock(DAY);
    const phones = new Map<string, Phone>();
    const ps = await pushService(tls, phones, new Map([['/push/a', 503]]));
    closers.push(ps);
    h = await startHarness({ clock, env: { PUSH_CA_FILE: tls.certFile } });
    const p = phone(`${ps.base}/push/a`);
    phones.set('/push/a', p);
    for (const u of ['g1-worker', 'g1-leader', 'g1-buddy']) await subscribe(h, u, p.subscription);
    const desk = await liveClient(h.baseUrl, 'dispatcher');
    closers.push(desk);
    await raiseFall(h, clock, 'home-1-01', closers);
    await eventually(() => ps.got.length === 1, 10_000, 'the first push');
    // SPEC §6 at 3 min: the next responder, and the first again; at 6 min everyone on duty.
    clock.advance(minutes(6));
    await eventually(
      () => desk.got.channelHealth.find((c) => c.channel === 'push' && c.status === 'failing'),
      10_000,
      'push shown as failing',
    );
    const health = await apiCall<{ channels: { channel: string; status: string; lastError: string }[] }>(
      h.baseUrl,
      await login(h.baseUrl, 'dispatcher'),
      'GET',
      '/api/notify/health',
    );
    expect(health.body.channels.find((c) => c.channel === 'push')).toMatchObject({
      status: 'failing',
      lastError: 'push service answered HTTP 503',
    });
  });

  it('refuses a subscription that is not an https push service or has malformed keys', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const token = await login(h.baseUrl, 'g1-worker');
    const p = phone('http://127.0.0.1:1/push/x');
    const plain = await apiCall<{ message: string }>(
      h.baseUrl,
      token,
      'POST',
      '/api/push/subscriptions',
      p.subscription,
    );
    expect(plain.status).toBe(400);
    expect(plain.body.message).toMatch(/endpoint/);
    const bad = await apiCall(h.baseUrl, token, 'POST', '/api/push/subscriptions', {
      endpoint: 'https://push.example/x',
      keys: { p256dh: 'short', auth: 'x' },
    });
    expect(bad.status).toBe(400);
    expect((await apiCall(h.baseUrl, null, 'GET', '/api/push/key')).status).toBe(401);
  });
});

describe('the SMS and voice bridge', () => {
  it("gives the bridge the recipient's phone, one SMS of text, the alert's link and a key that stays the same across retries", async () => {
    const clock = new ManualClock(DAY);
    const rx = await bridge([500, 200]);
    h = await startHarness({
      clock,
      env: { WEBHOOK_URL: rx.url, WEBHOOK_SECRET: SECRET, PUBLIC_ORIGIN: ORIGIN },
    });
    const alert = await raiseFall(h, clock, 'home-1-01', closers);
    await eventually(() => rx.got.length === 1, 10_000, 'the first call');
    clock.advance(seconds(1)); // the webhook's first retry, 1 s later on the clock
    await eventually(() => rx.got.length === 2, 10_000, 'the retry');
    const [first, retry] = rx.got;
    const worker = h.plan.staff.find((s) => s.id === WORKER)!;
    expect(first!.valid && retry!.valid).toBe(true);
    expect(first!.body).toMatchObject({
      kind: 'staff',
      alertId: alert.id,
      recipient: { staffId: WORKER, name: worker.name, phone: worker.phone },
      lang: 'zh',
      link: `${ORIGIN}/#/respond/${alert.id}`,
    });
    const text = String(first!.body.text);
    expect([...text].length).toBeLessThanOrEqual(70);
    expect(text).toContain('跌倒');
    expect(first!.body.idempotencyKey).toMatch(/^[0-9a-f]{32}$/);
    expect(first!.key).toBe(first!.body.idempotencyKey);
    expect(retry!.key).toBe(first!.key);
    // Access notes never leave in a notice.
    const notes = (await h.store.getHousehold('home-1-01'))!.accessNotes;
    expect(JSON.stringify(first!.body)).not.toContain(notes);

    // A dispatcher's re-send is a new notice: a new key, and it is audited.
    const dispatcher = await login(h.baseUrl, 'dispatcher');
    const r = await apiCall(h.baseUrl, dispatcher, 'POST', `/api/alerts/${alert.id}/resend`, {
      staffId: WORKER,
    });
    expect(r.status).toBe(202);
    await eventually(() => rx.got.length === 3, 10_000, 'the re-sent notice');
    expect(rx.got[2]!.body.reason).toBe('resend');
    expect(rx.got[2]!.key).not.toBe(first!.key);
    expect((await h.store.queryAudit({ action: 'alert.resend', limit: 5 }))[0]).toMatchObject({
      actor: 'dispatcher-1',
      target: alert.id,
    });
    // A responder may not re-send; nor may anyone once the alert is closed.
    const responder = await login(h.baseUrl, 'g1-worker');
    expect((await apiCall(h.baseUrl, responder, 'POST', `/api/alerts/${alert.id}/resend`, {})).status).toBe(
      403,
    );
  });

  it('keeps every SMS text within one message, however long the address', async () => {
    const { smsText } = await import('../../dispatcher/notify/texts.ts');
    const long = '阳光社区'.repeat(30);
    for (const reason of ['notify_primary', 'notify_next', 'notify_all', 'sla_breach', 'resend']) {
      expect(
        [...smsText('zh', { rule: 'BATHROOM_DWELL', address: long, reason })].length,
      ).toBeLessThanOrEqual(70);
      expect(
        smsText('en', { rule: 'NO_MORNING_ACTIVITY', address: long, reason }).length,
      ).toBeLessThanOrEqual(160);
    }
  });
});

describe('family updates', () => {
  it('tells the contacts who opted in, in order, when a fall is raised, someone is on the way and it is resolved', async () => {
    const clock = new ManualClock(DAY);
    const rx = await bridge();
    h = await startHarness({ clock, env: { WEBHOOK_URL: rx.url, WEBHOOK_SECRET: SECRET } });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const home = (await h.store.getHousehold('home-1-01'))!;
    const contacts = [
      { name: '李女儿', relation: '女儿', phone: '13800000001', updates: true },
      { name: '王邻居', relation: '邻居', phone: '13800000002' },
      { name: '李儿子', relation: '儿子', phone: '13800000003', updates: true },
    ];
    const saved = await apiCall(h.baseUrl, admin, 'POST', '/api/households', {
      ...home,
      contacts,
    });
    expect(saved.status).toBe(201);
    // The opt-in is audited, naming the contacts by position.
    expect((await h.store.queryAudit({ action: 'household.family_updates', limit: 5 }))[0]).toMatchObject({
      target: 'home-1-01',
      detail: {
        contacts: [
          { contact: 0, updates: true },
          { contact: 2, updates: true },
        ],
      },
    });

    const alert = await raiseFall(h, clock, 'home-1-01', closers);
    const family = () => rx.got.filter((g) => g.body.kind === 'family');
    await eventually(() => family().length === 2, 10_000, 'the raised updates');
    expect(family().map((g) => [g.body.stage, (g.body.recipient as { phone: string }).phone])).toEqual([
      ['raised', '13800000001'],
      ['raised', '13800000003'],
    ]);
    expect(String(family()[0]!.body.text)).toContain('社区已收到');
    expect(JSON.stringify(family())).not.toContain(home.accessNotes);

    const worker = await login(h.baseUrl, 'g1-worker');
    for (const step of ['accept', 'en-route', 'on-site'])
      expect((await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${alert.id}/${step}`, {})).status).toBe(
        200,
      );
    await eventually(() => family().length === 4, 10_000, 'the on-the-way updates');
    const resolved = await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${alert.id}/resolve`, {
      outcome: 'assisted',
      note: '已扶起，无大碍',
    });
    expect(resolved.status).toBe(200);
    await eventually(() => family().length === 6, 10_000, 'the resolved updates');
    expect(family().map((g) => g.body.stage)).toEqual([
      'raised',
      'raised',
      'en_route',
      'en_route',
      'resolved',
      'resolved',
    ]);
    // Nobody else, and the visit note stays in the dispatch room.
    expect(JSON.stringify(family())).not.toContain('13800000002');
    expect(JSON.stringify(family())).not.toContain('已扶起');
    const recorded = (await deliveries(h, alert.id)).filter((d) => d.channel === 'family');
    expect(recorded).toHaveLength(6);
    expect(recorded.every((d) => d.ok)).toBe(true);
  });

  it('never tells a family of a technical alert', async () => {
    const clock = new ManualClock(DAY);
    const rx = await bridge();
    h = await startHarness({ clock, env: { WEBHOOK_URL: rx.url, WEBHOOK_SECRET: SECRET } });
    const home = (await h.store.getHousehold('home-1-01'))!;
    await h.store.upsertHousehold({
      ...home,
      contacts: [{ name: '李女儿', relation: '女儿', phone: '13800000001', updates: true }],
    });
    h.service.directory.invalidateHome('home-1-01');
    const door = await device(h, clock, 'home-1-01', 'door');
    await door.send({ type: 'heartbeat', battery: 5 });
    const low = await eventually(
      async () =>
        (await h!.store.listAlerts({ householdId: 'home-1-01', state: 'open' })).find(
          (a: Alert) => a.rule === 'LOW_BATTERY',
        ),
      10_000,
      'a LOW_BATTERY alert',
    );
    await door.disconnect();
    expect(low.severity).toBe('technical');
    // A safety alert afterwards still reaches the family: the technical one was skipped, not lost.
    await raiseFall(h, clock, 'home-1-01', closers);
    await eventually(() => rx.got.some((g) => g.body.kind === 'family'), 10_000, 'the fall update');
    expect(rx.got.filter((g) => g.body.kind === 'family').map((g) => g.body.alertId)).not.toContain(low.id);
  });
});
