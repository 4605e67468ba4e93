/**
 * A household is never left unwatched: the whole service on loopback ports with a real SQLite file, the
 * home's devices publishing over MQTT with their own credentials, time on the manual clock.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../dispatcher/api/types.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes, seconds } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import {
  apiCall,
  connectHome as connectHomeOf,
  eventually,
  type Harness,
  login,
  rulesCaughtUp,
  startHarness,
} from '../helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const HOME = 'home-1-01';

const open: { close(): unknown }[] = [];
let h: Harness | undefined;

afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

const connectHome = (h: Harness, clock: ManualClock) => connectHomeOf(h, clock, HOME, open);
const settle = rulesCaughtUp;

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
    await clock.advance(minutes(1));
    const silent = [`${HOME}-motion-living`, `${HOME}-motion-bedroom`, `${HOME}-motion-kitchen`];
    for (const id of silent) await devices.get(id)!.send({ type: 'heartbeat', battery: 90 });
    // The others keep talking every 5 minutes; the three reach their silence limit (15 min) together.
    const talking = [...devices.keys()].filter((id) => id !== doorId && !silent.includes(id));
    for (let t = 5; t <= 15; t += 5) {
      await clock.advanceTo(instant(DAY + minutes(t)));
      for (const id of talking) await devices.get(id)!.send({ type: 'heartbeat', battery: 90 });
      await settle(h);
    }
    await clock.advanceTo(instant(DAY + minutes(16)));
    await settle(h);
    const after = await h.store.getAlert(offline.id);
    expect(after?.triggerCount).toBe(4);
    expect(after?.evidence.map((e) => e.deviceId).sort()).toEqual([doorId, ...silent].sort());

    // 17 minutes after the last heartbeats the radar detects a fall.
    await clock.advanceTo(instant(DAY + minutes(18)));
    await devices.get(`${HOME}-fall`)!.send({ type: 'fall', state: 'detected', room: 'bathroom' });
    const fall = await eventually(
      async () => (await h!.store.findOpenAlert(HOME, 'FALL')) ?? undefined,
      10_000,
      'the FALL alert',
    );
    expect(fall.raisedAt).toBe(DAY + minutes(18));
    expect(h.service.pipeline.skipped).toBe(0);
  });

  it('tells the dispatch room that a home is not watched when its fall cannot be committed, and counts it', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, grids: 1, perGrid: 2 });
    // A real fault in the store: the database refuses every FALL alert of this one household.
    const db = new Database(join(h.dir, 'guardian365.sqlite'));
    open.push({ close: () => db.close() });
    db.exec(`CREATE TRIGGER injected_fault BEFORE INSERT ON alerts
      WHEN NEW.household_id = '${HOME}' AND NEW.rule = 'FALL'
      BEGIN SELECT RAISE(ABORT, 'injected fault'); END`);

    const radar = async (homeId: string) => {
      const id = h!.devices.find((d) => d.homeId === homeId && d.kind === 'fall')!;
      const dev = new SimDevice(id, { host: '127.0.0.1', port: h!.service.mqttPort }, clock);
      await dev.connect();
      open.push({ close: () => dev.disconnect() });
      return dev;
    };
    const broken = await radar(HOME);
    await broken.send({ type: 'fall', state: 'detected', room: 'bathroom' });
    const token = await login(h.baseUrl, 'dispatcher');
    const queue = async () =>
      (await apiCall<{ alerts: Alert[] }>(h!.baseUrl, token, 'GET', '/api/alerts?state=open')).body.alerts;
    const unwatched = await eventually(
      async () => (await queue()).find((a) => a.rule === 'HOME_UNWATCHED'),
      15_000,
      'HOME_UNWATCHED on the dispatch queue',
    );
    expect(unwatched).toMatchObject({ householdId: HOME, severity: 'critical', state: 'notified' });
    expect(unwatched.explanation.en).toMatch(
      /^this home is not being watched: at 10:00 the rules could not process a fall event from device home-1-01-fall \(SQLITE_CONSTRAINT_TRIGGER\)/,
    );
    expect(unwatched.explanation.zh).toMatch(/^此户当前未被看护/);
    expect(unwatched.evidence[0]).toMatchObject({ type: 'fall', deviceId: `${HOME}-fall` });
    expect(await h.store.findOpenAlert(HOME, 'FALL')).toBeNull();
    const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/^g365_rules_homes_unwatched_total 1$/m);

    // The other home of the grid is watched as before.
    const other = await radar('home-1-02');
    await other.send({ type: 'fall', state: 'detected' });
    await eventually(
      () => h!.store.findOpenAlert('home-1-02', 'FALL').then((a) => a ?? undefined),
      10_000,
      "the other home's FALL",
    );

    // The fault is repaired: the home's next fall is raised as usual.
    db.exec('DROP TRIGGER injected_fault');
    await clock.advance(minutes(1));
    await broken.send({ type: 'fall', state: 'detected', room: 'bathroom' });
    const fall = await eventually(
      () => h!.store.findOpenAlert(HOME, 'FALL').then((a) => a ?? undefined),
      10_000,
      'the FALL after repair',
    );
    expect(fall?.raisedAt).toBe(DAY + minutes(1));
  });

  it('passes nothing over while the store refuses every write of a home, and raises the fall once it can', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, grids: 1, perGrid: 1 });
    // The database refuses every alert of this household, HOME_UNWATCHED included.
    const db = new Database(join(h.dir, 'guardian365.sqlite'));
    open.push({ close: () => db.close() });
    db.exec(`CREATE TRIGGER injected_fault BEFORE INSERT ON alerts WHEN NEW.household_id = '${HOME}'
      BEGIN SELECT RAISE(ABORT, 'injected fault'); END`);
    const id = h.devices.find((d) => d.homeId === HOME && d.kind === 'fall')!;
    const radar = new SimDevice(id, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
    await radar.connect();
    open.push({ close: () => radar.disconnect() });
    await radar.send({ type: 'fall', state: 'detected' });
    const fallSeq = await eventually(
      async () => (await h!.store.readEvents(0, 1000)).find((e) => e.event.type === 'fall')?.seq,
      10_000,
      'the fall in the log',
    );
    await eventually(() => h!.service.pipeline.stalls > 0, 10_000, 'the rules to stall on the fault');
    await h.service.pipeline.idle();
    // Not passed over: the rules stay before the fall, and say so on /metrics.
    const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/^g365_rules_stalls_total [1-9]/m);
    // A stall is not a page refused as stale: nothing was evaluated again.
    expect(metrics).toMatch(/^g365_rules_pages_evaluated_again_total 0$/m);
    expect(await h.store.getCursor('rules')).toBeLessThan(fallSeq);
    expect(h.service.pipeline.skipped).toBe(0);

    db.exec('DROP TRIGGER injected_fault');
    await clock.advance(seconds(5));
    const fall = await eventually(
      () => h!.store.findOpenAlert(HOME, 'FALL').then((a) => a ?? undefined),
      10_000,
      'the FALL once the store heals',
    );
    expect(fall?.raisedAt).toBe(DAY);
    expect(await h.store.findOpenAlert(HOME, 'HOME_UNWATCHED')).toBeNull();
  });
});
