/**
 * The rules pipeline on a real SQLite file: live silence timers driven by the manual clock to the exact
 * millisecond, deadlines that survive a restart, one alert per problem, technical alerts that clear
 * themselves, and a replay of the same log that raises the same alerts.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../dispatcher/alerts/model.ts';
import { Directory } from '../../dispatcher/directory.ts';
import { RulesPipeline } from '../../dispatcher/rules/pipeline.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import type { LogEvent } from '../../gateway/protocol.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { createLogger, silentLogger } from '../../kernel/log.ts';
import { instant } from '../../kernel/time.ts';
import { eventually, tempDir } from '../helpers.ts';
import { DEVICES, HOUR, household, local, MIN, seedHome, ZONE } from './rules-fixtures.ts';

interface Rig {
  store: SqliteStore;
  clock: ManualClock;
  directory: Directory;
  pipeline: RulesPipeline;
  /** Appends one event from device `h1-<id>` to the log, as the gateway does, and lets the rules run. */
  send: (id: string, event: LogEvent) => Promise<void>;
  /** The clock runs to `to`; every device sends its heartbeat at each 5-min mark on the way. */
  live: (to: number) => Promise<void>;
  /** The clock moves to `at` with no device speaking, and the rules' timer fires what is due. */
  quietTo: (at: number) => Promise<void>;
  restart: () => Promise<void>;
  alerts: (rule?: string) => Promise<Alert[]>;
  /** The ids of the alerts handed on as raised (to escalation and notification), in order. */
  raisedOut: string[];
  close: () => Promise<void>;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const r of rigs.splice(0)) await r.close();
});

async function rig(start: number, file?: string): Promise<Rig> {
  const tmp = tempDir('g365-rules-');
  const store = new SqliteStore(file ?? join(tmp.path, 'guardian365.sqlite'));
  await store.migrate();
  if (!(await store.getHousehold('h1'))) await seedHome(store, household(), DEVICES, instant(start));
  const clock = new ManualClock(instant(start));
  const directory = new Directory({ store, zone: ZONE, shifts: { dayStart: '08:00', nightStart: '20:00' } });
  const raisedOut: string[] = [];
  const make = () =>
    new RulesPipeline({
      store,
      directory,
      clock,
      log: silentLogger(),
      onCommitted: (raised) => raisedOut.push(...raised.map((a) => a.id)),
    });
  let deviceSeq = 0;
  const r: Rig = {
    store,
    clock,
    directory,
    pipeline: make(),
    send: async (id, event) => {
      const deviceId = `h1-${id}`;
      await store.appendEvents([
        {
          deviceId,
          homeId: 'h1',
          receivedAt: clock.now(),
          topic: `g365/v1/homes/h1/devices/${deviceId}/events`,
          status: 'accepted',
          ts: event.ts,
          type: event.type,
          deviceSeq: ++deviceSeq,
          body: JSON.stringify(event),
          reason: null,
          flags: [],
        },
      ]);
      r.pipeline.wake();
      await r.pipeline.idle();
    },
    live: async (to) => {
      while (clock.now() < to) {
        const mark = Math.floor(clock.now() / (5 * MIN)) * 5 * MIN + 5 * MIN;
        const next = Math.min(mark, to);
        await clock.advanceTo(instant(next));
        await r.pipeline.idle();
        if (next === mark)
          for (const [id] of DEVICES) await r.send(id, { type: 'heartbeat', ts: next, battery: 80 });
      }
      await r.quietTo(to);
    },
    quietTo: async (at) => {
      await clock.advanceTo(instant(at));
      await r.pipeline.idle();
      await new Promise((res) => setImmediate(res));
      await r.pipeline.idle();
    },
    restart: async () => {
      await r.pipeline.stop();
      r.pipeline = make();
      await r.pipeline.start();
    },
    alerts: async (rule) =>
      (await store.listAlerts({ householdId: 'h1', limit: 1000 })).filter((a) => !rule || a.rule === rule),
    raisedOut,
    close: async () => {
      await r.pipeline.stop();
      await store.close();
      if (!file) tmp.remove();
    },
  };
  await r.pipeline.start();
  rigs.push(r);
  return r;
}

/** The resident got up at 07:00 and every device said hello at 06:55. */
async function morning(r: Rig, day = '2026-03-10'): Promise<void> {
  await r.live(local(`${day} 06:55`));
  await r.live(local(`${day} 07:00`));
  await r.send('m-bedroom', { type: 'motion', ts: local(`${day} 07:00`), state: 'active', room: 'bedroom' });
}

describe('rules pipeline', () => {
  it('writes no cursor for pages of other households only when it may lag, until it lags that far', async () => {
    const r = await rig(local('2026-03-10 06:50'));
    await r.pipeline.stop();
    // As a community's pipeline (CLU-03) runs: the other communities' homes are unknown to it.
    const pipeline = new RulesPipeline({
      store: r.store,
      directory: r.directory,
      clock: r.clock,
      log: silentLogger(),
      onCommitted: () => {},
      cursorLag: 3,
    });
    r.pipeline = pipeline;
    await pipeline.start();
    const stored = () => r.store.getCursor('rules');
    const start = await stored();
    const elsewhere = async () => {
      const [o] = await r.store.appendEvents([
        {
          deviceId: 'x-1',
          homeId: 'elsewhere',
          receivedAt: r.clock.now(),
          topic: 'g365/v1/homes/elsewhere/devices/x-1/events',
          status: 'accepted',
          ts: r.clock.now(),
          type: 'heartbeat',
          deviceSeq: null,
          body: JSON.stringify({ type: 'heartbeat', ts: r.clock.now() }),
          reason: null,
          flags: [],
        },
      ]);
      pipeline.wake();
      await pipeline.idle();
      return o!.seq!;
    };
    await elsewhere();
    const second = await elsewhere();
    expect(pipeline.position).toBe(second);
    expect(await stored()).toBe(start);
    // A page with work of its own writes the cursor up to it.
    await r.send('m-kitchen', { type: 'heartbeat', ts: r.clock.now(), battery: 80 });
    const own = pipeline.position;
    expect(own).toBeGreaterThan(second);
    expect(await stored()).toBe(own);
    // Others' pages again: nothing written until the stored cursor would lag 3 positions.
    await elsewhere();
    await elsewhere();
    expect(await stored()).toBe(own);
    const third = await elsewhere();
    expect(await stored()).toBe(third);
    // A restart reads from the stored cursor and finds nothing of its own to do there.
    await r.restart();
    expect(r.pipeline.position).toBe(third);
  });

  it('raises INACTIVITY from the live timer at the exact millisecond, with no event after the deadline', async () => {
    const r = await rig(local('2026-03-10 06:50'));
    await morning(r);
    const last = local('2026-03-10 09:12');
    await r.live(last);
    await r.send('m-kitchen', { type: 'motion', ts: last, state: 'active', room: 'kitchen' });
    // 13:12 lies between two heartbeats (13:10, 13:15): only the timer can fire it on time.
    await r.live(last + 4 * HOUR - 1);
    expect(await r.alerts('INACTIVITY')).toEqual([]);
    await r.live(last + 4 * HOUR);
    const [a] = await r.alerts('INACTIVITY');
    expect(a?.raisedAt).toBe(last + 4 * HOUR);
    expect(a?.explanation.en).toBe('no motion since 09:12 (4 h); threshold 4 h');
    expect(a?.severity).toBe('high');
    await r.live(last + 6 * HOUR);
    expect(await r.alerts('INACTIVITY')).toHaveLength(1);
    expect(await r.alerts()).toHaveLength(1);
  });

  it('keeps a pending deadline across a restart and fires it once', async () => {
    const r = await rig(local('2026-03-10 06:50'));
    await morning(r);
    const opened = local('2026-03-10 09:00');
    await r.live(opened);
    await r.send('m-living', { type: 'motion', ts: opened, state: 'active', room: 'living' });
    await r.send('door', { type: 'door', ts: opened, state: 'open', door: 'front' });
    await r.live(opened + 20 * MIN);
    await r.restart();
    await r.live(opened + 30 * MIN - 1);
    expect(await r.alerts('DOOR_LEFT_OPEN')).toEqual([]);
    await r.live(opened + 30 * MIN);
    await r.restart();
    await r.live(opened + 60 * MIN);
    const open = await r.alerts('DOOR_LEFT_OPEN');
    expect(open.map((a) => a.raisedAt)).toEqual([opened + 30 * MIN]);
    expect(open[0]!.explanation.zh).toBe('入户门自 09:00 起一直开着（30分钟）；阈值 30分钟');
  });

  it('attaches a repeated fall, the fall cleared and the motion after it to one FALL alert that stays open', async () => {
    const r = await rig(local('2026-03-10 09:00'));
    const t = local('2026-03-10 09:00');
    await r.send('fall', { type: 'fall', ts: t, state: 'detected', room: 'bathroom', confidence: 0.9 });
    // Each event arrives when it happens (the rules run on receive time; see `anchored`).
    r.clock.advanceTo(instant(t + 5000));
    await r.send('fall', { type: 'fall', ts: t + 5000, state: 'detected', room: 'bathroom' });
    r.clock.advanceTo(instant(t + 60_000));
    await r.send('fall', { type: 'fall', ts: t + 60_000, state: 'cleared' });
    r.clock.advanceTo(instant(t + 90_000));
    await r.send('m-bathroom', { type: 'motion', ts: t + 90_000, state: 'active', room: 'bathroom' });
    const falls = await r.alerts('FALL');
    expect(falls).toHaveLength(1);
    expect(falls[0]!.state).toBe('raised');
    expect(falls[0]!.triggerCount).toBe(4);
    expect(falls[0]!.evidence.map((e) => e.summary)).toEqual([
      'fall detected in bathroom (90%)',
      'fall detected in bathroom',
      'fall radar reports the fall cleared (bathroom)',
      'resident moved after the fall (bathroom, 1 min later)',
    ]);
  });

  it('runs a fast device clock on receive time: the alert is raised now and routed now, not 4 min 50 s ahead', async () => {
    const r = await rig(local('2026-03-10 19:58'));
    const now = local('2026-03-10 19:58');
    await r.send('fall', { type: 'fall', ts: now + 4 * MIN + 50_000, state: 'detected', room: 'bathroom' });
    const [fall] = await r.alerts('FALL');
    expect(fall?.raisedAt).toBe(now);
    expect(fall?.onSiteDueAt).toBe(now + 15 * MIN);
  });

  it('keeps a slow device clock from making a talking sensor look silent', async () => {
    const r = await rig(local('2026-03-10 09:00'));
    const t = local('2026-03-10 09:00');
    // The motion sensor's clock runs 30 minutes slow; it reports motion every 5 minutes for an hour.
    for (let i = 0; i <= 12; i++) {
      r.clock.advanceTo(instant(t + i * 5 * MIN));
      await r.send('m-living', {
        type: 'motion',
        ts: t + i * 5 * MIN - 30 * MIN,
        state: 'active',
        room: 'living',
      });
    }
    // (The home's other devices never spoke: they are offline, this one is not.)
    expect((await r.alerts('DEVICE_OFFLINE')).filter((a) => a.deviceId === 'h1-m-living')).toEqual([]);
  });

  it('raises DEVICE_OFFLINE for a device never heard from, 3 heartbeat periods after it was provisioned, across a restart', async () => {
    const t = local('2026-03-10 09:00');
    const r = await rig(t);
    // Everything talks but the fall radar, which was installed and never came online.
    const talk = async (at: number) => {
      r.clock.advanceTo(instant(at));
      for (const [id] of DEVICES)
        if (id !== 'fall') await r.send(id, { type: 'heartbeat', ts: at, battery: 80 });
    };
    for (let at = t; at <= t + 10 * MIN; at += 5 * MIN) await talk(at);
    // A restart: the home has state now, and the radar still only its provisioning time.
    await r.restart();
    await talk(t + 15 * MIN - 1);
    expect(await r.alerts('DEVICE_OFFLINE')).toEqual([]);
    await r.quietTo(t + 15 * MIN);
    const offline = await r.alerts('DEVICE_OFFLINE');
    expect(offline.map((a) => [a.deviceId, a.raisedAt])).toEqual([['h1-fall', t + 15 * MIN]]);
    expect(offline[0]!.explanation.en).toContain('never heard from, the home live since 09:00');
    // Its first word clears it.
    r.clock.advanceTo(instant(t + 16 * MIN));
    await r.send('fall', { type: 'heartbeat', ts: t + 16 * MIN, battery: 90 });
    expect((await r.alerts('DEVICE_OFFLINE')).map((a) => a.state)).toEqual(['resolved']);
  });

  it('raises nothing for devices provisioned ahead of installation; once one speaks, the rest count from then', async () => {
    const t = local('2026-03-10 09:00');
    const r = await rig(t);
    // A day later nothing has spoken: not installed yet, not offline.
    await r.quietTo(t + 24 * HOUR);
    expect(await r.alerts()).toEqual([]);
    // Installed: the door contact speaks first; the others have 3 heartbeat periods from then.
    const live = t + 24 * HOUR + 5 * MIN;
    r.clock.advanceTo(instant(live));
    await r.send('door', { type: 'heartbeat', ts: live, battery: 90 });
    for (const at of [live + 5 * MIN, live + 10 * MIN, live + 15 * MIN - 1]) {
      r.clock.advanceTo(instant(at));
      await r.send('door', { type: 'heartbeat', ts: at, battery: 90 });
    }
    expect(await r.alerts('DEVICE_OFFLINE')).toEqual([]);
    await r.quietTo(live + 15 * MIN);
    // One open DEVICE_OFFLINE per home, with every silent device in its evidence, and no activity alert
    // held back for the motion sensors that never spoke.
    const offline = await r.alerts('DEVICE_OFFLINE');
    expect(offline.map((a) => a.raisedAt)).toEqual([live + 15 * MIN]);
    expect(new Set(offline[0]!.evidence.map((e) => e.deviceId))).toEqual(
      new Set(DEVICES.filter(([id]) => id !== 'door').map(([id]) => `h1-${id}`)),
    );
    expect(offline[0]!.evidence.some((e) => e.type === 'held_back')).toBe(false);
  });

  it('still raises INACTIVITY from the other sensors when a motion sensor was never heard from', async () => {
    const t = local('2026-03-10 09:00');
    const r = await rig(t);
    await r.send('m-kitchen', { type: 'motion', ts: t, state: 'active', room: 'kitchen' });
    // Every device but the bathroom's motion sensor says hello every 5 minutes; nobody moves after 09:00.
    for (let at = t; at <= t + 4 * HOUR + 5 * MIN; at += 5 * MIN) {
      r.clock.advanceTo(instant(at));
      for (const [id] of DEVICES)
        if (id !== 'm-bathroom') await r.send(id, { type: 'heartbeat', ts: at, battery: 80 });
    }
    const inactivity = await r.alerts('INACTIVITY');
    expect(inactivity.map((a) => a.raisedAt)).toEqual([t + 4 * HOUR]);
    const offline = await r.alerts('DEVICE_OFFLINE');
    expect(offline.map((a) => [a.deviceId, a.raisedAt])).toEqual([['h1-m-bathroom', t + 15 * MIN]]);
  });

  it('keeps raising alerts for every home after a device flaps offline, online and offline within one batch', async () => {
    const r = await rig(local('2026-03-10 09:00'));
    const t = local('2026-03-10 09:00');
    await r.send('m-living', { type: 'presence', ts: t, state: 'offline', cause: 'keepalive' });
    expect((await r.alerts('DEVICE_OFFLINE')).map((a) => a.state)).toEqual(['raised']);
    // Back online and offline again before the rules run: one batch closes the alert and opens a new one.
    r.clock.advanceTo(instant(t + 30_000));
    const record = (state: 'online' | 'offline', cause: 'connect' | 'keepalive') => ({
      deviceId: 'h1-m-living',
      homeId: 'h1',
      receivedAt: t + 30_000,
      topic: 'g365/v1/homes/h1/devices/h1-m-living/status',
      status: 'accepted' as const,
      ts: t + 30_000,
      type: 'presence',
      deviceSeq: null,
      body: JSON.stringify({ type: 'presence', ts: t + 30_000, state, cause }),
      reason: null,
      flags: [],
    });
    await r.store.appendEvents([record('online', 'connect'), record('offline', 'keepalive')]);
    r.pipeline.wake();
    await r.pipeline.idle();
    expect((await r.alerts('DEVICE_OFFLINE')).map((a) => a.state).sort()).toEqual(['raised', 'resolved']);
    // And the rules still run for what comes next.
    await r.send('fall', { type: 'fall', ts: t + 30_000, state: 'detected' });
    expect(await r.alerts('FALL')).toHaveLength(1);
    expect(r.pipeline.skipped).toBe(0);
  });

  it('attaches every device silent at one instant to the open DEVICE_OFFLINE after a restart with the deadlines overdue, and still raises a fall', async () => {
    const t = local('2026-03-10 09:00');
    const r = await rig(t);
    for (const [id] of DEVICES) await r.send(id, { type: 'heartbeat', ts: t, battery: 80 });
    await r.send('door', { type: 'presence', ts: t, state: 'offline', cause: 'will' });
    expect((await r.alerts('DEVICE_OFFLINE')).map((a) => a.deviceId)).toEqual(['h1-door']);
    // The service is down from 09:00 to 09:30 (a power cut): the other devices' silence deadlines (09:15)
    // are overdue when it starts again and fire together, in one evaluation.
    await r.pipeline.stop();
    r.clock.advanceTo(instant(t + 30 * MIN));
    await r.restart();
    await r.quietTo(t + 30 * MIN);
    const [offline] = await r.alerts('DEVICE_OFFLINE');
    expect(offline?.triggerCount).toBe(DEVICES.length);
    r.clock.advanceTo(instant(t + 31 * MIN));
    await r.send('fall', { type: 'fall', ts: t + 31 * MIN, state: 'detected' });
    expect((await r.alerts('FALL')).map((a) => a.raisedAt)).toEqual([t + 31 * MIN]);
    expect(r.pipeline.skipped).toBe(0);
  });

  it("fires a home's silence at its minute after another home's earlier deadline moved later", async () => {
    const t = local('2026-03-10 10:00');
    const r = await rig(t);
    await seedHome(r.store, household({ id: 'h2' }), DEVICES, instant(t));
    let seq = 0;
    // Every device of a home says hello at `ts`: its silence (DEVICE_OFFLINE, 15 minutes) is due 15 minutes on.
    const hello = async (homeId: string, ts: number) => {
      await r.store.appendEvents(
        DEVICES.map(([id]) => ({
          deviceId: `${homeId}-${id}`,
          homeId,
          receivedAt: ts,
          topic: `g365/v1/homes/${homeId}/devices/${homeId}-${id}/events`,
          status: 'accepted' as const,
          ts,
          type: 'heartbeat',
          deviceSeq: ++seq,
          body: JSON.stringify({ type: 'heartbeat', ts, battery: 80 }),
          reason: null,
          flags: [],
        })),
      );
      r.pipeline.wake();
      await r.pipeline.idle();
    };
    const offline = async (homeId: string) =>
      (await r.store.listAlerts({ householdId: homeId, limit: 100 })).filter(
        (a) => a.rule === 'DEVICE_OFFLINE',
      );
    await hello('h1', t + MIN);
    expect(r.pipeline.nextDueAt).toBe(t + 16 * MIN);
    // A deadline earlier than the earliest: the next one now.
    await hello('h2', t);
    expect(r.pipeline.nextDueAt).toBe(t + 15 * MIN);
    // The earliest (h2's) moves later than h1's: h1's is the next one now.
    await hello('h2', t + 2 * MIN);
    expect(r.pipeline.nextDueAt).toBe(t + 16 * MIN);
    await r.quietTo(t + 15 * MIN);
    expect(await offline('h1')).toEqual([]);
    expect(await offline('h2')).toEqual([]);
    await r.quietTo(t + 16 * MIN);
    const h1 = await offline('h1');
    expect(h1.length).toBeGreaterThan(0);
    expect(h1.map((a) => a.raisedAt)).toEqual(h1.map(() => t + 16 * MIN));
    expect(await offline('h2')).toEqual([]);
    expect(r.pipeline.nextDueAt).toBe(t + 17 * MIN);
  });

  it('applies a household change at once: a shortened INACTIVITY threshold fires without waiting for an event', async () => {
    const r = await rig(local('2026-03-10 06:50'));
    r.directory.onHomeChanged((id) => void r.pipeline.homeChanged(id));
    await morning(r);
    const last = local('2026-03-10 09:12');
    await r.live(last);
    await r.send('m-kitchen', { type: 'motion', ts: last, state: 'active', room: 'kitchen' });
    await r.live(last + 91 * MIN); // devices keep sending heartbeats; nobody moves
    expect(await r.alerts()).toEqual([]);
    // The dispatcher shortens this resident's threshold to 90 minutes (already passed).
    await r.store.upsertHousehold(household({ routine: { thresholds: { INACTIVITY: 90 } } }));
    r.directory.invalidateHome('h1');
    await eventually(
      async () => (await r.alerts('INACTIVITY')).length === 1,
      5000,
      'INACTIVITY after the change',
    );
  });

  it('clears DEVICE_OFFLINE by itself when the device is back, and never a safety alert', async () => {
    const r = await rig(local('2026-03-10 09:00'));
    const t = local('2026-03-10 09:00');
    await r.send('btn', { type: 'sos', ts: t });
    await r.send('m-living', { type: 'presence', ts: t + MIN, state: 'offline', cause: 'keepalive' });
    const [offline] = await r.alerts('DEVICE_OFFLINE');
    expect(offline?.severity).toBe('technical');
    expect(offline?.deviceId).toBe('h1-m-living');
    await r.send('m-living', { type: 'presence', ts: t + 10 * MIN, state: 'online', cause: 'connect' });
    const [cleared] = await r.alerts('DEVICE_OFFLINE');
    expect(cleared?.state).toBe('resolved');
    expect(cleared?.outcome).toBe('auto_cleared');
    expect((await r.alerts('SOS'))[0]?.state).toBe('raised');
  });

  it('raises the same alerts at the same instants when the same log is replayed from scratch', async () => {
    const live = await rig(local('2026-03-10 06:50'));
    await morning(live);
    await live.live(local('2026-03-10 10:00'));
    await live.send('m-bathroom', {
      type: 'motion',
      ts: local('2026-03-10 10:00'),
      state: 'active',
      room: 'bathroom',
    });
    await live.live(local('2026-03-10 11:00'));
    await live.send('door', { type: 'door', ts: local('2026-03-10 11:00'), state: 'open', door: 'front' });
    await live.live(local('2026-03-10 16:00'));
    const liveAlerts = (await live.alerts()).map((a) => [a.rule, a.raisedAt, a.explanation.en]).sort();
    expect(liveAlerts.map((a) => a[0])).toEqual(['BATHROOM_DWELL', 'DOOR_LEFT_OPEN', 'INACTIVITY']);

    // A fresh database with the same log, processed in one go after the fact.
    const replay = await rig(local('2026-03-10 16:00'));
    const log = await live.store.readEvents(0, 100_000);
    await replay.pipeline.stop();
    await replay.store.appendEvents(
      log.map((e) => ({
        deviceId: e.deviceId,
        homeId: e.homeId,
        receivedAt: e.receivedAt,
        topic: 't',
        status: 'accepted' as const,
        ts: e.ts,
        type: e.event.type,
        deviceSeq: null,
        body: JSON.stringify(e.event),
        reason: null,
        flags: [],
      })),
    );
    await replay.pipeline.start();
    const replayed = (await replay.alerts()).map((a) => [a.rule, a.raisedAt, a.explanation.en]).sort();
    expect(replayed).toEqual(liveAlerts);
  });
});

describe('rules pipeline: a home state as stored (DATA-08)', () => {
  it('writes the learned days apart, only when a day completes, and reads them back whole after a restart', async () => {
    const tmp = tempDir('g365-learned-');
    const file = join(tmp.path, 'guardian365.sqlite');
    const r = await rig(local('2026-03-10 07:00'), file);
    // The same file through a connection of the test's own, to see the row as stored.
    const raw = new Database(file);
    const row = () => {
      const x = raw.prepare(`SELECT state, learned FROM home_states WHERE home_id = 'h1'`).get() as {
        state: string;
        learned: string | null;
      };
      return { state: JSON.parse(x.state), learned: x.learned === null ? null : JSON.parse(x.learned) };
    };
    const motion = async (at: string) => {
      await r.quietTo(local(at));
      await r.send('m-living', { type: 'motion', ts: local(at), state: 'active', room: 'living' });
    };
    try {
      await motion('2026-03-10 07:00');
      await motion('2026-03-10 09:30');
      // No day complete yet: the (empty) list was written with the home's first commit; the state has no days.
      expect(row().learned).toEqual([]);
      expect(row().state.learn).not.toHaveProperty('days');
      // The next day's first motion completes the 10th: written with that commit.
      await motion('2026-03-11 07:10');
      const day10 = row().learned;
      expect(day10).toHaveLength(1);
      expect(day10[0]).toMatchObject({ first: 7 * 60 });
      // Within the day the list is not written again: a value put there behind the rules' back stays.
      raw.prepare(`UPDATE home_states SET learned = '"untouched"' WHERE home_id = 'h1'`).run();
      await motion('2026-03-11 08:00');
      await motion('2026-03-11 12:00');
      expect(row().learned).toBe('untouched');
      expect(row().state.now).toBe(local('2026-03-11 12:00'));
      // The 11th completes: the whole list is written again, in the commit of the event that completed it.
      await motion('2026-03-12 06:40');
      const learned = row().learned;
      expect(learned.map((d: { first: number }) => d.first)).toEqual([7 * 60, 7 * 60 + 10]);
      // A restart reads the two parts back as one state: the days are there, and not written again.
      await r.restart();
      raw.prepare(`UPDATE home_states SET learned = '"untouched"' WHERE home_id = 'h1'`).run();
      await motion('2026-03-12 09:00');
      expect(row().learned).toBe('untouched');
      raw.prepare('UPDATE home_states SET learned = ? WHERE home_id = ?').run(JSON.stringify(learned), 'h1');
      await r.restart();
      await motion('2026-03-13 07:00');
      expect(row().learned.map((d: { first: number }) => d.first)).toEqual([
        7 * 60,
        7 * 60 + 10,
        6 * 60 + 40,
      ]);
    } finally {
      raw.close();
      rigs.splice(rigs.indexOf(r), 1);
      await r.close();
      tmp.remove();
    }
  });
});

describe('rules pipeline: the urgent lane (RULE-16)', () => {
  /** `n` motion events of the home logged behind each other with no wake-up (a backlog), then a fall. */
  const backlogThenFall = async (r: Rig, n: number, t: number) => {
    const rec = (i: number, deviceId: string, event: LogEvent) => ({
      deviceId,
      homeId: 'h1',
      receivedAt: event.ts,
      topic: `g365/v1/homes/h1/devices/${deviceId}/events`,
      status: 'accepted' as const,
      ts: event.ts,
      type: event.type,
      deviceSeq: i,
      body: JSON.stringify(event),
      reason: null,
      flags: [],
    });
    await r.store.appendEvents(
      Array.from({ length: n }, (_, i) =>
        rec(i + 1, 'h1-m-living', { type: 'motion', ts: t - n + i, state: 'active', room: 'living' }),
      ),
    );
    const [out] = await r.store.appendEvents([
      rec(1, 'h1-fall', { type: 'fall', ts: t, state: 'detected', room: 'bathroom', confidence: 0.9 }),
    ]);
    const fall = (await r.store.readEvents(out!.seq! - 1, 1))[0]!;
    expect(fall.event.type).toBe('fall');
    return fall;
  };

  it('raises a fall and hands it on before the rules have read the events logged ahead of it, then raises it never again', async () => {
    const t = local('2026-03-10 09:00');
    const r = await rig(t);
    const fall = await backlogThenFall(r, 3000, t);
    await r.pipeline.urgent([fall]);
    // Raised and handed on to escalation while the ordered pass has not moved: the 3,000 events are unread.
    expect(r.pipeline.position).toBeLessThan(fall.seq - 3000);
    const [raised] = await r.alerts('FALL');
    expect(raised).toMatchObject({ state: 'raised', raisedAt: t, triggerCount: 1 });
    expect(raised!.evidence.map((e) => e.seq)).toEqual([fall.seq]);
    expect(r.raisedOut).toEqual([raised!.id]);
    expect(r.pipeline.urgentRaised).toBe(1);
    // The same event again on the lane (a second notification) is the same alert.
    await r.pipeline.urgent([fall]);
    // The ordered pass comes to the fall: it applies it to the home, and the alert stays as it was.
    r.pipeline.wake();
    await r.pipeline.idle();
    expect(r.pipeline.position).toBe(fall.seq);
    const after = await r.alerts('FALL');
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ id: raised!.id, triggerCount: 1, version: raised!.version });
    expect(r.raisedOut).toEqual([raised!.id]);
    expect((await r.store.alertHistory(raised!.id)).filter((h) => h.action === 'raised')).toHaveLength(1);
    expect(r.pipeline.homeState('h1')?.lastFallAt).toBe(t);
  });

  it("does not raise the fall again when the lane's alert was resolved before the ordered pass came to it", async () => {
    const t = local('2026-03-10 09:00');
    const r = await rig(t);
    const fall = await backlogThenFall(r, 200, t);
    await r.pipeline.urgent([fall]);
    const [raised] = await r.alerts('FALL');
    await r.store.saveAlert(
      { ...raised!, state: 'resolved', outcome: 'false_alarm', version: raised!.version + 1 },
      [],
    );
    r.pipeline.wake();
    await r.pipeline.idle();
    expect(r.pipeline.position).toBe(fall.seq);
    const falls = await r.alerts('FALL');
    expect(falls.map((a) => [a.id, a.state])).toEqual([[raised!.id, 'resolved']]);
    expect(r.raisedOut).toEqual([raised!.id]);
  });

  it('leaves a fall in a home with a FALL alert open to the ordered pass, which attaches it', async () => {
    const t = local('2026-03-10 09:00');
    const r = await rig(t);
    await r.send('fall', { type: 'fall', ts: t - 60_000, state: 'detected', room: 'bathroom' });
    const [open] = await r.alerts('FALL');
    const fall = await backlogThenFall(r, 50, t);
    await r.pipeline.urgent([fall]);
    expect(r.pipeline.urgentRaised).toBe(0);
    r.pipeline.wake();
    await r.pipeline.idle();
    const falls = await r.alerts('FALL');
    expect(falls).toHaveLength(1);
    expect(falls[0]).toMatchObject({ id: open!.id, triggerCount: 2 });
    expect(r.raisedOut).toEqual([open!.id]);
  });

  /**
   * A pipeline in place of the rig's whose next rules commit lets the urgent lane run `race()` first (set it
   * before the wake-up): the lane commits its alert between the ordered pass's decision and its commit.
   * `refused` counts the commits the store refused.
   */
  const racingPipeline = async (r: Rig, log = silentLogger()) => {
    await r.pipeline.stop();
    const ctl = { race: undefined as (() => Promise<void>) | undefined, refused: 0 };
    const store = new Proxy(r.store, {
      get(target, p) {
        if (p === 'commitRules')
          return async (c: Parameters<SqliteStore['commitRules']>[0]) => {
            const lane = ctl.race;
            ctl.race = undefined;
            await lane?.();
            return target.commitRules(c).catch((e: unknown) => {
              ctl.refused++;
              throw e;
            });
          };
        const v = Reflect.get(target, p);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const pipeline = new RulesPipeline({
      store,
      directory: r.directory,
      clock: r.clock,
      log,
      onCommitted: (raised) => r.raisedOut.push(...raised.map((a) => a.id)),
    });
    r.pipeline = pipeline;
    await pipeline.start();
    return { pipeline, ctl };
  };

  it("DATA-08: a page refused for racing the lane leaves every home's learned days as written", async () => {
    const tmp = tempDir('g365-race-');
    const file = join(tmp.path, 'guardian365.sqlite');
    const t = local('2026-03-10 09:00');
    const r = await rig(local('2026-03-09 08:00'), file);
    const raw = new Database(file);
    const learned = () =>
      (raw.prepare(`SELECT learned FROM home_states WHERE home_id = 'h1'`).get() as { learned: string })
        .learned;
    try {
      // A day learned and written.
      for (const at of ['2026-03-09 08:00', '2026-03-10 07:00']) {
        await r.quietTo(local(at));
        await r.send('m-living', { type: 'motion', ts: local(at), state: 'active', room: 'living' });
      }
      expect(JSON.parse(learned())).toHaveLength(1);
      const { pipeline, ctl } = await racingPipeline(r);
      // Behind the rules' back, after they read the days: a rewrite of them would show.
      raw.prepare(`UPDATE home_states SET learned = '"untouched"' WHERE home_id = 'h1'`).run();
      await r.quietTo(t);
      const fall = await backlogThenFall(r, 5, t);
      ctl.race = () => pipeline.urgent([fall]);
      pipeline.wake();
      await pipeline.idle();
      expect(ctl.refused).toBeGreaterThan(0);
      // Each refusal made the page be evaluated again, and /metrics counts it.
      expect(pipeline.evaluatedAgain).toBe(ctl.refused);
      expect(pipeline.position).toBe(fall.seq);
      expect(learned()).toBe('"untouched"');
    } finally {
      raw.close();
      rigs.splice(rigs.indexOf(r), 1);
      await r.close();
      tmp.remove();
    }
  });

  it('logs "alert raised" once for a fall whose ordered pass raced the lane: the alert the database holds', async () => {
    const t = local('2026-03-10 09:00');
    const r = await rig(t);
    const lines: { msg: string; alertId?: string; lane?: string }[] = [];
    const log = createLogger({
      level: 'info',
      destination: { write: (s: string) => lines.push(JSON.parse(s)) },
    });
    // The lane commits its alert between the ordered pass's decision to raise and that pass's own commit.
    const { pipeline, ctl } = await racingPipeline(r, log);
    const fall = await backlogThenFall(r, 5, t);
    ctl.race = () => pipeline.urgent([fall]);
    pipeline.wake();
    await pipeline.idle();
    expect(ctl.race).toBeUndefined();
    expect(pipeline.position).toBe(fall.seq);
    // The page that raced was refused once and evaluated again (g365_rules_pages_evaluated_again_total).
    expect(ctl.refused).toBe(1);
    expect(pipeline.evaluatedAgain).toBe(1);
    const falls = await r.alerts('FALL');
    expect(falls).toHaveLength(1);
    const raisedLines = lines.filter((l) => l.msg === 'alert raised');
    expect(raisedLines.map((l) => [l.alertId, l.lane])).toEqual([[falls[0]!.id, 'urgent']]);
    expect(r.raisedOut).toEqual([falls[0]!.id]);
  });

  it('raises nothing on the lane for what is not a fall detected or a help button', async () => {
    const t = local('2026-03-10 09:00');
    const r = await rig(t);
    await r.store.appendEvents([
      {
        deviceId: 'h1-fall',
        homeId: 'h1',
        receivedAt: t,
        topic: 'g365/v1/homes/h1/devices/h1-fall/events',
        status: 'accepted',
        ts: t,
        type: 'fall',
        deviceSeq: 1,
        body: JSON.stringify({ type: 'fall', ts: t, state: 'cleared' }),
        reason: null,
        flags: [],
      },
    ]);
    const cleared = (await r.store.readEvents(0, 10)).at(-1)!;
    await r.pipeline.urgent([cleared]);
    expect(await r.alerts()).toEqual([]);
    expect(r.pipeline.urgentRaised).toBe(0);
  });
});
