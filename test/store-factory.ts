/**
 * One way for tests to open a store, on either backend: a SQLite file in a temporary folder, or a
 * database of its own on the PostgreSQL server named by TEST_DATABASE_URL (created for the test, dropped
 * after it, so parallel runs never meet). `.ci/run` starts a throwaway PostgreSQL cluster and sets
 * TEST_DATABASE_URL, so CI runs every PostgreSQL variant; where it is unset the variants are skipped and
 * say why in their names.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { PostgresStore } from '../dispatcher/store/postgres.ts';
import { SqliteStore } from '../dispatcher/store/sqlite.ts';
import type { Store } from '../dispatcher/store/store.ts';
import type { EventRecord } from '../gateway/ports.ts';
import { tempDir } from './helpers.ts';

export type Backend = 'sqlite' | 'postgres';

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;

/** The backends to run on here, each with the name a test title carries. */
export const BACKENDS: { backend: Backend; name: string; skip: boolean }[] = [
  { backend: 'sqlite', name: 'SQLite', skip: false },
  {
    backend: 'postgres',
    name: TEST_DATABASE_URL ? 'PostgreSQL' : 'PostgreSQL (skipped: TEST_DATABASE_URL is not set)',
    skip: !TEST_DATABASE_URL,
  },
];

/** Where a store lives: a SQLite file, or a PostgreSQL URL (what a child process needs to open it too). */
export interface StoreLocation {
  backend: Backend;
  /** SQLite: the file; PostgreSQL: the database URL. */
  where: string;
}

/** A fresh, empty database on the test server; `drop` removes it (closing whatever still uses it). */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!TEST_DATABASE_URL) throw new Error('TEST_DATABASE_URL is not set');
  const name = `g365_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Opens a store at a location (another connection to the same database when one is open already). */
export function storeAt(at: StoreLocation): Store {
  return at.backend === 'sqlite' ? new SqliteStore(at.where) : new PostgresStore({ url: at.where });
}

export interface TestDatabase {
  location: StoreLocation;
  open(): Store;
  remove(): Promise<void>;
}

/** A new empty database of `backend` for one test. */
export async function testDatabase(backend: Backend): Promise<TestDatabase> {
  if (backend === 'sqlite') {
    const dir = tempDir();
    const location: StoreLocation = { backend, where: join(dir.path, 'g365.sqlite') };
    return {
      location,
      open: () => storeAt(location),
      remove: async () => rmSync(dir.path, { recursive: true, force: true }),
    };
  }
  const db = await createTestDatabase();
  const location: StoreLocation = { backend, where: db.url };
  return { location, open: () => storeAt(location), remove: db.drop };
}

/** The location of an open store made here. */
export function locationOf(s: Store): StoreLocation {
  if (s instanceof SqliteStore) return { backend: 'sqlite', where: s.file };
  if (s instanceof PostgresStore) return { backend: 'postgres', where: s.opts.url };
  throw new Error('not a store of ours');
}

/** The instant of `motionRecord`'s first event. */
export const MOTION_T = Date.UTC(2026, 2, 10, 2, 0);

/** An accepted motion event of device h1-motion with its device seq (SPEC §3), `ts` that many ms on. */
export const motionRecord = (deviceSeq: number, over: Partial<EventRecord> = {}): EventRecord => ({
  deviceId: 'h1-motion',
  homeId: 'h1',
  receivedAt: MOTION_T,
  topic: 'g365/v1/homes/h1/devices/h1-motion/events',
  status: 'accepted',
  ts: MOTION_T + deviceSeq,
  type: 'motion',
  deviceSeq,
  body: JSON.stringify({
    type: 'motion',
    ts: MOTION_T + deviceSeq,
    seq: deviceSeq,
    state: 'active',
    room: 'living',
  }),
  reason: null,
  flags: [],
  ...over,
});
