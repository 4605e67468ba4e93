/**
 * The PostgreSQL server the gateway benchmark measures on (this same machine): BENCH_DATABASE_URL or
 * TEST_DATABASE_URL when set (a user that may create databases), else a throwaway cluster started here as
 * the `postgres` user on a free loopback port under /tmp (Debian's postgresql; PostgreSQL refuses to run
 * as root) with the settings below, removed afterwards. Each measurement gets a database of its own.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import type { LearnDay } from '../dispatcher/rules/baseline.ts';
import { emptyHomeState } from '../dispatcher/rules/engine.ts';
import { localDay } from '../dispatcher/rules/localtime.ts';
import type { PostgresStore } from '../dispatcher/store/postgres.ts';
import { hashDeviceSecret } from '../gateway/secrets.ts';
import { BENCH_SECRET } from './gateway-load.ts';

/** The settings a throwaway cluster runs with (durability as in production: fsync and synchronous_commit on). */
export const CLUSTER_SETTINGS = [
  'synchronous_commit=on',
  'fsync=on',
  'shared_buffers=256MB',
  'wal_buffers=16MB',
  'max_wal_size=2GB',
  'checkpoint_timeout=15min',
  'max_connections=100',
  // BENCH_PG_STATEMENTS=1: what each statement costs the server (statementCosts), at a small overhead.
  // With it, each commit's time too (track_commit_timestamp): the scale benchmark splits a fall's second hop
  // by when its event and its alert were committed (fallHops); and the time of each WAL flush
  // (track_wal_io_timing: pg_stat_wal's wal_sync_time).
  ...(process.env.BENCH_PG_STATEMENTS === '1'
    ? ['shared_preload_libraries=pg_stat_statements', 'track_commit_timestamp=on', 'track_wal_io_timing=on']
    : []),
];

let cluster: { url: string; stop: () => void } | null = null;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A throwaway PostgreSQL cluster of its own (Debian's server, run as the `postgres` user). */
export interface ThrowawayCluster {
  url: string;
  /** Every server process killed at once (`-m immediate`): what was not on disk is lost, as in a crash. */
  crash: () => void;
  /** Started again on the same data (after a crash: crash recovery first). */
  start: () => void;
  /** Stopped and its folder removed. */
  stop: () => void;
}

/**
 * Starts a cluster on a free loopback port with `settings` (`name=value`), for the benchmark and for the
 * tests that must crash a server of their own.
 */
export async function startThrowawayCluster(settings: string[]): Promise<ThrowawayCluster> {
  const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b));
  const bin = join('/usr/lib/postgresql', versions[versions.length - 1]!, 'bin');
  const dir = mkdtempSync('/tmp/g365-pg-');
  const pw = execFileSync('id', ['-u', 'postgres']).toString().trim();
  const gid = execFileSync('id', ['-g', 'postgres']).toString().trim();
  chownSync(dir, Number(pw), Number(gid));
  const port = await freePort();
  const as = (args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'ignore' });
  as([join(bin, 'initdb'), '-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres']);
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    '-c listen_addresses=127.0.0.1',
    ...settings.map((s) => `-c ${s}`),
  ];
  const pgCtl = (...args: string[]) => as([join(bin, 'pg_ctl'), '-D', join(dir, 'data'), ...args]);
  const start = () => pgCtl('-l', join(dir, 'log'), '-w', '-o', options.join(' '), 'start');
  start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    crash: () => pgCtl('-m', 'immediate', 'stop'),
    start,
    stop: () => {
      try {
        pgCtl('-m', 'immediate', 'stop');
      } catch {
        // Already down (a test that failed between a crash and its start): the folder goes all the same.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function adminUrl(): Promise<string> {
  const given = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (given) return given;
  cluster ??= await startThrowawayCluster(CLUSTER_SETTINGS);
  return cluster.url;
}

/** A new database for one measurement; `drop` removes it. */
export async function benchDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = await adminUrl();
  const name = `g365_bench_${randomBytes(4).toString('hex')}`;
  const run = async (sql: string) => {
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** The server's durability and WAL settings as measured (for the README's figures). */
export async function benchClusterSettings(): Promise<string> {
  const c = new pg.Client({ connectionString: await adminUrl() });
  await c.connect();
  try {
    const names = [
      'server_version',
      'synchronous_commit',
      'fsync',
      'wal_sync_method',
      'full_page_writes',
      'shared_buffers',
      'wal_buffers',
      'max_wal_size',
      'commit_delay',
      'max_connections',
    ];
    const out: string[] = [];
    for (const n of names) out.push(`${n}=${(await c.query(`SHOW ${n}`)).rows[0][n]}`);
    return out.join(' ');
  } finally {
    await c.end();
  }
}

/**
 * With BENCH_PG_STATEMENTS=1 on a throwaway cluster: `start()` resets pg_stat_statements, and the function
 * it returns lists the statements that took the server's time since, most first (time, calls, time per
 * call, rows), their text cut short. Null when the module is not loaded.
 */
export async function statementCosts(
  url: string,
): Promise<{ start: () => Promise<void>; report: () => Promise<string> } | null> {
  if (process.env.BENCH_PG_STATEMENTS !== '1') return null;
  const c = new pg.Client({ connectionString: url });
  // The database is dropped WITH (FORCE) at the end of a round, perhaps before `report` ends this client.
  c.on('error', () => {});
  await c.connect();
  try {
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    await c.query('SELECT pg_stat_statements_reset()');
  } catch (e) {
    // A server of one's own (BENCH_DATABASE_URL, TEST_DATABASE_URL) may not preload the module.
    console.warn(`no statement costs: ${(e as Error).message}`);
    await c.end();
    return null;
  }
  return {
    start: async () => {
      await c.query('SELECT pg_stat_statements_reset()');
    },
    report: async () => {
      const r = await c.query(
        `SELECT calls, total_exec_time AS ms, rows, regexp_replace(query, '[[:space:]]+', ' ', 'g') AS q
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY total_exec_time DESC LIMIT 12`,
      );
      await c.end();
      return r.rows
        .map(
          (x) =>
            `    ${(Number(x.ms) / 1000).toFixed(2)} s, ${x.calls} calls, ${(Number(x.ms) / Math.max(1, Number(x.calls))).toFixed(2)} ms/call, ${x.rows} rows: ${String(x.q).slice(0, 150)}`,
        )
        .join('\n');
    },
  };
}

export async function stopBenchCluster(): Promise<void> {
  cluster?.stop();
  cluster = null;
}

/**
 * Devices d0…d{n-1} in households h0…h{n-1} of one bench grid, in bulk: one secret, each row its own
 * production hash of it.
 */
export async function seedDevices(store: PostgresStore, n: number): Promise<void> {
  await store.pool.query(
    `INSERT INTO grids (id, name, community) VALUES ('bench', 'bench', 'bench') ON CONFLICT DO NOTHING`,
  );
  for (let from = 0; from < n; from += 20_000) {
    const ids = Array.from({ length: Math.min(20_000, n - from) }, (_, i) => from + i);
    await store.pool.query(
      `INSERT INTO households (id, grid_id, building, unit, room, residents, contacts, access_notes, routine)
       SELECT h, 'bench', '1', '1', '1', '[]', '[]', '', '{"nightStart":"22:00","nightEnd":"06:00","wakeTime":"07:30","thresholds":{}}'
       FROM unnest($1::text[]) AS h ON CONFLICT DO NOTHING`,
      [ids.map((i) => `h${i}`)],
    );
    await store.pool.query(
      `INSERT INTO devices (id, home_id, kind, room, secret_hash, created_at)
       SELECT d, h, 'motion', 'living', s, 0 FROM unnest($1::text[], $2::text[], $3::text[]) AS x(d, h, s)
       ON CONFLICT DO NOTHING`,
      [ids.map((i) => `d${i}`), ids.map((i) => `h${i}`), ids.map(() => hashDeviceSecret(BENCH_SECRET))],
    );
  }
}

/**
 * The rules state of a home that has lived with the service for `days` days (RULE-14: the learned days it
 * keeps, up to 28), as the code under test stores it: the days apart (DATA-08) where `home_states` has the
 * column for them, inside the state before that. Nothing else is known of the home (no motion, no device
 * heard: no deadline is due before its first event), and today's local day has begun, so none completes
 * while the benchmark runs unless it crosses the community's midnight (then each home writes its days
 * once, as at every midnight). Deterministic: home i's days differ from home j's.
 */
export async function seedLearnedHomes(
  store: PostgresStore,
  n: number,
  days: number,
  zone: string,
): Promise<void> {
  if (days <= 0) return;
  const apart =
    (
      await store.pool.query(
        `SELECT 1 FROM information_schema.columns WHERE table_name = 'home_states' AND column_name = 'learned'`,
      )
    ).rowCount === 1;
  const today = localDay(Date.now(), zone);
  const learnedOf = (i: number): LearnDay[] =>
    Array.from({ length: days }, (_, k) => ({
      d: today - days + k,
      first: 380 + ((i * 7 + k * 13) % 90),
      quiet: Array.from({ length: 24 }, (_, h) =>
        h < 6 ? 300 + ((i + k + h) % 60) : (i * 3 + k * 5 + h * 11) % 150,
      ),
    }));
  const stateOf = (i: number, withDays: boolean) => {
    const s = emptyHomeState();
    s.learn = {
      day: today,
      first: null,
      quiet: new Array<number>(24).fill(0),
      days: withDays ? learnedOf(i) : [],
    };
    if (!withDays) delete (s.learn as Partial<typeof s.learn>).days;
    return JSON.stringify(s);
  };
  for (let from = 0; from < n; from += 5_000) {
    const ids = Array.from({ length: Math.min(5_000, n - from) }, (_, i) => from + i);
    if (apart)
      await store.pool.query(
        `INSERT INTO home_states (home_id, state, learned) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])`,
        [
          ids.map((i) => `h${i}`),
          ids.map((i) => stateOf(i, false)),
          ids.map((i) => JSON.stringify(learnedOf(i))),
        ],
      );
    else
      await store.pool.query(
        `INSERT INTO home_states (home_id, state) SELECT * FROM unnest($1::text[], $2::text[])`,
        [ids.map((i) => `h${i}`), ids.map((i) => stateOf(i, true))],
      );
  }
}
