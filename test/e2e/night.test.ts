import { afterEach, describe, expect, it } from 'vitest';
import { topics } from '../../gateway/protocol.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes, seconds } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import { SimResponder } from '../../simulators/responder.ts';
import { liveClient } from '../dispatcher/dispatch-helpers.ts';
import { eventually, type Harness, login, staffApp, startHarness, TEST_PASSWORD } from '../helpers.ts';

const NIGHT = instant(Date.parse('2026-03-10T23:30:00+08:00'));
const closers: (() => unknown)[] = [];
let h: Harness | undefined;
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await h?.close();
  h = undefined;
});

describe('a night in the dispatch room', () => {
  it('gets a responder to every fall, escalating past the one who never answers to the backup', async () => {
    const clock = new ManualClock(NIGHT);
    h = await startHarness({ clock, grids: 3, perGrid: 2 });
    const errors: unknown[] = [];
    const behaviour = {
      acceptAfter: seconds(30),
      enRouteAfter: seconds(10),
      onSiteAfter: minutes(5),
      resolveAfter: minutes(2),
    };
    const responders = {
      g1: new SimResponder(h.baseUrl, 'g1-social', TEST_PASSWORD, clock, behaviour, (e) => errors.push(e)),
      g2silent: new SimResponder(h.baseUrl, 'g2-social', TEST_PASSWORD, clock, { silent: true }),
      g2backup: new SimResponder(h.baseUrl, 'g2-property', TEST_PASSWORD, clock, behaviour, (e) =>
        errors.push(e),
      ),
      g3: new SimResponder(h.baseUrl, 'g3-social', TEST_PASSWORD, clock, behaviour, (e) => errors.push(e)),
    };
    for (const r of Object.values(responders)) {
      await r.start();
      closers.push(() => r.stop());
    }
    const dispatch = await liveClient(h.baseUrl, 'dispatcher');
    closers.push(() => dispatch.close());

    // The backup's native app on the per-staff MQTT topic (QoS 1).
    const token = await login(h.baseUrl, 'g2-property');
    const app = await staffApp(h, 'grid-2-property', token);
    closers.push(() => app.end(true));
    await app.subscribeAsync(topics.staffAlerts('grid-2-property'), { qos: 1 });
    const onApp: { alertId: string; reason: string }[] = [];
    app.on('message', (_t, p) => onApp.push(JSON.parse(p.toString())));

    // Falls in three grids, through each home's own radar.
    for (const home of ['home-1-01', 'home-2-02', 'home-3-01']) {
      const id = h.devices.find((d) => d.homeId === home && d.kind === 'fall')!;
      const radar = new SimDevice(id, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
      await radar.connect();
      closers.push(() => radar.disconnect());
      await radar.send({ type: 'fall', state: 'detected', room: 'bathroom' });
    }
    const alerts = await eventually(
      async () => {
        const l = await h!.store.listAlerts({ state: 'notified' });
        return l.length === 3 ? l : undefined;
      },
      10_000,
      'three notified alerts',
    );
    const byGrid = new Map(alerts.map((a) => [a.gridId, a]));
    const g2 = byGrid.get('grid-2')!;
    await eventually(() => responders.g2silent.notifications.length > 0, 5000, 'silent one was told');

    // Twelve minutes of night in 5-second steps, letting the real I/O between steps settle. At the moments
    // the story depends on, wait for the people to have acted before time moves on (a loaded machine).
    const accepted = (r: SimResponder, id: string) =>
      eventually(() => r.accepted.includes(id), 10_000, 'accept');
    for (let t = 1; t <= 12 * 12; t++) {
      clock.advance(seconds(5));
      await new Promise((r) => setTimeout(r, 30));
      if (t === 7) {
        await accepted(responders.g1, byGrid.get('grid-1')!.id);
        await accepted(responders.g3, byGrid.get('grid-3')!.id);
      }
      if (t === 36)
        await eventually(
          () => responders.g2backup.notifications.find((n) => n.alertId === g2.id),
          10_000,
          'backup',
        );
      if (t === 43) await accepted(responders.g2backup, g2.id);
      if (t % 12 === 0) await new Promise((r) => setTimeout(r, 150));
    }
    await eventually(
      async () => (await h!.store.listAlerts({ state: 'resolved' })).length === 3,
      15_000,
      'every alert resolved',
    );
    expect(errors).toEqual([]);

    const final = new Map(
      await Promise.all(alerts.map(async (a) => [a.gridId, (await h!.store.getAlert(a.id))!] as const)),
    );
    expect(final.get('grid-1')).toMatchObject({
      assigneeId: 'grid-1-social',
      outcome: 'assisted',
      slaBreached: false,
    });
    expect(final.get('grid-3')).toMatchObject({
      assigneeId: 'grid-3-social',
      outcome: 'assisted',
      slaBreached: false,
    });
    // The one who never answered: the 3-minute step reached the backup, who took it and arrived in time.
    expect(final.get('grid-2')).toMatchObject({ assigneeId: 'grid-2-property', slaBreached: false });
    expect(final.get('grid-2')!.onSiteAt! - g2.raisedAt).toBeLessThan(minutes(15));
    const history = await h.store.alertHistory(g2.id);
    const escalation = history.find((e) => e.data.step === 'notify_next')!;
    expect(escalation.at - g2.raisedAt).toBe(minutes(3));
    expect(escalation.data.to).toEqual(['grid-2-social', 'grid-2-property']);
    expect(history.filter((e) => e.actor === 'grid-2-social')).toEqual([]);
    expect(responders.g2backup.accepted).toEqual([g2.id]);
    expect(onApp.find((m) => m.alertId === g2.id && m.reason === 'notify_next')).toBeTruthy();
    // The primaries who answered within 3 minutes never caused an escalation.
    for (const g of ['grid-1', 'grid-3'])
      expect((await h.store.alertHistory(byGrid.get(g)!.id)).filter((e) => e.action === 'escalate')).toEqual(
        [],
      );
    // The dispatch room saw every alert reach its final state live.
    for (const a of alerts)
      await eventually(
        () => dispatch.got.alert.find((x) => x.alert.id === a.id && x.alert.state === 'resolved'),
        5000,
        'dispatch screen saw the resolution',
      );
  }, 120_000);
});
