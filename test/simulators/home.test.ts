/**
 * A simulated home as a real one behaves: it replays its routine with its own credentials, and rides out a
 * restart of the service (its devices reconnect and carry on).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes } from '../../kernel/time.ts';
import { SimHome } from '../../simulators/home.ts';
import { dailyRoutine } from '../../simulators/routine.ts';
import { localInstant } from '../../simulators/scenarios.ts';
import { eventually, type Harness, harnessWithHome, startHarness } from '../helpers.ts';

const ZONE = 'Asia/Shanghai';
const HOME = 'home-1-01';
let h: Harness | undefined;
let home: SimHome | undefined;
afterEach(async () => {
  await home?.stop();
  home = undefined;
  await h?.close();
  h = undefined;
});

describe('simulated home', () => {
  it('sends exactly its generated routine, with the routine’s timestamps, into the event log', async () => {
    const start = localInstant('2026-03-10', '07:00', ZONE);
    const clock = new ManualClock(instant(start));
    const world = await harnessWithHome(clock, 99);
    h = world.h;
    home = world.home;
    const devices = h.devices.filter((d) => d.homeId === HOME);
    for (let i = 0; i < 120; i++) {
      await clock.advance(minutes(1));
      await home.settled();
    }
    const expected = dailyRoutine({
      homeId: HOME,
      devices: devices.map(({ id, kind, room }) => ({ id, kind, room })),
      seed: 99,
      date: '2026-03-10',
      zone: ZONE,
    }).filter((s) => s.at >= start && s.at <= start + minutes(120));
    const logged = (await h.store.readEvents(0, 100_000)).filter(
      (e) => e.event.type !== 'presence' && e.homeId === HOME,
    );
    // Each device's messages in its own order (devices are separate connections: they interleave freely).
    const byDevice = (rows: [string, number, string][]) =>
      [...rows].sort((a, b) => a[0].localeCompare(b[0]) || a[1] - b[1]);
    expect(byDevice(logged.map((e) => [e.deviceId, e.ts, e.event.type]))).toEqual(
      byDevice(expected.map((s) => [s.deviceId, s.at, s.event.type])),
    );
    for (const d of devices) {
      const ts = logged.filter((e) => e.deviceId === d.id).map((e) => e.ts);
      expect(ts).toEqual([...ts].sort((a, b) => a - b));
    }
    expect(home.sent).toBe(expected.length);
  });

  it('rides out a restart of the service: its devices reconnect and carry on', async () => {
    const clock = new ManualClock(instant(localInstant('2026-03-10', '10:00', ZONE)));
    h = await startHarness({ clock, grids: 1, perGrid: 1 });
    const harness = h;
    home = new SimHome({
      homeId: HOME,
      devices: h.devices.filter((d) => d.homeId === HOME),
      broker: { host: '127.0.0.1', port: h.service.mqttPort },
      clock,
      zone: ZONE,
      seed: 5,
    });
    await home.start();
    const sim = home;
    await h.restart(async () => {
      await eventually(() => !sim.device('door')!.connected, 10_000, 'the devices to notice the outage');
      // Down longer than the devices' 2 s reconnect period: their reconnects are refused meanwhile.
      await new Promise((r) => setTimeout(r, 2500));
    });
    await eventually(
      () => [...sim.devices.values()].every((d) => d.connected),
      20_000,
      'every device to reconnect',
    );
    const before = sim.sent;
    for (let i = 0; i < 10; i++) {
      await clock.advance(minutes(1));
      await sim.settled();
    }
    expect(sim.sent).toBeGreaterThan(before);
    const after = await harness.store.readEvents(0, 100_000);
    expect(after.some((e) => e.homeId === HOME && e.event.type === 'heartbeat')).toBe(true);
  });
});
