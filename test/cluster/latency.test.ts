/**
 * CLU-10 on real processes: a gateway and a dispatcher process (ROLE=gateway, ROLE=dispatcher) on a real
 * PostgreSQL, a real fall radar and the responder's real app (mqtt.js) on the gateway, on the real clock.
 *
 * Just before a fall, the log takes one event from each of STORM households: once households the
 * dispatcher has looked up before, once households it has never looked up (what a dispatcher's start or
 * the connect storm of many devices puts in front of the rules). The fall is logged behind them, so its
 * notice waits for the rules to get through them: at three round trips per household seen for the first
 * time that added seconds (0.7 s per 1,000 here, 1.4–6 s in the scale benchmark under load); loaded
 * together, a few queries. Then every device of OFFLINE households of another community drops at once
 * (a stopped gateway's): their DEVICE_OFFLINE alerts' maintenance-queue writes, all at once, held the
 * fall's escalation step for seconds. The bounds are well above this machine's noise and below the stalls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresStore } from '../../dispatcher/store/postgres.ts';
import type { EventRecord } from '../../gateway/ports.ts';
import { topics } from '../../gateway/protocol.ts';
import { eventually } from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { type Cluster, type RoleProcess, startCluster } from './processes.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
/** Storm households per fall (twice as many are seeded: half looked up before, half never). */
const STORM = 4_000;
/** What households seen for the first time may add to a fall's notice (they added ~0.7 s per 1,000). */
const FRESH_EXTRA_MS = 1_000;
const FALL_BOUND_MS = 2_000;
/** Devices of another community that drop at once, each raising DEVICE_OFFLINE. */
const OFFLINE = 2_000;

/** `n` households `{grid}-h{i}` with one motion sensor `{grid}-d{i}` each, in a grid of their own, in bulk. */
async function bulkHomes(store: PostgresStore, grid: string, community: string, n: number): Promise<void> {
  const ids = Array.from({ length: n }, (_, i) => i);
  await store.pool.query(`INSERT INTO grids (id, name, community) VALUES ($1, $1, $2)`, [grid, community]);
  await store.pool.query(
    `INSERT INTO households (id, grid_id, building, unit, room, residents, contacts, access_notes, routine)
     SELECT h, $2, '1', '1', '1', '[]', '[]', '', '{"nightStart":"22:00","nightEnd":"06:00","wakeTime":"07:30","thresholds":{}}'
     FROM unnest($1::text[]) AS h`,
    [ids.map((i) => `${grid}-h${i}`), grid],
  );
  await store.pool.query(
    `INSERT INTO devices (id, home_id, kind, room, secret_hash, created_at)
     SELECT d, h, 'motion', 'living', 'x', $3 FROM unnest($1::text[], $2::text[]) AS x(d, h)`,
    [ids.map((i) => `${grid}-d${i}`), ids.map((i) => `${grid}-h${i}`), Date.now()],
  );
}

describe.skipIf(pgBackend.skip)(`a fall behind a storm of new homes on ${pgBackend.name}`, () => {
  let cluster: Cluster;
  let store: PostgresStore;
  let dispatcher: RoleProcess;

  beforeAll(async () => {
    cluster = await startCluster({
      grids: 1,
      householdsPerGrid: 3,
      seed: async (store, plan) => {
        // The storm's households, in a grid of the same community (its rules read every one of them), in bulk.
        await bulkHomes(store, 'storm', plan.grids[0]!.community, 2 * STORM);
        // Households of another community whose devices all drop at once (a stopped gateway's).
        await bulkHomes(store, 'far', 'elsewhere', OFFLINE);
      },
    });
    ({ store, dispatcher } = cluster);
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it(`brings a fall's notice as fast behind ${STORM} households never seen as behind known ones, and while ${OFFLINE} technical alerts are raised`, async () => {
    const received: { at: number; alertId: string }[] = [];
    await cluster.rosterApps((_staffId, p) =>
      received.push({ at: Date.now(), alertId: JSON.parse(p).alertId }),
    );
    const radars = await Promise.all(
      cluster.devices
        .filter((d) => d.kind === 'fall')
        .map(async (radar) => ({ radar, c: await cluster.device(radar) })),
    );
    const caughtUp = async () => {
      const text = await (await fetch(`http://127.0.0.1:${dispatcher.http}/metrics`)).text();
      const cursor = Number(/^g365_rules_cursor (\d+)$/m.exec(text)?.[1] ?? -1);
      const last = Number((await store.pool.query('SELECT max(seq) AS m FROM events')).rows[0].m ?? 0);
      return cursor >= last;
    };
    /** One heartbeat from each of the storm households `from`…, durable in the log as the gateway writes them. */
    const storm = async (from: number) => {
      const now = Date.now();
      const records: EventRecord[] = Array.from({ length: STORM }, (_, j) => {
        const i = from + j;
        return {
          deviceId: `storm-d${i}`,
          homeId: `storm-h${i}`,
          receivedAt: now,
          topic: topics.events(`storm-h${i}`, `storm-d${i}`),
          status: 'accepted',
          ts: now,
          type: 'heartbeat',
          deviceSeq: null,
          body: JSON.stringify({ type: 'heartbeat', ts: now, battery: 90 }),
          reason: null,
          flags: [],
        };
      });
      for (let i = 0; i < STORM; i += 500) await store.appendEvents(records.slice(i, i + 500));
    };
    /** Radar `k` reports a fall: milliseconds from its publish to the FALL alert's notice on a responder's app. */
    const fallToNotice = async (k: number) => {
      const { radar, c } = radars[k]!;
      const sentAt = Date.now();
      await c.publishAsync(
        topics.events(radar.homeId, radar.id),
        JSON.stringify({ type: 'fall', ts: sentAt, seq: 1, state: 'detected', room: radar.room }),
        { qos: 1 },
      );
      const alert = await eventually(
        async () =>
          (await store.listAlerts({ rule: 'FALL', limit: 10 })).find((a) => a.householdId === radar.homeId),
        60_000,
        'the FALL alert',
      );
      const notice = await eventually(
        () => received.find((n) => n.alertId === alert.id),
        60_000,
        'its notice',
      );
      return notice.at - sentAt;
    };
    /** A storm, then a fall right behind it: milliseconds from the fall's publish to its notice on the app. */
    const fallBehind = async (from: number, k: number) => {
      await eventually(caughtUp, 30_000, 'the rules caught up before the storm');
      await storm(from);
      return fallToNotice(k);
    };
    // The first half of the storm households is looked up once (not measured: it also warms the process up),
    // then a fall behind them again (known households) and a fall behind the other half (never seen).
    await storm(0);
    const known = await fallBehind(0, 0);
    const fresh = await fallBehind(STORM, 1);
    console.log(
      `fall → responder's app behind ${STORM} households: known ${known} ms, never seen ${fresh} ms`,
    );
    expect(fresh - known).toBeLessThan(FRESH_EXTRA_MS);
    expect(fresh).toBeLessThan(FALL_BOUND_MS);
    await eventually(caughtUp, 30_000, 'the rules caught up after the falls');

    // A thousand technical alerts raised at once elsewhere (every device of a stopped gateway went offline
    // on a keep-alive timeout) must not hold the fall's escalation step: their maintenance-queue writes
    // once took the whole database pool for seconds.
    const now = Date.now();
    const drops: EventRecord[] = Array.from({ length: OFFLINE }, (_, i) => ({
      deviceId: `far-d${i}`,
      homeId: `far-h${i}`,
      receivedAt: now,
      topic: topics.status(`far-h${i}`, `far-d${i}`),
      status: 'accepted',
      ts: now,
      type: 'presence',
      deviceSeq: null,
      body: JSON.stringify({ type: 'presence', ts: now, state: 'offline', cause: 'keepalive' }),
      reason: null,
      flags: [],
    }));
    for (let i = 0; i < OFFLINE; i += 500) await store.appendEvents(drops.slice(i, i + 500));
    // The flood is under way: the first of those alerts are in.
    await eventually(
      async () => (await store.listAlerts({ rule: 'DEVICE_OFFLINE', limit: 10 })).length > 0,
      30_000,
      'DEVICE_OFFLINE raised',
    );
    const during = await fallToNotice(2);
    const open = (await store.listAlerts({ rule: 'DEVICE_OFFLINE', limit: 100_000 })).length;
    console.log(
      `fall → responder's app while ${OFFLINE} DEVICE_OFFLINE are raised (${open} in by then): ${during} ms`,
    );
    expect(during).toBeLessThan(FALL_BOUND_MS);
  }, 180_000);
});
