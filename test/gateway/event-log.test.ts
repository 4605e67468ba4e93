/**
 * The gateway's group commit (gateway/event-log.ts) on a real SQLite file: an urgent record (RULE-16: a
 * fall detected, a help button) is written ahead of a backlog of ordinary ones, and everything is still
 * written once, in the log, and answered only once it is.
 */
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { GroupCommitLog } from '../../gateway/event-log.ts';
import type { EventRecord } from '../../gateway/ports.ts';
import { bareHousehold, tempDir } from '../helpers.ts';

const T = Date.UTC(2026, 2, 10, 2, 0);
const record = (deviceId: string, seq: number, type = 'motion'): EventRecord => ({
  deviceId,
  homeId: 'h1',
  receivedAt: T + seq,
  topic: `g365/v1/homes/h1/devices/${deviceId}/events`,
  status: 'accepted',
  ts: T + seq,
  type,
  deviceSeq: seq,
  body: JSON.stringify({ type, ts: T + seq, seq, state: type === 'fall' ? 'detected' : 'active' }),
  reason: null,
  flags: [],
});

const closing: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closing.splice(0)) await c();
});

/** A real SQLite log with one household, closed after the test. */
async function openStore(): Promise<SqliteStore> {
  const dir = tempDir();
  const store = new SqliteStore(join(dir.path, 'g365.sqlite'), { homeIndexIntervalMs: null });
  closing.push(async () => {
    await store.close();
    dir.remove();
  });
  await store.migrate();
  await store.upsertGrid({ id: 'g1', name: 'g1', community: 'c', leaderId: null });
  await store.upsertHousehold(bareHousehold('h1', 'g1'));
  return store;
}

it('writes an urgent record ahead of the ordinary ones waiting, and answers each only once written', async () => {
  const store = await openStore();
  // One batch of 100 at a time: 4,000 ordinary records wait in the queue behind the first.
  const log = new GroupCommitLog({ store, maxBatch: 100, maxInFlight: 1, eagerBatch: 100 });
  const answered: string[] = [];
  const ordinary = Array.from({ length: 4000 }, (_, i) =>
    log.append(record('h1-motion', i + 1)).then((o) => {
      answered.push(`m${i + 1}`);
      return o;
    }),
  );
  const fall = log.append(record('h1-fall', 1, 'fall'), true).then((o) => {
    answered.push('fall');
    return o;
  });
  const out = await fall;
  // Answered once on disk, while most of the backlog still waits.
  expect(out.duplicate).toBe(false);
  expect(answered.length).toBeLessThan(1000);
  const logged = await store.readEvents(0, 5000);
  expect(logged.find((e) => e.seq === out.seq)?.deviceId).toBe('h1-fall');
  await Promise.all(ordinary);
  await log.drain();
  const all = await store.readEvents(0, 5000);
  expect(all).toHaveLength(4001);
  expect(all.filter((e) => e.deviceId === 'h1-fall')).toHaveLength(1);
  // The ordinary records keep their order among themselves.
  const seqs = all.filter((e) => e.deviceId === 'h1-motion').map((e) => (e.event as { seq: number }).seq);
  expect(seqs).toEqual(Array.from({ length: 4000 }, (_, i) => i + 1));
});

it('commits ordinary records at most once per pace, waiting for company, while a fall goes at once (DEV-12)', async () => {
  const store = await openStore();
  // Long beside the records' 5 ms spacing, so a busy machine still sends them well within one pace.
  const PACE = 2_000;
  // Each written batch: when it left (its write's start) and what it carried.
  const batches: { at: number; types: (string | null)[] }[] = [];
  let started = 0;
  const log = new GroupCommitLog({
    store,
    paceMs: PACE,
    onWriteLatency: (ms) => {
      started = performance.now() - ms;
    },
    onCommitted: (records) => batches.push({ at: started, types: records.map((r) => r.type) }),
  });
  const answered = new Set<number>();
  const ordinary: Promise<unknown>[] = [];
  let fall: Promise<unknown> | undefined;
  let waitingWhenFallAnswered = -1;
  // A quiet device's pace: a record every 5 ms, the fall among them.
  const began = performance.now();
  for (let i = 1; i <= 40; i++) {
    ordinary.push(log.append(record('h1-motion', i)).then(() => answered.add(i)));
    if (i === 20)
      fall = log.append(record('h1-fall', 1, 'fall'), true).then(() => {
        waitingWhenFallAnswered = [...Array(20).keys()].filter((k) => !answered.has(k + 1)).length;
      });
    await new Promise((r) => setTimeout(r, 5));
  }
  const sending = performance.now() - began;
  await fall;
  // The fall did not wait for the pace: records appended before it were still waiting for their batch.
  expect(waitingWhenFallAnswered).toBeGreaterThan(0);
  await Promise.all(ordinary);
  await log.drain();
  const plain = batches.filter((b) => !b.types.includes('fall'));
  // The first record, after a quiet spell, left at once; the rest waited for company: few transactions.
  expect(plain[0]!.types).toHaveLength(1);
  // One at once, then one per pace begun while they arrived (one, unless the machine stalled for seconds).
  expect(plain.length).toBeLessThanOrEqual(2 + Math.floor(sending / PACE));
  for (let i = 1; i < plain.length; i++)
    expect(plain[i]!.at - plain[i - 1]!.at).toBeGreaterThanOrEqual(PACE - 5);
  const all = await store.readEvents(0, 100);
  expect(all).toHaveLength(41);
  const seqs = all.filter((e) => e.deviceId === 'h1-motion').map((e) => (e.event as { seq: number }).seq);
  expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
});

it('answers a drain and leaves nothing behind when a full batch leaves while the pace waits (DEV-12)', async () => {
  const store = await openStore();
  let idle = 0;
  const log = new GroupCommitLog({ store, paceMs: 60_000, eagerBatch: 4, onIdle: () => idle++ });
  // The first leaves at once; the next four wait for a pace of a minute until the fourth fills a batch.
  await log.append(record('h1-motion', 1));
  const full = [2, 3, 4, 5].map((i) => log.append(record('h1-motion', i)));
  await Promise.all(full);
  // Nothing is left waiting for the pace: the drain answers now, not in a minute, and the log says idle.
  await log.drain();
  expect(log.busy).toBe(false);
  expect(idle).toBeGreaterThanOrEqual(2);
  expect(await store.readEvents(0, 100)).toHaveLength(5);
});
