/**
 * CLU-03 on a real PostgreSQL: two lease managers (two dispatcher instances) on one database. One holds a
 * community at a time; when it stops renewing, the other takes it with a greater epoch; and a write that
 * carries the old epoch — the rules' commit or an escalation step of an instance that lost its lease — is
 * refused by the database in its own transaction, leaving nothing behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raise } from '../../dispatcher/alerts/lifecycle.ts';
import { LeaseManager } from '../../dispatcher/cluster/leases.ts';
import { PostgresStore } from '../../dispatcher/store/postgres.ts';
import { type Fence, FencedError } from '../../dispatcher/store/store.ts';
import { silentLogger } from '../../kernel/log.ts';
import { bareHousehold, eventually } from '../helpers.ts';
import { BACKENDS, createTestDatabase } from '../store-factory.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const T = Date.parse('2026-03-10T10:00:00+08:00');

const fallAlert = (id: string) =>
  raise(
    {
      rule: 'FALL',
      householdId: 'h1',
      deviceId: 'h1-fall',
      at: T,
      evidence: { seq: 1, deviceId: 'h1-fall', type: 'fall', at: T, summary: 'fall' },
      explanation: { zh: '跌倒', en: 'fall' },
    },
    { id, gridId: 'g1', community: 'c', responders: ['p1'] },
  );

describe.skipIf(pgBackend.skip)(`community leases on ${pgBackend.name}`, () => {
  let store: PostgresStore;
  let drop: () => Promise<void>;
  const managers: LeaseManager[] = [];

  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    store = new PostgresStore({ url: db.url });
    await store.migrate();
    await store.upsertGrid({ id: 'g1', name: 'Grid 1', community: 'c', leaderId: null });
    await store.upsertHousehold(bareHousehold('h1', 'g1'));
  });
  afterAll(async () => {
    for (const m of managers) await m.stop();
    await store?.close();
    await drop?.();
  });

  const manager = (holder: string, events: string[]) => {
    const m = new LeaseManager({
      pool: store.pool,
      holder,
      ttlMs: 1_000,
      renewMs: 200,
      log: silentLogger(),
      names: async () => ['c'],
      onAcquired: async (f) => {
        events.push(`${holder} took ${f.community}@${f.epoch}`);
      },
      onLost: async (c) => {
        events.push(`${holder} lost ${c}`);
      },
    });
    managers.push(m);
    return m;
  };

  it('gives a community to one instance at a time, then to the other with a greater epoch', async () => {
    const events: string[] = [];
    const a = manager('a', events);
    const b = manager('b', events);
    await a.start();
    await b.start();
    expect(a.fence('c')).toEqual({ community: 'c', holder: 'a', epoch: 1 });
    expect(b.fence('c')).toBeUndefined();
    // Renewals keep it with a: still epoch 1 after several renewal periods.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(a.fence('c')?.epoch).toBe(1);
    expect(b.fence('c')).toBeUndefined();
    // a stops (gracefully: it releases its lease): b takes it, with epoch 2.
    await a.stop();
    await eventually(() => b.fence('c'), 5_000, 'b holding c');
    expect(b.fence('c')).toEqual({ community: 'c', holder: 'b', epoch: 2 });
    expect(events).toEqual(['a took c@1', 'a lost c', 'b took c@2']);
  });

  it('refuses the writes of an instance whose lease was taken, in their own transaction', async () => {
    const current = managers[1]!.fence('c')!;
    const stale: Fence = { community: 'c', holder: 'a', epoch: 1 };
    const first = fallAlert('al_fenced');
    // An escalation step (saveAlert) with the lost lease: refused, nothing stored.
    await expect(store.saveAlert(first.alert, first.history, stale)).rejects.toBeInstanceOf(FencedError);
    expect(await store.getAlert('al_fenced')).toBeNull();
    // The rules' commit with the lost lease: refused, neither the alert nor the cursor moved.
    await expect(
      store.commitRules({
        cursor: { name: 'rules:c', seq: 42 },
        homeStates: [],
        raised: [first.alert],
        updated: [],
        history: first.history,
        fence: stale,
      }),
    ).rejects.toBeInstanceOf(FencedError);
    expect(await store.getAlert('al_fenced')).toBeNull();
    expect(await store.getCursor('rules:c')).toBe(0);
    // A page that raises nothing (one message: homes' state and cursor) is refused the same way.
    await expect(
      store.commitRules({
        cursor: { name: 'rules:c', seq: 41 },
        homeStates: [{ homeId: first.alert.householdId, state: { fenced: true } }],
        raised: [],
        updated: [],
        history: [],
        fence: stale,
      }),
    ).rejects.toBeInstanceOf(FencedError);
    expect(await store.getCursor('rules:c')).toBe(0);
    expect((await store.loadHomeStates()).has(first.alert.householdId)).toBe(false);
    // The holder's writes go through.
    await store.commitRules({
      cursor: { name: 'rules:c', seq: 42 },
      homeStates: [],
      raised: [first.alert],
      updated: [],
      history: first.history,
      fence: current,
    });
    expect(await store.getAlert('al_fenced')).not.toBeNull();
    expect(await store.getCursor('rules:c')).toBe(42);
    // The holder's single alert writes (an urgent raise, an escalation step) go through too, and take the
    // next change sequence.
    const own = fallAlert('al_holder');
    own.alert.householdId = 'h2';
    await store.saveAlert(own.alert, own.history, current);
    const saved = await store.getAlert('al_holder');
    expect(saved?.state).toBe(own.alert.state);
    expect(saved!.changeSeq).toBeGreaterThan((await store.getAlert('al_fenced'))!.changeSeq);
    expect(own.alert.changeSeq).toBe(saved!.changeSeq);
    const step = { ...saved!, version: saved!.version + 1, nextStepAt: T + 60_000 };
    await store.saveAlert(step, [], current);
    expect((await store.getAlert('al_holder'))?.nextStepAt).toBe(T + 60_000);
  });
});

/**
 * CLU-08 on a real PostgreSQL: lease managers (dispatcher instances) on one database spread four
 * communities evenly — 2 + 2, then a third instance gets its share —, a surplus is given up with its work
 * stopped before its lease is released, and a graceful stop hands everything over at once.
 */
describe.skipIf(pgBackend.skip)(`communities spread over live instances on ${pgBackend.name}`, () => {
  let store: PostgresStore;
  let drop: () => Promise<void>;
  const managers: LeaseManager[] = [];
  const NAMES = ['c1', 'c2', 'c3', 'c4'];
  const DUTY = '~duty';
  /** Each instance's wake-up, as the NOTIFY of the real service would deliver it. */
  const wakeAll = async () => {
    for (const m of managers) m.wake();
  };

  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    store = new PostgresStore({ url: db.url });
    await store.migrate();
  });
  afterAll(async () => {
    for (const m of managers) await m.stop();
    await store?.close();
    await drop?.();
  });

  /** Who holds which community in the database now (live leases). */
  const table = async () => {
    const r = await store.pool.query(
      `SELECT community, holder FROM community_leases
        WHERE expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint`,
    );
    return new Map(r.rows.map((x) => [String(x.community), String(x.holder)]));
  };
  const spreadOf = async (holders: string[]) => {
    const t = await table();
    return holders.map((h) => NAMES.filter((n) => t.get(n) === h).length);
  };

  const events: string[] = [];
  const manager = (holder: string, opts: { announce?: boolean } = {}) => {
    const m: LeaseManager = new LeaseManager({
      pool: store.pool,
      holder,
      ttlMs: 2_000,
      renewMs: 500,
      log: silentLogger(),
      names: async () => [...NAMES, DUTY],
      spread: (n) => n !== DUTY,
      announce: opts.announce === false ? undefined : wakeAll,
      onAcquired: async (f) => {
        events.push(`${holder} took ${f.community}`);
      },
      onLost: async (c) => {
        // The work stops while the lease is still this instance's in the database: nobody else works on it yet.
        const t = await table();
        events.push(`${holder} stopped ${c}${t.get(c) === holder ? ' while holding' : ' AFTER release'}`);
      },
    });
    managers.push(m);
    return m;
  };

  it('splits four communities 2 + 2 when a second instance joins, the work stopped before the release', async () => {
    const a = manager('a');
    await a.start();
    expect(a.names.filter((n) => n !== DUTY).sort()).toEqual(NAMES);
    expect(a.fence(DUTY)).toBeDefined();
    const b = manager('b');
    await b.start();
    await eventually(
      async () => {
        const s = await spreadOf(['a', 'b']);
        return s[0] === 2 && s[1] === 2 && b.names.length === 2;
      },
      5_000,
      '2 + 2',
    );
    // The duty watch stays where it was: it is not spread.
    expect(a.fence(DUTY)).toBeDefined();
    expect(b.fence(DUTY)).toBeUndefined();
    // a gave up two communities, each stopped while still held, and b took exactly those.
    const stopped = events.filter((e) => e.startsWith('a stopped'));
    expect(stopped).toHaveLength(2);
    for (const e of stopped) expect(e).toMatch(/while holding$/);
    const given = stopped.map((e) => e.split(' ')[2]!).sort();
    expect(b.names.sort()).toEqual(given);
    expect(a.released).toBe(2);
    expect(a.lost).toBe(0);
    // Each moved community has a greater epoch: the old holder's fence no longer writes.
    for (const c of given) expect(b.fence(c)!.epoch).toBe(2);
    // The ops view: who holds what (the duty watch beside a's communities).
    await eventually(() => b.view.instances.find((i) => i.id === 'b')?.leases.length === 2, 5_000);
    expect(b.view.instances.map((i) => [i.id, i.leases.filter((n) => n !== DUTY).length])).toEqual([
      ['a', 2],
      ['b', 2],
    ]);
    expect(b.view.instances[0]!.leases).toContain(DUTY);
    expect(a.live).toBe(2);
  });

  it('gives a third instance its share within a few renewals and keeps the others stable', async () => {
    const before = await table();
    const c = manager('c');
    const joinedAt = Date.now();
    await c.start();
    await eventually(async () => (await spreadOf(['c']))[0] === 1, 5_000, 'c holding one community');
    const tookMs = Date.now() - joinedAt;
    const spread = await spreadOf(['a', 'b', 'c']);
    expect(spread.reduce((x, y) => x + y)).toBe(4);
    expect([...spread].sort()).toEqual([1, 1, 2]);
    // Only one community moved: the one c holds.
    const after = await table();
    const moved = NAMES.filter((n) => after.get(n) !== before.get(n));
    expect(moved).toHaveLength(1);
    expect(after.get(moved[0]!)).toBe('c');
    // A few renewals later nothing has moved again.
    await new Promise((r) => setTimeout(r, 1_200));
    expect(await table()).toEqual(after);
    console.log(`third instance had its share ${tookMs} ms after it started`);
  });

  it('hands everything of an instance that stops gracefully over at once, not at expiry', async () => {
    const [a, b, c] = managers as [LeaseManager, LeaseManager, LeaseManager];
    const heldByA = a.names;
    expect(heldByA.length).toBeGreaterThan(0);
    const stoppedAt = Date.now();
    await a.stop();
    await eventually(
      async () => {
        const t = await table();
        return [...NAMES, DUTY].every((n) => t.get(n) === 'b' || t.get(n) === 'c');
      },
      5_000,
      'b and c holding everything',
    );
    const handoverMs = Date.now() - stoppedAt;
    // Well under the 2 s TTL: released and announced, not left to expire.
    expect(handoverMs).toBeLessThan(1_000);
    expect((await spreadOf(['b', 'c'])).sort()).toEqual([2, 2]);
    expect(b.live + c.live).toBe(4);
    const r = await store.pool.query('SELECT holder FROM dispatcher_instances ORDER BY holder');
    expect(r.rows.map((x) => x.holder)).toEqual(['b', 'c']);
    console.log(`graceful stop handed ${heldByA.length} leases over in ${handoverMs} ms`);
  });
});
