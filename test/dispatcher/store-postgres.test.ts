/**
 * The storage contract on a real PostgreSQL server (TEST_DATABASE_URL; `.ci/run` starts one), each test
 * on a database of its own; then what is PostgreSQL's own: its migrations and the indexes the queries use.
 */
import { describe } from 'vitest';
import { PostgresStore } from '../../dispatcher/store/postgres.ts';
import type { Store } from '../../dispatcher/store/store.ts';
import { storeContract } from '../store.contract.ts';
import { BACKENDS, createTestDatabase } from '../store-factory.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const drops = new Map<Store, () => Promise<void>>();
const url = (s: Store) => (s as PostgresStore).opts.url;

describe.skipIf(pgBackend.skip)(pgBackend.name, () => {
  storeContract('PostgreSQL', {
    open: async () => {
      const db = await createTestDatabase();
      const s = new PostgresStore({ url: db.url });
      drops.set(s, db.drop);
      return s;
    },
    reopen: async (s) => {
      await s.close();
      const again = new PostgresStore({ url: url(s) });
      drops.set(again, drops.get(s)!);
      return again;
    },
    // Every answered write is committed: what a kill -9 of this process leaves is what a new one sees.
    crashed: async (s) => {
      const again = new PostgresStore({ url: url(s) });
      drops.set(again, drops.get(s)!);
      await s.close();
      return again;
    },
    destroy: async (s) => {
      await s.close();
      await drops.get(s)?.();
    },
    another: async (s) => new PostgresStore({ url: url(s) }),
    location: (s) => ({ backend: 'postgres', where: url(s) }),
  });
});
