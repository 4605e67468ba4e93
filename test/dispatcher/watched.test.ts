/**
 * A household is never left unwatched: the whole service on loopback ports with a real SQLite file, the
 * home's devices publishing over MQTT with their own credentials, time on the manual clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import { eventually, type Harness, startHarness } from '../helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const HOME = 'home-1-01';

const open: { close(): unknown }[] = [];
let h: Harness | undefined;

afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

/** Every device of the home connected over MQTT with its own credentials. */
async function connectHome(h: Harness, clock: ManualClock): Promise<Map<string, SimDevice>> {
  const out = new Map<string, SimDevice>();
  for (const id of h.devices.filter((d) => d.homeId === HOME)) {
    const dev = new SimDevice(id, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
    await dev.connect();
    open.push({ close: () => dev.disconnect() });
    out.set(id.id, dev);
  }
  return out;
}

/** The clock moves on and the rules have caught up with the log and their timers. */
async function settle(h: Harness): Promise<void> {
  await eventually(
    async () => (await h.store.getCursor('rules')) >= (await lastSeq(h)) && h.service.pipeline.position,
    10_000,
    'the rules to reach the end of the log',
  );
  await h.service.pipeline.idle();
  await new Promise((r) => setImmediate(r));
  await h.service.pipeline.idle();
}

async function lastSeq(h: Harness): Promise<number> {
  const events = await h.store.readEvents(0, 1_000_000);
  return events.length ? events[events.length - 1]!.seq : 0;
}

describe('a household is never left unwatched', () => {
  it('raises the FALL 17 minutes after three devices fell silent at the same instant while the door contact was offline', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, grids: 1, perGrid: 1 });
    const devices = await connectHome(h, clock);
    for (const d of devices.values()) await d.send({ type: 'heartbeat', battery: 90 });
    await settle(h);

    // The door contact is unplugged: its session ends without a DISCONNECT, the broker publishes its will.
    const doorId = `${HOME}-door`;
    await devices.get(doorId)!.drop();
    const offline = await eventually(
      async () => (await h!.store.findOpenAlert(HOME, 'DEVICE_OFFLINE')) ?? undefined,
      10_000,
      'DEVICE_OFFLINE for the door contact',
    );
    expect(offline.deviceId).toBe(doorId);

    // One minute later three sensors send their last heartbeat, with the same timestamp (a power cut).
    clock.advance(minutes(1));
    const silent = [`${HOME}-motion-living`, `${HOME}-motion-bedroom`, `${HOME}-motion-kitchen`];
    for (const id of silent) await devices.get(id)!.send({ type: 'heartbeat', battery: 90 });
    // The others keep talking every 5 minutes; the three reach their silence limit (15 min) together.
    const talking = [...devices.keys()].filter((id) => id !== doorId && !silent.includes(id));
    for (let t = 5; t <= 15; t += 5) {
      clock.advanceTo(instant(DAY + minutes(t)));
      for (const id of talking) await devices.get(id)!.send({ type: 'heartbeat', battery: 90 });
      await settle(h);
    }
    clock.advanceTo(instant(DAY + minutes(16)));
    await settle(h);
    const after = await h.store.getAlert(offline.id);
    expect(after?.triggerCount).toBe(4);
    expect(after?.evidence.map((e) => e.deviceId).sort()).toEqual([doorId, ...silent].sort());

    // 17 minutes after the last heartbeats the radar detects a fall.
    clock.advanceTo(instant(DAY + minutes(18)));
    await devices.get(`${HOME}-fall`)!.send({ type: 'fall', state: 'detected', room: 'bathroom' });
    const fall = await eventually(
      async () => (await h!.store.findOpenAlert(HOME, 'FALL')) ?? undefined,
      10_000,
      'the FALL alert',
    );
    expect(fall.raisedAt).toBe(DAY + minutes(18));
    expect(h.service.pipeline.skipped).toBe(0);
  });
});
