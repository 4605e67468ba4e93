import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS, migrationSql } from '../../dispatcher/store/migrations.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { tempDir } from '../helpers.ts';
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
    const T = Date.UTC(2026, 2, 10, 2, 0);
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

    const store = new SqliteStore(file);
    try {
      expect(await store.migrate()).toBe(MIGRATIONS.filter((m) => m.version > 4).length);
      const timeline = await store.listHomeEvents('h1', { from: T, to: T + 10 }, 10);
      expect(timeline.map((e) => e.ts)).toEqual([T + 1, T + 2, T + 3]);
      const out = await store.appendEvents(
        [3, 4].map((s) => ({
          deviceId: 'h1-motion',
          homeId: 'h1',
          receivedAt: T,
          topic: 't',
          status: 'accepted' as const,
          ts: T + s,
          type: 'motion',
          deviceSeq: s,
          body: JSON.stringify({ type: 'motion', ts: T + s, seq: s }),
          reason: null,
          flags: [],
        })),
      );
      expect(out.map((o) => o.duplicate)).toEqual([true, false]);
      expect((await store.listHomeEvents('h1', { from: T, to: T + 10 }, 10)).length).toBe(4);
    } finally {
      await store.close();
      dir.remove();
    }
  });
});
