/**
 * The production store: PostgreSQL through node-postgres (`pg`), selected by DATABASE_URL=postgres://…
 * (SPEC §2, §9). Same contract as the embedded SQLite store (store.ts, test/store.contract.ts); a peer of
 * it, not a port of its tricks: many processes may use one database at once.
 *
 * - Event log: appends are group-committed (requests that queue while a transaction is written go
 *   together into the next one) and an append resolves, and the gateway PUBACKs (SPEC §3), only once
 *   its events are on disk (a flush after its commit, outside the log's lock: DATA-06). Every append, from any
 *   process, takes one transaction-scoped advisory lock before it draws log positions: positions are
 *   drawn in commit order, so a reader that has seen position n has seen every committed position below
 *   it and the rules' cursor can never pass over an event committed late (a lower position committed
 *   after a higher one). The lock is taken after the devices' rows are written, in the same transaction,
 *   and held to the commit. Ordinary appends queue for it behind a second lock (ORDINARY_LOCK), so a fall's
 *   append waits for the holder and at most one ordinary append (RULE-16).
 * - Duplicates (SPEC §3): the rule is gateway/duplicates.ts; a device's count and session are in
 *   device_seqs, the seqs it recorded in the events' unique index, both written under that lock and read
 *   under it, or known from what this store last wrote or read of each device when its row, checked under
 *   the lock, still says so (one round trip per append: appendTx).
 * - Alerts: every change draws the next change sequence from one counter row (a row lock until commit), so
 *   the live catch-up feed (alertChangesSince) sees changes in commit order too; writes are optimistic
 *   (version) and a stale one is refused (StaleWriteError).
 * - Connection loss: every call fails fast (connection and statement timeouts) while the database is
 *   unreachable, nothing is acknowledged that is not committed, and `health()` says why; the pool makes
 *   new connections by itself when it returns.
 */

import pg from 'pg';
import { emptySeqState, judgeSeq, nextSeqState, type SeqState } from '../../gateway/duplicates.ts';
import type {
  AppendOutcome,
  DeviceCredentials,
  EventRecord,
  LoggedEvent,
  PresenceUpdate,
  SecretHashUpgrade,
} from '../../gateway/ports.ts';
import type { DeviceKind } from '../../gateway/protocol.ts';
import { type Alert, type HistoryEntry, isOpen } from '../alerts/model.ts';
import type { DeviceInput, DeviceState, Grid, Household, Staff } from '../registry.ts';
import type { Room } from '../rooms.ts';
import type { RosterEntry, RosterOverride } from '../routing/roster.ts';
import {
  type DeviceHealthCounts,
  type DeviceQuery,
  type DeviceRow,
  deviceCountsFrom,
  deviceCountsSql,
  deviceRowFrom,
  deviceRowsSql,
  pgDialect,
} from './device-queries.ts';
import { MIGRATIONS, migrationSql } from './migrations.ts';
import {
  alertFrom,
  auditFrom,
  deliveryFrom,
  deviceFrom,
  flag,
  gridFrom,
  historyFrom,
  householdFrom,
  loggedEventFrom,
  overrideFrom,
  type Row,
  staffFrom,
  storedHomeState,
} from './rows.ts';
import type {
  AlertFilter,
  AuditEntry,
  AuditFilter,
  DeliveryRecord,
  Fence,
  HouseholdSearch,
  NewStaff,
  OpenAlertCount,
  RuleCommit,
  Session,
  StaffPatch,
  StaffRecord,
  Store,
  StoredHomeState,
} from './store.ts';
import { FencedError, RETIRED_TABLE, type RetiredKind, StaleWriteError } from './store.ts';

/**
 * The advisory lock every event-log append holds from drawing positions to its commit (see above): what
 * commits in position order, so a reader never passes over a position committed later. An append does not
 * wait for the disk while holding it (DATA-06).
 */
const LOG_LOCK = 365_001;
/**
 * RULE-16: the advisory lock an ordinary append takes before LOG_LOCK, held to its commit too. Ordinary
 * appends queue here, one at a time at LOG_LOCK, so a fall's append (which takes LOG_LOCK alone) waits
 * for the holder and at most one ordinary append, never for every gateway's queued batch.
 */
const ORDINARY_LOCK = 365_003;
/** The log locks an append takes, in this order (ORDINARY_LOCK, LOG_LOCK: see above). */
const logLocks = (urgent: boolean) =>
  urgent
    ? [`SELECT pg_advisory_xact_lock(${LOG_LOCK})`]
    : [`SELECT pg_advisory_xact_lock(${ORDINARY_LOCK})`, `SELECT pg_advisory_xact_lock(${LOG_LOCK})`];
/** A device's SPEC §3 seq state while a batch is judged. */
interface SeqDevice {
  count: number;
  state: SeqState;
  changed: boolean;
}
/** The advisory lock migrations hold, so two processes starting at once migrate once. */
const MIGRATE_LOCK = 365_002;
/** Devices whose seq state the store keeps between appends (beyond it, the cache starts again). */
const SEQ_CACHE_MAX = 500_000;
/**
 * SQLSTATE of a short-way append whose guard failed under the log lock (g365_seq_state_moved(), migration
 * 17): a device's row of device_seqs moved on since this store knew it.
 */
const SEQ_STATE_MOVED = 'G3650';
/** SQLSTATE deadlock_detected, and how often an append whose transaction PostgreSQL broke is written again. */
const DEADLOCK = '40P01';
const DEADLOCK_RETRIES = 3;
/** SPEC §3: nothing is acknowledged before it is on disk, whatever the server's default. */
const BEGIN = 'BEGIN; SET LOCAL synchronous_commit = on';
/**
 * DATA-07: an alert's write waits for the disk (and a synchronous standby's) whatever the server's default,
 * and keeps a default that waits longer (`remote_apply`: until the standby shows it). Two statements, as
 * BEGIN.
 */
const BEGIN_DURABLE = `BEGIN; SELECT set_config('synchronous_commit', CASE current_setting('synchronous_commit')
  WHEN 'remote_apply' THEN 'remote_apply' ELSE 'on' END, true)`;
/**
 * DATA-06: an ordinary append commits under the log lock without waiting for the disk (its rows are visible
 * at once, not yet durable)...
 */
const BEGIN_UNFLUSHED = 'BEGIN; SET LOCAL synchronous_commit = off';
/**
 * ...then, outside the lock and in the same message, a transaction that writes to the WAL (a logical
 * message, which nothing decodes unless asked) and commits durably: PostgreSQL flushes the WAL up to its
 * commit, so every commit before it, the append's among them, is on disk when the message is answered.
 * Appends of several gateways wait for one flush together, where each waited for its own under the lock.
 */
const FLUSH =
  "BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_logical_emit_message(true, 'g365', 'flush')::text AS lsn; COMMIT";
/** The results FLUSH adds to its message's (one per statement). */
const FLUSH_RESULTS = 4;
/** The WAL position FLUSH's message was written at, from the results of a message that ends with FLUSH. */
const flushedAt = (results: pg.QueryResult[]): string => String(results.at(-2)!.rows[0].lsn);
/** SQLSTATEs of a server that refuses FLUSH for good: insufficient_privilege, undefined_function. */
const FLUSH_REFUSED = new Set(['42501', '42883']);
/** A WAL position (`16/B374D848`) as a number that orders like it. */
const walPosition = (lsn: string): bigint => {
  const [hi, lo] = lsn.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
};
/** Judged from the cache: the devices' rows of device_seqs as the verdicts assumed them. */
type Assumed = { id: string; count: number; state: SeqState }[];

/** The verdicts on a batch: each record's seq count (null: a duplicate) and its devices' state after it. */
interface Judged {
  keep: (number | null)[];
  kept: number;
  states: Map<string, SeqDevice>;
  /**
   * Judged from the cache: the devices' rows as the verdicts assumed them (before the batch). The append's
   * INSERT checks, under the log lock, that each of those rows still holds that, and fails otherwise
   * (SEQ_STATE_MOVED), which rolls back the whole transaction.
   */
  assumed?: Assumed;
}

export interface PostgresOptions {
  url: string;
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** Longest a statement may run before the server cancels it (default 10 s). */
  statementTimeoutMs?: number;
  /** Longest to wait for a connection, or for the server to answer a connect (default 5 s). */
  connectTimeoutMs?: number;
  /** The connections' application_name, what pg_stat_activity shows (default `guardian365`). */
  applicationName?: string | undefined;
  /** Called with a pooled connection's error (the server went away); the pool replaces the connection. */
  onConnectionError?: (e: Error) => void;
  /** Called once with what the store does differently on this server than it would by default. */
  onWarning?: (message: string) => void;
}

/** 64-bit integers as numbers (log positions, epoch ms: all below 2^53). */
const int8 = (v: string) => Number(v);
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8
      ? int8
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

type Queryable = pg.Pool | pg.PoolClient;

/** Device lookups answered by one query at most (findDevice). */
const LOOKUP_BATCH = 1000;

/** What one append writes. */
interface AppendWrite {
  records: EventRecord[];
  presence: PresenceUpdate[];
}

interface AppendRequest extends AppendWrite {
  resolve: (o: AppendOutcome[]) => void;
  reject: (e: unknown) => void;
}

export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;
  private closed = false;
  /** Appends waiting for the transaction being written; taken together into the next one. */
  private appendQueue: AppendRequest[] = [];
  private appending = false;
  /** Urgent appends being written, each in a transaction of its own (appendUrgent). */
  private urgentAppends = 0;
  /**
   * RULE-16, set by a gateway process: the notification channel on which an urgent append tells the
   * dispatchers of its records, in its own transaction (PostgreSQL delivers it at the commit), so the
   * urgent lane starts without waiting for this process to see the commit and send a notification after
   * it. Their outcomes say `announced`. Null: nobody is told here.
   */
  announceUrgent: string | null = null;
  /** Device lookups waiting for the query being answered; taken together into the next (findDevice). */
  private lookups: {
    id: string;
    resolve: (d: DeviceCredentials | null) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private lookingUp = false;
  /** Why the last call failed because of the database (null once one succeeds again). */
  private lastFailure: string | null = null;

  constructor(readonly opts: PostgresOptions) {
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5_000,
      statement_timeout: opts.statementTimeoutMs ?? 10_000,
      // The client gives up on an answer a little after the server would have cancelled the statement.
      query_timeout: (opts.statementTimeoutMs ?? 10_000) + 5_000,
      idle_in_transaction_session_timeout: 60_000,
      keepAlive: true,
      application_name: opts.applicationName ?? 'guardian365',
      types,
    });
    // node-postgres: an idle pooled client whose server connection ends emits 'error' on the pool, and a
    // checked-out client on itself; without listeners either would end the process. The pool drops such
    // clients and connects new ones when asked.
    this.pool.on('error', (e) => this.connectionLost(e));
    this.pool.on('connect', (c) => c.on('error', (e) => this.connectionLost(e)));
  }

  /** The database failed us: remembered for health(), and reported once until it answers again. */
  private connectionLost(e: unknown): void {
    if (this.closed) return;
    const first = this.lastFailure === null;
    this.lastFailure = describe(e);
    if (first) this.opts.onConnectionError?.(e instanceof Error ? e : new Error(String(e)));
  }

  /** Whether the database answers, and if not why (for /readyz). */
  async health(): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      await this.pool.query('SELECT 1');
      this.lastFailure = null;
      return { ok: true };
    } catch (e) {
      this.connectionLost(e);
      return { ok: false, reason: `PostgreSQL unreachable: ${describe(e)}` };
    }
  }

  private async q(sql: string, args: unknown[] = [], on: Queryable = this.pool): Promise<Row[]> {
    try {
      const r = await on.query(sql, args);
      this.lastFailure = null;
      return r.rows as Row[];
    } catch (e) {
      if (isConnectionError(e)) this.connectionLost(e);
      throw e;
    }
  }

  private async one(sql: string, args: unknown[] = [], on: Queryable = this.pool): Promise<Row | undefined> {
    return (await this.q(sql, args, on))[0];
  }

  /**
   * One pooled connection for `work`. On a failure, a transaction it left open is rolled back (a ROLLBACK
   * outside one is harmless), and a connection that failed is not reused.
   */
  private async withClient<T>(work: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect().catch((e: unknown) => {
      this.connectionLost(e);
      throw e;
    });
    let broken: Error | undefined;
    try {
      return await work(c);
    } catch (e) {
      if (isConnectionError(e)) {
        broken = e as Error;
        this.connectionLost(e);
      } else await c.query('ROLLBACK').catch((r: Error) => (broken = r));
      throw e;
    } finally {
      c.release(broken);
    }
  }

  /** Runs `work` in one transaction on one connection. */
  private tx<T>(
    work: (c: pg.PoolClient, begun: pg.QueryResult[]) => Promise<T>,
    begin = 'BEGIN',
  ): Promise<T> {
    return this.withClient(async (c) => {
      // A multi-statement BEGIN (simple protocol) answers with one result per statement.
      const begun = (await c.query(begin)) as pg.QueryResult | pg.QueryResult[];
      const out = await work(c, Array.isArray(begun) ? begun : [begun]);
      await c.query('COMMIT');
      return out;
    });
  }

  async migrate(): Promise<number> {
    return this.tx(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATE_LOCK]);
      await c.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
      );
      const applied = new Set(
        (await this.q('SELECT version FROM schema_migrations', [], c)).map((r) => Number(r.version)),
      );
      let count = 0;
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        for (const sql of migrationSql(m, 'postgres')) await c.query(sql);
        await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          Date.now(),
        ]);
        count++;
      }
      return count;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // Appends already handed over are written first (graceful shutdown finishes in-flight work).
    while (this.appending || this.appendQueue.length > 0 || this.urgentAppends > 0)
      await new Promise((r) => setTimeout(r, 5));
    this.closed = true;
    await this.pool.end();
  }

  async getSetting(key: string): Promise<string | null> {
    const r = await this.one('SELECT value FROM settings WHERE key = $1', [key]);
    return r ? String(r.value) : null;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.q(
      'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      [key, value],
    );
  }

  // ---- registry and roster

  async upsertGrid(g: Grid): Promise<void> {
    await this.q(
      `INSERT INTO grids (id, name, community, leader_id) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, community = excluded.community, leader_id = excluded.leader_id`,
      [g.id, g.name, g.community, g.leaderId],
    );
  }

  async listGrids(): Promise<Grid[]> {
    return (await this.q('SELECT * FROM grids WHERE retired_at IS NULL ORDER BY id')).map(gridFrom);
  }

  async getGrid(id: string): Promise<Grid | null> {
    const r = await this.one('SELECT * FROM grids WHERE id = $1', [id]);
    return r ? gridFrom(r) : null;
  }

  async upsertHousehold(h: Household): Promise<void> {
    await this.q(
      `INSERT INTO households (id, grid_id, building, unit, room, residents, contacts, access_notes, routine, away_until, away_reason)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (id) DO UPDATE SET grid_id = excluded.grid_id, building = excluded.building, unit = excluded.unit,
         room = excluded.room, residents = excluded.residents, contacts = excluded.contacts,
         access_notes = excluded.access_notes, routine = excluded.routine, away_until = excluded.away_until,
         away_reason = excluded.away_reason`,
      [
        h.id,
        h.gridId,
        h.address.building,
        h.address.unit,
        h.address.room,
        JSON.stringify(h.residents),
        JSON.stringify(h.contacts),
        h.accessNotes,
        JSON.stringify(h.routine),
        h.awayUntil,
        h.awayReason,
      ],
    );
  }

  async getHousehold(id: string): Promise<Household | null> {
    const r = await this.one('SELECT * FROM households WHERE id = $1', [id]);
    return r ? householdFrom(r) : null;
  }

  async getHouseholds(ids: readonly string[]): Promise<Household[]> {
    if (ids.length === 0) return [];
    return (await this.q('SELECT * FROM households WHERE id = ANY($1)', [ids])).map(householdFrom);
  }

  async listHouseholds(filter: { gridIds?: string[] } = {}): Promise<Household[]> {
    const rows = filter.gridIds
      ? await this.q('SELECT * FROM households WHERE grid_id = ANY($1) AND retired_at IS NULL ORDER BY id', [
          filter.gridIds,
        ])
      : await this.q('SELECT * FROM households WHERE retired_at IS NULL ORDER BY id');
    return rows.map(householdFrom);
  }

  async searchHouseholds(
    search: HouseholdSearch,
    filter: { gridIds?: string[]; limit: number },
  ): Promise<Household[]> {
    const args: unknown[] = [];
    const arg = (v: unknown) => {
      args.push(v);
      return `$${args.length}`;
    };
    const where: string[] = [];
    if (filter.gridIds) where.push(`grid_id = ANY(${arg(filter.gridIds)})`);
    // ILIKE folds case for every script; the default LIKE escape character is the backslash (CONSOLE-04).
    const phone = (col: string, p: string) =>
      `EXISTS (SELECT 1 FROM jsonb_array_elements(${col}) p WHERE replace(replace(p->>'phone', ' ', ''), '-', '') LIKE ${p})`;
    search.text.forEach((text, i) => {
      const t = arg(text);
      const digits = search.phone[i] ?? null;
      const d = digits ? arg(digits) : null;
      where.push(`(building || unit || room ILIKE ${t} OR id ILIKE ${t}
        OR EXISTS (SELECT 1 FROM jsonb_array_elements(residents) r WHERE r->>'name' ILIKE ${t})
        ${d ? `OR ${phone('residents', d)} OR ${phone('contacts', d)}` : ''})`);
    });
    const sql = `SELECT * FROM households ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ${arg(filter.limit)}`;
    return (await this.q(sql, args)).map(householdFrom);
  }

  async createStaff(s: NewStaff): Promise<void> {
    await this.q(
      `INSERT INTO staff (id, name, phone, roles, grid_ids, username, password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [s.id, s.name, s.phone, JSON.stringify(s.roles), JSON.stringify(s.gridIds), s.username, s.passwordHash],
    );
  }

  async getStaff(id: string): Promise<StaffRecord | null> {
    const r = await this.one('SELECT * FROM staff WHERE id = $1', [id]);
    return r ? staffFrom(r) : null;
  }

  async getStaffByUsername(username: string): Promise<StaffRecord | null> {
    const r = await this.one('SELECT * FROM staff WHERE username = $1', [username]);
    return r ? staffFrom(r) : null;
  }

  async listStaff(): Promise<Staff[]> {
    return (await this.q('SELECT * FROM staff WHERE retired_at IS NULL ORDER BY id')).map((r) => {
      const { passwordHash: _omit, ...rest } = staffFrom(r);
      return rest;
    });
  }

  async updateStaff(id: string, p: StaffPatch): Promise<boolean> {
    const sets: string[] = [];
    const args: unknown[] = [];
    const set = (col: string, v: unknown) => {
      args.push(v);
      sets.push(`${col} = $${args.length}`);
    };
    if (p.name !== undefined) set('name', p.name);
    if (p.phone !== undefined) set('phone', p.phone);
    if (p.roles !== undefined) set('roles', JSON.stringify(p.roles));
    if (p.gridIds !== undefined) set('grid_ids', JSON.stringify(p.gridIds));
    if (p.disabled !== undefined) set('disabled', p.disabled);
    if (p.passwordHash !== undefined) set('password_hash', p.passwordHash);
    if (sets.length === 0) return (await this.getStaff(id)) !== null;
    args.push(id);
    const r = await this.pool.query(`UPDATE staff SET ${sets.join(', ')} WHERE id = $${args.length}`, args);
    return r.rowCount === 1;
  }

  async createDevice(d: DeviceInput & { secretHash: string; createdAt: number }): Promise<void> {
    await this.q(
      `INSERT INTO devices (id, home_id, kind, room, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [d.id, d.homeId, d.kind, d.room, d.secretHash, d.createdAt],
    );
  }

  /**
   * A device's credentials at login. Lookups are taken together like the log's appends: those that arrive
   * while one query is answered go into the next, as one `= ANY` query. Every login asked its own query
   * before, and while a street's devices connect (hundreds a second per gateway) that round trip (a pool
   * checkout, a socket write, the parse) was the largest part of a login's cost after the secret check;
   * a lone login still gets its answer in one round trip.
   */
  findDevice(id: string): Promise<DeviceCredentials | null> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    return new Promise((resolve, reject) => {
      this.lookups.push({ id, resolve, reject });
      if (!this.lookingUp) void this.lookUpDevices();
    });
  }

  private async lookUpDevices(): Promise<void> {
    this.lookingUp = true;
    try {
      while (this.lookups.length > 0) {
        const batch = this.lookups.splice(0, LOOKUP_BATCH);
        try {
          // With each device's seq state (SPEC §3): its first events after the login are judged from it in
          // the append's one round trip, which checks it under the log lock (appendTx).
          const rows = await this.q(
            `SELECT d.id, d.home_id, d.kind, d.room, d.secret_hash, d.disabled, h.grid_id,
               s.seq_count, s.high, s.high_ts, s.session
             FROM devices d JOIN households h ON h.id = d.home_id LEFT JOIN device_seqs s ON s.device_id = d.id
             WHERE d.id = ANY($1::text[])`,
            [[...new Set(batch.map((b) => b.id))]],
          );
          const found = new Map<string, DeviceCredentials>();
          if (this.seqCache.size + rows.length > SEQ_CACHE_MAX) this.seqCache.clear();
          for (const r of rows) {
            const id = String(r.id);
            const { count, state } = statesFrom(r.seq_count === null ? [] : [{ ...r, device_id: id }], [
              id,
            ]).get(id)!;
            this.seqCache.set(id, { count, state });
          }
          for (const r of rows)
            found.set(String(r.id), {
              id: String(r.id),
              homeId: String(r.home_id),
              kind: r.kind as DeviceKind,
              room: String(r.room),
              secretHash: String(r.secret_hash),
              disabled: flag(r.disabled),
              gridId: String(r.grid_id),
            });
          // Each caller its own copy: a login's identity is its own.
          for (const b of batch) {
            const d = found.get(b.id);
            b.resolve(d ? { ...d } : null);
          }
        } catch (e) {
          for (const b of batch) b.reject(e);
        }
      }
    } finally {
      this.lookingUp = false;
    }
  }

  async credentialsNow(
    ids: readonly string[],
  ): Promise<Map<string, { secretHash: string; disabled: boolean }>> {
    const rows = await this.q('SELECT id, secret_hash, disabled FROM devices WHERE id = ANY($1::text[])', [
      [...ids],
    ]);
    return new Map(
      rows.map((r) => [String(r.id), { secretHash: String(r.secret_hash), disabled: flag(r.disabled) }]),
    );
  }

  async getDeviceState(id: string): Promise<DeviceState | null> {
    const r = await this.one('SELECT * FROM devices WHERE id = $1', [id]);
    return r ? deviceFrom(r) : null;
  }

  async setDeviceRoom(id: string, room: Room): Promise<boolean> {
    return (
      (await this.pool.query('UPDATE devices SET room = $1, room_text = NULL WHERE id = $2', [room, id]))
        .rowCount === 1
    );
  }

  async setDeviceDisabled(id: string, disabled: boolean): Promise<boolean> {
    return (
      (await this.pool.query('UPDATE devices SET disabled = $1 WHERE id = $2', [disabled, id])).rowCount === 1
    );
  }

  async setDeviceKind(id: string, kind: DeviceKind): Promise<boolean> {
    return (await this.pool.query('UPDATE devices SET kind = $1 WHERE id = $2', [kind, id])).rowCount === 1;
  }

  async retire(kind: RetiredKind, id: string, at: number): Promise<boolean> {
    const table = RETIRED_TABLE[kind];
    const disable = kind === 'staff' || kind === 'device' ? ', disabled = true' : '';
    return this.tx(async (c) => {
      const done =
        (
          await c.query(
            `UPDATE ${table} SET retired_at = $1${disable} WHERE id = $2 AND retired_at IS NULL`,
            [at, id],
          )
        ).rowCount === 1;
      if (done && kind === 'household')
        await c.query(
          'UPDATE devices SET retired_at = $1, disabled = true WHERE home_id = $2 AND retired_at IS NULL',
          [at, id],
        );
      return done;
    });
  }

  async retiredAt(kind: RetiredKind, id: string): Promise<number | null> {
    const r = await this.one(`SELECT retired_at FROM ${RETIRED_TABLE[kind]} WHERE id = $1`, [id]);
    return r?.retired_at == null ? null : Number(r.retired_at);
  }

  async rotateDeviceSecret(id: string, secretHash: string): Promise<boolean> {
    return (
      (await this.pool.query('UPDATE devices SET secret_hash = $1 WHERE id = $2', [secretHash, id]))
        .rowCount === 1
    );
  }

  async upgradeDeviceSecretHashes(upgrades: SecretHashUpgrade[]): Promise<boolean[]> {
    if (upgrades.length === 0) return [];
    // One statement: each row changes only if it still holds `from`. Two upgrades of one device in a batch
    // (two connections of it) hold hashes of the same secret: the row takes one, both stand.
    const changed = await this.q(
      `UPDATE devices AS d SET secret_hash = u.to_hash
       FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, from_hash, to_hash)
       WHERE d.id = u.id AND d.secret_hash = u.from_hash
       RETURNING d.id`,
      [upgrades.map((u) => u.deviceId), upgrades.map((u) => u.from), upgrades.map((u) => u.to)],
    );
    const ids = new Set(changed.map((r) => String(r.id)));
    return upgrades.map((u) => ids.has(u.deviceId));
  }

  async deviceRejections(id: string): Promise<Record<string, number>> {
    const rows = await this.q(
      'SELECT reason, count FROM device_rejections WHERE device_id = $1 ORDER BY reason',
      [id],
    );
    return Object.fromEntries(rows.map((r) => [String(r.reason), Number(r.count)]));
  }

  async listDevices(filter: { homeId?: string; homeIds?: readonly string[] } = {}): Promise<DeviceState[]> {
    const rows = filter.homeId
      ? await this.q('SELECT * FROM devices WHERE home_id = $1 AND retired_at IS NULL ORDER BY id', [
          filter.homeId,
        ])
      : filter.homeIds
        ? await this.q('SELECT * FROM devices WHERE home_id = ANY($1) AND retired_at IS NULL ORDER BY id', [
            filter.homeIds,
          ])
        : await this.q('SELECT * FROM devices WHERE retired_at IS NULL ORDER BY id');
    return rows.map(deviceFrom);
  }

  async queryDevices(q: DeviceQuery): Promise<DeviceRow[]> {
    const args: unknown[] = [];
    return (await this.q(deviceRowsSql(q, pgDialect(args)), args)).map(deviceRowFrom);
  }

  async countDeviceHealth(q: Pick<DeviceQuery, 'gridIds' | 'lowBattery'>): Promise<DeviceHealthCounts> {
    const args: unknown[] = [];
    return deviceCountsFrom((await this.q(deviceCountsSql(q, pgDialect(args)), args))[0]);
  }

  async setRoster(gridId: string, entries: RosterEntry[]): Promise<void> {
    await this.tx(async (c) => {
      await c.query('DELETE FROM roster WHERE grid_id = $1', [gridId]);
      for (const e of entries)
        await c.query('INSERT INTO roster (grid_id, shift, weekdays, staff_ids) VALUES ($1, $2, $3, $4)', [
          gridId,
          e.shift,
          JSON.stringify(e.weekdays),
          JSON.stringify(e.staffIds),
        ]);
    });
  }

  async listRoster(gridId?: string): Promise<RosterEntry[]> {
    const rows = gridId
      ? await this.q('SELECT * FROM roster WHERE grid_id = $1 ORDER BY id', [gridId])
      : await this.q('SELECT * FROM roster ORDER BY id');
    return rows.map((r) => ({
      gridId: String(r.grid_id),
      shift: r.shift as RosterEntry['shift'],
      weekdays: r.weekdays as number[],
      staffIds: r.staff_ids as string[],
    }));
  }

  async addOverride(o: RosterOverride): Promise<void> {
    await this.q(
      'INSERT INTO roster_overrides (id, grid_id, date, shift, kind, staff_id, replacement_id) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [o.id, o.gridId, o.date, o.shift, o.kind, o.staffId, o.replacementId],
    );
  }

  async listOverrides(gridId?: string): Promise<RosterOverride[]> {
    const rows = gridId
      ? await this.q('SELECT * FROM roster_overrides WHERE grid_id = $1 ORDER BY date, id', [gridId])
      : await this.q('SELECT * FROM roster_overrides ORDER BY date, id');
    return rows.map(overrideFrom);
  }

  async deleteOverride(id: string): Promise<RosterOverride | null> {
    const r = await this.one('DELETE FROM roster_overrides WHERE id = $1 RETURNING *', [id]);
    return r ? overrideFrom(r) : null;
  }

  // ---- event log

  appendEvents(
    records: EventRecord[],
    presence: PresenceUpdate[] = [],
    opts: { urgent?: boolean } = {},
  ): Promise<AppendOutcome[]> {
    if (this.closed) return Promise.reject(new Error('store is closed'));
    if (opts.urgent) return this.appendUrgent({ records, presence });
    return new Promise((resolve, reject) => {
      this.appendQueue.push({ records, presence, resolve, reject });
      if (!this.appending) void this.writeAppends();
    });
  }

  async updatePresence(updates: PresenceUpdate[]): Promise<void> {
    if (updates.length > 0) await this.appendEvents([], updates);
  }

  /**
   * RULE-16: an urgent append (a fall, a help button) does not wait for the group commit's transaction
   * being written, nor go into the next one with whatever queued meanwhile (each takes the log lock, a
   * few hundred rows and an fsync under load): it is a transaction of its own on another connection at
   * once, waiting only for the log lock's holder and at most one ordinary append of any process (it skips
   * ORDINARY_LOCK, where the others queue). Its devices' rows guard it like every append (appendTx),
   * so a batch of the same device committed in between costs the long way, never a wrong verdict.
   */
  private async appendUrgent(request: AppendWrite): Promise<AppendOutcome[]> {
    this.urgentAppends += 1;
    try {
      return (await this.appendTx([request], true))[0]!;
    } finally {
      this.urgentAppends -= 1;
    }
  }

  /** Group commit: whatever queued while the last transaction was written goes into the next one. */
  private async writeAppends(): Promise<void> {
    this.appending = true;
    try {
      while (this.appendQueue.length > 0) {
        const batch = this.appendQueue.splice(0);
        try {
          const out = await this.appendTx(batch);
          for (const [i, b] of batch.entries()) b.resolve(out[i]!);
        } catch (e) {
          if (batch.length === 1 || isConnectionError(e)) for (const b of batch) b.reject(e);
          // One bad request must not fail the others taken with it: each alone, in order.
          else
            for (const b of batch) {
              try {
                b.resolve((await this.appendTx([b]))[0]!);
              } catch (e1) {
                b.reject(e1);
              }
            }
        }
      }
    } finally {
      this.appending = false;
    }
  }

  /**
   * One append transaction. Usually one round trip: BEGIN, whether the commit waits for the disk, the
   * device rows' presence, the log lock, the events with the devices' new seq state (a CTE of the same
   * INSERT), and COMMIT, in one simple-protocol message (values as escaped literals: that protocol takes
   * no parameters); the batch is answered only once it is on disk: after FLUSH, which the message carries
   * after its COMMIT, outside the lock (DATA-06; at its COMMIT on a server that refuses FLUSH). The rows
   * go before the lock so that the lock, which every gateway's appends take in turn, is held for the events
   * and the commit only.
   *
   * Duplicates (SPEC §3) are judged before that message from the devices' seq state as this store last
   * wrote or read it (`seqCache`: after its own appends, and at each login, `findDevice`). The INSERT
   * checks, under the lock, that each judged device's row of device_seqs still holds what the verdicts
   * assumed (`guardParams`); if one does not (the device wrote through another gateway since, a copy), it
   * fails and the transaction is rolled back (the rows' presence too), those devices are dropped from the
   * cache and the batch goes the long way. The check is per device, not the log's end, so several gateways
   * appending to one log each keep their one round trip: a device is connected to one of them at a time.
   * The long way (a device not cached, a seq at or below a device's highest that needs the recorded seqs,
   * a row that moved) writes the rows and reads the devices' state under the lock in a first round trip,
   * then sends the events and COMMIT: two round trips, three with the lookup of recorded seqs.
   */
  private async appendTx(batch: AppendWrite[], urgent = false): Promise<AppendOutcome[][]> {
    const records = batch.flatMap((b) => b.records);
    const presence = batch.flatMap((b) => b.presence);
    return this.withClient(async (c) => {
      await this.prepareAppends(c);
      // The short way: every device judged from the cache, no recorded seq to look up.
      const fromCache = () => (records.length > 0 ? this.judgeFromCache(records) : null);
      let judged = fromCache();
      let deadlocks = 0;
      for (;;) {
        try {
          // DEV-12: the devices' rows first, before the log lock (presenceSql locks them in id order, and
          // every append takes them before the lock): the lock is held for the events and the commit.
          // DATA-06: the lock is held for the rows, not for the disk. A fall's append (RULE-16) too: its
          // commit tells the dispatchers (announceUrgent) at once, not after its flush (DATA-07). A batch of
          // duplicates only is answered after the flush as well: its originals may be another process's
          // append, committed and not yet flushed.
          const unflushed = records.length > 0 && this.flushApart === true;
          const opening = [
            unflushed ? BEGIN_UNFLUSHED : BEGIN,
            ...(presence.length > 0 ? presenceSql(presence) : []),
          ];
          let statements: string[];
          if (records.length > 0 && !judged) {
            // The long way: state read under the lock, in the transaction the second message commits.
            this.longWays += 1;
            const seqDevices = [
              ...new Set(
                records.filter((r) => r.status === 'accepted' && r.deviceSeq !== null).map((r) => r.deviceId),
              ),
            ];
            const first = [...opening, ...logLocks(urgent)];
            if (seqDevices.length > 0)
              first.push(
                `SELECT device_id, seq_count, high, high_ts, session FROM device_seqs WHERE device_id IN (${seqDevices.map(literal).join(', ')})`,
              );
            const begun = (await c.query(first.join(';\n'))) as unknown as pg.QueryResult[];
            const states = statesFrom(seqDevices.length > 0 ? (begun.at(-1)!.rows as Row[]) : [], seqDevices);
            judged = await this.judgeDuplicates(c, records, states);
            statements = [];
          } else {
            statements = opening;
            if (records.length > 0) statements.push(...logLocks(urgent));
          }
          const insert = judged ? insertSql(records, judged) : null;
          if (insert) statements.push(insert);
          const announce = insert !== null && urgent && this.announceUrgent !== null;
          if (announce) statements.push(announceSql(this.announceUrgent!, judged!.kept));
          statements.push('COMMIT');
          if (unflushed) statements.push(FLUSH);
          const done = (await c.query(statements.join(';\n'))) as unknown as
            | pg.QueryResult
            | pg.QueryResult[];
          const all = Array.isArray(done) ? done : [done];
          if (unflushed) this.confirmed(flushedAt(all));
          const results = unflushed ? all.slice(0, -FLUSH_RESULTS) : all;
          this.lastFailure = null;
          if (records.length === 0) return batch.map(() => []);
          const drawn = insert
            ? (results.at(announce ? -3 : -2)!.rows as Row[]).map((r) => Number(r.seq))
            : [];
          // Positions are drawn in the order the rows are inserted (ORDER BY n), so sorting restores it.
          drawn.sort((a, b) => a - b);
          this.remember(judged!.states);
          // No row: the records were too large for a notification (they are left to the log).
          const announced = announce && results.at(-2)!.rows.length > 0;
          if (announced) this.urgentAnnounced += 1;
          return outcomesOf(batch, judged!.keep, drawn, announced);
        } catch (e) {
          const code = (e as { code?: string }).code;
          if (code === SEQ_STATE_MOVED) {
            // A device's row moved on since this store knew it (it wrote through another gateway, a copy):
            // the guard failed under the lock and nothing of the transaction stays, its devices' rows
            // neither. The long way, with the state read under the lock.
            await c.query('ROLLBACK');
            this.stale += 1;
            for (const d of judged!.assumed ?? []) this.seqCache.delete(d.id);
            judged = null;
            continue;
          }
          if (code === DEADLOCK && deadlocks < DEADLOCK_RETRIES) {
            // PostgreSQL chose this transaction to break a cycle of waits for devices' rows (an operator's
            // bulk change, a gateway of an older version taking the lock first): nothing of it was
            // committed, so it is written again, judged afresh.
            await c.query('ROLLBACK');
            deadlocks += 1;
            this.deadlockRetries += 1;
            judged = fromCache();
            continue;
          }
          throw e;
        }
      }
    }).catch((e: unknown) => {
      // Whatever this store believed about the log may not hold after a failure (a commit not confirmed).
      this.forgetSeqs();
      throw e;
    });
  }

  /** Connections that prepared APPEND_STATEMENTS (a prepared statement lives as long as its connection). */
  private readonly appendsPrepared = new WeakSet<pg.PoolClient>();

  /** APPEND_STATEMENTS on this connection, once: one round trip before its first append. */
  private async prepareAppends(c: pg.PoolClient): Promise<void> {
    if (this.appendsPrepared.has(c)) return;
    if (this.flushApart === null) await this.flush(c);
    const sql = Object.entries(APPEND_STATEMENTS)
      .map(([name, text]) => `PREPARE ${name} AS ${text}`)
      .join(';\n');
    await c.query(sql).catch(async (e: { code?: string }) => {
      if (e.code !== '42P05') throw e;
      // duplicate_prepared_statement: this connection has some already (the same texts: this process's);
      // the others, one by one.
      for (const [name, text] of Object.entries(APPEND_STATEMENTS))
        await c.query(`PREPARE ${name} AS ${text}`).catch((e1: { code?: string }) => {
          if (e1.code !== '42P05') throw e1;
        });
    });
    this.appendsPrepared.add(c);
  }

  /**
   * Devices' seq state as this store last wrote it (its own appends) or read it (at a login): what the
   * short way judges from. Each append checks it under the lock (guardParams), so a stale entry costs a
   * failed message, a ROLLBACK and the long way, never a wrong verdict.
   */
  private readonly seqCache = new Map<string, { count: number; state: SeqState }>();
  /** Appends that read the devices' state under the lock first (for tests and the bench). */
  longWays = 0;
  /** Of those, appends that found a judged device's row moved on since this store knew it. */
  stale = 0;
  /** Appends written again after PostgreSQL broke a deadlock by aborting them. */
  deadlockRetries = 0;
  /** Urgent appends announced in their own commit (announceUrgent). */
  urgentAnnounced = 0;
  /** DATA-06: whether ordinary appends flush outside the log lock (null: not yet tried on this server). */
  flushApart: boolean | null = null;
  /** DATA-06: the WAL position this store's last FLUSH made durable (on any synchronous standby too). */
  private confirmedTo = 0n;
  /** Log reads that found events not yet on disk and flushed them before handing them on (DATA-06). */
  readFlushes = 0;

  private forgetSeqs(): void {
    this.seqCache.clear();
  }

  /** After a commit: the batch's devices as they are now. */
  private remember(states: Map<string, SeqDevice>): void {
    // A bound on the memory it takes (~100 bytes a device): past it, the devices are read again.
    if (this.seqCache.size + states.size > SEQ_CACHE_MAX) this.seqCache.clear();
    for (const [id, d] of states) this.seqCache.set(id, { count: d.count, state: d.state });
  }

  /** The verdicts from the cache alone, or null when the batch needs the long way. */
  private judgeFromCache(records: EventRecord[]): Judged | null {
    const states = new Map<string, SeqDevice>();
    const assumed: Assumed = [];
    for (const r of records) {
      if (r.status !== 'accepted' || r.deviceSeq === null) continue;
      const cached = this.seqCache.get(r.deviceId);
      if (!cached) return null;
      if (!states.has(r.deviceId)) {
        states.set(r.deviceId, { count: cached.count, state: cached.state, changed: false });
        assumed.push({ id: r.deviceId, count: cached.count, state: cached.state });
      }
      // A seq at or below the device's highest (before this batch) needs the recorded seqs.
      if (r.deviceSeq <= cached.state.high) return null;
    }
    const judged = judgeBatch(records, states, new Map());
    // All duplicates: nothing written, so nothing to check the cache against; the long way.
    return judged.kept > 0 ? { ...judged, assumed } : null;
  }

  /**
   * SPEC §3 duplicates by the rule in gateway/duplicates.ts, under the log lock: `states` are the devices'
   * rows of device_seqs, read under the lock; the seqs a device recorded are found through the events'
   * unique index, for the seqs at or below its highest (the usual seq, above it, needs no lookup).
   */
  private async judgeDuplicates(
    c: pg.PoolClient,
    records: EventRecord[],
    states: Map<string, SeqDevice>,
  ): Promise<Judged> {
    const recorded = new Map<string, number>();
    const ask = records.filter(
      (r) =>
        r.status === 'accepted' && r.deviceSeq !== null && r.deviceSeq <= states.get(r.deviceId)!.state.high,
    );
    if (ask.length > 0) {
      const found = await this.q(
        `SELECT q.d AS device_id, q.c AS seq_count, q.s AS device_seq, e.ts
         FROM unnest($1::text[], $2::int[], $3::bigint[]) AS q(d, c, s)
         CROSS JOIN LATERAL (SELECT ts FROM events WHERE device_id = q.d AND seq_count = q.c AND device_seq = q.s
           AND device_seq IS NOT NULL AND status = 'accepted' LIMIT 1) e`,
        [
          ask.map((r) => r.deviceId),
          ask.map((r) => states.get(r.deviceId)!.count),
          ask.map((r) => r.deviceSeq),
        ],
        c,
      );
      for (const r of found)
        recorded.set(seqKey(String(r.device_id), Number(r.seq_count), Number(r.device_seq)), Number(r.ts));
    }
    return judgeBatch(records, states, recorded);
  }

  /**
   * DATA-06: only events on disk. An ordinary append's rows are visible before the flush its gateway waits
   * for, and a server that crashed in between would lose them and give their positions to other events: the
   * rules, had they read them, would pass those over. So the read also takes the WAL's end as it was when
   * its snapshot was taken (every commit it sees lies before it) and hands the events on once the WAL is on
   * disk that far: at once if it is (usually a gateway's own flush got there first), else after a flush.
   * With a synchronous standby (`synchronous_standby_names`), on the standby too: only a durable commit
   * waits for it, so the read's position must be one that this store's last FLUSH made durable.
   */
  async readEvents(afterSeq: number, limit: number): Promise<LoggedEvent[]> {
    const rows = await this.q(
      `SELECT seq, device_id, home_id, received_at, ts, body, flags, w.lsn, w.flushed, w.standby FROM events,
         (SELECT pg_current_wal_insert_lsn()::text AS lsn,
           pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn() AS flushed,
           current_setting('synchronous_standby_names') <> '' AS standby) w
       WHERE seq > $1 AND status = 'accepted' ORDER BY seq LIMIT $2`,
      [afterSeq, limit],
    );
    const w = rows[0];
    if (w && !(w.flushed && !w.standby) && walPosition(String(w.lsn)) > this.confirmedTo)
      await this.flushedTo(String(w.lsn), Boolean(w.standby));
    return rows.map(loggedEventFrom);
  }

  /** Reads whose wait for the flush was given up (a server that refuses FLUSH: flushedTo). */
  readFlushWaitsGivenUp = 0;

  /**
   * Returns once the WAL is durable up to `lsn` (DATA-06): at once if it is on disk now (no synchronous
   * standby), else after a FLUSH. A server that refuses FLUSH (all appends of this store then commit
   * durably) is watched for its WAL writer to flush that far, which it does for another process's
   * unflushed commit within three of its delays (`wal_writer_delay`); the WAL's end can also hold records
   * that no commit follows, which it may not flush for a while, so the wait is given up after a second,
   * counted and said once.
   */
  private async flushedTo(lsn: string, standby: boolean): Promise<void> {
    const started = performance.now();
    for (let wait = 1; ; wait = Math.min(wait * 2, 50)) {
      if (!standby || this.flushApart === false) {
        const now = await this.one('SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS flushed', [lsn]);
        if (now?.flushed) return;
      }
      if (this.flushApart !== false && (await this.withClient((c) => this.flush(c)))) {
        this.readFlushes += 1;
        return;
      }
      // The machine's pace while the server's WAL writer catches up, not domain time: monotonic.
      if (performance.now() - started > 1_000) {
        if (this.readFlushWaitsGivenUp++ === 0)
          this.opts.onWarning?.(
            'the rules read events before they were known to be on disk: the server refuses the flush (DATA-06); give every role EXECUTE on pg_logical_emit_message',
          );
        return;
      }
      await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** A WAL position that a FLUSH made durable (the store's highest so far). */
  private confirmed(lsn: string): void {
    const at = walPosition(lsn);
    if (at > this.confirmedTo) this.confirmedTo = at;
  }

  /**
   * FLUSH on `c`: whether it was done. A server that refuses it (a role that may not call the function,
   * FLUSH_REFUSED) decides `flushApart` for good, said once: appends then commit durably under the log lock,
   * as before. Any other failure (a lost connection, a cancelled statement, a server in recovery) decides
   * nothing and is thrown.
   */
  private async flush(c: pg.PoolClient): Promise<boolean> {
    try {
      this.confirmed(flushedAt((await c.query(FLUSH)) as unknown as pg.QueryResult[]));
      this.flushApart = true;
      return true;
    } catch (e) {
      if (!FLUSH_REFUSED.has(String((e as { code?: string }).code))) throw e;
      await c.query('ROLLBACK');
      if (this.flushApart !== false)
        this.opts.onWarning?.(
          `appends commit durably under the event log's lock, since the server refuses their flush apart (DATA-06): ${describe(e)}`,
        );
      this.flushApart = false;
      return false;
    }
  }

  async countEvents(status?: 'accepted' | 'rejected'): Promise<number> {
    const r = status
      ? await this.one('SELECT COUNT(*) AS n FROM events WHERE status = $1', [status])
      : await this.one('SELECT COUNT(*) AS n FROM events');
    return Number(r!.n);
  }

  async listHomeEvents(
    homeId: string,
    range: { from: number; to: number; types?: string[] },
    limit: number,
  ): Promise<LoggedEvent[]> {
    const types = range.types ?? [];
    const rows = await this.q(
      `SELECT seq, device_id, home_id, received_at, ts, body, flags FROM events
       WHERE home_id = $1 AND ts >= $2 AND ts < $3 AND status = 'accepted'
         ${types.length ? 'AND type = ANY($5)' : ''}
       ORDER BY ts, seq LIMIT $4`,
      types.length ? [homeId, range.from, range.to, limit, types] : [homeId, range.from, range.to, limit],
    );
    return rows.map(loggedEventFrom);
  }

  async getCursor(name: string): Promise<number> {
    const r = await this.one('SELECT seq FROM cursors WHERE name = $1', [name]);
    return r ? Number(r.seq) : 0;
  }

  async getHomeState(homeId: string): Promise<StoredHomeState | null> {
    const r = await this.one('SELECT state, learned FROM home_states WHERE home_id = $1', [homeId]);
    return r ? storedHomeState(r) : null;
  }

  async loadHomeStates(page?: {
    after: string | null;
    limit: number;
  }): Promise<Map<string, StoredHomeState>> {
    const rows = page
      ? await this.q(
          'SELECT home_id, state, learned FROM home_states WHERE home_id > $1 ORDER BY home_id LIMIT $2',
          [page.after ?? '', page.limit],
        )
      : await this.q('SELECT home_id, state, learned FROM home_states');
    return new Map(rows.map((r) => [String(r.home_id), storedHomeState(r)]));
  }

  // ---- alerts and their change feed

  /**
   * Every alert write draws the next change sequence from one counter row, whose lock it holds until its
   * commit, so changes become visible in sequence order (the change feed never skips one). That lock is
   * what every other alert writer waits for, a fall's urgent raise and its escalation step among them
   * (RULE-16): it is taken only in a transaction's last message, with the commit in the same message, so
   * it is held for the server's work on that message, never across a round trip to a busy client.
   *
   * Each write is guarded in the message itself: `1 / count` of the rows it wrote fails the message with
   * division_by_zero when it wrote none (the version it was made from has moved on, or the fence failed),
   * and the statements after it, the COMMIT among them, are skipped.
   */
  private alertWriteSql(alert: Alert, fence?: Fence): string {
    const bump = `bump AS (UPDATE counters SET value = value + 1 WHERE name = 'alert_change'${
      fence ? ` AND EXISTS (${fenceSql(fence)})` : ''
    } RETURNING value)`;
    const guard =
      'SELECT (SELECT change_seq FROM w) AS change_seq, 1 / (SELECT count(*)::int FROM w) AS written';
    if (alert.version === 1)
      return inline(
        `WITH ${bump}, w AS (
           INSERT INTO alerts (id, household_id, grid_id, community, rule, severity, state, is_open, raised_at,
             updated_at, next_step_at, change_seq, version, body)
           SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::boolean, $9::bigint,
             $10::bigint, $11::bigint, bump.value, $12::int, $13::jsonb FROM bump
           RETURNING change_seq)
         ${guard}`,
        [
          alert.id,
          alert.householdId,
          alert.gridId,
          alert.community,
          alert.rule,
          alert.severity,
          alert.state,
          isOpen(alert.state),
          alert.raisedAt,
          alert.updatedAt,
          alert.nextStepAt,
          alert.version,
          JSON.stringify(alert),
        ],
      );
    return inline(
      `WITH ${bump}, w AS (
         UPDATE alerts SET state = $1, is_open = $2, updated_at = $3, next_step_at = $4, change_seq = bump.value,
           version = $5, body = $6::jsonb
         FROM bump WHERE id = $7 AND version = $8 RETURNING change_seq)
       ${guard}`,
      [
        alert.state,
        isOpen(alert.state),
        alert.updatedAt,
        alert.nextStepAt,
        alert.version,
        JSON.stringify(alert),
        alert.id,
        alert.version - 1,
      ],
    );
  }

  /**
   * A transaction sent as whole messages (simple protocol): `work` sends them, BEGIN in its first and
   * COMMIT in its last; any failure is rolled back (a ROLLBACK after the transaction ended is harmless).
   */
  private messages<T>(work: (send: (sql: string) => Promise<pg.QueryResult[]>) => Promise<T>): Promise<T> {
    return this.withClient((c) =>
      work(async (sql) => {
        const r = (await c.query(sql)) as unknown as pg.QueryResult | pg.QueryResult[];
        return Array.isArray(r) ? r : [r];
      }),
    );
  }

  /**
   * A page of the rules in two messages, one when it changes no alert: BEGIN, the fence (CLU-03, FOR SHARE:
   * a takeover waits for this commit), the homes' state and the cursor; then the alerts, their history and
   * COMMIT. It took 4 + 2 per alert round trips before, holding the change counter's lock across them.
   */
  async commitRules(c: RuleCommit): Promise<void> {
    const alerts = [...c.updated, ...c.raised];
    const head: string[] = ['BEGIN'];
    if (c.fence)
      head.push(
        `WITH f AS (${fenceSql(c.fence)} FOR SHARE) SELECT 1 / (SELECT count(*)::int FROM f) AS held`,
      );
    // About one row per event: each state's JSON goes in as written, dollar-quoted (no pass over it). Up to
    // 1,000 states are written a few dozen at a time, with the event loop let in between (RULE-16: a fall's
    // raise on this process does not wait for a page's commit to be written out).
    if (c.homeStates.length > 0) {
      const rows: string[] = [];
      for (const h of c.homeStates) {
        if (rows.length % STATES_PER_TURN === STATES_PER_TURN - 1) await new Promise((r) => setImmediate(r));
        const learned = h.learned === undefined ? 'NULL' : quoted(JSON.stringify(h.learned));
        rows.push(`(${literal(h.homeId)}, ${quoted(JSON.stringify(h.state))}, ${learned})`);
      }
      // DATA-08: `learned` only when given (about once a day a home); the stored one stays otherwise.
      head.push(
        `INSERT INTO home_states (home_id, state, learned) VALUES ${rows.join(', ')} ON CONFLICT (home_id) DO UPDATE SET state = excluded.state, learned = COALESCE(excluded.learned, home_states.learned)`,
      );
    }
    head.push(
      inline(
        'INSERT INTO cursors (name, seq) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq',
        [c.cursor.name, c.cursor.seq],
      ),
    );
    // Changed alerts first: a batch may close an alert and open a new one of the same rule for the same
    // household; inserting first would break "one open alert" (SPEC §5).
    const tail = alerts.map((a) => this.alertWriteSql(a));
    if (c.history.length > 0) tail.push(historySql(c.history));
    tail.push('COMMIT');
    await this.messages(async (send) => {
      const fenced = (e: unknown) => {
        throw c.fence && (e as { code?: string }).code === DIVISION_BY_ZERO ? new FencedError(c.fence) : e;
      };
      if (alerts.length === 0) {
        await send([...head, ...tail].join('; ')).catch(fenced);
        return;
      }
      await send(head.join('; ')).catch(fenced);
      const done = await send(tail.join('; ')).catch((e: unknown) => {
        throw staleOr(e, alerts);
      });
      alerts.forEach((a, i) => {
        a.changeSeq = Number(done[i]!.rows[0]!.change_seq);
      });
    });
  }

  /**
   * One alert and its history in one message (it was six round trips, then two): BEGIN, the fence (FOR
   * SHARE), the write (only while the fence holds and, for a change, only over the version it was made
   * from), the history, COMMIT. An alert's write is what a fall's notice waits for (the urgent raise,
   * RULE-16, then its first escalation step).
   */
  async saveAlert(alert: Alert, history: HistoryEntry[], fence?: Fence): Promise<void> {
    // DATA-07: durable whatever the server's default, so that its answer covers the events it was raised
    // from (the urgent lane raises from a fall's commit before that commit's flush).
    const parts = [BEGIN_DURABLE];
    if (fence) parts.push(`${fenceSql(fence)} FOR SHARE`);
    parts.push(this.alertWriteSql(alert, fence));
    if (history.length > 0) parts.push(historySql(history));
    parts.push('COMMIT');
    const done = await this.messages((send) => send(parts.join('; '))).catch(async (e: unknown) => {
      if (!fence || (e as { code?: string }).code !== DIVISION_BY_ZERO) throw staleOr(e, [alert]);
      // Not written (and rolled back): the fence failed, or the version moved on. The fence's row tells which.
      throw (await this.q(fenceSql(fence))).length === 0
        ? new FencedError(fence)
        : new StaleWriteError(alert.id);
    });
    // The write's result follows BEGIN_DURABLE's two and the fence's.
    alert.changeSeq = Number(done[fence ? 3 : 2]!.rows[0]!.change_seq);
  }

  async getAlert(id: string): Promise<Alert | null> {
    const r = await this.one('SELECT body, change_seq FROM alerts WHERE id = $1', [id]);
    return r ? alertFrom(r) : null;
  }

  async listAlerts(f: AlertFilter): Promise<Alert[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (cond: (n: number) => string, v?: unknown) => {
      if (v !== undefined) args.push(v);
      where.push(cond(args.length));
    };
    if (f.state === 'open') add(() => 'is_open');
    else if (f.state !== undefined) add((n) => `state = $${n}`, f.state);
    if (f.states) add((n) => `state = ANY($${n})`, f.states);
    if (f.householdId) add((n) => `household_id = $${n}`, f.householdId);
    if (f.gridIds) add((n) => `grid_id = ANY($${n})`, f.gridIds);
    if (f.notGridIds) add((n) => `NOT (grid_id = ANY($${n}))`, f.notGridIds);
    if (f.rule) add((n) => `rule = $${n}`, f.rule);
    if (f.severities) add((n) => `severity = ANY($${n})`, f.severities);
    if (f.raisedBefore !== undefined) add((n) => `raised_at < $${n}`, f.raisedBefore);
    if (f.notAccepted) add(() => `body->>'acceptedAt' IS NULL`);
    if (f.involving)
      add((n) => `(body->>'assigneeId' = $${n} OR jsonb_exists(body->'responders', $${n}))`, f.involving);
    args.push(f.limit ?? 500);
    const sql = `SELECT body, change_seq FROM alerts ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY raised_at DESC LIMIT $${args.length}`;
    return (await this.q(sql, args)).map(alertFrom);
  }

  async countOpenAlerts(gridIds?: string[]): Promise<OpenAlertCount[]> {
    const rows = gridIds
      ? await this.q(
          'SELECT state, severity, COUNT(*) AS n FROM alerts WHERE is_open AND grid_id = ANY($1) GROUP BY state, severity',
          [gridIds],
        )
      : await this.q(
          'SELECT state, severity, COUNT(*) AS n FROM alerts WHERE is_open GROUP BY state, severity',
        );
    return rows.map((r) => ({
      state: r.state as OpenAlertCount['state'],
      severity: r.severity as OpenAlertCount['severity'],
      count: Number(r.n),
    }));
  }

  async findOpenAlert(householdId: string, rule: string): Promise<Alert | null> {
    const r = await this.one(
      'SELECT body, change_seq FROM alerts WHERE household_id = $1 AND rule = $2 AND is_open',
      [householdId, rule],
    );
    return r ? alertFrom(r) : null;
  }

  async alertHistory(alertId: string): Promise<HistoryEntry[]> {
    return (await this.q('SELECT * FROM alert_history WHERE alert_id = $1 ORDER BY id', [alertId])).map(
      historyFrom,
    );
  }

  async listPendingEscalations(): Promise<Alert[]> {
    return (
      await this.q(
        'SELECT body, change_seq FROM alerts WHERE is_open AND next_step_at IS NOT NULL ORDER BY next_step_at',
      )
    ).map(alertFrom);
  }

  async currentChangeSeq(): Promise<number> {
    return Number((await this.one(`SELECT value FROM counters WHERE name = 'alert_change'`))!.value);
  }

  async listAlertsRaisedBetween(from: number, to: number, gridIds?: string[]): Promise<Alert[]> {
    const rows = gridIds
      ? await this.q(
          'SELECT body, change_seq FROM alerts WHERE raised_at >= $1 AND raised_at < $2 AND grid_id = ANY($3) ORDER BY raised_at',
          [from, to, gridIds],
        )
      : await this.q(
          'SELECT body, change_seq FROM alerts WHERE raised_at >= $1 AND raised_at < $2 ORDER BY raised_at',
          [from, to],
        );
    return rows.map(alertFrom);
  }

  async alertChangesSince(changeSeq: number, limit: number): Promise<Alert[]> {
    return (
      await this.q('SELECT body, change_seq FROM alerts WHERE change_seq > $1 ORDER BY change_seq LIMIT $2', [
        changeSeq,
        limit,
      ])
    ).map(alertFrom);
  }

  // ---- deliveries, sessions, audit

  async recordDelivery(d: DeliveryRecord): Promise<void> {
    await this.q(
      'INSERT INTO deliveries (alert_id, staff_id, channel, at, ok, error, delivered) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [d.alertId, d.staffId, d.channel, d.at, d.ok, d.error, d.delivered ?? false],
    );
  }

  async listDeliveries(alertId: string): Promise<DeliveryRecord[]> {
    return (await this.q('SELECT * FROM deliveries WHERE alert_id = $1 ORDER BY id', [alertId])).map(
      deliveryFrom,
    );
  }

  async listDeliveriesSince(since: number, limit: number): Promise<DeliveryRecord[]> {
    return (await this.q('SELECT * FROM deliveries WHERE at >= $1 ORDER BY id LIMIT $2', [since, limit])).map(
      deliveryFrom,
    );
  }

  async createSession(s: Session): Promise<void> {
    await this.q(
      'INSERT INTO sessions (token_hash, staff_id, created_at, expires_at) VALUES ($1, $2, $3, $4)',
      [s.tokenHash, s.staffId, s.createdAt, s.expiresAt],
    );
  }

  async getSession(tokenHash: string): Promise<Session | null> {
    const r = await this.one('SELECT * FROM sessions WHERE token_hash = $1', [tokenHash]);
    return r
      ? {
          tokenHash: String(r.token_hash),
          staffId: String(r.staff_id),
          createdAt: Number(r.created_at),
          expiresAt: Number(r.expires_at),
        }
      : null;
  }

  async deleteSession(tokenHash: string): Promise<void> {
    await this.q('DELETE FROM sessions WHERE token_hash = $1', [tokenHash]);
  }

  async deleteStaffSessions(staffId: string): Promise<number> {
    return (await this.q('DELETE FROM sessions WHERE staff_id = $1 RETURNING token_hash', [staffId])).length;
  }

  async audit(e: AuditEntry): Promise<void> {
    await this.q('INSERT INTO audit_log (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)', [
      e.at,
      e.actor,
      e.action,
      e.target,
      JSON.stringify(e.detail),
    ]);
  }

  async listAudit(limit: number): Promise<AuditEntry[]> {
    return (await this.q('SELECT * FROM audit_log ORDER BY id DESC LIMIT $1', [limit])).map(auditFrom);
  }

  async queryAudit(f: AuditFilter): Promise<AuditEntry[]> {
    const where: string[] = [];
    const args: unknown[] = [];
    const add = (cond: (n: number) => string, v: unknown) => {
      args.push(v);
      where.push(cond(args.length));
    };
    // An action ending in '.' is a prefix: 'household.' is every household action.
    if (f.actor !== undefined) add((n) => `actor = $${n}`, f.actor);
    if (f.target !== undefined) add((n) => `target = $${n}`, f.target);
    if (f.action?.endsWith('.')) add((n) => `action LIKE $${n}`, `${f.action.replace(/[\\%_]/g, '\\$&')}%`);
    else if (f.action !== undefined) add((n) => `action = $${n}`, f.action);
    if (f.from !== undefined) add((n) => `at >= $${n}`, f.from);
    if (f.to !== undefined) add((n) => `at < $${n}`, f.to);
    args.push(f.limit);
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id DESC LIMIT $${args.length}`;
    return (await this.q(sql, args)).map(auditFrom);
  }
}

/** Home states serialised in one turn of the event loop by `commitRules`. */
const STATES_PER_TURN = 50;

/** A string as an SQL literal, right whatever `standard_conforming_strings` says. */
function literal(v: string): string {
  return v.includes('\\')
    ? `E'${v.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
    : `'${v.replace(/'/g, "''")}'`;
}

/** The tag of a dollar-quoted literal (`$g365$…$g365$`). */
const DOLLAR = '$g365$';
/**
 * A long text (an array's or a JSON document's) as an SQL literal: dollar-quoted, so written as it is
 * without a pass over it, unless it holds the tag or ends in `$`; then as `literal`.
 */
function quoted(v: string): string {
  return v.includes(DOLLAR) || v.endsWith('$') ? literal(v) : `${DOLLAR}${v}${DOLLAR}`;
}

/** A parameter that is already a JSON document's text (written in as a jsonb literal, not escaped). */
class JsonText {
  constructor(readonly text: string) {}
}

/** PostgreSQL's division_by_zero: an alert write's guard found it wrote nothing (alertWriteSql). */
const DIVISION_BY_ZERO = '22012';

/** CLU-03: the lease row of a fence, while the fence holds (its epoch and holder, not expired). */
function fenceSql(fence: Fence): string {
  return inline(
    `SELECT 1 FROM community_leases WHERE community = $1 AND holder = $2 AND epoch = $3
       AND expires_at > (extract(epoch from clock_timestamp()) * 1000)::bigint`,
    [fence.community, fence.holder, fence.epoch],
  );
}

/**
 * A failed alert write as StaleWriteError when it was one: its guard (a version moved on) or RULE-11's one
 * open alert per household and rule (another opened meanwhile, the urgent lane's: RULE-16). The message
 * does not say which of several alerts it was; the writer evaluates the page again either way.
 */
function staleOr(e: unknown, alerts: Alert[]): unknown {
  const pe = e as { code?: string; constraint?: string };
  const stale = pe.code === DIVISION_BY_ZERO || (pe.code === '23505' && pe.constraint === 'alerts_one_open');
  return stale ? new StaleWriteError(alerts.map((a) => a.id).join(', ')) : e;
}

/** An alert's history entries as one INSERT with its values written in (for a one-message write). */
function historySql(entries: HistoryEntry[]): string {
  return inline(
    `INSERT INTO alert_history (alert_id, at, action, from_state, to_state, actor, channel, data)
     SELECT a, t, ac, f, s, w, ch, d::jsonb
     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
       WITH ORDINALITY AS x(a, t, ac, f, s, w, ch, d, n) ORDER BY n`,
    [
      entries.map((h) => h.alertId),
      entries.map((h) => h.at),
      entries.map((h) => h.action),
      entries.map((h) => h.fromState),
      entries.map((h) => h.toState),
      entries.map((h) => h.actor),
      entries.map((h) => h.channel),
      entries.map((h) => JSON.stringify(h.data)),
    ],
  );
}

/**
 * An array of scalars in PostgreSQL's array syntax (as node-postgres sends an array parameter). Most texts
 * (ids, topics, statuses) hold neither a quote nor a backslash: they are written without a pass of the
 * escaping expression (an append writes a dozen arrays a batch).
 */
function arrayText(values: readonly unknown[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ',';
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'number') out += String(v);
    else {
      const t = typeof v === 'string' ? v : String(v);
      out +=
        t.indexOf('"') === -1 && t.indexOf('\\') === -1 ? `"${t}"` : `"${t.replace(ARRAY_ESCAPED, '\\$&')}"`;
    }
  }
  return `${out}}`;
}
const ARRAY_ESCAPED = /[\\"]/g;

/**
 * `sql` with its parameters written in as literals (arrays in array syntax, numbers as they are), for a
 * statement sent in one simple-protocol message with others.
 */
function inline(sql: string, params: unknown[]): string {
  return sql.replace(/\$(\d+)/g, (_, n: string) => sqlValue(params[Number(n) - 1]));
}

/** One parameter as an SQL literal (arrays in array syntax, numbers as they are). */
function sqlValue(v: unknown): string {
  if (Array.isArray(v)) return quoted(arrayText(v));
  if (v instanceof JsonText) return quoted(v.text);
  if (typeof v === 'number') return String(v);
  return v === null || v === undefined ? 'NULL' : literal(String(v));
}

const seqKey = (d: string, count: number, s: number) => `${d}\u0000${count}\u0000${s}`;

/** The devices' seq state from their rows of device_seqs (a device without one: never recorded a seq). */
function statesFrom(rows: Row[], deviceIds: string[]): Map<string, SeqDevice> {
  const states = new Map<string, SeqDevice>();
  for (const r of rows)
    states.set(String(r.device_id), {
      count: Number(r.seq_count),
      state: {
        high: Number(r.high),
        highTs: Number(r.high_ts),
        session: (r.session as string | null) ?? null,
      },
      changed: false,
    });
  for (const id of deviceIds)
    if (!states.has(id)) states.set(id, { count: 0, state: emptySeqState(), changed: false });
  return states;
}

/**
 * SPEC §3 verdicts for a batch, in order, by the rule in gateway/duplicates.ts: `states` hold every
 * judged device's state before the batch (updated in place), `recorded` the event times of the seqs at or
 * below a device's highest that it recorded (keys by seqKey).
 */
function judgeBatch(
  records: EventRecord[],
  states: Map<string, SeqDevice>,
  recorded: Map<string, number>,
): Judged {
  const keep: (number | null)[] = new Array(records.length).fill(0);
  let kept = records.length;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.status !== 'accepted' || r.deviceSeq === null) continue;
    const d = states.get(r.deviceId)!;
    const seq = r.deviceSeq;
    const session = r.session ?? null;
    const verdict = judgeSeq(
      d.state,
      seq,
      r.ts,
      session,
      recorded.get(seqKey(r.deviceId, d.count, seq)) ?? null,
    );
    if (verdict === 'duplicate') {
      keep[i] = null;
      kept--;
      continue;
    }
    // A restarted count: its seqs are recorded under the next count number (the unique index is per count).
    if (verdict === 'restart') d.count++;
    d.state = nextSeqState(d.state, verdict, seq, r.ts, session);
    d.changed = true;
    keep[i] = d.count;
    recorded.set(seqKey(r.deviceId, d.count, seq), r.ts);
  }
  return { keep, kept, states };
}

/** The guard's four arrays, in guardParams' order. */
const guardValues = (assumed: Assumed) => [
  assumed.map((d) => d.id),
  assumed.map((d) => d.count),
  assumed.map((d) => d.state.high),
  assumed.map((d) => d.state.session),
];

/**
 * The batch's events and its devices' new seq state, in one statement, written only if the guard holds
 * (each judged device's row of device_seqs, read under the log lock, still holds the count, highest seq
 * and session the verdicts assumed; otherwise it fails with SEQ_STATE_MOVED and takes the whole
 * transaction with it, the devices' rows written before the lock included). Prepared once per connection
 * (`APPEND_STATEMENTS`): planned anew for every append, this statement cost more than running it.
 */
// `ok` is MATERIALIZED and read by both INSERTs (WHERE EXISTS): its CASE, and the guard in it, runs once
// for every append, at run time (g365_seq_state_moved() is VOLATILE: never folded when planning).
const INSERT_EVENTS = `WITH ok AS MATERIALIZED (SELECT CASE WHEN true{{guard}} THEN 1 ELSE g365_seq_state_moved() END),
       seq_state AS (
         INSERT INTO device_seqs (device_id, seq_count, high, high_ts, session)
         SELECT * FROM unnest($14::text[], $15::int[], $16::bigint[], $17::bigint[], $18::text[])
         WHERE EXISTS (SELECT 1 FROM ok)
         ON CONFLICT (device_id) DO UPDATE SET seq_count = excluded.seq_count, high = excluded.high,
           high_ts = excluded.high_ts, session = excluded.session)
     INSERT INTO events (device_id, home_id, received_at, topic, status, ts, type, device_seq, seq_count, body, raw, reason, flags)
     SELECT d, h, ra, tp, st, ts, ty, ds, sc, NULLIF($10::jsonb -> (n - 1)::int, 'null'), rw, rs,
       $13::jsonb -> (n - 1)::int
     FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::text[],
       $8::bigint[], $9::int[], $11::text[], $12::text[])
       WITH ORDINALITY AS r(d, h, ra, tp, st, ts, ty, ds, sc, rw, rs, n)
     WHERE EXISTS (SELECT 1 FROM ok)
     ORDER BY n RETURNING seq`;

/**
 * The guard: each judged device's row of device_seqs, read under the log lock, still holds the count, highest
 * seq and session the verdicts assumed (no row: a device that never recorded a seq); its four arrays as
 * parameters `first`… (guardValues). Each device's row is looked up by its key (the LATERAL subquery, kept
 * apart by OFFSET 0): as a join, the plan the prepared statement kept from when the table was small (a new
 * database, a wave of new devices) read all of device_seqs on every append, under the lock, until the next
 * ANALYZE: the log took 4,600 events/s from six gateways where it takes 19,000 now.
 */
const guardParams = (first: number) =>
  ` AND NOT EXISTS (SELECT 1 FROM unnest($${first}::text[], $${first + 1}::int[], $${first + 2}::bigint[], $${first + 3}::text[]) AS g(d, c, h, s)
       LEFT JOIN LATERAL (SELECT seq_count, high, session FROM device_seqs WHERE device_id = g.d OFFSET 0) x ON true
       WHERE COALESCE(x.seq_count, 0) <> g.c OR COALESCE(x.high, -1) <> g.h OR x.session IS DISTINCT FROM g.s)`;

/** A statement with its `{{guard}}` marker, prepared twice: as it is and guarded (`name_guarded`). */
function guardedPair(name: string, text: string, params: number): Record<string, string> {
  return {
    [name]: text.replace('{{guard}}', ''),
    [`${name}_guarded`]: text.replace('{{guard}}', guardParams(params + 1)),
  };
}

/** `EXECUTE` of a guardedPair's statement: guarded when devices' rows were assumed (the short way). */
function executeGuarded(name: string, params: unknown[], assumed: Assumed | undefined): string {
  const guarded = assumed !== undefined && assumed.length > 0;
  return guarded ? execute(`${name}_guarded`, [...params, ...guardValues(assumed)]) : execute(name, params);
}

/**
 * RULE-16: the notification of an urgent append's accepted records on `channel`, in its transaction (sent at
 * its commit), as the dispatchers' urgent lane reads it (`LoggedEvent`s, as ClusterSignals.urgentWritten
 * writes them). The append's `kept` records took the last positions of the sequence in this session: every
 * append draws its positions under the log lock, so they are contiguous. Nothing is sent (no row) when the
 * text would exceed what a notification carries.
 *
 * The rows are found by the log's key, under the log lock. currval() is volatile: compared with `seq`
 * directly it would be evaluated for every row of the log, a scan of all of it; as scalar subqueries it is
 * evaluated once. And `status` is filtered in the aggregate, where no partial index of accepted events can
 * be chosen instead of the key.
 */
export function announceSql(channel: string, kept: number): string {
  return `SELECT pg_notify(${literal(channel)}, p) FROM (
      SELECT '[' || string_agg(json_build_object('seq', seq, 'deviceId', device_id, 'homeId', home_id,
        'receivedAt', received_at, 'ts', ts, 'flags', flags, 'event', body)::text, ',' ORDER BY seq)
        FILTER (WHERE status = 'accepted') || ']' AS p
      FROM events
      WHERE seq > (SELECT currval(pg_get_serial_sequence('events', 'seq'))) - ${Number(kept)}
        AND seq <= (SELECT currval(pg_get_serial_sequence('events', 'seq')))) m
    WHERE octet_length(p) <= ${ANNOUNCE_MAX}`;
}
/** The largest notification PostgreSQL takes is 8,000 bytes; room is left for the channel's name. */
const ANNOUNCE_MAX = 7_900;

/** `EXECUTE` of a prepared statement, its parameters written in as literals. */
const execute = (name: string, params: unknown[]) => `EXECUTE ${name}(${params.map(sqlValue).join(', ')})`;

/** `EXECUTE` of the prepared insert for the batch, or null when every record is a duplicate. */
function insertSql(records: EventRecord[], judged: Judged): string | null {
  const { keep, states, assumed } = judged;
  const kept = records.filter((_, i) => keep[i] !== null);
  if (kept.length === 0) return null;
  const keptCounts = keep.filter((k): k is number => k !== null);
  const col = <T>(f: (r: EventRecord, i: number) => T) => kept.map(f);
  const changed = [...states].filter(([, d]) => d.changed);
  return executeGuarded(
    'g365_insert_events',
    [
      col((r) => r.deviceId),
      col((r) => r.homeId),
      col((r) => r.receivedAt),
      col((r) => r.topic),
      col((r) => r.status),
      col((r) => r.ts),
      col((r) => r.type),
      col((r) => r.deviceSeq),
      keptCounts,
      // An accepted record's body is its event's JSON (gateway.ts writes it with JSON.stringify): the
      // bodies go in as one JSON array, each written once, and each row takes its element.
      new JsonText(`[${col((r) => (r.status === 'accepted' ? r.body : 'null')).join(',')}]`),
      col((r) => (r.status === 'accepted' ? null : r.body)),
      col((r) => r.reason),
      new JsonText(JSON.stringify(col((r) => r.flags))),
      changed.map(([id]) => id),
      changed.map(([, d]) => d.count),
      changed.map(([, d]) => d.state.high),
      changed.map(([, d]) => (Number.isNaN(d.state.highTs) ? 0 : d.state.highTs)),
      changed.map(([, d]) => d.state.session),
    ],
    assumed,
  );
}

/**
 * DEV-11: the devices' rows of a batch's presence (prepared once per connection, APPEND_STATEMENTS): the
 * state of the newest session in the batch, written only if no newer session wrote the row (the condition
 * in the WHERE); within a session, the last word of each field wins.
 */
const UPDATE_PRESENCE = `UPDATE devices d SET online = COALESCE(u.online, d.online), last_seen_at = COALESCE(u.seen, d.last_seen_at),
         battery = COALESCE(u.battery, d.battery), rssi = COALESCE(u.rssi, d.rssi), fw = COALESCE(u.fw, d.fw),
         session_at = COALESCE(u.session_at, d.session_at)
       FROM (SELECT id, max(s) AS session_at,
               (array_agg(online ORDER BY n DESC) FILTER (WHERE online IS NOT NULL))[1] AS online, max(seen) AS seen,
               (array_agg(battery ORDER BY n DESC) FILTER (WHERE battery IS NOT NULL))[1] AS battery,
               (array_agg(rssi ORDER BY n DESC) FILTER (WHERE rssi IS NOT NULL))[1] AS rssi,
               (array_agg(fw ORDER BY n DESC) FILTER (WHERE fw IS NOT NULL))[1] AS fw
             FROM (SELECT x.*, max(x.s) OVER (PARTITION BY x.id) AS newest
                   FROM unnest($1::text[], $2::boolean[], $3::bigint[], $4::real[], $5::real[], $6::text[], $7::bigint[])
                     WITH ORDINALITY AS x(id, online, seen, battery, rssi, fw, s, n)) x
             WHERE x.s IS NULL OR x.s = x.newest
             GROUP BY id) u
       WHERE d.id = u.id AND (u.session_at IS NULL OR d.session_at IS NULL OR d.session_at <= u.session_at)`;

/** The statements every append connection prepares before its first append (name → text; exported for a test of their plans). */
export const APPEND_STATEMENTS: Record<string, string> = {
  ...guardedPair('g365_insert_events', INSERT_EVENTS, 18),
  g365_presence: UPDATE_PRESENCE,
};

/**
 * The device rows' presence and rejection counts, as statements for the append's message. They go before
 * the log lock (appendTx); a short-way append whose guard fails rolls them back with its events.
 */
function presenceSql(updates: PresenceUpdate[]): string[] {
  const out = [
    // First every row of the batch, locked in id order (the lock is taken after the sort): two appends
    // touching the same devices never hold one row each while waiting for the other's. The statements
    // after it lock nothing more, whatever order their plans visit the rows in.
    inline(`SELECT 1 FROM devices WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE`, [
      [...new Set(updates.map((u) => u.deviceId))],
    ]),
    execute('g365_presence', [
      updates.map((u) => u.deviceId),
      updates.map((u) => u.online ?? null),
      updates.map((u) => u.lastSeenAt ?? null),
      updates.map((u) => u.battery ?? null),
      updates.map((u) => u.rssi ?? null),
      updates.map((u) => u.fw ?? null),
      updates.map((u) => u.sessionAt ?? null),
    ]),
  ];
  // Counts add up whichever session they come from. Rare (rejections): inlined, not prepared.
  const counted = updates.filter((u) => u.rejectedDelta);
  const rejections = updates.flatMap((u) =>
    Object.entries(u.rejectedByReason ?? {}).map(([reason, n]) => ({ id: u.deviceId, reason, n })),
  );
  if (counted.length > 0)
    out.push(
      inline(
        `UPDATE devices d SET rejected_count = d.rejected_count + u.n
           FROM (SELECT id, sum(n) AS n FROM unnest($1::text[], $2::bigint[]) AS x(id, n) GROUP BY id) u
          WHERE d.id = u.id`,
        [counted.map((u) => u.deviceId), counted.map((u) => u.rejectedDelta)],
      ),
    );
  if (rejections.length > 0)
    out.push(
      inline(
        `INSERT INTO device_rejections (device_id, reason, count)
         SELECT id, reason, sum(n) FROM unnest($1::text[], $2::text[], $3::bigint[]) AS x(id, reason, n)
         GROUP BY id, reason ORDER BY id, reason
         ON CONFLICT (device_id, reason) DO UPDATE SET count = device_rejections.count + excluded.count`,
        [rejections.map((r) => r.id), rejections.map((r) => r.reason), rejections.map((r) => r.n)],
      ),
    );
  return out;
}

/** Each request's outcomes: the positions drawn (ascending) go to the kept records in order. */
function outcomesOf(
  batch: AppendWrite[],
  keep: (number | null)[],
  drawn: number[],
  announced: boolean,
): AppendOutcome[][] {
  const out: AppendOutcome[][] = [];
  let at = 0;
  let k = 0;
  for (const b of batch) {
    const o: AppendOutcome[] = new Array(b.records.length);
    for (let j = 0; j < b.records.length; j++, at++)
      o[j] =
        keep[at] === null
          ? { seq: null, duplicate: true }
          : announced
            ? { seq: drawn[k++]!, duplicate: false, announced: true }
            : { seq: drawn[k++]!, duplicate: false };
    out.push(o);
  }
  return out;
}

/** An error that says the connection, not the statement, failed (the server is unreachable or went away). */
export function isConnectionError(e: unknown): boolean {
  const code = (e as { code?: string }).code ?? '';
  const message = e instanceof Error ? e.message : '';
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code) ||
    code.startsWith('08') || // connection exception
    code === '57P01' || // admin shutdown
    code === '57P02' ||
    code === '57P03' || // cannot connect now
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
      message,
    )
  );
}

/** One line about a database error, without connection parameters (they may hold the password). */
function describe(e: unknown): string {
  const code = (e as { code?: string }).code;
  const message = e instanceof Error ? e.message : String(e);
  return code ? `${code}: ${message}` : message;
}
