/**
 * Moving an embedded deployment to PostgreSQL: copies a SQLite data file into an empty PostgreSQL database
 * that has the schema (PostgresStore.migrate), then counts every table on both sides. Registry, roster,
 * event log (with its positions), rules state and cursor, alerts with their history and deadlines,
 * deliveries, audit and settings are copied; login sessions are not (staff log in again), nor SQLite's
 * own derived rows (seq windows, household index). Run with the service stopped (db-cli.ts `copy`).
 */
import Database from 'better-sqlite3';
import type pg from 'pg';
import { RecentSeqs } from '../../gateway/duplicates.ts';
import { SEQ_DEPTH, WINDOWS_CURSOR } from './event-batch.ts';
import { LATEST_VERSION } from './migrations.ts';
import type { PostgresStore } from './postgres.ts';
import type { Row } from './rows.ts';

/** SQLite's cursors for its own derived rows: not the rules', nothing for PostgreSQL. */
const SQLITE_CURSORS = [WINDOWS_CURSOR, 'event-log-derived'];
/** SQLite's settings of its own (the household index's log id). */
const SQLITE_SETTINGS = ['event-log-id'];
const BATCH = 5000;

export interface CopyReport {
  tables: { table: string; source: number; copied: number }[];
  ok: boolean;
}

interface Table {
  name: string;
  /** Columns as in both schemas, with how each SQLite value becomes PostgreSQL's. */
  columns: Record<string, 'text' | 'int8' | 'real' | 'int4' | 'bool' | 'json'>;
  where?: string;
  /** Its BIGSERIAL key, whose sequence is moved past the copied rows. */
  serial?: string;
}

const TABLES: Table[] = [
  {
    name: 'settings',
    columns: { key: 'text', value: 'text' },
    where: `key NOT IN (${SQLITE_SETTINGS.map((k) => `'${k}'`).join(',')})`,
  },
  { name: 'counters', columns: { name: 'text', value: 'int8' } },
  {
    name: 'grids',
    columns: { id: 'text', name: 'text', community: 'text', leader_id: 'text', retired_at: 'int8' },
  },
  {
    name: 'households',
    columns: {
      id: 'text',
      grid_id: 'text',
      building: 'text',
      unit: 'text',
      room: 'text',
      residents: 'json',
      contacts: 'json',
      access_notes: 'text',
      routine: 'json',
      away_until: 'int8',
      away_reason: 'text',
      retired_at: 'int8',
    },
  },
  {
    name: 'staff',
    columns: {
      id: 'text',
      name: 'text',
      phone: 'text',
      roles: 'json',
      grid_ids: 'json',
      username: 'text',
      password_hash: 'text',
      disabled: 'bool',
      retired_at: 'int8',
    },
  },
  {
    name: 'devices',
    columns: {
      id: 'text',
      home_id: 'text',
      kind: 'text',
      room: 'text',
      room_text: 'text',
      secret_hash: 'text',
      disabled: 'bool',
      created_at: 'int8',
      online: 'bool',
      last_seen_at: 'int8',
      battery: 'real',
      rssi: 'real',
      fw: 'text',
      rejected_count: 'int8',
      retired_at: 'int8',
      session_at: 'int8',
    },
  },
  { name: 'device_rejections', columns: { device_id: 'text', reason: 'text', count: 'int8' } },
  {
    name: 'roster',
    columns: { id: 'int8', grid_id: 'text', shift: 'text', weekdays: 'json', staff_ids: 'json' },
    serial: 'id',
  },
  {
    name: 'roster_overrides',
    columns: {
      id: 'text',
      grid_id: 'text',
      date: 'text',
      shift: 'text',
      kind: 'text',
      staff_id: 'text',
      replacement_id: 'text',
    },
  },
  {
    name: 'cursors',
    columns: { name: 'text', seq: 'int8' },
    where: `name NOT IN (${SQLITE_CURSORS.map((k) => `'${k}'`).join(',')})`,
  },
  { name: 'home_states', columns: { home_id: 'text', state: 'text', learned: 'text' } },
  {
    name: 'alerts',
    columns: {
      id: 'text',
      household_id: 'text',
      grid_id: 'text',
      community: 'text',
      rule: 'text',
      severity: 'text',
      state: 'text',
      is_open: 'bool',
      raised_at: 'int8',
      updated_at: 'int8',
      next_step_at: 'int8',
      change_seq: 'int8',
      version: 'int4',
      body: 'json',
    },
  },
  {
    name: 'alert_history',
    columns: {
      id: 'int8',
      alert_id: 'text',
      at: 'int8',
      action: 'text',
      from_state: 'text',
      to_state: 'text',
      actor: 'text',
      channel: 'text',
      data: 'json',
    },
    serial: 'id',
  },
  {
    name: 'deliveries',
    columns: {
      id: 'int8',
      alert_id: 'text',
      staff_id: 'text',
      channel: 'text',
      at: 'int8',
      ok: 'bool',
      error: 'text',
      delivered: 'bool',
    },
    serial: 'id',
  },
  {
    name: 'audit_log',
    columns: { id: 'int8', at: 'int8', actor: 'text', action: 'text', target: 'text', detail: 'json' },
    serial: 'id',
  },
];

const PG_TYPE = { text: 'text', int8: 'bigint', real: 'real', int4: 'int', bool: 'boolean', json: 'text' };

function pgValue(v: unknown, type: Table['columns'][string]): unknown {
  if (v === null || v === undefined) return null;
  if (type === 'bool') return Number(v) === 1;
  if (type === 'int8' || type === 'int4' || type === 'real') return Number(v);
  return String(v);
}

async function insertRows(c: pg.PoolClient, t: Table, rows: Row[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = Object.keys(t.columns);
  const select = cols.map((col, i) => (t.columns[col] === 'json' ? `c${i}::jsonb` : `c${i}`)).join(', ');
  const arrays = cols.map((col) => rows.map((r) => pgValue(r[col], t.columns[col]!)));
  const types = cols.map((col, i) => `$${i + 1}::${PG_TYPE[t.columns[col]!]}[]`).join(', ');
  await c.query(
    `INSERT INTO ${t.name} (${cols.join(', ')}) SELECT ${select}
     FROM unnest(${types}) AS x(${cols.map((_, i) => `c${i}`).join(', ')})`,
    arrays,
  );
}

/**
 * Copies `sqliteFile` into the PostgreSQL database of `target` (migrated, and empty: no grid, no event,
 * no alert, else it refuses), in one transaction, then verifies the counts.
 */
export async function copySqliteToPostgres(
  sqliteFile: string,
  target: PostgresStore,
  progress: (line: string) => void = () => {},
): Promise<CopyReport> {
  const src = new Database(sqliteFile, { readonly: true, fileMustExist: true });
  try {
    // The source is read as this version's schema has it: a data folder last run by an older version is
    // upgraded first by the service itself (it migrates at its start), not here behind the operator's back.
    const at = Number((src.prepare('SELECT max(version) AS v FROM schema_migrations').get() as Row).v ?? 0);
    if (at < LATEST_VERSION)
      throw new Error(
        `the data folder's database is at schema version ${at} and this version's is ${LATEST_VERSION}: start the service on it once (npm start with its DATA_DIR) to upgrade it, stop it, then copy`,
      );
    const c = await target.pool.connect();
    try {
      await c.query('BEGIN');
      const filled = await c.query(
        `SELECT (SELECT COUNT(*) FROM grids) + (SELECT COUNT(*) FROM events) + (SELECT COUNT(*) FROM alerts) AS n`,
      );
      if (Number(filled.rows[0].n) > 0)
        throw new Error(
          'the PostgreSQL database is not empty (it has grids, events or alerts): copy into a new one',
        );
      // The target's own counter row (migration 1) is replaced by the source's.
      await c.query('DELETE FROM counters');
      for (const t of TABLES) {
        const rows = src
          .prepare(
            `SELECT ${Object.keys(t.columns).join(', ')} FROM ${t.name} ${t.where ? `WHERE ${t.where}` : ''}`,
          )
          .all() as Row[];
        for (let i = 0; i < rows.length; i += BATCH) await insertRows(c, t, rows.slice(i, i + BATCH));
        if (t.serial)
          await c.query(
            `SELECT setval(pg_get_serial_sequence('${t.name}', '${t.serial}'), GREATEST((SELECT MAX(${t.serial}) FROM ${t.name}), 1))`,
          );
        progress(`${t.name}: ${rows.length}`);
      }
      await copyEvents(src, c, progress);
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      c.release();
    }
    return await verify(src, target);
  } finally {
    src.close();
  }
}

/**
 * The event log, positions kept, in batches. The SPEC §3 duplicate memory is rebuilt as PostgreSQL keeps
 * it: seqs are unique per device and count, so a seq that SQLite accepted again (a restarted count, or one
 * below its window) starts a new count, as the SQLite writer's window would have judged it.
 */
async function copyEvents(src: Database.Database, c: pg.PoolClient, progress: (line: string) => void) {
  const devices = new Map<string, { count: number; recent: RecentSeqs }>();
  let batch: Row[] = [];
  let copied = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const col = (f: (r: Row) => unknown) => batch.map(f);
    await c.query(
      `INSERT INTO events (seq, device_id, home_id, received_at, topic, status, ts, type, device_seq, seq_count, body, raw, reason, flags)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[],
         $8::text[], $9::bigint[], $10::int[], $11::jsonb[], $12::text[], $13::text[], $14::jsonb[])`,
      [
        col((r) => Number(r.seq)),
        col((r) => r.device_id),
        col((r) => r.home_id),
        col((r) => Number(r.received_at)),
        col((r) => r.topic),
        col((r) => r.status),
        col((r) => Number(r.ts)),
        col((r) => r.type),
        col((r) => (r.device_seq === null ? null : Number(r.device_seq))),
        col((r) => r.seq_count),
        col((r) => (r.status === 'accepted' ? r.body : null)),
        col((r) => (r.status === 'accepted' ? null : r.body)),
        col((r) => r.reason),
        col((r) => r.flags),
      ],
    );
    copied += batch.length;
    batch = [];
  };
  for (const r of src.prepare('SELECT * FROM events ORDER BY seq').iterate() as Iterable<Row>) {
    r.seq_count = 0;
    if (r.status === 'accepted' && r.device_seq !== null) {
      const id = String(r.device_id);
      let d = devices.get(id);
      if (!d) {
        d = { count: 0, recent: new RecentSeqs(SEQ_DEPTH) };
        devices.set(id, d);
      }
      const seq = Number(r.device_seq);
      const below = d.recent.seqs.length === SEQ_DEPTH && seq < d.recent.seqs[0]!;
      if (d.recent.timeOf(seq) !== null || below) {
        d.count++;
        d.recent.clear();
      }
      d.recent.add(seq, Number(r.ts));
      r.seq_count = d.count;
    }
    batch.push(r);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  await c.query(
    `SELECT setval(pg_get_serial_sequence('events', 'seq'), GREATEST((SELECT MAX(seq) FROM events), 1))`,
  );
  const ids = [...devices.keys()];
  const last = ids.map((id) => devices.get(id)!);
  await c.query(
    `INSERT INTO device_seqs (device_id, seq_count, high, high_ts, session)
     SELECT d, c, h, t, NULL FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[]) AS x(d, c, h, t)`,
    [
      ids,
      last.map((d) => d.count),
      last.map((d) => d.recent.seqs[d.recent.seqs.length - 1]!),
      last.map((d) => d.recent.times[d.recent.times.length - 1]!),
    ],
  );
  progress(`events: ${copied}`);
}

/** Every table counted on both sides (SQLite's rows of its own left out). */
async function verify(src: Database.Database, target: PostgresStore): Promise<CopyReport> {
  const tables: CopyReport['tables'] = [];
  for (const t of [...TABLES, { name: 'events', columns: {} } as Table]) {
    const where = t.where ? `WHERE ${t.where}` : '';
    const source = Number((src.prepare(`SELECT COUNT(*) AS n FROM ${t.name} ${where}`).get() as Row).n);
    const copied = Number(
      (await target.pool.query(`SELECT COUNT(*) AS n FROM ${t.name} ${where}`)).rows[0].n,
    );
    tables.push({ table: t.name, source, copied });
  }
  return { tables, ok: tables.every((t) => t.source === t.copied) };
}
