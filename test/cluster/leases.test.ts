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
  });
});
