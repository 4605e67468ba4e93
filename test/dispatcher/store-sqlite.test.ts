import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { WINDOW_SWEEP } from '../../dispatcher/store/event-batch.ts';
import { homeIndexFile } from '../../dispatcher/store/home-index.ts';
import { MIGRATIONS, migrationSql } from '../../dispatcher/store/migrations.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import type { Store } from '../../dispatcher/store/store.ts';
import type { EventRecord } from '../../gateway/ports.ts';
import { bareHousehold, eventually, tempDir } from '../helpers.ts';
import { storeContract } from '../store.contract.ts';

storeContract('SQLite file (WAL)', {
  open: async () => new SqliteStore(join(tempDir().path, 'g365.sqlite')),
  reopen: async (s) => {
    const file = (s as SqliteStore).file;
    await s.close();
    return new SqliteStore(file);
  },
  crashed: async (s) => {
    // The files as the last durable write left them, copied while the store is still open (its writes
    // have all been answered): what a kill -9 at this moment leaves on disk.
    const file = (s as SqliteStore).file;
    const copy = join(tempDir().path, 'g365.sqlite');
    // The log only: the household index is derived, and a copy of it taken while its thread writes could
    // be torn, which a kill -9 never leaves (the next start builds it again from the log).
    for (const suffix of ['', '-wal']) {
      if (existsSync(file + suffix)) copyFileSync(file + suffix, copy + suffix);
    }
    await s.close();
    rmSync(join(file, '..'), { recursive: true, force: true });
    return new SqliteStore(copy);
  },
  destroy: async (s) => {
    await s.close();
    rmSync(join((s as SqliteStore).file, '..'), { recursive: true, force: true });
  },
  another: async (s) => new SqliteStore((s as SqliteStore).file),
  location: (s) => ({ backend: 'sqlite', where: (s as SqliteStore).file }),
});

const T = Date.UTC(2026, 2, 10, 2, 0);
/** An accepted motion event of `home` with device seq `s` at `T + s`. */
const motion = (home: string, s: number) => ({
  deviceId: `${home}-motion`,
  homeId: home,
  receivedAt: T,
  topic: 't',
  status: 'accepted' as const,
  ts: T + s,
  type: 'motion',
  deviceSeq: s,
  body: JSON.stringify({ type: 'motion', ts: T + s, seq: s }),
  reason: null,
  flags: [],
});

describe('SQLite: upgrading a log written before the seq windows and the chunked household index (migrations 5 and 6)', () => {
  it('indexes the old events for the timeline and keeps refusing their seqs', async () => {
    const dir = tempDir();
    const file = join(dir.path, 'g365.sqlite');
    const old = new Database(file);
    old.pragma('journal_mode = WAL');
    old.exec(
      'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    for (const m of MIGRATIONS.filter((m) => m.version <= 4)) {
      for (const sql of migrationSql(m, 'sqlite')) old.exec(sql);
      old.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(m.version, m.name);
    }
    old.exec(`INSERT INTO grids (id, name, community, leader_id) VALUES ('g1', 'g1', 'c', NULL);
      INSERT INTO households (id, grid_id, building, unit, room, residents, contacts, access_notes, routine)
        VALUES ('h1', 'g1', '1', '1', '1', '[]', '[]', '', '{}');
      INSERT INTO devices (id, home_id, kind, room, secret_hash, created_at)
        VALUES ('h1-motion', 'h1', 'motion', 'living', 'x', 0)`);
    const insert = old.prepare(
      `INSERT INTO events (device_id, home_id, received_at, topic, status, ts, type, device_seq, body, reason, flags)
       VALUES ('h1-motion', 'h1', ?, 't', 'accepted', ?, 'motion', ?, ?, NULL, '[]')`,
    );
    for (let s = 1; s <= 3; s++)
      insert.run(T, T + s, s, JSON.stringify({ type: 'motion', ts: T + s, seq: s }));
    old.close();

    // No indexer thread: what the index holds at once is what the upgrade moved into its file.
    const store = new SqliteStore(file, { homeIndexIntervalMs: null });
    try {
      expect(await store.migrate()).toBe(MIGRATIONS.filter((m) => m.version > 4).length);
      expect(store.homeIndexedUpTo()).toBe(3);
      const log = new Database(file, { readonly: true });
      expect(log.prepare(`SELECT name FROM sqlite_master WHERE name = 'events_by_home'`).get()).toBe(
        undefined,
      );
      log.close();
      const timeline = await store.listHomeEvents('h1', { from: T, to: T + 10 }, 10);
      expect(timeline.map((e) => e.ts)).toEqual([T + 1, T + 2, T + 3]);
      const out = await store.appendEvents([3, 4].map((s) => motion('h1', s)));
      expect(out.map((o) => o.duplicate)).toEqual([true, false]);
      expect((await store.listHomeEvents('h1', { from: T, to: T + 10 }, 10)).length).toBe(4);
    } finally {
      await store.close();
      dir.remove();
    }
  });
});

describe('SQLite: the household index in a file of its own', () => {
  /** `n` events of `home` with seqs and times `from`…, in batches like the gateway's. */
  const append = async (store: SqliteStore, home: string, from: number, n: number) => {
    for (let s = from; s < from + n; s += 250)
      await store.appendEvents(
        Array.from({ length: Math.min(250, from + n - s) }, (_, k) => motion(home, s + k)),
      );
  };
  const caughtUp = (store: SqliteStore, seq: number) =>
    eventually(() => store.homeIndexedUpTo() >= seq, 10_000, `household index at ${seq}`);
  const timeline = async (store: SqliteStore, home: string) =>
    (await store.listHomeEvents(home, { from: T, to: T + 100_000 }, 100_000)).map((e) => e.ts - T);
  const seqs = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

  it('catches up with the log on its own thread, and the timeline read through it is whole', async () => {
    const dir = tempDir();
    const store = new SqliteStore(join(dir.path, 'g365.sqlite'));
    try {
      await store.migrate();
      await append(store, 'h1', 1, 3000);
      await append(store, 'h2', 1, 1000);
      await caughtUp(store, 4000);
      const index = new Database(homeIndexFile(store.file), { readonly: true });
      expect(index.prepare('SELECT COUNT(*) FROM events_by_home').pluck().get()).toBe(4000);
      index.close();
      expect(await timeline(store, 'h1')).toEqual(seqs(1, 3000));
      expect(await timeline(store, 'h2')).toEqual(seqs(1, 1000));
    } finally {
      await store.close();
      dir.remove();
    }
  });

  it('reads a timeline whole from the index and the log past it', async () => {
    const dir = tempDir();
    const file = join(dir.path, 'g365.sqlite');
    let store = new SqliteStore(file);
    await store.migrate();
    await append(store, 'h1', 1, 1500);
    await append(store, 'h2', 1, 500);
    await caughtUp(store, 2000);
    await store.close();
    // No indexer now: the next events stay in the log's tail.
    store = new SqliteStore(file, { homeIndexIntervalMs: null });
    try {
      await store.migrate();
      await append(store, 'h1', 1501, 700);
      await append(store, 'h2', 501, 300);
      expect(store.homeIndexedUpTo()).toBe(2000);
      expect(await timeline(store, 'h1')).toEqual(seqs(1, 2200));
      expect(await timeline(store, 'h2')).toEqual(seqs(1, 800));
    } finally {
      await store.close();
      dir.remove();
    }
  });

  it("drops an index made from another log instead of showing that log's events", async () => {
    const dir = tempDir();
    const a = join(dir.path, 'a', 'g365.sqlite');
    const b = join(dir.path, 'b', 'g365.sqlite');
    for (const [file, home] of [
      [a, 'h1'],
      [b, 'h2'],
    ] as const) {
      const store = new SqliteStore(file);
      await store.migrate();
      await append(store, home, 1, 300);
      await caughtUp(store, 300);
      await store.close();
    }
    for (const suffix of ['', '-wal', '-shm']) rmSync(homeIndexFile(b) + suffix, { force: true });
    copyFileSync(homeIndexFile(a), homeIndexFile(b));
    const store = new SqliteStore(b, { homeIndexIntervalMs: null });
    try {
      await store.migrate();
      expect(store.homeIndexedUpTo()).toBe(0);
      expect(await timeline(store, 'h1')).toEqual([]);
      expect(await timeline(store, 'h2')).toEqual(seqs(1, 300));
    } finally {
      await store.close();
      dir.remove();
    }
  });

  it.runIf(process.platform === 'linux')(
    'runs below the log and the rules in CPU priority (nice 10), so overload slows the index, not them',
    async () => {
      const dir = tempDir();
      const store = new SqliteStore(join(dir.path, 'g365.sqlite'));
      try {
        await store.migrate();
        await append(store, 'h1', 1, 10);
        // Field 19 of a thread's stat is its nice value; the process's own threads stay at theirs.
        const nice = () =>
          readdirSync('/proc/self/task').map((tid) => {
            const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
            return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
          });
        const own = Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[16]);
        await eventually(
          () => nice().filter((n) => n === Math.min(19, own + 10)).length === 1,
          5000,
          'one thread at nice +10',
        );
        expect(nice().filter((n) => n === own).length).toBeGreaterThan(1);
      } finally {
        await store.close();
        dir.remove();
      }
    },
  );

  it('cuts back an index that reaches past its log (a log restored from an older copy), so no timeline loses or borrows events', async () => {
    const dir = tempDir();
    const file = join(dir.path, 'g365.sqlite');
    const older = join(tempDir().path, 'g365.sqlite');
    let store = new SqliteStore(file);
    await store.migrate();
    await append(store, 'h1', 1, 100);
    await store.close();
    for (const suffix of ['', '-wal'])
      if (existsSync(file + suffix)) copyFileSync(file + suffix, older + suffix);
    store = new SqliteStore(file);
    await store.migrate();
    await append(store, 'h2', 1, 100);
    await caughtUp(store, 200);
    await store.close();
    // The log as it was at 100 events, with the index that reached 200 (h2's events at 101–200).
    for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
    for (const suffix of ['', '-wal'])
      if (existsSync(older + suffix)) copyFileSync(older + suffix, file + suffix);
    store = new SqliteStore(file);
    try {
      await store.migrate();
      // Log positions 101–200 again, now h1's.
      await append(store, 'h1', 101, 100);
      await caughtUp(store, 200);
      expect(await timeline(store, 'h1')).toEqual(seqs(1, 200));
      expect(await timeline(store, 'h2')).toEqual([]);
    } finally {
      await store.close();
      dir.remove();
    }
  });
});

describe('SQLite: the seq windows saved in sweeps between batches', () => {
  const T = Date.UTC(2026, 2, 10, 2, 0);
  const record = (over: Partial<EventRecord> = {}): EventRecord => ({
    deviceId: 'h1-fall',
    homeId: 'h1',
    receivedAt: T,
    topic: 't',
    status: 'accepted',
    ts: T,
    type: 'fall',
    deviceSeq: 1,
    body: '{"type":"fall"}',
    reason: null,
    flags: [],
    ...over,
  });
  /** The files as a kill -9 would leave them (see the contract's factory above). */
  const crashed = async (s: Store): Promise<SqliteStore> => {
    const file = (s as SqliteStore).file;
    const copy = join(tempDir().path, 'g365.sqlite');
    for (const suffix of ['', '-wal'])
      if (existsSync(file + suffix)) copyFileSync(file + suffix, copy + suffix);
    await s.close();
    return new SqliteStore(copy);
  };
  let store: Store;

  it('still refuses the seqs logged before a crash after their windows were saved in a sweep', async () => {
    store = new SqliteStore(join(tempDir().path, 'g365.sqlite'));
    await store.migrate();
    await store.upsertGrid({ id: 'g1', name: 'Grid 1', community: 'c', leaderId: null });
    await store.upsertHousehold(bareHousehold('h1', 'g1'));
    // More events than a sweep's worth, from more devices than one step of it saves, with the devices
    // still sending while it runs: the windows reach the device rows at different log positions.
    const devices = 300;
    for (let d = 0; d < devices; d++)
      await store.createDevice({
        id: `h1-m${d}`,
        homeId: 'h1',
        kind: 'motion',
        room: 'living',
        secretHash: 'x',
        createdAt: T,
      });
    const per = Math.ceil((WINDOW_SWEEP + 6000) / devices);
    const event = (d: number, seq: number) =>
      record({ deviceId: `h1-m${d}`, type: 'motion', deviceSeq: seq, body: '{"type":"motion"}' });
    for (let seq = 1; seq <= per; seq++)
      await store.appendEvents(Array.from({ length: devices }, (_, d) => event(d, seq)));
    store = await crashed(store);
    for (const d of [0, 150, 299]) {
      const again = await store.appendEvents([
        event(d, per),
        event(d, per - 40),
        event(d, 1),
        event(d, per + 1),
      ]);
      expect(again.map((o) => o.duplicate)).toEqual([true, true, true, false]);
    }
    expect(await store.countEvents('accepted')).toBe(devices * per + 3);
    await store.close();
  });
});
