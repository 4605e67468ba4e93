/**
 * The data folder holds personal data and password hashes (SPEC §4, §9): the store's files are 0600 and its
 * folder 0700 whatever the umask of whoever started it (this test process runs with the usual 022), and
 * files an earlier version left 0644 are narrowed when the store opens them. A real SQLite store.
 */
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { tempDir } from '../helpers.ts';

const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);

describe('data files', () => {
  it('creates the database, its WAL files and the household index 0600 in a 0700 folder, under umask 022', async () => {
    const tmp = tempDir();
    const old = process.umask(0o022);
    try {
      const dir = join(tmp.path, 'data');
      const file = join(dir, 'guardian365.sqlite');
      const store = new SqliteStore(file);
      await store.migrate();
      await store.audit({ at: 1, actor: 'a', action: 'x', target: 't', detail: {} });
      const files = [file, `${file}-wal`, `${file}-shm`, `${file}-home-index`].filter((f) => existsSync(f));
      expect(files).toContain(`${file}-wal`);
      expect(Object.fromEntries(files.map((f) => [f, mode(f)]))).toEqual(
        Object.fromEntries(files.map((f) => [f, '600'])),
      );
      expect(mode(dir)).toBe('700');
      await store.close();
    } finally {
      process.umask(old);
      tmp.remove();
    }
  });

  it('narrows a folder and database files an earlier version left readable to all', async () => {
    const tmp = tempDir();
    try {
      const dir = join(tmp.path, 'data');
      mkdirSync(dir, { mode: 0o755 });
      chmodSync(dir, 0o755);
      const file = join(dir, 'guardian365.sqlite');
      const first = new SqliteStore(file);
      await first.migrate();
      await first.close();
      for (const f of [dir, file]) chmodSync(f, f === dir ? 0o755 : 0o644);
      writeFileSync(join(dir, 'other.txt'), 'left alone');
      const store = new SqliteStore(file);
      await store.migrate();
      expect(mode(dir)).toBe('700');
      expect(mode(file)).toBe('600');
      await store.close();
    } finally {
      tmp.remove();
    }
  });
});
