/**
 * Time acceleration (SIM-03) and simulated responders (item 4): the service and a simulated home
 * share one ScaledClock running 600 times faster than real time, so minutes of the resident's day and of
 * the SLA pass in a second; responders answer through the API and the live channel like the phone page.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../dispatcher/api/types.ts';
import { ScaledClock } from '../../kernel/clock.ts';
import { instant, minutes, seconds } from '../../kernel/time.ts';
import { SimHome } from '../../simulators/home.ts';
import { SimResponder } from '../../simulators/responder.ts';
import { localInstant, scenario } from '../../simulators/scenarios.ts';
import { apiCall, eventually, type Harness, login, startHarness, TEST_PASSWORD } from '../helpers.ts';

const ZONE = 'Asia/Shanghai';
const START = localInstant('2026-03-10', '10:00', ZONE);
const SPEED = 600;
const HOME = 'home-1-01';

let h: Harness | undefined;
const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
  await h?.close();
  h = undefined;
});

async function community(clock: ScaledClock) {
  h = await startHarness({ clock, grids: 1, perGrid: 1 });
  const home = new SimHome({
    homeId: HOME,
    devices: h.devices.filter((d) => d.homeId === HOME),
    broker: { host: '127.0.0.1', port: h.service.mqttPort },
    clock,
    zone: ZONE,
    seed: 7,
  });
  await home.start();
  stops.push(() => home.stop());
  return { h, home };
}

/** The dispatcher's view of this home's alert of a rule (one login per test: logins are rate-limited). */
async function alertOf(h: Harness, token: string, rule: string): Promise<Alert | undefined> {
  const r = await apiCall<{ alerts: Alert[] }>(h.baseUrl, token, 'GET', '/api/alerts');
  return r.body.alerts.find((a) => a.householdId === HOME && a.rule === rule);
}

describe('simulated time, faster than real time', () => {
  it('runs the routine on simulated time: the service sees half an hour of heartbeats within seconds', async () => {
    const clock = new ScaledClock(instant(START), SPEED);
    const { h, home } = await community(clock);
    const token = await login(h.baseUrl, 'dispatcher');
    const started = clock.now();
    // 30 simulated minutes after the home started: every device has sent its 5-minute heartbeats.
    const seen = await eventually(
      async () => {
        const r = await apiCall<{ device: { lastSeenAt: number | null } }>(
          h.baseUrl,
          token,
          'GET',
          `/api/devices/${HOME}-fall`,
        );
        const last = r.body.device.lastSeenAt;
        return last !== null && last >= started + minutes(30) ? last : undefined;
      },
      30_000,
      'heartbeats 30 simulated minutes on',
    );
    expect(seen).toBeLessThanOrEqual(clock.now());
    expect(home.sent).toBeGreaterThanOrEqual(h.devices.filter((d) => d.homeId === HOME).length * 5);
    expect(home.failed).toBe(0);
  });

  it('a responder accepts, goes and arrives within the 15-minute SLA, through the API and live channel', async () => {
    // 120×: a busy machine's pause of a second costs 2 simulated minutes, well inside the SLA margins here.
    const clock = new ScaledClock(instant(START), 120);
    const { h, home } = await community(clock);
    // Day shift 08:00–20:00: grid 1's grid worker is the primary responder.
    const worker = new SimResponder(h.baseUrl, 'g1-worker', TEST_PASSWORD, clock, {
      acceptAfter: seconds(20),
      enRouteAfter: seconds(20),
      onSiteAfter: minutes(4),
      resolveAfter: minutes(1),
      outcome: 'assisted',
    });
    await worker.start();
    stops.push(() => worker.stop());
    const token = await login(h.baseUrl, 'dispatcher');
    const at = clock.now() + minutes(2);
    home.inject(scenario('help-button'), at);
    const resolved = await eventually(
      async () => {
        const a = await alertOf(h, token, 'SOS');
        return a?.state === 'resolved' ? a : undefined;
      },
      30_000,
      'the SOS alert to be resolved by the simulated responder',
    );
    expect(worker.accepted).toEqual([resolved.id]);
    expect(resolved.outcome).toBe('assisted');
    expect(resolved.raisedAt).toBeGreaterThanOrEqual(at);
    expect(resolved.acceptedAt! - resolved.raisedAt).toBeLessThan(minutes(3));
    expect(resolved.onSiteAt! - resolved.raisedAt).toBeLessThan(minutes(15));
    expect(resolved.slaBreached).toBe(false);
  });

  it('when the primary responder never answers, the next one on the roster gets the alert after 3 minutes', async () => {
    const clock = new ScaledClock(instant(START), SPEED);
    const { h, home } = await community(clock);
    const silent = new SimResponder(h.baseUrl, 'g1-worker', TEST_PASSWORD, clock, { silent: true });
    const next = new SimResponder(h.baseUrl, 'g1-leader', TEST_PASSWORD, clock, {
      acceptAfter: seconds(30),
      enRouteAfter: seconds(20),
      onSiteAfter: minutes(5),
      resolveAfter: minutes(1),
    });
    for (const r of [silent, next]) {
      await r.start();
      stops.push(() => r.stop());
    }
    const token = await login(h.baseUrl, 'dispatcher');
    const at = clock.now() + minutes(1);
    home.inject(scenario('fall-bathroom-night'), at);
    const a = await eventually(
      async () => {
        const x = await alertOf(h, token, 'FALL');
        return x?.state === 'resolved' ? x : undefined;
      },
      30_000,
      'the FALL alert to be resolved by the second responder',
    );
    expect(silent.notifications.some((n) => n.alertId === a.id)).toBe(true);
    expect(silent.accepted).toEqual([]);
    expect(next.accepted).toEqual([a.id]);
    // Escalation step 1 (SPEC §6): 3 minutes after raise, not before.
    expect(a.acceptedAt! - a.raisedAt).toBeGreaterThanOrEqual(minutes(3));
  });
});
