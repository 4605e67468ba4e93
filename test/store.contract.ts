/**
 * The storage contract: every backend (SQLite and PostgreSQL) must pass this same suite
 * (aedes-persistence's abstract.js, for our Store). It states only what the contract promises; each
 * backend's physical design is tested in its own file. The concurrency and crash cases are what a
 * database shared by several processes can break: events and alert changes appended from several
 * connections reach a reader's cursor without one being passed over, optimistic alert writes, and a
 * writer killed with SIGKILL mid-batch.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { raise } from '../dispatcher/alerts/lifecycle.ts';
import type { Alert } from '../dispatcher/alerts/model.ts';
import { SEQ_DEPTH } from '../dispatcher/store/event-batch.ts';
import type { DeviceQuery, RuleCommit } from '../dispatcher/store/store.ts';
import { StaleWriteError, type Store } from '../dispatcher/store/store.ts';
import type { EventRecord } from '../gateway/ports.ts';
import { bareHousehold } from './helpers.ts';
import type { StoreLocation } from './store-factory.ts';

export interface StoreFactory {
  open(): Promise<Store>;
  /** Closes and reopens the same database (durability across restarts). */
  reopen(s: Store): Promise<Store>;
  /** A store on the database as a `kill -9` would leave it: what was written, with no clean close. */
  crashed(s: Store): Promise<Store>;
  destroy(s: Store): Promise<void>;
  /** Another store (its own connections) on the same database, as a second process would open. */
  another(s: Store): Promise<Store>;
  /** Where the database is, for a child process to open it. */
  location(s: Store): StoreLocation;
}

const T = Date.UTC(2026, 2, 10, 2, 0);

const record = (over: Partial<EventRecord> = {}): EventRecord => ({
  deviceId: 'h1-fall',
  homeId: 'h1',
  receivedAt: T,
  topic: 'g365/v1/homes/h1/devices/h1-fall/events',
  status: 'accepted',
  ts: T,
  type: 'fall',
  deviceSeq: 1,
  body: JSON.stringify({ type: 'fall', ts: T, state: 'detected', seq: 1 }),
  reason: null,
  flags: [],
  ...over,
});

const alert = (id = 'al_1', householdId = 'h1'): Alert =>
  raise(
    {
      rule: 'FALL',
      householdId,
      deviceId: 'h1-fall',
      at: T,
      evidence: { seq: 1, deviceId: 'h1-fall', type: 'fall', at: T, summary: 'fall' },
      explanation: { zh: '跌倒', en: 'fall' },
    },
    { id, gridId: 'g1', community: 'c', responders: ['p1'] },
  ).alert;

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`store contract: ${name}`, () => {
    let store: Store;

    beforeEach(async () => {
      store = await factory.open();
      await store.migrate();
      await store.upsertGrid({ id: 'g1', name: 'Grid 1', community: 'c', leaderId: null });
      await store.upsertHousehold(
        bareHousehold('h1', 'g1', {
          residents: [{ name: 'Wang', age: 80 }],
          accessNotes: 'key with neighbour',
        }),
      );
    });
    afterEach(async () => {
      await factory.destroy(store);
    });

    it('migrates idempotently: a second migrate applies nothing', async () => {
      expect(await store.migrate()).toBe(0);
    });

    it('assigns increasing sequence numbers to appended events and reads back accepted ones in order', async () => {
      const out = await store.appendEvents([
        record({ deviceSeq: 1 }),
        record({
          status: 'rejected',
          deviceSeq: null,
          type: null,
          body: '{bad',
          reason: 'payload is not valid JSON',
        }),
        record({ deviceSeq: 2 }),
      ]);
      expect(out.map((o) => o.duplicate)).toEqual([false, false, false]);
      const seqs = out.map((o) => o.seq!);
      expect(seqs[1]! > seqs[0]! && seqs[2]! > seqs[1]!).toBe(true);
      const read = await store.readEvents(0, 10);
      expect(read.map((e) => e.seq)).toEqual([seqs[0], seqs[2]]);
      expect(read[0]!.event).toMatchObject({ type: 'fall', state: 'detected' });
      expect(await store.countEvents('rejected')).toBe(1);
    });

    it("keeps each event's body, flags and rejected payload as written, whatever characters they hold", async () => {
      // Texts that SQL literals, array syntax and dollar quoting each treat specially.
      const odd = `it's \\ "q" $g365$ $$ {a,b} 跌倒 \u00e9$`;
      const bodies = [
        { type: 'fall', ts: T, state: 'detected', seq: 1, room: odd },
        { type: 'motion', ts: T + 1, state: 'active', seq: 2, note: ['$', '$g365$', "'"] },
      ];
      const out = await store.appendEvents([
        record({ deviceSeq: 1, body: JSON.stringify(bodies[0]), flags: [odd, 'late'] }),
        record({
          status: 'rejected',
          deviceSeq: null,
          type: null,
          body: odd,
          reason: 'payload is not valid JSON',
        }),
        record({ deviceSeq: 2, type: 'motion', body: JSON.stringify(bodies[1]), flags: [] }),
      ]);
      expect(out.map((o) => o.duplicate)).toEqual([false, false, false]);
      const read = await store.readEvents(0, 10);
      expect(read.map((e) => e.event)).toEqual(bodies);
      expect(read.map((e) => e.flags)).toEqual([[odd, 'late'], []]);
      expect(await store.countEvents('rejected')).toBe(1);
    });

    it('records a repeated device seq once', async () => {
      await store.appendEvents([record({ deviceSeq: 7 })]);
      const again = await store.appendEvents([record({ deviceSeq: 7 }), record({ deviceSeq: 8 })]);
      expect(again.map((o) => o.duplicate)).toEqual([true, false]);
      expect(await store.countEvents('accepted')).toBe(2);
    });

    it('still knows a device seq after a reopen, and takes late seqs out of order once each', async () => {
      await store.createDevice({
        id: 'h1-fall',
        homeId: 'h1',
        kind: 'fall',
        room: 'bedroom',
        secretHash: 'x',
        createdAt: T,
      });
      await store.appendEvents([record({ deviceSeq: 10 }), record({ deviceSeq: 12 })]);
      store = await factory.reopen(store);
      // 12 resent after a restart is a duplicate; 11 arrives late and is new; 11 again is a duplicate.
      const out = await store.appendEvents([
        record({ deviceSeq: 12 }),
        record({ deviceSeq: 11 }),
        record({ deviceSeq: 11 }),
        record({ deviceSeq: 10 }),
        record({ deviceSeq: 13 }),
      ]);
      expect(out.map((o) => o.duplicate)).toEqual([true, false, true, true, false]);
      expect(await store.countEvents('accepted')).toBe(4);
    });

    it('accepts a device that restarted its seq count far below its highest (never drops a fall)', async () => {
      await store.appendEvents([record({ deviceSeq: 50_000 })]);
      const out = await store.appendEvents([
        record({ deviceSeq: 1 }),
        record({ deviceSeq: 1 }),
        record({ deviceSeq: 2 }),
      ]);
      expect(out.map((o) => o.duplicate)).toEqual([false, true, false]);
    });

    it('records epoch-millisecond seqs once each whatever their distance, also after a crash', async () => {
      const S = T * 1000; // epoch microseconds
      const ms = (k: number) => record({ deviceSeq: S + k * 5_000_000, ts: T + k * 5000 });
      const first = await store.appendEvents([ms(0), ms(1), ms(0), ms(1)]);
      expect(first.map((o) => o.duplicate)).toEqual([false, false, true, true]);
      store = await factory.crashed(store);
      // Resent in a new session (the device reconnected): the same events, so duplicates.
      const again = await store.appendEvents([
        { ...ms(0), session: 'after-crash' },
        { ...ms(1), session: 'after-crash' },
        { ...ms(2), session: 'after-crash' },
      ]);
      expect(again.map((o) => o.duplicate)).toEqual([true, true, false]);
      expect(await store.countEvents('accepted')).toBe(3);
    });

    it('takes a counter that restarted in a new session, and refuses its resends', async () => {
      await store.appendEvents(
        Array.from({ length: 50 }, (_, i) => record({ deviceSeq: i + 1, ts: T + i, session: 'one' })),
      );
      const out = await store.appendEvents([
        record({ deviceSeq: 49, ts: T + 48, session: 'two' }), // a resend: same event
        record({ deviceSeq: 1, ts: T + 60_000, session: 'two' }), // a new count
        record({ deviceSeq: 2, ts: T + 61_000, session: 'two' }),
        record({ deviceSeq: 2, ts: T + 61_000, session: 'two' }),
      ]);
      expect(out.map((o) => o.duplicate)).toEqual([true, false, false, true]);
    });

    it('forgets the seqs of a batch that failed: the same events written again are new', async () => {
      const bad = record({ deviceSeq: 21, body: null as unknown as string });
      // Sent together, so a writer that groups concurrent batches takes them into one transaction.
      const [good, failed] = await Promise.allSettled([
        store.appendEvents([record({ deviceSeq: 20 })]),
        store.appendEvents([bad]),
      ]);
      expect(good.status === 'fulfilled' && good.value[0]?.duplicate).toBe(false);
      expect(failed.status).toBe('rejected');
      const again = await store.appendEvents([record({ deviceSeq: 21 }), record({ deviceSeq: 20 })]);
      expect(again.map((o) => o.duplicate)).toEqual([false, true]);
    });

    it("reads one home's accepted events in a device-time range, oldest first, narrowed by type", async () => {
      await store.appendEvents([
        record({ deviceSeq: 1, ts: T + 2000 }),
        record({
          deviceSeq: 2,
          ts: T + 1000,
          type: 'heartbeat',
          body: JSON.stringify({ type: 'heartbeat', ts: T + 1000 }),
        }),
        record({
          deviceSeq: null,
          status: 'rejected',
          type: null,
          body: '{bad',
          reason: 'bad json',
          ts: T + 1500,
        }),
        record({ deviceSeq: 3, ts: T + 9000 }),
        record({ deviceId: 'h2-fall', homeId: 'h2', deviceSeq: 1, ts: T + 1200 }),
      ]);
      const all = await store.listHomeEvents('h1', { from: T, to: T + 9000 }, 100);
      expect(all.map((e) => [e.ts, e.event.type])).toEqual([
        [T + 1000, 'heartbeat'],
        [T + 2000, 'fall'],
      ]);
      const falls = await store.listHomeEvents('h1', { from: T, to: T + 10_000, types: ['fall'] }, 100);
      expect(falls.map((e) => e.ts)).toEqual([T + 2000, T + 9000]);
      expect(await store.listHomeEvents('h1', { from: T, to: T + 10_000 }, 1)).toHaveLength(1);
    });

    it("reads one home's timeline whole while the household index catches up, also after a crash", async () => {
      // Thousands of events from three homes, in batches like the gateway's: whatever part of each home's
      // timeline the household index has reached, the rest is read from the log's tail.
      const n = 9000;
      for (let from = 0; from < n; from += 500) {
        await store.appendEvents(
          Array.from({ length: Math.min(500, n - from) }, (_, k) => {
            const i = from + k;
            const home = `h${1 + (i % 3)}`;
            return record({
              deviceId: `${home}-motion`,
              homeId: home,
              ts: T + (n - i) * 1000,
              type: 'motion',
              deviceSeq: i + 1,
              body: JSON.stringify({ type: 'motion', ts: T + (n - i) * 1000, seq: i + 1 }),
            });
          }),
        );
      }
      const expected = Array.from({ length: n }, (_, i) => i)
        .filter((i) => i % 3 === 1)
        .map((i) => T + (n - i) * 1000)
        .sort((a, b) => a - b);
      const timeline = async () =>
        (await store.listHomeEvents('h2', { from: T, to: T + (n + 1) * 1000 }, n)).map((e) => e.ts);
      expect(await timeline()).toEqual(expected);
      store = await factory.crashed(store);
      expect(await timeline()).toEqual(expected);
      // The seq windows written in chunks too: the last seq of h3 before the crash is still a duplicate.
      const lastOfH3 = n - 1 - ((n - 1 - 2) % 3) + 1;
      const again = await store.appendEvents([
        record({ deviceId: 'h3-motion', homeId: 'h3', deviceSeq: lastOfH3, type: 'motion' }),
        record({ deviceId: 'h3-motion', homeId: 'h3', deviceSeq: n + 3, type: 'motion' }),
      ]);
      expect(again.map((o) => o.duplicate)).toEqual([true, false]);
      store = await factory.reopen(store);
      expect(await timeline()).toEqual(expected);
    });

    it('still knows the seqs logged just before a crash', async () => {
      await store.appendEvents([record({ deviceSeq: 30 }), record({ deviceSeq: 32 })]);
      store = await factory.crashed(store);
      const out = await store.appendEvents([
        record({ deviceSeq: 32 }),
        record({ deviceSeq: 31 }),
        record({ deviceSeq: 30 }),
      ]);
      expect(out.map((o) => o.duplicate)).toEqual([true, false, true]);
      expect((await store.listHomeEvents('h1', { from: T, to: T + 1 }, 10)).length).toBe(3);
    });

    it('lists alerts raised in a time range, optionally of some grids', async () => {
      const a = alert('al_a', 'h1');
      await store.commitRules({
        cursor: { name: 'rules', seq: 1 },
        homeStates: [],
        raised: [a],
        updated: [],
        history: [],
      });
      expect((await store.listAlertsRaisedBetween(T, T + 1)).map((x) => x.id)).toEqual(['al_a']);
      expect(await store.listAlertsRaisedBetween(T + 1, T + 60_000)).toEqual([]);
      expect(await store.listAlertsRaisedBetween(T, T + 1, ['g2'])).toEqual([]);
      expect((await store.listAlertsRaisedBetween(T - 1, T + 1, ['g1']))[0]?.rule).toBe('FALL');
    });

    it('keeps appended events across a reopen', async () => {
      await store.appendEvents([record({ deviceSeq: 1 }), record({ deviceSeq: 2 })]);
      store = await factory.reopen(store);
      expect(await store.countEvents()).toBe(2);
    });

    it('commits raised alerts, history, home state and the cursor together', async () => {
      const a = alert();
      await store.commitRules({
        cursor: { name: 'rules', seq: 42 },
        homeStates: [{ homeId: 'h1', state: { lastMotionAt: 5 } }],
        raised: [a],
        updated: [],
        history: [
          {
            alertId: a.id,
            at: T,
            action: 'raised',
            fromState: null,
            toState: 'raised',
            actor: 'rules',
            channel: 'system',
            data: {},
          },
        ],
      });
      expect(await store.getCursor('rules')).toBe(42);
      expect((await store.loadHomeStates()).get('h1')).toEqual({ state: { lastMotionAt: 5 }, learned: null });
      expect((await store.getAlert(a.id))?.rule).toBe('FALL');
      expect((await store.findOpenAlert('h1', 'FALL'))?.id).toBe(a.id);
      expect(await store.alertHistory(a.id)).toHaveLength(1);
      expect(a.changeSeq).toBeGreaterThan(0);
    });

    it('reads the committed rules state of one home, null for a home without one', async () => {
      await store.commitRules({
        cursor: { name: 'rules', seq: 7 },
        homeStates: [{ homeId: 'h1', state: { lastMotionAt: 5 } }],
        raised: [],
        updated: [],
        history: [],
      });
      expect(await store.getHomeState('h1')).toEqual({ state: { lastMotionAt: 5 }, learned: null });
      expect(await store.getHomeState('h2')).toBeNull();
      // A state holds what people typed (room names): it comes back as written, whatever characters.
      const awkward = { lastMotionRoom: `卧室 'a' "b" \\ $g365$ $$ end$`, lastMotionAt: 6 };
      await store.commitRules({
        cursor: { name: 'rules', seq: 8 },
        homeStates: [
          { homeId: 'h1', state: awkward },
          { homeId: 'h2', state: { lastMotionRoom: '$', lastMotionAt: 7 } },
        ],
        raised: [],
        updated: [],
        history: [],
      });
      expect(await store.getHomeState('h1')).toEqual({ state: awkward, learned: null });
      expect((await store.loadHomeStates()).get('h2')).toEqual({
        state: { lastMotionRoom: '$', lastMotionAt: 7 },
        learned: null,
      });
    });

    it('reads the home states a page at a time, in home id order, each once', async () => {
      const ids = ['h1', 'h2', 'h10', 'h3', 'h20'];
      await store.commitRules({
        cursor: { name: 'rules', seq: 1 },
        homeStates: ids.map((homeId, i) => ({ homeId, state: { now: i } })),
        raised: [],
        updated: [],
        history: [],
      });
      const pages: string[][] = [];
      for (let after: string | null = null; ; ) {
        const page = await store.loadHomeStates({ after, limit: 2 });
        pages.push([...page.keys()]);
        if (page.size < 2) break;
        after = [...page.keys()].at(-1)!;
      }
      expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
      expect(pages.flat().sort()).toEqual([...ids].sort());
      expect((await store.loadHomeStates({ after: null, limit: 10 })).get('h10')).toEqual({
        state: { now: 2 },
        learned: null,
      });
    });

    it('DATA-08: writes the learned part of a home state only when given, and keeps it otherwise', async () => {
      const commit = (seq: number, homeStates: RuleCommit['homeStates']) =>
        store.commitRules({
          cursor: { name: 'rules', seq },
          homeStates,
          raised: [],
          updated: [],
          history: [],
        });
      const days = [{ d: 20_000, first: 420, quiet: [0, 95, 0] }];
      await commit(1, [{ homeId: 'h1', state: { now: 1 }, learned: days }]);
      expect(await store.getHomeState('h1')).toEqual({ state: { now: 1 }, learned: days });
      // Every event rewrites the state; the learned part stays as it was written…
      await commit(2, [{ homeId: 'h1', state: { now: 2 } }]);
      await commit(3, [
        { homeId: 'h1', state: { now: 3 } },
        { homeId: 'h2', state: { now: 3 } },
      ]);
      expect(await store.getHomeState('h1')).toEqual({ state: { now: 3 }, learned: days });
      expect(await store.getHomeState('h2')).toEqual({ state: { now: 3 }, learned: null });
      // …until the next is given, in the same commit as its state.
      const more = [...days, { d: 20_001, first: 431, quiet: [0, 0, 120] }];
      await commit(4, [{ homeId: 'h1', state: { now: 4 }, learned: more }]);
      expect((await store.loadHomeStates()).get('h1')).toEqual({ state: { now: 4 }, learned: more });
    });

    it('refuses a second open alert of the same rule for a household', async () => {
      await store.saveAlert(alert('al_1'), []);
      await expect(store.saveAlert(alert('al_2'), [])).rejects.toThrow();
    });

    it('writes an alert and its history as they came, quotes and backslashes included, and nothing of a stale one', async () => {
      const odd = `it's a \\ "quote" {x} $1 ${'\n'}é 🙂`;
      const a = { ...alert(), explanation: { zh: odd, en: odd }, note: odd } as Alert;
      const h = (at: number, action: string) => ({
        alertId: a.id,
        at,
        action,
        fromState: null,
        toState: 'raised' as const,
        actor: odd,
        channel: 'api' as const,
        data: { note: odd },
      });
      await store.saveAlert(a, [h(T, 'raised')]);
      const v2 = { ...a, state: 'accepted' as const, version: 2, nextStepAt: null };
      await store.saveAlert(v2, [h(T + 1, 'accept')]);
      // Stale: neither the alert nor its history entry is written.
      await expect(
        store.saveAlert({ ...a, state: 'cancelled', version: 2 }, [h(T + 2, 'cancel')]),
      ).rejects.toBeInstanceOf(StaleWriteError);
      const stored = await store.getAlert(a.id);
      expect(stored).toMatchObject({
        state: 'accepted',
        version: 2,
        nextStepAt: null,
        explanation: { zh: odd, en: odd },
      });
      expect((stored as Alert & { note: string }).note).toBe(odd);
      const history = await store.alertHistory(a.id);
      expect(history.map((x) => [x.action, x.actor, x.data])).toEqual([
        ['raised', odd, { note: odd }],
        ['accept', odd, { note: odd }],
      ]);
      expect(stored!.changeSeq).toBeGreaterThan(0);
      expect((await store.alertChangesSince(0, 10)).map((x) => [x.id, x.version])).toEqual([[a.id, 2]]);
    });

    it('refuses a stale write (optimistic concurrency)', async () => {
      const a = alert();
      await store.saveAlert(a, []);
      const v2 = { ...a, state: 'accepted' as const, version: 2 };
      await store.saveAlert(v2, []);
      await expect(store.saveAlert({ ...a, state: 'cancelled', version: 2 }, [])).rejects.toBeInstanceOf(
        StaleWriteError,
      );
      expect((await store.getAlert(a.id))?.state).toBe('accepted');
    });

    it('lists changes after a change sequence, in order', async () => {
      const a = alert('al_1', 'h1');
      await store.saveAlert(a, []);
      const seq = await store.currentChangeSeq();
      await store.saveAlert({ ...a, state: 'accepted', version: 2 }, []);
      const changes = await store.alertChangesSince(seq, 10);
      expect(changes.map((c) => [c.id, c.state])).toEqual([['al_1', 'accepted']]);
      expect(changes[0]!.changeSeq).toBe(seq + 1);
    });

    it('lists alerts by each filter in the query, and counts open ones by state and severity', async () => {
      await store.upsertGrid({ id: 'g2', name: 'Grid 2', community: 'c', leaderId: null });
      await store.upsertHousehold(bareHousehold('h2', 'g2'));
      const fall = alert('al_f', 'h1');
      const other = { ...alert('al_o', 'h2'), gridId: 'g2', raisedAt: T + 60_000 };
      const tech = {
        ...alert('al_t', 'h1'),
        rule: 'DEVICE_OFFLINE' as const,
        severity: 'technical' as const,
        responders: [],
      };
      for (const a of [fall, other, tech]) await store.saveAlert(a, []);
      await store.saveAlert(
        { ...other, state: 'accepted', assigneeId: 'p9', acceptedAt: T + 61_000, version: 2 },
        [],
      );
      const ids = async (f: Parameters<Store['listAlerts']>[0]) =>
        (await store.listAlerts(f)).map((a) => a.id).sort();
      expect(await ids({ state: 'open', severities: ['technical'] })).toEqual(['al_t']);
      expect(
        await ids({ state: 'open', severities: ['critical', 'high', 'medium'], notAccepted: true }),
      ).toEqual(['al_f']);
      expect(await ids({ state: 'open', rule: 'DEVICE_OFFLINE', raisedBefore: T + 1 })).toEqual(['al_t']);
      expect(await ids({ raisedBefore: T + 1 })).toEqual(['al_f', 'al_t']);
      expect(await ids({ states: ['accepted', 'raised'], notGridIds: ['g1'] })).toEqual(['al_o']);
      expect(await ids({ state: 'open', involving: 'p9' })).toEqual(['al_o']);
      expect(await ids({ state: 'open', involving: 'p1', notGridIds: ['g2'] })).toEqual(['al_f']);
      const counts = (await store.countOpenAlerts()).map((c) => `${c.state}/${c.severity}/${c.count}`).sort();
      expect(counts).toEqual(['accepted/critical/1', 'raised/critical/1', 'raised/technical/1']);
      expect((await store.countOpenAlerts(['g2'])).map((c) => c.count)).toEqual([1]);
    });

    it('lists open alerts with a pending escalation step for re-arming at start', async () => {
      const a = alert();
      await store.saveAlert(a, []);
      expect((await store.listPendingEscalations()).map((x) => x.id)).toEqual([a.id]);
      await store.saveAlert({ ...a, state: 'resolved', nextStepAt: null, version: 2 }, []);
      expect(await store.listPendingEscalations()).toEqual([]);
      expect(await store.findOpenAlert('h1', 'FALL')).toBeNull();
    });

    it('stores devices with presence and rejected counts', async () => {
      await store.createDevice({
        id: 'd1',
        homeId: 'h1',
        kind: 'motion',
        room: 'living',
        secretHash: 'x',
        createdAt: T,
      });
      await store.updatePresence([
        { deviceId: 'd1', online: true, lastSeenAt: T + 5, battery: 80, rejectedDelta: 2 },
      ]);
      await store.updatePresence([{ deviceId: 'd1', rejectedDelta: 1 }]);
      expect(await store.getDeviceState('d1')).toMatchObject({
        online: true,
        lastSeenAt: T + 5,
        battery: 80,
        rejectedCount: 3,
      });
      expect((await store.findDevice('d1'))?.homeId).toBe('h1');
      expect(await store.setDeviceDisabled('d1', true)).toBe(true);
      expect((await store.findDevice('d1'))?.disabled).toBe(true);
    });

    it('answers device health by query: filters, scope by grid and household, counts, the worst first', async () => {
      await store.upsertGrid({ id: 'g2', name: 'Grid 2', community: 'c', leaderId: null });
      await store.upsertHousehold(bareHousehold('h2', 'g2'));
      const add = (id: string, homeId: string) =>
        store.createDevice({ id, homeId, kind: 'motion', room: 'living', secretHash: 'x', createdAt: T });
      for (const id of ['q-off', 'q-low', 'q-ok', 'q-dis', 'q-gone']) await add(id, 'h1');
      for (const id of ['q-rej', 'q-new']) await add(id, 'h2');
      await store.updatePresence([
        { deviceId: 'q-off', online: false, lastSeenAt: T + 1 },
        { deviceId: 'q-low', online: true, lastSeenAt: T + 2, battery: 10 },
        { deviceId: 'q-ok', online: true, lastSeenAt: T + 3, battery: 90 },
        { deviceId: 'q-rej', online: true, lastSeenAt: T + 4, rejectedDelta: 2 },
        { deviceId: 'q-gone', online: false, lastSeenAt: T + 5 },
      ]);
      await store.setDeviceDisabled('q-dis', true);
      expect(await store.retire('device', 'q-gone', T + 6)).toBe(true);

      const ids = async (q: Partial<DeviceQuery> = {}) =>
        (await store.queryDevices({ gridIds: null, lowBattery: 15, limit: 100, ...q })).map((d) => d.id);
      expect(await ids()).toEqual(['q-dis', 'q-low', 'q-new', 'q-off', 'q-ok', 'q-rej']);
      expect(await ids({ select: 'offline' })).toEqual(['q-off']);
      expect(await ids({ select: 'low_battery' })).toEqual(['q-low']);
      expect(await ids({ select: 'rejecting' })).toEqual(['q-rej']);
      expect(await ids({ select: 'never_seen' })).toEqual(['q-dis', 'q-new']);
      expect(await ids({ select: 'disabled' })).toEqual(['q-dis']);
      // Enabled devices with a problem, offline first, then low battery, then by rejected messages.
      expect(await ids({ select: 'problems' })).toEqual(['q-new', 'q-off', 'q-low', 'q-rej']);
      expect(await ids({ gridIds: ['g2'] })).toEqual(['q-new', 'q-rej']);
      expect(await ids({ gridIds: [] })).toEqual([]);
      expect(await ids({ grid: 'g1', select: 'never_seen' })).toEqual(['q-dis']);
      expect(await ids({ homeId: 'h2', select: 'problems' })).toEqual(['q-new', 'q-rej']);
      expect(await ids({ limit: 2 })).toEqual(['q-dis', 'q-low']);
      const [low] = await store.queryDevices({
        gridIds: null,
        select: 'low_battery',
        lowBattery: 15,
        limit: 1,
      });
      expect(low).toMatchObject({ id: 'q-low', homeId: 'h1', gridId: 'g1', battery: 10, online: true });
      expect(low?.address).toEqual((await store.getHousehold('h1'))?.address);

      expect(await store.countDeviceHealth({ gridIds: null, lowBattery: 15 })).toEqual({
        total: 5,
        online: 3,
        offline: 2,
        lowBattery: 1,
        rejecting: 1,
      });
      expect(await store.countDeviceHealth({ gridIds: ['g2'], lowBattery: 15 })).toEqual({
        total: 2,
        online: 1,
        offline: 1,
        lowBattery: 0,
        rejecting: 1,
      });
      expect(await store.countDeviceHealth({ gridIds: [], lowBattery: 15 })).toEqual({
        total: 0,
        online: 0,
        offline: 0,
        lowBattery: 0,
        rejecting: 0,
      });
    });

    it('reads households and their devices for many homes at once, retired households included', async () => {
      for (const id of ['h2', 'h3']) await store.upsertHousehold(bareHousehold(id, 'g1'));
      for (const [id, homeId] of [
        ['d2', 'h2'],
        ['d1', 'h1'],
        ['d3', 'h1'],
        ['d4', 'h3'],
      ] as const)
        await store.createDevice({
          id,
          homeId,
          kind: 'motion',
          room: 'living',
          secretHash: 'x',
          createdAt: T,
        });
      expect(await store.retire('device', 'd3', T + 1)).toBe(true);
      expect(await store.retire('household', 'h3', T + 2)).toBe(true);
      expect((await store.getHouseholds(['h3', 'h1', 'nope'])).map((h) => h.id).sort()).toEqual(['h1', 'h3']);
      expect(await store.getHouseholds([])).toEqual([]);
      const devices = await store.listDevices({ homeIds: ['h1', 'h2', 'h3'] });
      expect(devices.map((d) => [d.id, d.homeId])).toEqual([
        ['d1', 'h1'],
        ['d2', 'h2'],
      ]);
      expect(await store.listDevices({ homeIds: [] })).toEqual([]);
    });

    it('applies presence updates passed with an event batch in the same write', async () => {
      await store.createDevice({
        id: 'd3',
        homeId: 'h1',
        kind: 'motion',
        room: 'living',
        secretHash: 'x',
        createdAt: T,
      });
      const out = await store.appendEvents(
        [record({ deviceId: 'd3', deviceSeq: 1 })],
        [{ deviceId: 'd3', online: true, lastSeenAt: T + 9, rssi: -60, rejectedDelta: 1 }],
      );
      expect(out[0]?.duplicate).toBe(false);
      expect(await store.getDeviceState('d3')).toMatchObject({
        online: true,
        lastSeenAt: T + 9,
        rssi: -60,
        rejectedCount: 1,
      });
    });

    it("never lets an older session's presence overwrite a newer session's (DEV-11)", async () => {
      await store.createDevice({
        id: 'd4',
        homeId: 'h1',
        kind: 'motion',
        room: 'living',
        secretHash: 'x',
        createdAt: T,
      });
      const state = async () => {
        const s = (await store.getDeviceState('d4'))!;
        return { online: s.online, lastSeenAt: s.lastSeenAt, battery: s.battery, rejected: s.rejectedCount };
      };
      // Session A (started T + 10) online on one gateway; the device reconnects on another: session B (T + 20).
      await store.updatePresence([{ deviceId: 'd4', online: true, lastSeenAt: T + 10, sessionAt: T + 10 }]);
      await store.updatePresence([
        { deviceId: 'd4', online: true, lastSeenAt: T + 20, battery: 90, sessionAt: T + 20 },
      ]);
      // A's late offline (its keep-alive ran out after the device had left), with a rejection it counted: the
      // state stays B's, the count adds up.
      await store.updatePresence([
        {
          deviceId: 'd4',
          online: false,
          lastSeenAt: T + 30,
          battery: 10,
          rejectedDelta: 1,
          sessionAt: T + 10,
        },
      ]);
      expect(await state()).toEqual({ online: true, lastSeenAt: T + 20, battery: 90, rejected: 1 });
      // The same through an event batch's write, and with the older session last in one batch.
      await store.appendEvents(
        [record({ deviceId: 'd4', deviceSeq: 1 })],
        [{ deviceId: 'd4', online: false, lastSeenAt: T + 31, sessionAt: T + 10 }],
      );
      await store.updatePresence([
        { deviceId: 'd4', lastSeenAt: T + 32, sessionAt: T + 20 },
        { deviceId: 'd4', online: false, lastSeenAt: T + 33, sessionAt: T + 10 },
      ]);
      expect(await state()).toEqual({ online: true, lastSeenAt: T + 32, battery: 90, rejected: 1 });
      // B's own end is written; so is a later session's start, and a write that names no session.
      await store.updatePresence([{ deviceId: 'd4', online: false, lastSeenAt: T + 40, sessionAt: T + 20 }]);
      expect((await state()).online).toBe(false);
      await store.updatePresence([{ deviceId: 'd4', online: true, lastSeenAt: T + 50, sessionAt: T + 50 }]);
      expect(await state()).toMatchObject({ online: true, lastSeenAt: T + 50 });
      await store.updatePresence([{ deviceId: 'd4', online: false, lastSeenAt: T + 60 }]);
      expect(await state()).toMatchObject({ online: false, lastSeenAt: T + 60 });
      // Still, nothing older than the newest session that wrote: B (T + 20) cannot bring it back online.
      await store.updatePresence([{ deviceId: 'd4', online: true, lastSeenAt: T + 70, sessionAt: T + 20 }]);
      expect(await state()).toMatchObject({ online: false, lastSeenAt: T + 60 });
    });

    it('rotates a device secret, counts rejections by reason and gives the grid of a device', async () => {
      await store.createDevice({
        id: 'd2',
        homeId: 'h1',
        kind: 'door',
        room: 'entrance',
        secretHash: 'old',
        createdAt: T,
      });
      expect((await store.findDevice('d2'))?.gridId).toBe('g1');
      expect(await store.rotateDeviceSecret('d2', 'new')).toBe(true);
      expect((await store.findDevice('d2'))?.secretHash).toBe('new');
      expect(await store.rotateDeviceSecret('nobody', 'new')).toBe(false);
      // SEC-05: a legacy hash is re-hashed only while the row still holds it; a rotation in between wins.
      await store.createDevice({
        id: 'd2b',
        homeId: 'h1',
        kind: 'door',
        room: 'entrance',
        secretHash: 'legacy',
        createdAt: T,
      });
      expect(
        await store.upgradeDeviceSecretHashes([
          { deviceId: 'd2', from: 'old', to: 'fast-old' },
          { deviceId: 'd2b', from: 'legacy', to: 'fast' },
          { deviceId: 'nobody', from: 'x', to: 'y' },
        ]),
      ).toEqual([false, true, false]);
      expect((await store.findDevice('d2'))?.secretHash).toBe('new');
      expect((await store.findDevice('d2b'))?.secretHash).toBe('fast');
      expect(await store.upgradeDeviceSecretHashes([])).toEqual([]);
      await store.updatePresence([
        {
          deviceId: 'd2',
          rejectedDelta: 3,
          rejectedByReason: { 'invalid state': 2, 'payload too large': 1 },
        },
      ]);
      await store.updatePresence([
        { deviceId: 'd2', rejectedDelta: 1, rejectedByReason: { 'invalid state': 1 } },
      ]);
      expect(await store.deviceRejections('d2')).toEqual({ 'invalid state': 3, 'payload too large': 1 });
      expect(await store.deviceRejections('d1-none')).toEqual({});
      expect((await store.getDeviceState('d2'))?.rejectedCount).toBe(4);
    });

    it('answers device lookups made at the same time, each with its own device or none', async () => {
      for (const id of ['dl1', 'dl2'])
        await store.createDevice({
          id,
          homeId: 'h1',
          kind: id === 'dl1' ? 'motion' : 'door',
          room: id === 'dl1' ? 'living' : 'entrance',
          secretHash: `hash-${id}`,
          createdAt: T,
        });
      // Logins of a connect storm ask together (the PostgreSQL store answers them in one query).
      const [a, b, none, again] = await Promise.all(
        ['dl1', 'dl2', 'dl-none', 'dl1'].map((id) => store.findDevice(id)),
      );
      expect(a).toMatchObject({
        id: 'dl1',
        homeId: 'h1',
        kind: 'motion',
        secretHash: 'hash-dl1',
        gridId: 'g1',
      });
      expect(b).toMatchObject({ id: 'dl2', kind: 'door', room: 'entrance', secretHash: 'hash-dl2' });
      expect(none).toBeNull();
      expect(again).toEqual(a);
      expect(again).not.toBe(a);
      // A lookup after a change sees the change.
      expect(await store.setDeviceDisabled('dl2', true)).toBe(true);
      expect((await store.findDevice('dl2'))?.disabled).toBe(true);
    });

    it('keeps staff, roster, overrides, sessions and audit entries', async () => {
      await store.createStaff({
        id: 's1',
        name: 'Li',
        phone: '1',
        roles: ['grid_worker'],
        gridIds: ['g1'],
        username: 'li',
        passwordHash: 'h',
      });
      expect((await store.getStaffByUsername('li'))?.id).toBe('s1');
      await store.setRoster('g1', [{ gridId: 'g1', shift: 'day', weekdays: [], staffIds: ['s1'] }]);
      await store.setRoster('g1', [{ gridId: 'g1', shift: 'night', weekdays: [1], staffIds: ['s1'] }]);
      expect(await store.listRoster('g1')).toEqual([
        { gridId: 'g1', shift: 'night', weekdays: [1], staffIds: ['s1'] },
      ]);
      await store.addOverride({
        id: 'o1',
        gridId: 'g1',
        date: '2026-03-10',
        shift: 'day',
        kind: 'leave',
        staffId: 's1',
        replacementId: null,
      });
      expect(await store.listOverrides('g1')).toHaveLength(1);
      await store.addOverride({
        id: 'o2',
        gridId: 'g1',
        date: '2026-03-11',
        shift: 'night',
        kind: 'cover',
        staffId: null,
        replacementId: 's1',
      });
      // Deleting one override returns it and leaves the others; a second delete finds nothing.
      expect((await store.deleteOverride('o2'))?.replacementId).toBe('s1');
      expect((await store.listOverrides('g1')).map((o) => o.id)).toEqual(['o1']);
      expect(await store.deleteOverride('o2')).toBeNull();
      await store.createSession({ tokenHash: 't', staffId: 's1', createdAt: T, expiresAt: T + 1 });
      expect((await store.getSession('t'))?.staffId).toBe('s1');
      await store.deleteSession('t');
      expect(await store.getSession('t')).toBeNull();
      // A password reset ends every session of that person, and only theirs.
      for (const [tokenHash, staffId] of [
        ['a', 's1'],
        ['b', 's1'],
        ['c', 's2'],
      ] as const)
        await store.createSession({ tokenHash, staffId, createdAt: T, expiresAt: T + 1 });
      expect(await store.deleteStaffSessions('s1')).toBe(2);
      expect([await store.getSession('a'), await store.getSession('b')]).toEqual([null, null]);
      expect((await store.getSession('c'))?.staffId).toBe('s2');
      expect(await store.deleteStaffSessions('s1')).toBe(0);
      await store.audit({
        at: T,
        actor: 's1',
        action: 'household.read_access_notes',
        target: 'h1',
        detail: {},
      });
      expect((await store.listAudit(10))[0]).toMatchObject({ actor: 's1', target: 'h1' });
    });

    it('queries the audit log by actor, target, action prefix and time, newest first', async () => {
      const entries = [
        { at: T, actor: 'a1', action: 'alert.accept', target: 'al_1', detail: {} },
        { at: T + 10, actor: 'a2', action: 'household.read_access_notes', target: 'h1', detail: {} },
        { at: T + 20, actor: 'a1', action: 'alert.resolve', target: 'al_1', detail: { ok: true } },
        { at: T + 30, actor: 'a1', action: 'household.read_access_notes', target: 'h1', detail: {} },
      ];
      for (const e of entries) await store.audit(e);
      const q = async (f: Partial<Parameters<Store['queryAudit']>[0]>) =>
        (await store.queryAudit({ limit: 100, ...f })).map((e) => e.at - T);
      expect(await q({ actor: 'a1' })).toEqual([30, 20, 0]);
      expect(await q({ target: 'h1' })).toEqual([30, 10]);
      expect(await q({ action: 'alert.' })).toEqual([20, 0]);
      expect(await q({ action: 'alert' })).toEqual([]);
      expect(await q({ from: T + 10, to: T + 30 })).toEqual([20, 10]);
      expect(await q({ actor: 'a1', target: 'h1' })).toEqual([30]);
      expect(await q({ limit: 1 })).toEqual([30]);
    });

    it('updates a staff member and lists recent delivery attempts', async () => {
      await store.createStaff({
        id: 's2',
        name: 'Zhao',
        phone: '1',
        roles: ['volunteer'],
        gridIds: ['g1'],
        username: 'zhao',
        passwordHash: 'h',
      });
      const patch = { roles: ['grid_worker' as const, 'volunteer' as const], disabled: true };
      expect(await store.updateStaff('s2', patch)).toBe(true);
      expect(await store.getStaff('s2')).toMatchObject({
        name: 'Zhao',
        roles: ['grid_worker', 'volunteer'],
        gridIds: ['g1'],
        disabled: true,
      });
      expect(await store.updateStaff('nobody', { name: 'x' })).toBe(false);
      const ok = { alertId: 'al_1', staffId: 's2', channel: 'mqtt', at: T, ok: true, error: null };
      await store.recordDelivery(ok);
      await store.recordDelivery({
        alertId: 'al_1',
        staffId: 's2',
        channel: 'webhook',
        at: T + 5,
        ok: false,
        error: 'HTTP 500',
      });
      expect((await store.listDeliveriesSince(T + 1, 10)).map((d) => [d.channel, d.ok])).toEqual([
        ['webhook', false],
      ]);
    });

    it('hands a reader following its cursor every event appended concurrently from several connections', async () => {
      // Four writers (their own connections) append batches at once while a reader follows the log from
      // its cursor, as the rules do: an event committed late below a position already read would be
      // passed over forever.
      const writers = [store, ...(await Promise.all([1, 2, 3].map(() => factory.another(store))))];
      const appended: number[] = [];
      let writing = true;
      const seen: number[] = [];
      const reader = (async () => {
        let cursor = 0;
        for (;;) {
          const done = !writing;
          const page = await store.readEvents(cursor, 500);
          for (const e of page) seen.push(e.seq);
          if (page.length > 0) cursor = page[page.length - 1]!.seq;
          else if (done) return;
          else await new Promise((r) => setImmediate(r));
        }
      })();
      await Promise.all(
        writers.map(async (w, k) => {
          for (let b = 0; b < 40; b++) {
            const out = await w.appendEvents(
              Array.from({ length: 10 }, (_, i) =>
                record({ deviceId: `w${k}`, deviceSeq: b * 10 + i + 1, ts: T + b }),
              ),
            );
            for (const o of out) if (o.seq !== null) appended.push(o.seq);
          }
        }),
      );
      writing = false;
      await reader;
      for (const w of writers.slice(1)) await w.close();
      expect(appended).toHaveLength(1600);
      expect(seen.length).toBe(appended.length);
      expect([...seen].sort((a, b) => a - b)).toEqual([...appended].sort((a, b) => a - b));
    });

    it('hands a reader of the alert change feed every change written concurrently from several connections', async () => {
      const writers = [store, ...(await Promise.all([1, 2, 3].map(() => factory.another(store))))];
      for (let k = 0; k < 4; k++) await store.upsertHousehold(bareHousehold(`hc${k}`, 'g1'));
      const written = new Set<string>();
      let writing = true;
      const seen = new Set<string>();
      const from = await store.currentChangeSeq();
      const reader = (async () => {
        let cursor = from;
        for (;;) {
          const done = !writing;
          const page = await store.alertChangesSince(cursor, 100);
          for (const a of page) seen.add(`${a.id}@${a.version}`);
          if (page.length > 0) cursor = page[page.length - 1]!.changeSeq;
          else if (done) return;
          else await new Promise((r) => setImmediate(r));
        }
      })();
      await Promise.all(
        writers.map(async (w, k) => {
          for (let n = 0; n < 25; n++) {
            // Each alert raised and resolved (the next one of the household may open only then).
            const a = alert(`al_${k}_${n}`, `hc${k}`);
            await w.saveAlert(a, []);
            const closed = { ...a, state: 'resolved' as const, nextStepAt: null, version: 2 };
            await w.saveAlert(closed, []);
            written.add(`${a.id}@2`);
          }
        }),
      );
      writing = false;
      await reader;
      for (const w of writers.slice(1)) await w.close();
      // Each alert's last change reached the reader (earlier ones may be overtaken by it: the feed holds
      // an alert's latest state).
      expect([...written].filter((k) => !seen.has(k))).toEqual([]);
    });

    it('lets exactly one of several concurrent writers of the same alert version win', async () => {
      const a = alert();
      await store.saveAlert(a, []);
      const writers = [store, ...(await Promise.all([1, 2, 3, 4].map(() => factory.another(store))))];
      const results = await Promise.allSettled(
        writers.map((w, k) =>
          w.saveAlert({ ...a, state: 'accepted', assigneeId: `p${k}`, version: 2 }, [
            {
              alertId: a.id,
              at: T + k,
              action: 'accept',
              fromState: 'raised',
              toState: 'accepted',
              actor: `p${k}`,
              channel: 'api',
              data: {},
            },
          ]),
        ),
      );
      for (const w of writers.slice(1)) await w.close();
      const won = results.flatMap((r, k) => (r.status === 'fulfilled' ? [k] : []));
      expect(won).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(StaleWriteError);
      const stored = await store.getAlert(a.id);
      expect(stored?.version).toBe(2);
      expect(stored?.assigneeId).toBe(`p${won[0]}`);
      expect((await store.alertHistory(a.id)).map((h) => h.actor)).toEqual([`p${won[0]}`]);
    });

    it('keeps every acknowledged event of a writer killed with SIGKILL mid-batch, and nothing half-written', async () => {
      const at = factory.location(store);
      await store.createDevice({
        id: 'h1-killed',
        homeId: 'h1',
        kind: 'motion',
        room: 'living',
        secretHash: 'x',
        createdAt: T,
      });
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          join(import.meta.dirname, 'store-writer-child.ts'),
          at.backend,
          at.where,
          'h1-killed',
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const acked: number[] = [];
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const killAt = 500 + Math.floor(Math.random() * 1500);
      for await (const line of createInterface({ input: child.stdout! })) {
        if (line === 'ready' || line === '') continue;
        acked.push(Number(line));
        if (acked.length >= killAt) {
          child.kill('SIGKILL');
          break;
        }
      }
      await exited;
      store = await factory.crashed(store);
      const logged = (await store.readEvents(0, 1_000_000)).filter((e) => e.deviceId === 'h1-killed');
      const seqs = new Set(logged.map((e) => (e.event as { seq?: number }).seq));
      expect(acked.filter((s) => !seqs.has(s))).toEqual([]);
      // Whole batches or nothing: every logged batch of 50 is complete.
      const perBatch = new Map<number, number>();
      for (const s of seqs)
        perBatch.set(Math.floor((s! - 1) / 50), (perBatch.get(Math.floor((s! - 1) / 50)) ?? 0) + 1);
      expect([...perBatch.values()].filter((n) => n !== 50)).toEqual([]);
      // The log goes on: the seqs logged before the kill are still known, a new one is taken. The writer
      // may have logged thousands past what was read of its output before the kill; the duplicate memory
      // holds a device's newest SEQ_DEPTH seqs (duplicates.ts RecentSeqs), so the acknowledged seqs asked
      // again are those among them, and always the highest logged.
      const highest = [...seqs].reduce((a: number, b) => Math.max(a, b!), 0);
      const known = [...acked.filter((s) => s > highest - SEQ_DEPTH && s !== highest), highest];
      const again = await store.appendEvents([
        ...known.map((s) => record({ deviceId: 'h1-killed', deviceSeq: s, ts: T + s, type: 'motion' })),
        record({ deviceId: 'h1-killed', deviceSeq: highest + 1, ts: T + highest + 1, type: 'motion' }),
      ]);
      expect(again.map((o) => o.duplicate)).toEqual([...known.map(() => true), false]);
    });
  });
}
