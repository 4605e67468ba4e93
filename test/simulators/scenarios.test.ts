/**
 * The accident and fault scenarios as oracles, end to end: a simulated home replays its routine over MQTT
 * into the whole service (real gateway, rules, store, API) on a manual clock, the scenario is injected at
 * its time of day, and the dispatcher's view of the alerts must match what the scenario states.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../dispatcher/api/types.ts';
import { deviceEvent, TYPES_BY_KIND } from '../../gateway/protocol.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes } from '../../kernel/time.ts';
import { planCommunity } from '../../simulators/community.ts';
import type { SimHome } from '../../simulators/home.ts';
import { dailyRoutine } from '../../simulators/routine.ts';
import {
  applyPlans,
  judge,
  localInstant,
  SCENARIOS,
  type Scenario,
  scenario,
} from '../../simulators/scenarios.ts';
import { apiCall, eventually, type Harness, harnessWithHome, login } from '../helpers.ts';

const ZONE = 'Asia/Shanghai';
const DATE = '2026-03-10';
const HOME = 'home-1-01';

let h: Harness | undefined;
let home: SimHome | undefined;
afterEach(async () => {
  await home?.stop();
  home = undefined;
  await h?.close();
  h = undefined;
});

/**
 * Runs one scenario against the real service: starts 10 min before its time, steps the clock a minute at a
 * time (each step's events acknowledged before the next), until the oracle's window has passed.
 */
async function runScenario(s: Scenario) {
  const at = localInstant(DATE, s.defaultTime, ZONE);
  const clock = new ManualClock(instant(at - 10 * 60_000));
  const world = await harnessWithHome(clock, 42);
  h = world.h;
  home = world.home;
  const devices = h.devices.filter((d) => d.homeId === HOME);
  home.inject(s, at);
  while (clock.now() < at + s.within) {
    clock.advance(minutes(1));
    await home.settled();
  }
  // Everything acknowledged is in the log; wait until the rules have read all of it.
  const store = h.store;
  await eventually(
    async () => (await store.readEvents(await store.getCursor('rules'), 1)).length === 0,
    20_000,
    'the rules to catch up with the event log',
  );
  const token = await login(h.baseUrl, 'dispatcher');
  const { body } = await apiCall<{ alerts: Alert[] }>(h.baseUrl, token, 'GET', '/api/alerts?limit=2000');
  const problems = judge(s, { homeId: HOME, devices, at }, body.alerts);
  let rejected = 0;
  for (const d of devices) {
    const r = await apiCall<{ device: { rejectedCount: number } }>(
      h.baseUrl,
      token,
      'GET',
      `/api/devices/${d.id}`,
    );
    rejected += r.body.device.rejectedCount;
  }
  return { problems, alerts: body.alerts, rejected, home };
}

describe('scenarios end to end (rules that exist today)', () => {
  it('a fall in the bathroom at night raises exactly one FALL alert with the radar as evidence', async () => {
    const r = await runScenario(scenario('fall-bathroom-night'));
    expect(r.problems).toEqual([]);
    expect(r.alerts.filter((a) => a.householdId === HOME).map((a) => a.rule)).toEqual(['FALL']);
    expect(r.rejected).toBe(0);
  });

  it('a fall followed by getting up raises FALL and records the movement as evidence, nothing else', async () => {
    const r = await runScenario(scenario('fall-then-up'));
    expect(r.problems).toEqual([]);
    expect(r.alerts.filter((a) => a.householdId === HOME).map((a) => a.rule)).toEqual(['FALL']);
  });

  it('pressing the help button raises exactly one SOS alert', async () => {
    const r = await runScenario(scenario('help-button'));
    expect(r.problems).toEqual([]);
    expect(r.alerts.filter((a) => a.householdId === HOME).map((a) => a.rule)).toEqual(['SOS']);
  });

  it('a battery running down raises one LOW_BATTERY alert for the door sensor and no safety alert', async () => {
    const r = await runScenario(scenario('battery-running-down'));
    expect(r.problems).toEqual([]);
    const mine = r.alerts.filter((a) => a.householdId === HOME);
    expect(mine.map((a) => [a.rule, a.deviceId])).toEqual([['LOW_BATTERY', `${HOME}-door`]]);
  });

  it('garbage and oversized payloads are rejected and counted, raise nothing, and the device carries on', async () => {
    const s = scenario('garbage-payloads');
    const r = await runScenario(s);
    expect(r.problems).toEqual([]);
    expect(r.rejected).toBe(s.rejected);
    expect(r.alerts.filter((a) => a.householdId === HOME)).toEqual([]);
    expect(r.home.device('motion', 'kitchen')!.connected).toBe(true);
    expect(r.home.failed).toBe(0);
  });

  it("a device logging in with another device's identity is refused with CONNACK 4", async () => {
    const s = scenario('impersonation');
    const r = await runScenario(s);
    expect(r.problems).toEqual([]);
    expect(r.home.refusals).toEqual(s.refused!.map((x) => x.code));
    expect(r.home.device('fall')!.connected).toBe(true);
  });

  it('a flapping door sensor raises no alert', async () => {
    const r = await runScenario(scenario('flapping-door'));
    expect(r.problems).toEqual([]);
    expect(r.alerts.filter((a) => a.householdId === HOME)).toEqual([]);
  });
});

describe('scenarios end to end (the silence and presence rules of SPEC §5)', () => {
  const only = (alerts: Alert[]) => alerts.filter((a) => a.householdId === HOME).map((a) => a.rule);

  it('a resident who does not get up raises NO_MORNING_ACTIVITY at wake time + 90 min, and nothing else', async () => {
    const r = await runScenario(scenario('no-morning-activity'));
    expect(r.problems).toEqual([]);
    expect(only(r.alerts)).toEqual(['NO_MORNING_ACTIVITY']);
    // Usual wake time 07:30 (SPEC §4 default): the rule speaks at 09:00 community time.
    expect(r.alerts[0]!.raisedAt).toBe(localInstant(DATE, '09:00', ZONE));
  });

  it('leaving home at night raises NIGHT_EXIT 10 minutes after the door closes', async () => {
    const s = scenario('night-exit');
    const r = await runScenario(s);
    expect(r.problems).toEqual([]);
    expect(only(r.alerts)).toEqual(['NIGHT_EXIT']);
    const closedAt = localInstant(DATE, s.defaultTime, ZONE) + 15_000;
    expect(r.alerts[0]!.raisedAt).toBe(closedAt + 10 * 60_000);
  });

  it('a front door left open raises DOOR_LEFT_OPEN after 30 minutes', async () => {
    const s = scenario('door-left-open');
    const r = await runScenario(s);
    expect(r.problems).toEqual([]);
    expect(only(r.alerts)).toEqual(['DOOR_LEFT_OPEN']);
    expect(r.alerts[0]!.raisedAt).toBe(localInstant(DATE, s.defaultTime, ZONE) + 30 * 60_000);
  });

  it('a motion sensor that drops off the network raises DEVICE_OFFLINE for it, not an activity alert', async () => {
    const r = await runScenario(scenario('device-offline'));
    expect(r.problems).toEqual([]);
    expect(r.alerts.filter((a) => a.householdId === HOME).map((a) => [a.rule, a.deviceId])).toEqual([
      ['DEVICE_OFFLINE', `${HOME}-motion-living`],
    ]);
  });
});

describe('scenario plans', () => {
  const plan = planCommunity({ grids: 1, householdsPerGrid: 1 });
  const devices = plan.devices.filter((d) => d.homeId === HOME);

  it.each(SCENARIOS.map((s) => [s.name, s] as const))(
    '%s uses only the home’s own devices and valid events of their kinds',
    (_name, s) => {
      const at = localInstant(DATE, s.defaultTime, ZONE);
      const p = s.plan({ homeId: HOME, devices, at });
      for (const step of p.steps) {
        const d = devices.find((x) => x.id === step.deviceId)!;
        expect(d).toBeDefined();
        const ev = deviceEvent.parse({ ...step.event, ts: step.at });
        expect(TYPES_BY_KIND[d.kind]).toContain(ev.type);
      }
      for (const a of p.actions) expect(devices.some((d) => d.id === a.deviceId)).toBe(true);
      for (const k of s.needs) expect(devices.some((d) => d.kind === k)).toBe(true);
      expect(s.expect.length + s.expectNot.length).toBeGreaterThan(0);
    },
  );

  it('takes the resident’s movements out of the routine while they lie still after a fall', () => {
    const s = scenario('fall-bathroom-night');
    const at = localInstant(DATE, s.defaultTime, ZONE);
    const day = dailyRoutine({ homeId: HOME, devices, seed: 1, date: DATE, zone: ZONE });
    const events = applyPlans(day, [s.plan({ homeId: HOME, devices, at })]);
    const after = events.filter((e) => e.at > at && e.at < at + 3 * 3_600_000);
    expect(after.length).toBeGreaterThan(0);
    expect(after.every((e) => e.event.type === 'heartbeat')).toBe(true);
    expect(events.filter((e) => e.event.type === 'fall')).toHaveLength(1);
  });
});
