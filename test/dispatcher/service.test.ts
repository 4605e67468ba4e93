/**
 * The whole service on loopback ports with a real SQLite file, driven as in the field: a fall radar
 * publishes over MQTT with its own credentials, responders listen on socket.io and on their MQTT topic,
 * and act through the HTTP API. Time is a manual clock, so SLA steps are checked at their exact minute.
 */
import { join } from 'node:path';
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import type {
  Alert,
  ChannelHealth,
  ClientToServerEvents,
  ServerToClientEvents,
} from '../../dispatcher/api/types.ts';
import { topics } from '../../gateway/protocol.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes, ms } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import { apiCall, eventually, type Harness, login, staffApp, startHarness } from '../helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const NIGHT = instant(Date.parse('2026-03-10T23:30:00+08:00'));

type Client = Socket<ServerToClientEvents, ClientToServerEvents>;
const open: { close(): unknown }[] = [];
let h: Harness | undefined;

afterEach(async () => {
  for (const c of open.splice(0)) c.close();
  await h?.close();
  h = undefined;
});

async function live(baseUrl: string, username: string) {
  const token = await login(baseUrl, username);
  const socket: Client = io(baseUrl, { auth: { token }, transports: ['websocket'], reconnection: false });
  open.push(socket);
  const notes: { alertId: string; reason: string }[] = [];
  const alerts: { alert: Alert; action: string }[] = [];
  socket.on('notification', (n) => notes.push(n));
  socket.on('alert', (a) => alerts.push(a));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return { token, socket, notes, alerts };
}

/** The MQTT channel's delivery record of an alert, once written. */
const mqttDelivery = (alertId: string) =>
  eventually(
    async () => (await h!.store.listDeliveries(alertId)).find((d) => d.channel === 'mqtt'),
    5000,
    'the MQTT delivery record',
  );

async function fallRadar(h: Harness, clock: ManualClock, homeId: string) {
  const id = h.devices.find((d) => d.homeId === homeId && d.kind === 'fall')!;
  const dev = new SimDevice(id, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
  await dev.connect();
  open.push({ close: () => dev.disconnect() });
  return dev;
}

/** A fall at the home, raised and notified: the alert as stored. */
async function notifiedFall(h: Harness, clock: ManualClock, homeId: string) {
  const radar = await fallRadar(h, clock, homeId);
  await radar.send({ type: 'fall', state: 'detected' });
  return eventually(async () => (await h.store.listAlerts({ state: 'notified' }))[0], 5000, 'notified alert');
}

describe('a fall reaches the responder on duty', () => {
  it('raises a critical FALL alert and notifies the day-shift primary on socket.io and MQTT', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const worker = await live(h.baseUrl, 'g1-worker');
    const leader = await live(h.baseUrl, 'g1-leader');
    const dispatcher = await live(h.baseUrl, 'dispatcher');

    // The primary's native app listens on its own staff topic.
    const app = await staffApp(h, 'grid-1-worker', worker.token);
    open.push({ close: () => app.end(true) });
    await app.subscribeAsync(topics.staffAlerts('grid-1-worker'), { qos: 1 });
    const onApp = new Promise<{ alertId: string; rule: string }>((r) =>
      app.on('message', (_t, p) => r(JSON.parse(p.toString()))),
    );

    const radar = await fallRadar(h, clock, 'home-1-01');
    await radar.send({ type: 'fall', state: 'detected', room: 'bathroom', confidence: 0.93 });

    const note = await eventually(() => worker.notes[0], 5000, 'notification to the primary');
    const stored = await h.store.getAlert(note.alertId);
    expect(stored).toMatchObject({
      rule: 'FALL',
      severity: 'critical',
      state: 'notified',
      householdId: 'home-1-01',
      assigneeId: 'grid-1-worker',
    });
    expect(stored!.onSiteDueAt).toBe(DAY + minutes(15));
    expect((await onApp).alertId).toBe(note.alertId);
    // The app listened: the MQTT notice is recorded as sent.
    const mqttSent = await mqttDelivery(note.alertId);
    expect(mqttSent).toMatchObject({ staffId: 'grid-1-worker', ok: true, error: null });
    expect(leader.notes).toEqual([]);
    await eventually(
      () => dispatcher.alerts.find((a) => a.alert.id === note.alertId && a.alert.state === 'notified'),
      5000,
      'dispatch screen update',
    );
  });

  it('records an MQTT notice to a responder with no app as unreachable, not sent, and keeps the channel healthy', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const worker = await live(h.baseUrl, 'g1-worker');
    // The app is connected but has not subscribed to its topic: nothing would reach it.
    const app = await staffApp(h, 'grid-1-worker', worker.token);
    open.push({ close: () => app.end(true) });
    const radar = await fallRadar(h, clock, 'home-1-01');
    await radar.send({ type: 'fall', state: 'detected' });
    const note = await eventually(() => worker.notes[0], 5000, 'notification on the page');
    const mqttTried = await mqttDelivery(note.alertId);
    expect(mqttTried).toMatchObject({ staffId: 'grid-1-worker', ok: false, error: 'no app subscribed' });
    const d = await login(h.baseUrl, 'dispatcher');
    const health = await apiCall<{ channels: ChannelHealth[] }>(h.baseUrl, d, 'GET', '/api/notify/health');
    expect(health.body.channels.find((c) => c.channel === 'mqtt')).toMatchObject({
      status: 'ok',
      failures: 0,
    });
  });

  it('routes a night fall to the night-shift social worker', async () => {
    const clock = new ManualClock(NIGHT);
    h = await startHarness({ clock });
    const social = await live(h.baseUrl, 'g2-social');
    const radar = await fallRadar(h, clock, 'home-2-02');
    await radar.send({ type: 'fall', state: 'detected' });
    const note = await eventually(() => social.notes[0], 5000, 'night notification');
    expect((await h.store.getAlert(note.alertId))?.responders).toEqual(['grid-2-social', 'grid-2-property']);
  });

  it('escalates to the next responder at exactly 3 minutes, and resumes the ladder after a restart', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const alert = await notifiedFall(h, clock, 'home-1-02');
    const leader = await live(h.baseUrl, 'g1-leader');

    await clock.advance(ms(minutes(3) - 1));
    // The step's timer still waits for its exact instant (the clock awaited every due timer's work).
    expect(clock.pendingTimers().find((t) => t.name.startsWith(`escalation ${alert.id}`))?.at).toBe(
      alert.raisedAt + minutes(3),
    );
    expect(leader.notes).toEqual([]);
    await clock.advance(ms(1));
    await eventually(
      () => leader.notes.find((n) => n.alertId === alert.id && n.reason === 'notify_next'),
      5000,
      'escalation to the leader',
    );

    // Restart (as after a crash): the stored deadline re-arms the 6-minute step.
    for (const c of open.splice(0)) c.close();
    await h.restart();
    expect((await h.store.getAlert(alert.id))?.nextStepAt).toBe(DAY + minutes(6));
    await clock.advance(minutes(3));
    await eventually(async () => (await h!.store.getAlert(alert.id))?.flagged, 5000, 'flagged at 6 minutes');
    const history = await h.store.alertHistory(alert.id);
    expect(history.filter((e) => e.action === 'escalate').map((e) => e.data.step)).toEqual([
      'notify_next',
      'notify_all',
    ]);
  });

  it('lets one responder accept and tells a second one the alert is taken (409 with the state)', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const alert = await notifiedFall(h, clock, 'home-1-01');
    const [a, b] = await Promise.all([login(h.baseUrl, 'g1-worker'), login(h.baseUrl, 'g1-leader')]);
    const results = await Promise.all([
      apiCall(h.baseUrl, a, 'POST', `/api/alerts/${alert.id}/accept`, {}),
      apiCall(h.baseUrl, b, 'POST', `/api/alerts/${alert.id}/accept`, {}),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(results.find((r) => r.status === 409)!.body).toMatchObject({
      error: 'invalid_transition',
      state: 'accepted',
    });
  });

  it('counts the SLA figures per community on /metrics: accepted within 3 min, on site within 15 min, breaches', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const community = (await h.store.getGrid('grid-1'))!.community;
    const alert = await notifiedFall(h, clock, 'home-1-01');
    const worker = await login(h.baseUrl, 'g1-worker');
    await clock.advance(ms(150_000)); // accepted 2.5 min after the raise
    expect((await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${alert.id}/accept`, {})).status).toBe(200);
    await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${alert.id}/en-route`, {});
    await clock.advance(minutes(14)); // 16.5 min after the raise: breached
    await eventually(async () => (await h!.store.getAlert(alert.id))?.slaBreached || null, 5000, 'breach');
    expect((await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${alert.id}/on-site`, {})).status).toBe(
      200,
    );
    const text = await (await fetch(`${h.baseUrl}/metrics`)).text();
    const figure = (name: string, extra = '') => {
      const m = new RegExp(`^${name}\\{${extra}community="${community}"\\} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : null;
    };
    expect(figure('g365_sla_safety_alerts_total')).toBe(1);
    expect(figure('g365_sla_accept_seconds_bucket', 'le="180",')).toBe(1);
    expect(figure('g365_sla_accept_seconds_bucket', 'le="120",')).toBe(0);
    expect(figure('g365_sla_on_site_seconds_bucket', 'le="900",')).toBe(0);
    expect(figure('g365_sla_on_site_seconds_bucket', 'le="1200",')).toBe(1);
    expect(figure('g365_sla_breaches_total')).toBe(1);
  });

  it('keeps the alert, its deadlines and its history across a restart', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const alert = await notifiedFall(h, clock, 'home-2-01');
    for (const c of open.splice(0)) c.close();
    await h.restart();
    const token = await login(h.baseUrl, 'dispatcher');
    const r = await apiCall<{ alerts: Alert[] }>(h.baseUrl, token, 'GET', '/api/alerts?state=open');
    expect(r.body.alerts.map((x) => [x.id, x.state, x.onSiteDueAt])).toEqual([
      [alert.id, 'notified', DAY + minutes(15)],
    ]);
    // The rules resumed from their cursor: no second alert for the same event.
    expect(await h.store.listAlerts({})).toHaveLength(1);
    const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^g365_rules_cursor ${await h.store.getCursor('rules')}$`, 'm'));
    expect(metrics).toMatch(/^g365_rules_set_aside_total 0$/m);
    // The household index reached the log again on its own thread, and nothing failed there.
    const index = await eventually(
      async () => {
        const m = await (await fetch(`${h!.baseUrl}/metrics`)).text();
        return /^g365_home_index_lag_events 0$/m.test(m) && m;
      },
      5000,
      'household index caught up',
    );
    expect(index).toMatch(/^g365_home_index_failures_total 0$/m);
  });
});

describe('HTTP API edges', () => {
  it('answers 401 without a token, 403 for a forbidden role and 400 naming the bad field', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    expect((await apiCall(h.baseUrl, null, 'GET', '/api/alerts')).status).toBe(401);
    const responder = await login(h.baseUrl, 'g1-worker');
    expect(
      (await apiCall(h.baseUrl, responder, 'POST', '/api/grids', { id: 'x', name: 'x', community: 'c' }))
        .status,
    ).toBe(403);
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const bad = await apiCall<{ message: string }>(h.baseUrl, admin, 'POST', '/api/devices', {
      id: 'd-1',
      homeId: 'home-1-01',
      kind: 'toaster',
      room: 'kitchen',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/kind/);
    const notJson = await apiCall(h.baseUrl, admin, 'POST', '/api/grids', '{not json');
    expect(notJson.status).toBe(400);
  });

  it('provisions a device whose secret is shown once and works for MQTT login', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const r = await apiCall<{ id: string; secret: string }>(h.baseUrl, admin, 'POST', '/api/devices', {
      id: 'home-1-01-sos',
      homeId: 'home-1-01',
      kind: 'button',
      room: 'bedroom',
    });
    expect(r.status).toBe(201);
    expect(r.body.secret.length).toBeGreaterThanOrEqual(24);
    const state = await apiCall<{ device: Record<string, unknown> }>(
      h.baseUrl,
      admin,
      'GET',
      '/api/devices/home-1-01-sos',
    );
    expect(JSON.stringify(state.body)).not.toContain(r.body.secret);
    const dev = new SimDevice(
      { id: 'home-1-01-sos', homeId: 'home-1-01', kind: 'button', room: 'bedroom', secret: r.body.secret },
      { host: '127.0.0.1', port: h.service.mqttPort },
      clock,
    );
    await dev.connect();
    open.push({ close: () => dev.disconnect() });
    await dev.send({ type: 'sos' });
    await eventually(
      async () => (await h!.store.listAlerts({ state: 'open' })).find((a) => a.rule === 'SOS'),
      5000,
      'SOS alert',
    );
  });

  it('shows access notes only on request and audits each read', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const d = await login(h.baseUrl, 'dispatcher');
    const plain = await apiCall<{ household: Record<string, unknown> }>(
      h.baseUrl,
      d,
      'GET',
      '/api/households/home-1-01',
    );
    expect(plain.body.household.accessNotes).toBeUndefined();
    const withNotes = await apiCall<{ household: Record<string, unknown> }>(
      h.baseUrl,
      d,
      'GET',
      '/api/households/home-1-01?include=accessNotes',
    );
    expect(typeof withNotes.body.household.accessNotes).toBe('string');
    const audit = await h.store.listAudit(20);
    expect(audit.find((e) => e.action === 'household.read_access_notes')).toMatchObject({
      actor: 'dispatcher-1',
      target: 'home-1-01',
    });
    const other = await login(h.baseUrl, 'g2-worker');
    expect((await apiCall(h.baseUrl, other, 'GET', '/api/households/home-1-01')).status).toBe(404);
  });
});

describe('routing around people who cannot answer', () => {
  it('skips a disabled responder: the next on the roster becomes the primary', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const r = await apiCall(h.baseUrl, admin, 'PATCH', '/api/staff/grid-1-worker', { disabled: true });
    expect(r.status).toBe(200);
    const leader = await live(h.baseUrl, 'g1-leader');
    const radar = await fallRadar(h, clock, 'home-1-01');
    await radar.send({ type: 'fall', state: 'detected' });
    const note = await eventually(() => leader.notes[0], 5000, 'notification to the next responder');
    const alert = await h.store.getAlert(note.alertId);
    expect(alert).toMatchObject({ assigneeId: 'grid-1-leader', state: 'notified' });
    expect(alert!.responders).not.toContain('grid-1-worker');
  });

  it('lets cover from another grid open and accept the alert it was notified of', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const cover = await apiCall(h.baseUrl, admin, 'POST', '/api/roster/overrides', {
      gridId: 'grid-1',
      date: '2026-03-10',
      shift: 'day',
      kind: 'cover',
      replacementId: 'grid-2-worker',
    });
    expect(cover.status).toBe(201);
    const helper = await live(h.baseUrl, 'g2-worker');
    const alert = await notifiedFall(h, clock, 'home-1-02');
    await clock.advance(minutes(6));
    await eventually(
      () => helper.notes.find((n) => n.alertId === alert.id),
      5000,
      'notification to the cover',
    );
    expect((await apiCall(h.baseUrl, helper.token, 'GET', `/api/alerts/${alert.id}`)).status).toBe(200);
    const accepted = await apiCall<{ alert: Alert }>(
      h.baseUrl,
      helper.token,
      'POST',
      `/api/alerts/${alert.id}/accept`,
      {},
    );
    expect(accepted.status).toBe(200);
    expect(accepted.body.alert.assigneeId).toBe('grid-2-worker');
  });
});

describe('restart between an escalation step and its notices', () => {
  it('sends the notices a crash interrupted, once, when the service starts again', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const { raise } = await import('../../dispatcher/alerts/lifecycle.ts');
    const { runDueSteps } = await import('../../dispatcher/alerts/escalation.ts');
    await h.restart(async () => {
      // While the service is down: the alert and its step-0 history are stored, no delivery was attempted
      // (the process died between the two).
      const { SqliteStore } = await import('../../dispatcher/store/sqlite.ts');
      const s = new SqliteStore(join(h!.dir, 'guardian365.sqlite'));
      const r = raise(
        {
          rule: 'FALL',
          householdId: 'home-1-01',
          deviceId: 'home-1-01-fall',
          at: DAY,
          evidence: { seq: null, deviceId: 'home-1-01-fall', type: 'fall', at: DAY, summary: 'fall' },
          explanation: { zh: '跌倒', en: 'fall' },
        },
        {
          id: 'al_crash',
          gridId: 'grid-1',
          community: '阳光社区',
          responders: ['grid-1-worker', 'grid-1-leader'],
        },
      );
      await s.saveAlert(r.alert, r.history);
      const step = runDueSteps(r.alert, DAY, 0)!;
      await s.saveAlert(step.alert, step.history);
      await s.close();
    });
    await eventually(
      async () => (await h!.store.listDeliveries('al_crash')).some((d) => d.staffId === 'grid-1-worker'),
      5000,
      'the interrupted notice',
    );
    const sent = (await h.store.listDeliveries('al_crash')).filter((d) => d.channel === 'mqtt');
    expect(sent.map((d) => d.staffId)).toEqual(['grid-1-worker']);
  });
});

describe('live sessions follow account changes', () => {
  it('drops a responder page at once when the account is disabled, and it cannot come back', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const worker = await live(h.baseUrl, 'g1-worker');
    // The same person's native app on the staff MQTT topic.
    const app = await staffApp(h, 'grid-1-worker', worker.token);
    open.push({ close: () => app.end(true) });
    const appClosed = new Promise<void>((r) => app.once('close', () => r()));
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const dropped = new Promise<string>((r) => worker.socket.once('disconnect', (reason) => r(reason)));
    expect(
      (await apiCall(h.baseUrl, admin, 'PATCH', '/api/staff/grid-1-worker', { disabled: true })).status,
    ).toBe(200);
    expect(await dropped).toBe('io server disconnect');
    const again = new Promise<string>((r) => worker.socket.once('connect_error', (e) => r(e.message)));
    worker.socket.connect();
    expect(await again).toBe('unauthenticated');
    await appClosed;
    // Logging in again over MQTT with the old token is refused (CONNACK 4).
    await expect(staffApp(h, 'grid-1-worker', worker.token)).rejects.toMatchObject({ code: 4 });
  });
});
