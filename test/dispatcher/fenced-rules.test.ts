/**
 * CLU-03 on a real PostgreSQL: the rules of an instance whose lease on the community was taken over. Its
 * commits carry the lost epoch, so the database refuses them; that is a handover, not a failure of the
 * rules. Nothing may be passed over (no HOME_UNWATCHED told to the dispatch room, no "passed over" in the
 * log), nothing written, and the log says once what happened, so an operator on call is not sent after
 * a fault that is not there. When the same lease is current again (renewed in time under its epoch), the
 * same rules go on from where they were, and the fall is raised.
 */
import type { DestinationStream } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert, HistoryEntry } from '../../dispatcher/alerts/model.ts';
import { Directory } from '../../dispatcher/directory.ts';
import { RULES_CURSOR, RULES_RETRY_MS, RulesPipeline } from '../../dispatcher/rules/pipeline.ts';
import { PostgresStore } from '../../dispatcher/store/postgres.ts';
import type { Fence, RuleCommit, Store } from '../../dispatcher/store/store.ts';
import type { EventRecord } from '../../gateway/ports.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { createLogger } from '../../kernel/log.ts';
import { instant, ms } from '../../kernel/time.ts';
import { eventually } from '../helpers.ts';
import { BACKENDS, createTestDatabase } from '../store-factory.ts';
import { DEVICES, household, local, seedHome, ZONE } from './rules-fixtures.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;

/** The store as a dispatcher's community pipeline sees it (cluster/shards.ts): every write fenced. */
function fencedStore(store: PostgresStore, fence: Fence): Store {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'commitRules') return (c: RuleCommit) => target.commitRules({ ...c, fence });
      if (key === 'saveAlert') return (a: Alert, h: HistoryEntry[]) => target.saveAlert(a, h, fence);
      const v = Reflect.get(target, key, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

const event = (deviceId: string, type: string, at: number, seq: number, extra = {}): EventRecord => ({
  deviceId,
  homeId: 'h1',
  receivedAt: at,
  topic: `g365/v1/homes/h1/devices/${deviceId}/events`,
  status: 'accepted',
  ts: at,
  type,
  deviceSeq: seq,
  body: JSON.stringify({ type, ts: at, seq, ...extra }),
  reason: null,
  flags: [],
});

describe.skipIf(pgBackend.skip)(
  `${pgBackend.name}: rules whose community lease was taken over (CLU-03)`,
  () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });

    it('writes nothing, passes nothing over, and says once that the lease moved on', async () => {
      const db = await createTestDatabase();
      cleanups.push(db.drop);
      const store = new PostgresStore({ url: db.url });
      cleanups.push(() => store.close());
      await store.migrate();
      const start = local('2026-03-10 09:00');
      await seedHome(store, household(), DEVICES, instant(start));
      // Instance b holds community c1 now (epoch 2); this pipeline still carries a's epoch 1.
      await store.pool.query(
        'INSERT INTO community_leases (community, holder, epoch, expires_at) VALUES ($1, $2, $3, $4)',
        ['c1', 'b', 2, Date.now() + 3_600_000],
      );
      const lines: Record<string, unknown>[] = [];
      const destination: DestinationStream = { write: (s: string) => void lines.push(JSON.parse(s)) };
      const clock = new ManualClock(instant(start));
      const pipeline = new RulesPipeline({
        store: fencedStore(store, { community: 'c1', holder: 'a', epoch: 1 }),
        directory: new Directory({ store, zone: ZONE, shifts: { dayStart: '08:00', nightStart: '20:00' } }),
        clock,
        log: createLogger({ level: 'info', destination }),
        onCommitted: () => {},
        stepsAtRaise: async (a: Alert) => ({ alert: a, history: [], send: () => {} }),
      });
      cleanups.push(() => pipeline.stop());
      await pipeline.start();

      await store.appendEvents([
        event('h1-m-living', 'motion', start, 1, { room: 'living' }),
        event('h1-fall', 'fall', start + 1_000, 1, { state: 'detected', room: 'bathroom' }),
      ]);
      const logged = await store.readEvents(0, 10);
      // The urgent lane's raise is refused too: the holder raises the fall.
      await pipeline.urgent(logged.filter((e) => e.deviceId === 'h1-fall'));
      pipeline.wake();
      const warned = () => lines.filter((l) => Number(l.level) >= 40);
      await eventually(() => warned().length > 0, 10_000, 'a word in the log');
      await pipeline.idle();
      // Tried again later, as any turn that wrote nothing: still refused, still nothing passed over.
      await clock.advance(ms(RULES_RETRY_MS));
      await pipeline.idle();

      expect(await store.listAlerts({ householdId: 'h1' })).toEqual([]);
      expect(await store.getCursor(RULES_CURSOR)).toBe(0);
      expect((await store.loadHomeStates()).size).toBe(0);
      expect({ skipped: pipeline.skipped, unwatched: pipeline.unwatched, stalls: pipeline.stalls }).toEqual({
        skipped: 0,
        unwatched: 0,
        stalls: 0,
      });
      expect(pipeline.fenced).toBeGreaterThanOrEqual(3);
      expect(warned().map((l) => String(l.msg))).toEqual([
        "rules could not write: this instance's lease on the community is not current; nothing was passed over, and the lease's holder goes on from the stored cursor",
      ]);

      // The lease is this pipeline's again, under its epoch (renewed in time): its next turn writes.
      await store.pool.query('UPDATE community_leases SET holder = $1, epoch = $2 WHERE community = $3', [
        'a',
        1,
        'c1',
      ]);
      await eventually(
        async () => {
          await clock.advance(ms(RULES_RETRY_MS));
          await pipeline.idle();
          return (await store.findOpenAlert('h1', 'FALL')) ?? undefined;
        },
        10_000,
        'the fall raised once the lease is current',
      );
      expect(await store.getCursor(RULES_CURSOR)).toBe(logged.at(-1)!.seq);
      expect(pipeline.stalls + pipeline.skipped + pipeline.unwatched).toBe(0);
    });
  },
);
