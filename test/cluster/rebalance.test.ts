/**
 * CLU-08 with real processes on one machine: a gateway and dispatcher processes (ROLE=gateway,
 * ROLE=dispatcher) on a real PostgreSQL, four communities (one grid and one household each), sharing one
 * simulated clock (×20: a service minute is 3 real seconds; leases are real time, TTL 6 s renewed every 1 s,
 * so a lease left to expire would take seconds and a graceful handover is told apart from it).
 *
 * - Two dispatchers split the four communities 2 + 2; /readyz and /metrics say who holds what.
 * - A third joins while a fall of every community is mid-escalation: it gets its share (one community), and
 *   the fall of the community that moved gets its next step at its stored minute (within 1 s), once; no
 *   step, notice or alert twice in any community.
 * - SIGTERM of a dispatcher: its communities are taken by the others at once (well before its leases
 *   would expire), and the falls escalate on, once each.
 */
import { once } from 'node:events';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../dispatcher/alerts/model.ts';
import type { PostgresStore } from '../../dispatcher/store/postgres.ts';
import { topics } from '../../gateway/protocol.ts';
import { minutes } from '../../kernel/time.ts';
import type { DeviceIdentity } from '../../simulators/device.ts';
import { AnchoredClock } from '../dispatcher/dispatch-helpers.ts';
import { apiCall, eventually } from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { type Cluster, type RoleProcess, startCluster } from './processes.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const SIM_START = Date.parse('2026-03-10T10:00:00+08:00');
const SPEED = 20;
const COMMUNITIES = ['c1', 'c2', 'c3', 'c4'];
const TTL_MS = 6_000;

describe.skipIf(pgBackend.skip)(`dispatchers sharing four communities on ${pgBackend.name}`, () => {
  let cluster: Cluster;
  let store: PostgresStore;
  let db: pg.Pool;
  let gateway: RoleProcess;
  let dispatchers: Map<string, RoleProcess>;
  let radars: DeviceIdentity[];
  const clock = new AnchoredClock(SIM_START, Date.now(), SPEED);
  /** The fall alert of each community, once raised. */
  const falls = new Map<string, Alert>();

  beforeAll(async () => {
    cluster = await startCluster({
      grids: 4,
      householdsPerGrid: 1,
      shape: (plan) =>
        plan.grids.forEach((g, i) => {
          g.community = COMMUNITIES[i]!;
        }),
      seededAt: clock.now(),
      gateways: 1,
      dispatchers: ['d1', 'd2'],
      env: {
        CLOCK_START: new Date(SIM_START).toISOString(),
        CLOCK_SPEED: String(SPEED),
        CLOCK_ANCHOR_MS: String(Date.now() - (clock.now() - SIM_START) / SPEED),
        LEASE_TTL_MS: String(TTL_MS),
        LEASE_RENEW_MS: '1000',
        HEALTH_CHECK_MS: '300',
        CLUSTER_POLL_MS: '500',
      },
    });
    ({ store, db, gateway, dispatchers } = cluster);
    radars = cluster.devices.filter((d) => d.kind === 'fall');
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  const base = (p: RoleProcess) => `http://127.0.0.1:${p.http}`;
  /** Who holds each community now (live leases), by INSTANCE_ID, with the epoch. */
  const holders = async () => {
    const r = await db.query(
      `SELECT community, holder, epoch FROM community_leases
        WHERE expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint`,
    );
    return new Map(
      r.rows.map((x) => [
        String(x.community),
        { id: String(x.holder).split('/')[0]!, epoch: Number(x.epoch) },
      ]),
    );
  };
  /** How many of the four communities each instance holds. */
  const split = async (ids: string[]) => {
    const h = await holders();
    return ids.map((id) => COMMUNITIES.filter((c) => h.get(c)?.id === id).length);
  };
  const metric = async (p: RoleProcess, name: string) => {
    const text = await (await fetch(`${base(p)}/metrics`)).text();
    return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  };
  const fall = async (community: string) => {
    const radar = radars.find((d) => d.homeId === `home-${community.slice(1)}-01`)!;
    // Stays connected until the cluster stops (a disconnect would raise DEVICE_OFFLINE beside the fall).
    const device = await cluster.device(radar, gateway);
    await device.publishAsync(
      topics.events(radar.homeId, radar.id),
      JSON.stringify({ type: 'fall', ts: clock.now(), seq: 1, state: 'detected', room: radar.room }),
      { qos: 1 },
    );
    return radar.homeId;
  };
  const stepsOf = async (alertId: string) =>
    (await store.alertHistory(alertId))
      .filter((e) => e.actor === 'escalation')
      .map((e) => ({ step: String(e.data.step ?? e.action), at: e.at, to: (e.data.to as string[]) ?? [] }));
  const LADDER = [
    ['notify_primary', 0],
    ['notify_next', 3],
    ['notify_all', 6],
    ['sla_at_risk', 12],
    ['sla_breach', 15],
  ] as const;
  /** Every fall so far: raised once, its steps the ladder's in order at their stored minutes, no notice twice. */
  const nothingTwice = async () => {
    for (const [community, alert] of falls) {
      const all = (await store.listAlerts({ rule: 'FALL', limit: 50 })).filter(
        (a) => a.householdId === alert.householdId,
      );
      expect(all, community).toHaveLength(1);
      const steps = await stepsOf(alert.id);
      expect(
        steps.map((s) => [s.step, (s.at - alert.raisedAt) / minutes(1)]),
        community,
      ).toEqual(LADDER.slice(0, steps.length));
      const named = new Map<string, number>();
      for (const s of steps) for (const id of s.to) named.set(id, (named.get(id) ?? 0) + 1);
      const attempts = new Map<string, number>();
      for (const d of await store.listDeliveries(alert.id)) {
        const key = `${d.staffId}/${d.channel}`;
        attempts.set(key, (attempts.get(key) ?? 0) + 1);
      }
      for (const [key, n] of attempts)
        expect(n, `${community} ${key}`).toBeLessThanOrEqual(named.get(key.split('/')[0]!) ?? 0);
    }
  };

  it('splits four communities 2 + 2 between two dispatchers, and says who holds what', async () => {
    const startedAt = Date.now();
    await eventually(
      async () => (await split(['d1', 'd2'])).join() === '2,2',
      20_000,
      'd1 and d2 holding two communities each',
    );
    console.log(`2 + 2 within ${Date.now() - startedAt} ms of both being up`);
    const h = await holders();
    const d1 = dispatchers.get('d1')!;
    // /readyz of either instance: both live, and which communities each works for.
    const ready = await eventually(async () => {
      const body = (await (await fetch(`${base(d1)}/readyz`)).json()) as {
        ready: boolean;
        cluster?: { self: string; instances: { id: string; leases: string[] }[] };
      };
      const mine = body.cluster?.instances.find((i) => i.id.startsWith('d1/'));
      return mine && mine.leases.filter((c) => COMMUNITIES.includes(c)).length === 2 ? body : undefined;
    }, 5_000);
    expect(ready.ready).toBe(true);
    expect(ready.cluster!.self).toMatch(/^d1\//);
    expect(ready.cluster!.instances.map((i) => i.id.split('/')[0]).sort()).toEqual(['d1', 'd2']);
    for (const i of ready.cluster!.instances)
      for (const c of i.leases.filter((n) => COMMUNITIES.includes(n)))
        expect(h.get(c)?.id).toBe(i.id.split('/')[0]);
    // The dispatch screen's system health carries the same view (its cluster panel).
    const admin = await cluster.admin(d1);
    const screen = await apiCall<{ cluster?: { instances: { id: string; leases: string[] }[] } }>(
      base(d1),
      admin,
      'GET',
      '/api/system/health',
    );
    expect(screen.body.cluster?.instances.map((i) => i.id.split('/')[0]).sort()).toEqual(['d1', 'd2']);
    // /metrics: two live instances; five leases between them (four communities and the duty watch).
    for (const p of dispatchers.values())
      await eventually(async () => (await metric(p, 'g365_dispatchers_live')) === 2, 5_000);
    const held = await Promise.all([...dispatchers.values()].map((p) => metric(p, 'g365_leases_held')));
    expect(held.reduce((a, b) => a + b)).toBe(5);
  }, 60_000);

  it('gives a third dispatcher its share mid-escalation: the moved fall steps on its minute, nothing twice', async () => {
    // A fall in every community, each escalating on the instance that holds it.
    for (const c of COMMUNITIES) {
      const homeId = await fall(c);
      const [alert] = await eventually(async () => {
        const a = (await store.listAlerts({ rule: 'FALL', limit: 10 })).filter(
          (x) => x.householdId === homeId,
        );
        return a.length ? a : undefined;
      }, 10_000);
      falls.set(c, alert!);
    }
    const before = await holders();
    const releasedTotal = async () =>
      (
        await Promise.all(
          ['d1', 'd2'].map((id) => metric(dispatchers.get(id)!, 'g365_leases_released_total')),
        )
      ).reduce((a, b) => a + b);
    const releasedBefore = await releasedTotal();
    // The falls the urgent lane raised, by instance: a process's counters never go back when it hands a
    // community over (RULE-16's count stays with the process that raised them).
    // Read once the counts have settled (a raise is counted just after its commit, which the test saw).
    const urgentCounts = async () =>
      Promise.all(['d1', 'd2'].map((id) => metric(dispatchers.get(id)!, 'g365_rules_urgent_raised_total')));
    const settled = await eventually(async () => {
      const first = await urgentCounts();
      await new Promise((r) => setTimeout(r, 200));
      return (await urgentCounts()).join() === first.join() ? first : undefined;
    }, 5_000);
    const urgentBefore = new Map(['d1', 'd2'].map((id, i) => [id, settled[i]!]));
    const joinedAt = Date.now();
    const d3 = await cluster.start('dispatcher', 'd3');
    const [moved] = await eventually(
      async () => {
        const h = await holders();
        const now = COMMUNITIES.filter((c) => h.get(c)?.id === 'd3');
        return now.length === 1 ? now : undefined;
      },
      20_000,
      'd3 holding one community',
    );
    const handedAt = clock.now();
    console.log(`d3 had its share ${Date.now() - joinedAt} ms after it was started (process start included)`);
    const after = await holders();
    expect((await split(['d1', 'd2', 'd3'])).sort()).toEqual([1, 1, 2]);
    // Only that community moved, from an instance that had two, with a greater epoch (the old fence is dead).
    expect(COMMUNITIES.filter((c) => after.get(c)!.id !== before.get(c)!.id)).toEqual([moved]);
    expect(after.get(moved!)!.epoch).toBeGreaterThan(before.get(moved!)!.epoch);
    const giver = before.get(moved!)!.id;
    // This bites when the moved community's fall was raised by the urgent lane (3 or 4 of the 4 falls are,
    // in the runs seen; the ordered pass raises the others), which the counts alone cannot tell.
    console.log(
      `urgent lane raised ${[...urgentBefore.values()].join(' + ')} of the 4 falls; ${giver} gave one up`,
    );
    expect(await metric(dispatchers.get(giver)!, 'g365_rules_urgent_raised_total')).toBe(
      urgentBefore.get(giver),
    );

    // The moved fall was mid-escalation: its next step fires at its stored minute, within 1 s, on d3.
    const alert = falls.get(moved!)!;
    const next = LADDER.find(([, min]) => alert.raisedAt + minutes(min) > handedAt)!;
    const dueAt = alert.raisedAt + minutes(next[1]);
    expect((await stepsOf(alert.id)).length).toBeGreaterThan(0);
    await eventually(
      async () => (await stepsOf(alert.id)).some((s) => s.step === next[0]),
      60_000,
      `${next[0]} of the moved fall`,
    );
    const lateMs = (clock.now() - dueAt) / SPEED;
    expect(lateMs).toBeLessThan(1_000);
    const history = await store.alertHistory(alert.id);
    expect(history.find((e) => e.data.step === next[0])!.at).toBe(dueAt);
    console.log(`moved community's ${next[0]} ${Math.round(lateMs)} ms after its minute`);
    // A little longer: nothing repeats, in any community.
    await new Promise((r) => setTimeout(r, 1_500));
    await nothingTwice();
    expect(await metric(d3, 'g365_leases_taken_total')).toBe(1);
    // One handover, given up on purpose by the instance that had one too many.
    expect((await releasedTotal()) - releasedBefore).toBe(1);
    // CLU-03: each stored home state is held in memory once, by its community's holder; d3, started with
    // every community's states stored, keeps only those of the community it took.
    const stored = async () => Number((await db.query('SELECT count(*) AS n FROM home_states')).rows[0].n);
    const held = async () =>
      (await Promise.all([...dispatchers.values()].map((p) => metric(p, 'g365_rules_homes_held')))).reduce(
        (a, b) => a + b,
      );
    await eventually(
      async () => {
        const [s, h] = [await stored(), await held()];
        return s >= COMMUNITIES.length && h === s ? true : undefined;
      },
      10_000,
      'every stored home state held once across the three dispatchers',
    );
  }, 120_000);

  it('hands the communities of a dispatcher stopped with SIGTERM over at once, and the falls escalate on once', async () => {
    const h = await holders();
    // The instance holding two communities leaves.
    const leaving = ['d1', 'd2'].find((id) => COMMUNITIES.filter((c) => h.get(c)?.id === id).length === 2)!;
    const its = COMMUNITIES.filter((c) => h.get(c)?.id === leaving);
    const proc = dispatchers.get(leaving)!;
    // Until when its leases would last if it just stopped renewing them (the database's clock).
    const expiry = await db.query(
      'SELECT min(expires_at) AS at FROM community_leases WHERE community = ANY($1::text[])',
      [its],
    );
    const wouldExpireAt = Number(expiry.rows[0].at);
    const exited = once(proc.child, 'exit');
    const stoppedAt = Date.now();
    proc.child.kill('SIGTERM');
    const taken = await eventually(
      async () => {
        const now = await holders();
        return its.every((c) => now.get(c) && now.get(c)!.id !== leaving) ? now : undefined;
      },
      TTL_MS,
      'its communities taken by the others',
    );
    const handoverMs = Date.now() - stoppedAt;
    await exited;
    expect(proc.child.exitCode).toBe(0);
    // Released, not left to expire: the others held them before the old leases would have run out. (The
    // handover waits for the leaving instance's notices on their way: a staff-app notice waits up to 3 s for
    // a gateway's confirmation.)
    const takenBy = await db.query('SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now');
    expect(Number(takenBy.rows[0].now)).toBeLessThan(wouldExpireAt);
    for (const c of its) expect(taken.get(c)!.epoch).toBeGreaterThan(h.get(c)!.epoch);
    const stayed = ['d1', 'd2', 'd3'].filter((id) => id !== leaving);
    expect((await split(stayed)).sort()).toEqual([2, 2]);
    console.log(`SIGTERM: ${its.length} communities taken by the others ${handoverMs} ms after the signal`);
    // Every fall goes on to its next step, once.
    const now = clock.now();
    const waits = [...falls.values()].map(async (alert) => {
      const next = LADDER.find(([, min]) => alert.raisedAt + minutes(min) > now);
      if (!next) return;
      await eventually(
        async () => (await stepsOf(alert.id)).some((s) => s.step === next[0]),
        60_000,
        `${next[0]} of ${alert.community}`,
      );
    });
    await Promise.all(waits);
    await new Promise((r) => setTimeout(r, 1_500));
    await nothingTwice();
    for (const id of stayed)
      await eventually(
        async () => (await metric(dispatchers.get(id)!, 'g365_dispatchers_live')) === 2,
        5_000,
      );
    expect([...dispatchers.values()].map((d) => d.output()).join('')).not.toMatch(/unhandled rejection/);
  }, 120_000);
});
