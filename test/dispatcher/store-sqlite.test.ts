import { rmSync } from 'node:fs';
import { join } from 'node:path';
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
  destroy: async (s) => {
    await s.close();
    rmSync(join((s as SqliteStore).file, '..'), { recursive: true, force: true });
  },
});
