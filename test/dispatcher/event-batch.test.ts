/**
 * The log writer's seq windows (event-batch.ts) across a crash, on a real SQLite file: a sweep saves the
 * windows a few hundred devices per step between batches while devices keep sending, and a writer that
 * starts on the file as a kill -9 left it still refuses every seq the log holds.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { expect, it } from 'vitest';
import { batchWriter, eventRows, WINDOW_SWEEP, WINDOWS_CURSOR } from '../../dispatcher/store/event-batch.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import type { EventRecord } from '../../gateway/ports.ts';
import { bareHousehold, tempDir } from '../helpers.ts';

const T = Date.UTC(2026, 2, 10, 2, 0);
const DEVICES = 300;

const event = (d: number, seq: number): EventRecord => ({
  deviceId: `d${d}`,
  homeId: 'h1',
  receivedAt: T,
  topic: 't',
  status: 'accepted',
  ts: T + seq,
  type: 'motion',
  deviceSeq: seq,
  body: '{"type":"motion"}',
  reason: null,
  flags: [],
});

it('refuses after a crash every seq logged around a sweep of the windows, also those sent while it ran', async () => {
  const dir = tempDir();
  const file = join(dir.path, 'g365.sqlite');
  const store = new SqliteStore(file, { homeIndexIntervalMs: null });
  await store.migrate();
  await store.upsertGrid({ id: 'g1', name: 'g1', community: 'c', leaderId: null });
  await store.upsertHousehold(bareHousehold('h1', 'g1'));
  for (let d = 0; d < DEVICES; d++)
    await store.createDevice({
      id: `d${d}`,
      homeId: 'h1',
      kind: 'motion',
      room: 'living',
      secretHash: 'x',
      createdAt: T,
    });
  await store.close();

  const db = new Database(file);
  db.pragma('busy_timeout = 5000');
  const writer = batchWriter(db);
  const write = (records: EventRecord[]) => writer.write([{ rows: eventRows(records), presence: [] }])[0]!;
  const per = Math.ceil(WINDOW_SWEEP / DEVICES) + 1;
  const last = DEVICES - 1;
  // d299 has not sent seq 50 yet (it comes late, below).
  for (let seq = 1; seq <= per; seq++)
    write(
      Array.from({ length: DEVICES }, (_, d) => event(d, seq)).filter(
        (e) => e.deviceId !== `d${last}` || seq !== 50,
      ),
    );
  expect(writer.step()).toBe(true); // the sweep's first step: it has more devices to save
  const sweptFrom = writer.position;
  // d0 was saved by that step, d299 was not yet: both send before the sweep ends, d299 its late seq 50
  // and then one far ahead (still less than a window above its highest, so seqs 88–111 stay in it).
  expect(write([event(0, per + 1), event(last, 50), event(last, per + 1000)]).every((s) => s > 0)).toBe(true);
  expect(writer.step()).toBe(false);
  const cursor = db.prepare('SELECT seq FROM cursors WHERE name = ?').pluck();
  expect(cursor.get(WINDOWS_CURSOR)).toBe(sweptFrom);

  // A kill -9: the next writer opens the file as it is, without the first one closing.
  const after = new Database(file);
  after.pragma('busy_timeout = 5000');
  const restarted = batchWriter(after);
  const again = (records: EventRecord[]) =>
    restarted.write([{ rows: eventRows(records), presence: [] }])[0]!.map((s) => s === 0);
  expect(
    again([
      event(0, per + 1),
      event(last, per + 1000),
      event(last, per - 10),
      event(150, per),
      event(150, 1),
    ]),
  ).toEqual([true, true, true, true, true]);
  expect(again([event(0, per + 2), event(150, per + 1), event(last, per + 1001)])).toEqual([
    false,
    false,
    false,
  ]);
  db.close();
  after.close();
  dir.remove();
});
