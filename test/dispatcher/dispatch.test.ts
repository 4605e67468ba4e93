/**
 * Dispatch through the whole real service (SPEC §6): the ladder at each exact minute, the lifecycle over
 * HTTP with role checks, arrival suggested by the door, technical alerts in the maintenance queue, shift
 * edges (unstaffed grids, handover) and the audit log. Time is a ManualClock driven to the millisecond.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type {
  Alert,
  CoverageView,
  HandoverReport,
  HistoryEntry,
  MaintenanceQueue,
  RosterWeekView,
} from '../../dispatcher/api/types.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes, ms, seconds } from '../../kernel/time.ts';
import { apiCall, eventually, type Harness, login, startHarness, TEST_PASSWORD } from '../helpers.ts';
import {
  communityDesks,
  device,
  raiseFall as fallAt,
  type LiveClient,
  liveClient,
} from './dispatch-helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00')); // a Tuesday
const NIGHT = instant(Date.parse('2026-03-10T23:30:00+08:00'));

const closers: { close(): unknown }[] = [];
let h: Harness | undefined;

afterEach(async () => {
  for (const c of closers.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

async function live(username: string, password?: string): Promise<LiveClient> {
  const c = await liveClient(h!.baseUrl, username, password);
  closers.push(c);
  return c;
}

const raiseFall = (clock: ManualClock, homeId: string) => fallAt(h!, clock, homeId, closers);

/**
 * When the clock's next timer named `prefix…` is due (null: none pending). `await clock.advance` has awaited
 * every due timer's work, so a timer still pending at its exact instant proves that nothing happened yet.
 */
/** The rules have processed every event logged so far (the door events sent before this line). */
const rulesCaughtUp = () =>
  eventually(
    async () => (await h!.store.readEvents(await h!.store.getCursor('rules'), 1)).length === 0,
    5000,
    'the rules to process every logged event',
  );

const dueAt = (clock: ManualClock, prefix: string): number | null =>
  clock.pendingTimers().find((t) => t.name.startsWith(prefix))?.at ?? null;
const steps = (history: HistoryEntry[]) =>
  history.filter((e) => e.actor === 'escalation').map((e) => (e.data.step as string) ?? e.action);

describe('the escalation ladder at its exact minutes (SPEC §6)', () => {
  it('re-notifies at 3, notifies everyone and flags at 6, warns at 12 and breaches at 15 min — each once, not 1 ms early', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const leader = await live('g1-leader');
    const buddy = await live('g1-buddy');
    const supervisor = await live('supervisor');
    const alert = await raiseFall(clock, 'home-1-01');
    expect(alert.assigneeId).toBe('grid-1-worker');
    const stored = async () => (await h!.store.getAlert(alert.id))!;

    await clock.advance(ms(minutes(3) - 1));
    expect(dueAt(clock, `escalation ${alert.id}`)).toBe(alert.raisedAt + minutes(3));
    expect(leader.got.notification).toEqual([]);
    await clock.advance(ms(1));
    await eventually(
      () => leader.got.notification.find((n) => n.reason === 'notify_next'),
      5000,
      '3-min step',
    );

    await clock.advance(ms(minutes(3) - 1));
    expect(dueAt(clock, `escalation ${alert.id}`)).toBe(alert.raisedAt + minutes(6));
    expect((await stored()).flagged).toBe(false);
    expect(buddy.got.notification).toEqual([]);
    await clock.advance(ms(1));
    await eventually(async () => (await stored()).flagged, 5000, '6-min flag');
    await eventually(() => buddy.got.notification.find((n) => n.reason === 'notify_all'), 5000, 'notify all');

    await clock.advance(ms(minutes(6) - 1));
    expect(dueAt(clock, `escalation ${alert.id}`)).toBe(alert.raisedAt + minutes(12));
    expect((await stored()).slaAtRisk).toBe(false);
    await clock.advance(ms(1));
    await eventually(async () => (await stored()).slaAtRisk, 5000, '12-min warning');

    await clock.advance(ms(minutes(3) - 1));
    expect(dueAt(clock, `escalation ${alert.id}`)).toBe(alert.raisedAt + minutes(15));
    expect((await stored()).slaBreached).toBe(false);
    expect(supervisor.got.notification).toEqual([]);
    await clock.advance(ms(1));
    await eventually(async () => (await stored()).slaBreached, 5000, '15-min breach');
    await eventually(
      () => supervisor.got.notification.find((n) => n.alertId === alert.id && n.reason === 'sla_breach'),
      5000,
      'supervisor notice',
    );

    await clock.advance(minutes(30));
    expect(dueAt(clock, `escalation ${alert.id}`)).toBeNull();
    const history = await h.store.alertHistory(alert.id);
    expect(steps(history)).toEqual([
      'notify_primary',
      'notify_next',
      'notify_all',
      'sla_at_risk',
      'sla_breach',
    ]);
    expect(history.filter((e) => e.action === 'sla_breach').map((e) => e.at)).toEqual([DAY + minutes(15)]);
    expect((await stored()).nextStepAt).toBeNull();
  });

  it('stops the accept steps once accepted and the on-site steps once on site', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const alert = await raiseFall(clock, 'home-1-02');
    const worker = await login(h.baseUrl, 'g1-worker');
    await clock.advance(minutes(2));
    expect((await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${alert.id}/accept`, {})).status).toBe(200);
    await clock.advance(minutes(8));
    expect((await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${alert.id}/on-site`, {})).status).toBe(
      200,
    );
    await clock.advance(minutes(20));
    expect(dueAt(clock, `escalation ${alert.id}`)).toBeNull();
    const a = (await h.store.getAlert(alert.id))!;
    expect(a).toMatchObject({ state: 'on_site', flagged: false, slaAtRisk: false, slaBreached: false });
    expect(steps(await h.store.alertHistory(alert.id))).toEqual(['notify_primary']);
  });
});

describe('the lifecycle over HTTP (SPEC §6, §11)', () => {
  it('records assign, reassign (notifying the new assignee), notes and calls with who, when and channel', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const leader = await live('g1-leader');
    const buddy = await live('g1-buddy');
    const alert = await raiseFall(clock, 'home-1-01');
    const d = await login(h.baseUrl, 'dispatcher');
    const act = (action: string, body: unknown, token = d) =>
      apiCall<{ alert: Alert; error?: string; state?: string }>(
        h!.baseUrl,
        token,
        'POST',
        `/api/alerts/${alert.id}/${action}`,
        body,
      );

    await clock.advance(seconds(30));
    expect((await act('assign', { staffId: 'grid-1-leader' })).body.alert.assigneeId).toBe('grid-1-leader');
    await eventually(
      () => leader.got.notification.find((n) => n.reason === 'assigned'),
      5000,
      'assign notice',
    );
    await clock.advance(seconds(30));
    expect((await act('assign', { staffId: 'grid-1-buddy' })).status).toBe(200);
    await eventually(
      () => buddy.got.notification.find((n) => n.reason === 'assigned'),
      5000,
      'reassign notice',
    );
    expect((await act('assign', { staffId: 'nobody' })).status).toBe(400);
    expect((await act('note', { text: 'neighbour has a key' })).status).toBe(200);
    expect((await act('call', { to: 'resident', result: 'no answer' })).status).toBe(200);

    const history = await h.store.alertHistory(alert.id);
    const people = history.filter((e) => e.actor === 'dispatcher-1');
    expect(people.map((e) => [e.action, e.channel, e.at - DAY])).toEqual([
      ['assign', 'api', 30_000],
      ['assign', 'api', 60_000],
      ['note', 'api', 60_000],
      ['call', 'api', 60_000],
    ]);
    expect(people[1]!.data).toEqual({ staffId: 'grid-1-buddy', previous: 'grid-1-leader' });
    expect(people[3]!.data).toEqual({ to: 'resident', result: 'no answer' });
  });

  it('requires an outcome and a visit note to resolve, refuses invalid transitions with 409 and the state, and checks roles', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const alert = await raiseFall(clock, 'home-1-01');
    const worker = await login(h.baseUrl, 'g1-worker');
    const other = await login(h.baseUrl, 'g2-worker');
    const act = (token: string, action: string, body: unknown = {}) =>
      apiCall<{ error: string; state?: string; message: string; alert?: Alert }>(
        h!.baseUrl,
        token,
        'POST',
        `/api/alerts/${alert.id}/${action}`,
        body,
      );
    expect((await act(worker, 'en-route')).body).toMatchObject({
      error: 'invalid_transition',
      state: 'notified',
    });
    expect((await act(worker, 'cancel', { reason: 'x' })).status).toBe(403);
    expect((await act(other, 'accept')).status).toBe(404);
    expect((await act(worker, 'accept')).status).toBe(200);
    expect((await act(worker, 'resolve', { outcome: 'assisted' })).body.message).toMatch(/note/);
    expect((await act(worker, 'resolve', { outcome: 'teleported', note: 'x' })).status).toBe(400);
    const done = await act(worker, 'resolve', {
      outcome: 'false_alarm',
      note: 'found well in the kitchen; door locked',
    });
    expect(done.body.alert).toMatchObject({ state: 'resolved', outcome: 'false_alarm' });
    const again = await act(worker, 'accept');
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: 'invalid_transition', state: 'resolved' });
    const resolved = (await h.store.alertHistory(alert.id)).find((e) => e.action === 'resolve')!;
    expect(resolved).toMatchObject({ actor: 'grid-1-worker', channel: 'api', toState: 'resolved' });
    expect(resolved.data).toEqual({ outcome: 'false_alarm', note: 'found well in the kitchen; door locked' });
  });

  it('flags a door opening after en route as a suggested arrival, live to the responder, who confirms on site', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const worker = await live('g1-worker');
    const dispatcher = await live('dispatcher');
    const alert = await raiseFall(clock, 'home-1-01');
    const door = await device(h, clock, 'home-1-01', 'door');
    closers.push({ close: () => door.disconnect() });
    const act = (action: string) =>
      apiCall<{ alert: Alert }>(h!.baseUrl, worker.token, 'POST', `/api/alerts/${alert.id}/${action}`, {});

    await act('accept');
    // A door opening before the responder set off is not an arrival.
    await clock.advance(seconds(20));
    await door.send({ type: 'door', state: 'open' });
    await door.send({ type: 'door', state: 'closed' });
    await clock.advance(seconds(10));
    await act('en-route');
    await rulesCaughtUp();
    expect((await h.store.getAlert(alert.id))?.arrivalSuggestedAt ?? null).toBeNull();

    await clock.advance(minutes(4));
    await door.send({ type: 'door', state: 'open' });
    const suggested = await eventually(
      () => worker.got.arrivalSuggested.find((s) => s.alertId === alert.id),
      5000,
      'arrival suggestion',
    );
    expect(suggested.doorAt).toBe(DAY + seconds(30) + minutes(4));
    await eventually(() => dispatcher.got.arrivalSuggested[0], 5000, 'dispatch screen sees it');
    expect((await h.store.getAlert(alert.id))?.state).toBe('en_route');
    const onSite = await act('on-site');
    expect(onSite.body.alert).toMatchObject({ state: 'on_site', onSiteAt: DAY + seconds(30) + minutes(4) });
    expect(
      (await h.store.alertHistory(alert.id)).filter((e) => e.action === 'arrival_suggested'),
    ).toHaveLength(1);
  });
});

describe("a fall's first notice (RULE-16)", () => {
  it('reaches the dispatch screen already routed: the raise and the first notice are one write', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const worker = await live('g1-worker');
    const dispatcher = await live('dispatcher');
    const alert = await raiseFall(clock, 'home-1-01');
    // The screen's first word of the alert names who was told; nothing waits for a second write.
    const first = await eventually(
      () => dispatcher.got.alert.find((m) => m.alert.id === alert.id),
      5000,
      'the fall on the dispatch screen',
    );
    expect(first.action).toBe('raised');
    expect(first.alert).toMatchObject({ state: 'notified', assigneeId: 'grid-1-worker', version: 1 });
    const notice = await eventually(
      () => worker.got.notification.find((n) => n.alertId === alert.id),
      5000,
      "the responder's notice",
    );
    expect(notice.reason).toBe('notify_primary');
    const history = await h.store.alertHistory(alert.id);
    expect(history.map((e) => [e.action, e.at])).toEqual([
      ['raised', alert.raisedAt],
      ['notify', alert.raisedAt],
    ]);
    // The ladder goes on from its next step, at its minute.
    expect(dueAt(clock, `escalation ${alert.id}`)).toBe(alert.raisedAt + minutes(3));
    expect(dispatcher.got.alert.filter((m) => m.alert.id === alert.id)).toHaveLength(1);
  });
});

describe('technical alerts (SPEC §6)', () => {
  it('go to the maintenance queue due by the end of the next working day and notify nobody at night', async () => {
    const clock = new ManualClock(instant(Date.parse('2026-03-13T23:30:00+08:00'))); // Friday night
    h = await startHarness({ clock });
    const social = await live('g1-social');
    const motion = await device(h, clock, 'home-1-01', 'motion');
    closers.push({ close: () => motion.disconnect() });
    await motion.send({ type: 'heartbeat', battery: 9 });
    const alert = await eventually(
      async () => (await h!.store.listAlerts({ state: 'open' })).find((a) => a.maintenanceDueAt),
      10_000,
      'queued technical alert',
    );
    expect(alert).toMatchObject({ rule: 'LOW_BATTERY', severity: 'technical', assigneeId: null });
    // Monday 16 March, end of the day shift (20:00 Shanghai).
    expect(alert.maintenanceDueAt).toBe(Date.parse('2026-03-16T20:00:00+08:00'));
    const d = await login(h.baseUrl, 'dispatcher');
    const q = await apiCall<MaintenanceQueue>(h.baseUrl, d, 'GET', '/api/maintenance');
    expect(q.body.alerts.map((a) => a.id)).toEqual([alert.id]);
    await clock.advance(minutes(30));
    expect(dueAt(clock, `escalation ${alert.id}`)).toBeNull();
    expect(await h.store.listDeliveries(alert.id)).toEqual([]);
    expect(social.got.notification).toEqual([]);
  });

  it('are queued at start when a crash came between raising and queueing', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const { raise } = await import('../../dispatcher/alerts/lifecycle.ts');
    const { alert } = raise(
      {
        rule: 'DEVICE_OFFLINE',
        householdId: 'home-2-01',
        deviceId: 'home-2-01-door',
        at: DAY,
        evidence: { seq: null, deviceId: 'home-2-01-door', type: 'status', at: DAY, summary: 'offline' },
        explanation: { zh: '设备离线', en: 'device offline' },
      },
      { id: 'al_crash', gridId: 'grid-2', community: 'c', responders: [] },
    );
    await h.store.saveAlert(alert, []);
    await h.restart();
    // Tuesday 10:00 → due Wednesday at the end of the day shift.
    await eventually(
      async () =>
        (await h!.store.getAlert('al_crash'))?.maintenanceDueAt === Date.parse('2026-03-11T20:00:00+08:00'),
      5000,
      'queued after restart',
    );
  });

  it('are due the next day when raised on a weekday night', async () => {
    const { maintenanceDue } = await import('../../dispatcher/alerts/maintenance.ts');
    const b = { dayStart: '08:00', nightStart: '20:00' };
    expect(maintenanceDue(NIGHT, 'Asia/Shanghai', b)).toBe(Date.parse('2026-03-11T20:00:00+08:00'));
    // 03:00 on Saturday is Saturday's date: due Monday.
    expect(maintenanceDue(Date.parse('2026-03-14T03:00:00+08:00'), 'Asia/Shanghai', b)).toBe(
      Date.parse('2026-03-16T20:00:00+08:00'),
    );
  });
});

describe('shift edges (SPEC §4, §6)', () => {
  it('flags a grid with nobody on the coming night shift to the dispatch room 30 minutes before, not 1 ms earlier', async () => {
    const clock = new ManualClock(instant(Date.parse('2026-03-10T19:00:00+08:00')));
    h = await startHarness({ clock });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const r = await apiCall(h.baseUrl, admin, 'POST', '/api/roster', {
      gridId: 'grid-2',
      entries: [{ shift: 'day', staffIds: ['grid-2-worker'] }],
    });
    expect(r.status).toBe(200);
    const dispatcher = await live('dispatcher');
    const gaps = await apiCall<{ grids: { gridId: string }[]; shift: string }>(
      h.baseUrl,
      admin,
      'GET',
      '/api/duty/gaps',
    );
    expect(gaps.body).toMatchObject({ shift: 'night', grids: [{ gridId: 'grid-2' }] });

    await clock.advance(ms(minutes(30) - 1));
    expect(dueAt(clock, 'duty gap warning')).toBe(clock.now() + 1);
    expect(dispatcher.got.dutyGap).toEqual([]);
    await clock.advance(ms(1));
    const warning = await eventually(() => dispatcher.got.dutyGap[0], 5000, 'duty gap warning');
    expect(warning).toMatchObject({
      phase: 'upcoming',
      shift: 'night',
      date: '2026-03-10',
      startsAt: Date.parse('2026-03-10T20:00:00+08:00'),
      grids: [{ gridId: 'grid-2' }],
    });
    // Still unstaffed when the shift starts: flagged again as a gap now.
    await clock.advance(minutes(30));
    await eventually(() => dispatcher.got.dutyGap.find((g) => g.phase === 'now'), 5000, 'gap now');
  });

  it("shows each community's dispatch desk the duty gaps of its own grids, live and through the API", async () => {
    const clock = new ManualClock(instant(Date.parse('2026-03-10T19:00:00+08:00')));
    h = await startHarness({ clock });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    // grid-2, in a second community, has nobody on the night shift.
    await communityDesks(h, admin);
    const roster = await apiCall(h.baseUrl, admin, 'POST', '/api/roster', {
      gridId: 'grid-2',
      entries: [{ shift: 'day', staffIds: ['grid-2-worker'] }],
    });
    expect(roster.status).toBe(200);
    const gapsOf = async (who: string) => {
      const token = await login(h!.baseUrl, who, TEST_PASSWORD);
      const r = await apiCall<{ grids: { gridId: string }[] }>(h!.baseUrl, token, 'GET', '/api/duty/gaps');
      return r.body.grids.map((g) => g.gridId);
    };
    expect(await gapsOf('desk-a')).toEqual([]);
    expect(await gapsOf('desk-b')).toEqual(['grid-2']);
    expect(await gapsOf('dispatcher')).toEqual(['grid-2']);
    const deskA = await live('desk-a', TEST_PASSWORD);
    const deskB = await live('desk-b', TEST_PASSWORD);
    const central = await live('dispatcher');
    await clock.advance(minutes(30));
    await eventually(
      () => deskA.got.dutyGap.length > 0 && deskB.got.dutyGap.length > 0 && central.got.dutyGap.length > 0,
      5000,
      'the warning on every desk',
    );
    expect(deskA.got.dutyGap.flatMap((g) => g.grids.map((x) => x.gridId))).toEqual([]);
    expect(deskB.got.dutyGap[0]!.grids.map((x) => x.gridId)).toEqual(['grid-2']);
    expect(central.got.dutyGap[0]!.grids.map((x) => x.gridId)).toEqual(['grid-2']);
  });

  it('keeps the assignee across the shift change and shows the incoming shift a handover list', async () => {
    const clock = new ManualClock(instant(Date.parse('2026-03-10T19:50:00+08:00')));
    h = await startHarness({ clock });
    const alert = await raiseFall(clock, 'home-1-01');
    const worker = await login(h.baseUrl, 'g1-worker');
    expect((await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${alert.id}/accept`, {})).status).toBe(200);
    const social = await live('g1-social');
    const dispatcher = await live('dispatcher');

    await clock.advance(ms(minutes(10) - 1));
    expect(dueAt(clock, 'shift handover')).toBe(Date.parse('2026-03-10T20:00:00+08:00'));
    expect(dispatcher.got.handover).toEqual([]);
    await clock.advance(ms(1));
    const report = await eventually(() => dispatcher.got.handover[0], 5000, 'handover event');
    expect(report).toMatchObject({ shift: 'night', startsAt: Date.parse('2026-03-10T20:00:00+08:00') });
    expect(report.items).toEqual([
      expect.objectContaining({ alertId: alert.id, assigneeId: 'grid-1-worker', assigneeOnDuty: false }),
    ]);
    await eventually(() => social.got.handover[0]?.items.length === 1, 5000, 'responder handover');
    const viaApi = await apiCall<HandoverReport>(h.baseUrl, social.token, 'GET', '/api/duty/handover');
    expect(viaApi.body.items.map((i) => [i.alertId, i.assigneeId])).toEqual([[alert.id, 'grid-1-worker']]);
    expect((await h.store.getAlert(alert.id))?.assigneeId).toBe('grid-1-worker');
    const other = await login(h.baseUrl, 'g2-social');
    expect((await apiCall<HandoverReport>(h.baseUrl, other, 'GET', '/api/duty/handover')).body.items).toEqual(
      [],
    );
  });

  it('answers who covers a household now, in order, with a leave override applied', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const cover = async () =>
      (
        await apiCall<{ staff: { id: string }[]; shift: string }>(
          h!.baseUrl,
          admin,
          'GET',
          '/api/households/home-1-01/coverage',
        )
      ).body;
    expect((await cover()).staff.map((s) => s.id)).toEqual([
      'grid-1-worker',
      'grid-1-leader',
      'grid-1-buddy',
    ]);
    await apiCall(h.baseUrl, admin, 'POST', '/api/roster/overrides', {
      gridId: 'grid-1',
      date: '2026-03-10',
      shift: 'day',
      kind: 'leave',
      staffId: 'grid-1-worker',
    });
    expect((await cover()).staff.map((s) => s.id)).toEqual(['grid-1-leader', 'grid-1-buddy']);
    // A fall now goes to the leader first.
    const alert = await raiseFall(clock, 'home-1-01');
    expect(alert.responders).toEqual(['grid-1-leader', 'grid-1-buddy']);
  });
});

describe('leave and cover change who is on duty: the week grid, coverage and routing agree', () => {
  // Wednesday 2026-03-11, Shanghai. The night shift of the 11th runs 20:00 to 08:00 on the 12th.
  const sh = (local: string) => instant(Date.parse(`${local}+08:00`));
  const kinds = [
    {
      kind: 'leave',
      staffId: 'grid-1-social',
      replacementId: 'grid-2-social',
      night: ['grid-2-social', 'grid-1-property'],
    },
    { kind: 'leave', staffId: 'grid-1-social', replacementId: null, night: ['grid-1-property'] },
    {
      kind: 'swap',
      staffId: 'grid-1-social',
      replacementId: 'grid-2-social',
      night: ['grid-2-social', 'grid-1-property'],
    },
    {
      kind: 'cover',
      staffId: null,
      replacementId: 'grid-2-social',
      night: ['grid-1-social', 'grid-1-property', 'grid-2-social'],
    },
  ] as const;
  const ROTATION = ['grid-1-social', 'grid-1-property'];
  const DAY_ROTATION = ['grid-1-worker', 'grid-1-leader', 'grid-1-buddy'];

  it('gives the same answer on the week grid and GET /coverage for every kind, at both edges and across midnight', async () => {
    h = await startHarness({ clock: new ManualClock(sh('2026-03-11T10:00:00')) });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const look = async (local: string) => {
      const at = sh(local);
      const [c, w] = await Promise.all([
        apiCall<CoverageView>(h!.baseUrl, admin, 'GET', `/api/households/home-1-01/coverage?at=${at}`),
        apiCall<RosterWeekView>(h!.baseUrl, admin, 'GET', `/api/roster/week?grid=grid-1&at=${at}`),
      ]);
      const day = w.body.days.find((d) => d.date === w.body.running.date)!;
      const cell = day[w.body.running.shift];
      expect(cell.shift).toEqual(w.body.running);
      expect([c.body.shift, c.body.shiftDate]).toEqual([w.body.running.shift, w.body.running.date]);
      expect(
        c.body.staff.map((s) => s.id),
        `${local}: coverage and week grid`,
      ).toEqual(cell.staffIds);
      return cell.staffIds;
    };
    for (const k of kinds) {
      const r = await apiCall<{ override: { id: string } }>(
        h.baseUrl,
        admin,
        'POST',
        '/api/roster/overrides',
        {
          gridId: 'grid-1',
          date: '2026-03-11',
          shift: 'night',
          kind: k.kind,
          staffId: k.staffId,
          replacementId: k.replacementId,
        },
      );
      expect(r.status).toBe(201);
      expect(await look('2026-03-11T19:59:59.999')).toEqual(DAY_ROTATION);
      for (const t of [
        '2026-03-11T20:00:00.000',
        '2026-03-11T23:59:59.999',
        '2026-03-12T00:00:00.000',
        '2026-03-12T01:20:00',
        '2026-03-12T07:59:59.999',
      ])
        expect(await look(t), `${k.kind} ${k.replacementId} at ${t}`).toEqual(k.night);
      expect(await look('2026-03-12T08:00:00.000')).toEqual(DAY_ROTATION);
      expect(await look('2026-03-12T20:00:00.000')).toEqual(ROTATION);
      expect(
        (await apiCall(h.baseUrl, admin, 'DELETE', `/api/roster/overrides/${r.body.override.id}`)).status,
      ).toBe(200);
      expect(await look('2026-03-12T01:20:00')).toEqual(ROTATION);
    }
  });

  it('routes a fall at 01:20 to the substitute of the one on leave for the night shift then running', async () => {
    const clock = new ManualClock(sh('2026-03-12T01:20:00'));
    h = await startHarness({ clock });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    // The week grid names the running shift: the night that began yesterday evening.
    const week = await apiCall<RosterWeekView>(h.baseUrl, admin, 'GET', '/api/roster/week?grid=grid-1');
    expect(week.body.running).toMatchObject({ shift: 'night', date: '2026-03-11' });
    await apiCall(h.baseUrl, admin, 'POST', '/api/roster/overrides', {
      gridId: 'grid-1',
      date: week.body.running.date,
      shift: week.body.running.shift,
      kind: 'leave',
      staffId: 'grid-1-social',
      replacementId: 'grid-2-social',
    });
    const alert = await raiseFall(clock, 'home-1-01');
    expect(alert.responders).toEqual(['grid-2-social', 'grid-1-property']);
  });
});

describe('the audit log (SPEC §8)', () => {
  it('records every action and access-note read, queryable by admins by actor, target and time', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const alert = await raiseFall(clock, 'home-1-01');
    const d = await login(h.baseUrl, 'dispatcher');
    await clock.advance(seconds(5));
    await apiCall(h.baseUrl, d, 'POST', `/api/alerts/${alert.id}/note`, { text: 'calling' });
    await clock.advance(seconds(5));
    await apiCall(h.baseUrl, d, 'GET', '/api/households/home-1-01?include=accessNotes');
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    type Entries = { entries: { action: string; target: string; at: number; actor: string }[] };
    const q = async (query: string) =>
      (await apiCall<Entries>(h!.baseUrl, admin, 'GET', `/api/audit?${query}`)).body.entries.map((e) => [
        e.action,
        e.target,
        e.at - DAY,
      ]);
    expect(await q(`actor=dispatcher-1&from=${DAY + 1}`)).toEqual([
      ['household.read_access_notes', 'home-1-01', 10_000],
      ['alert.note', alert.id, 5000],
    ]);
    expect(await q(`target=${alert.id}`)).toEqual([['alert.note', alert.id, 5000]]);
    expect(await q(`actor=dispatcher-1&from=${DAY + 6000}&to=${DAY + 60_000}`)).toEqual([
      ['household.read_access_notes', 'home-1-01', 10_000],
    ]);
    expect((await apiCall(h.baseUrl, d, 'GET', '/api/audit')).status).toBe(403);
  });
});

describe('cover from another grid', () => {
  it('lets a responder assigned outside their grids see, follow live and work the alert; others may not resolve it', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const alert = await raiseFall(clock, 'home-1-01');
    const cover = await live('g2-worker');
    const d = await login(h.baseUrl, 'dispatcher');
    expect((await apiCall(h.baseUrl, cover.token, 'GET', `/api/alerts/${alert.id}`)).status).toBe(404);
    await apiCall(h.baseUrl, d, 'POST', `/api/alerts/${alert.id}/assign`, { staffId: 'grid-2-worker' });
    await eventually(
      () => cover.got.notification.find((n) => n.reason === 'assigned'),
      5000,
      'assign notice',
    );
    await eventually(() => cover.got.alert.find((a) => a.alert.assigneeId === 'grid-2-worker'), 5000, 'live');
    const list = await apiCall<{ alerts: Alert[] }>(h.baseUrl, cover.token, 'GET', '/api/alerts?state=open');
    expect(list.body.alerts.map((a) => a.id)).toEqual([alert.id]);
    const act = (token: string, action: string, body: unknown = {}) =>
      apiCall<{ error?: string }>(h!.baseUrl, token, 'POST', `/api/alerts/${alert.id}/${action}`, body);
    expect((await act(cover.token, 'accept')).status).toBe(200);
    const leader = await login(h.baseUrl, 'g1-leader');
    const notMine = await act(leader, 'resolve', { outcome: 'assisted', note: 'x' });
    expect(notMine.status).toBe(403);
    expect(notMine.body.error).toBe('not_assignee');
    expect((await act(cover.token, 'resolve', { outcome: 'assisted', note: 'helped up' })).status).toBe(200);
  });
});
