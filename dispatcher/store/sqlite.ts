/**
 * The embedded default store: one SQLite file in WAL mode (SPEC §9), through better-sqlite3.
 * synchronous=FULL: a commit is on disk before the call returns. The event log's appends (the gateway's
 * batches and device presence) are written by a second connection on their own thread (log-writer.ts),
 * which also runs the checkpoints; every write transaction here is BEGIN IMMEDIATE, so a write that meets
 * the writer thread's transaction waits for it (busy timeout) instead of failing on a stale snapshot.
 * The household index that the timeline reads is a file of its own, kept up by a third thread
 * (home-index.ts) and read through a connection of its own that attaches it, so that no write here
 * takes that file's lock too.
 */

import { randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
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
  sqliteDialect,
} from './device-queries.ts';
import { type BatchWriter, batchWriter, eventRows, outcomes } from './event-batch.ts';
import { type HomeIndexer, homeIndexer, homeIndexFile, indexedUpTo, LOG_ID_SETTING } from './home-index.ts';
import { LogWriter } from './log-writer.ts';
import { MIGRATIONS, migrationSql } from './migrations.ts';
import { privateDatabaseFiles, privateDirOf } from './private-files.ts';
import {
  alertFrom,
  deviceFrom,
  gridFrom,
  householdFrom,
  loggedEventFrom,
  type Row,
  staffFrom,
  storedHomeState,
} from './rows.ts';
import {
  type AlertFilter,
  type AuditEntry,
  type AuditFilter,
  type DeliveryRecord,
  type HouseholdSearch,
  type NewStaff,
  type OpenAlertCount,
  RETIRED_TABLE,
  type RetiredKind,
  type RuleCommit,
  type Session,
  type StaffPatch,
  type StaffRecord,
  StaleWriteError,
  type Store,
  type StoredHomeState,
} from './store.ts';
import { HomeIndexThread } from './threads.ts';

/** A WHERE clause made of the filters that are set, and their arguments in order. */
class Where {
  private readonly conditions: string[] = [];
  readonly args: unknown[] = [];

  /** Adds `condition`, with the arguments of its `?`s, when `when` holds. */
  and(when: boolean, condition: string, ...args: unknown[]): this {
    if (when) {
      this.conditions.push(condition);
      this.args.push(...args);
    }
    return this;
  }

  toString(): string {
    return this.conditions.length ? `WHERE ${this.conditions.join(' AND ')}` : '';
  }
}

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  /** Prepared statements, per connection (this one and the timeline's reader). */
  private readonly stmts = new Map<Database.Database, Map<string, Database.Statement>>();

  private readonly inMemory: boolean;
  /** The log position on disk, published by the log writer thread for the household indexer. */
  private readonly durable = new SharedArrayBuffer(8);
  private readonly onDisk = new BigInt64Array(this.durable);
  /** The timeline's connection: the log, with the household index attached as `idx`. */
  private reader: Database.Database | null = null;
  private indexThread: HomeIndexThread | null = null;
  /** In memory: the household index on this connection, kept up after each append. */
  private homeIndex: HomeIndexer | null = null;

  constructor(
    readonly file: string,
    private readonly opts: {
      /** How often the household indexer looks for newly durable events; null: no indexer (tests). */
      homeIndexIntervalMs?: number | null;
      /** The data folder's one-instance lock (folder-lock.ts), released when the store closes. */
      folderLock?: { release(): void };
    } = {},
  ) {
    this.inMemory = file === ':memory:' || file === '';
    if (!this.inMemory) {
      // Personal data and password hashes: folder 0700, the log's and the household index's files 0600.
      privateDirOf(file);
      privateDatabaseFiles(file, homeIndexFile(file));
    }
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
  }

  private st(sql: string, db: Database.Database = this.db): Database.Statement {
    let cache = this.stmts.get(db);
    if (!cache) {
      cache = new Map();
      this.stmts.set(db, cache);
    }
    let s = cache.get(sql);
    if (!s) {
      s = db.prepare(sql);
      cache.set(sql, s);
    }
    return s;
  }

  async migrate(): Promise<number> {
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
    );
    const applied = new Set(
      (this.db.prepare('SELECT version FROM schema_migrations').all() as Row[]).map((r) => Number(r.version)),
    );
    let count = 0;
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      this.db
        .transaction(() => {
          for (const sql of migrationSql(m, 'sqlite')) this.db.exec(sql);
          this.db
            .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
            .run(m.version, m.name, Date.now());
        })
        .immediate();
      count++;
    }
    this.timelineReader();
    return count;
  }

  /**
   * The household index, opened after the migrations and before the log takes events (home-index.ts
   * reconcile: an index of another log or reaching past this one is dropped or cut), then its thread is
   * started (files; in memory it is kept up after each append).
   */
  private timelineReader(): Database.Database {
    if (this.reader) return this.reader;
    let reader = this.db;
    if (this.inMemory) this.db.exec(`ATTACH DATABASE ':memory:' AS idx`);
    else {
      reader = new Database(this.file);
      reader.pragma('busy_timeout = 5000');
      reader.prepare('ATTACH DATABASE ? AS idx').run(homeIndexFile(this.file));
      reader.pragma('idx.journal_mode = WAL');
    }
    this.db
      .prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING')
      .run(LOG_ID_SETTING, randomUUID());
    const logId = String(
      this.db.prepare('SELECT value FROM settings WHERE key = ?').pluck().get(LOG_ID_SETTING),
    );
    const index = homeIndexer(reader, 'main', 'idx');
    index.reconcile(logId);
    // What the log holds at the start (its indexer flushes it to disk before it trusts this).
    const logged = this.db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get();
    Atomics.store(this.onDisk, 0, BigInt(Number(logged)));
    this.reader = reader;
    if (this.inMemory) this.homeIndex = index;
    else {
      reader.pragma('query_only = ON');
      const interval = this.opts.homeIndexIntervalMs === undefined ? 200 : this.opts.homeIndexIntervalMs;
      if (interval !== null) {
        this.indexThread = new HomeIndexThread(this.file, this.durable, interval);
        this.indexThread.start();
      }
    }
    return reader;
  }

  /** The log position the household index reaches (the rest of a timeline is read from the log). */
  homeIndexedUpTo(): number {
    return Number((this.st(`SELECT ${indexedUpTo('idx')} AS seq`, this.timelineReader()).get() as Row).seq);
  }

  /** How far the household index is behind what the log holds on disk, and its thread's failures. */
  homeIndexHealth(): { lag: number; failures: number } {
    return {
      lag: Math.max(0, Number(Atomics.load(this.onDisk, 0)) - this.homeIndexedUpTo()),
      failures: this.indexThread?.failures ?? 0,
    };
  }

  async close(): Promise<void> {
    try {
      await this.logWriter?.close();
      await this.indexThread?.close();
    } finally {
      if (this.reader && this.reader !== this.db && this.reader.open) this.reader.close();
      if (this.db.open) this.db.close();
      this.opts.folderLock?.release();
    }
  }

  async getSetting(key: string): Promise<string | null> {
    const r = this.st('SELECT value FROM settings WHERE key = ?').get(key) as Row | undefined;
    return r ? String(r.value) : null;
  }

  async setSetting(key: string, value: string): Promise<void> {
    this.st(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ).run(key, value);
  }

  // ---- registry

  async upsertGrid(g: Grid): Promise<void> {
    this.st(
      `INSERT INTO grids (id, name, community, leader_id) VALUES (?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, community = excluded.community, leader_id = excluded.leader_id`,
    ).run(g.id, g.name, g.community, g.leaderId);
  }

  async listGrids(): Promise<Grid[]> {
    return (this.st('SELECT * FROM grids WHERE retired_at IS NULL ORDER BY id').all() as Row[]).map(gridFrom);
  }

  async getGrid(id: string): Promise<Grid | null> {
    const r = this.st('SELECT * FROM grids WHERE id = ?').get(id) as Row | undefined;
    return r ? gridFrom(r) : null;
  }

  async upsertHousehold(h: Household): Promise<void> {
    this.st(
      `INSERT INTO households (id, grid_id, building, unit, room, residents, contacts, access_notes, routine, away_until, away_reason)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET grid_id = excluded.grid_id, building = excluded.building, unit = excluded.unit,
         room = excluded.room, residents = excluded.residents, contacts = excluded.contacts,
         access_notes = excluded.access_notes, routine = excluded.routine, away_until = excluded.away_until,
         away_reason = excluded.away_reason`,
    ).run(
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
    );
  }

  async getHousehold(id: string): Promise<Household | null> {
    const r = this.st('SELECT * FROM households WHERE id = ?').get(id) as Row | undefined;
    return r ? householdFrom(r) : null;
  }

  async getHouseholds(ids: readonly string[]): Promise<Household[]> {
    if (ids.length === 0) return [];
    const rows = this.st('SELECT * FROM households WHERE id IN (SELECT value FROM json_each(?))').all(
      JSON.stringify(ids),
    ) as Row[];
    return rows.map(householdFrom);
  }

  async listHouseholds(filter: { gridIds?: string[] } = {}): Promise<Household[]> {
    const rows = this.st('SELECT * FROM households WHERE retired_at IS NULL ORDER BY id').all() as Row[];
    const all = rows.map(householdFrom);
    return filter.gridIds ? all.filter((h) => filter.gridIds!.includes(h.gridId)) : all;
  }

  async searchHouseholds(
    search: HouseholdSearch,
    filter: { gridIds?: string[]; limit: number },
  ): Promise<Household[]> {
    const where = new Where().and(
      !!filter.gridIds,
      `grid_id IN (${(filter.gridIds ?? []).map(() => '?').join(',') || "''"})`,
      ...(filter.gridIds ?? []),
    );
    // SQLite's LIKE folds ASCII case only; Chinese is matched as typed (CONSOLE-04).
    const phone = (col: string) =>
      `EXISTS (SELECT 1 FROM json_each(${col}) p WHERE replace(replace(json_extract(p.value, '$.phone'), ' ', ''), '-', '') LIKE ? ESCAPE '\\')`;
    search.text.forEach((text, i) => {
      const digits = search.phone[i] ?? null;
      where.and(
        true,
        `(building || unit || room LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\'
          OR EXISTS (SELECT 1 FROM json_each(residents) r WHERE json_extract(r.value, '$.name') LIKE ? ESCAPE '\\')
          ${digits ? `OR ${phone('residents')} OR ${phone('contacts')}` : ''})`,
        text,
        text,
        text,
        ...(digits ? [digits, digits] : []),
      );
    });
    const sql = `SELECT * FROM households ${where} ORDER BY id LIMIT ?`;
    return (this.db.prepare(sql).all(...where.args, filter.limit) as Row[]).map(householdFrom);
  }

  async createStaff(s: NewStaff): Promise<void> {
    this.st(
      `INSERT INTO staff (id, name, phone, roles, grid_ids, username, password_hash) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      s.id,
      s.name,
      s.phone,
      JSON.stringify(s.roles),
      JSON.stringify(s.gridIds),
      s.username,
      s.passwordHash,
    );
  }

  async getStaff(id: string): Promise<StaffRecord | null> {
    const r = this.st('SELECT * FROM staff WHERE id = ?').get(id) as Row | undefined;
    return r ? staffFrom(r) : null;
  }

  async getStaffByUsername(username: string): Promise<StaffRecord | null> {
    const r = this.st('SELECT * FROM staff WHERE username = ?').get(username) as Row | undefined;
    return r ? staffFrom(r) : null;
  }

  async listStaff(): Promise<Staff[]> {
    return (this.st('SELECT * FROM staff WHERE retired_at IS NULL ORDER BY id').all() as Row[]).map((r) => {
      const { passwordHash: _omit, ...rest } = staffFrom(r);
      return rest;
    });
  }

  async createDevice(d: DeviceInput & { secretHash: string; createdAt: number }): Promise<void> {
    this.st(
      `INSERT INTO devices (id, home_id, kind, room, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(d.id, d.homeId, d.kind, d.room, d.secretHash, d.createdAt);
  }

  async findDevice(id: string): Promise<DeviceCredentials | null> {
    const r = this.st(
      `SELECT d.id, d.home_id, d.kind, d.room, d.secret_hash, d.disabled, h.grid_id
       FROM devices d JOIN households h ON h.id = d.home_id WHERE d.id = ?`,
    ).get(id) as Row | undefined;
    if (!r) return null;
    return {
      id: String(r.id),
      homeId: String(r.home_id),
      kind: r.kind as DeviceKind,
      room: String(r.room),
      secretHash: String(r.secret_hash),
      disabled: Number(r.disabled) === 1,
      gridId: String(r.grid_id),
    };
  }

  async credentialsNow(
    ids: readonly string[],
  ): Promise<Map<string, { secretHash: string; disabled: boolean }>> {
    const rows = this.st(
      'SELECT id, secret_hash, disabled FROM devices WHERE id IN (SELECT value FROM json_each(?))',
    ).all(JSON.stringify(ids)) as Row[];
    return new Map(
      rows.map((r) => [
        String(r.id),
        { secretHash: String(r.secret_hash), disabled: Number(r.disabled) === 1 },
      ]),
    );
  }

  async getDeviceState(id: string): Promise<DeviceState | null> {
    const r = this.st('SELECT * FROM devices WHERE id = ?').get(id) as Row | undefined;
    return r ? deviceFrom(r) : null;
  }

  async setDeviceDisabled(id: string, disabled: boolean): Promise<boolean> {
    return this.st('UPDATE devices SET disabled = ? WHERE id = ?').run(disabled ? 1 : 0, id).changes === 1;
  }

  async setDeviceRoom(id: string, room: Room): Promise<boolean> {
    return this.st('UPDATE devices SET room = ?, room_text = NULL WHERE id = ?').run(room, id).changes === 1;
  }

  async setDeviceKind(id: string, kind: DeviceKind): Promise<boolean> {
    return this.st('UPDATE devices SET kind = ? WHERE id = ?').run(kind, id).changes === 1;
  }

  async retire(kind: RetiredKind, id: string, at: number): Promise<boolean> {
    const table = RETIRED_TABLE[kind];
    const disable = kind === 'staff' || kind === 'device' ? ', disabled = 1' : '';
    return this.db
      .transaction(() => {
        const done =
          this.db
            .prepare(`UPDATE ${table} SET retired_at = ?${disable} WHERE id = ? AND retired_at IS NULL`)
            .run(at, id).changes === 1;
        if (done && kind === 'household')
          this.db
            .prepare(
              'UPDATE devices SET retired_at = ?, disabled = 1 WHERE home_id = ? AND retired_at IS NULL',
            )
            .run(at, id);
        return done;
      })
      .immediate();
  }

  async retiredAt(kind: RetiredKind, id: string): Promise<number | null> {
    const r = this.st(`SELECT retired_at FROM ${RETIRED_TABLE[kind]} WHERE id = ?`).get(id) as
      | Row
      | undefined;
    return r?.retired_at == null ? null : Number(r.retired_at);
  }

  async rotateDeviceSecret(id: string, secretHash: string): Promise<boolean> {
    return this.st('UPDATE devices SET secret_hash = ? WHERE id = ?').run(secretHash, id).changes === 1;
  }

  async upgradeDeviceSecretHashes(upgrades: SecretHashUpgrade[]): Promise<boolean[]> {
    if (upgrades.length === 0) return [];
    const update = this.st('UPDATE devices SET secret_hash = ? WHERE id = ? AND secret_hash = ?');
    return this.db
      .transaction(() => upgrades.map((u) => update.run(u.to, u.deviceId, u.from).changes === 1))
      .immediate();
  }

  async deviceRejections(id: string): Promise<Record<string, number>> {
    const rows = this.st(
      'SELECT reason, count FROM device_rejections WHERE device_id = ? ORDER BY reason',
    ).all(id) as Row[];
    return Object.fromEntries(rows.map((r) => [String(r.reason), Number(r.count)]));
  }

  async listDevices(filter: { homeId?: string; homeIds?: readonly string[] } = {}): Promise<DeviceState[]> {
    const rows = filter.homeId
      ? (this.st('SELECT * FROM devices WHERE home_id = ? AND retired_at IS NULL ORDER BY id').all(
          filter.homeId,
        ) as Row[])
      : filter.homeIds
        ? (this.st(
            'SELECT * FROM devices WHERE home_id IN (SELECT value FROM json_each(?)) AND retired_at IS NULL ORDER BY id',
          ).all(JSON.stringify(filter.homeIds)) as Row[])
        : (this.st('SELECT * FROM devices WHERE retired_at IS NULL ORDER BY id').all() as Row[]);
    return rows.map(deviceFrom);
  }

  async queryDevices(q: DeviceQuery): Promise<DeviceRow[]> {
    const args: unknown[] = [];
    const sql = deviceRowsSql(q, sqliteDialect(args));
    return (this.st(sql).all(...args) as Row[]).map(deviceRowFrom);
  }

  async countDeviceHealth(q: Pick<DeviceQuery, 'gridIds' | 'lowBattery'>): Promise<DeviceHealthCounts> {
    const args: unknown[] = [];
    const sql = deviceCountsSql(q, sqliteDialect(args));
    return deviceCountsFrom(this.st(sql).get(...args) as Row | undefined);
  }

  // ---- roster

  async setRoster(gridId: string, entries: RosterEntry[]): Promise<void> {
    this.db
      .transaction(() => {
        this.st('DELETE FROM roster WHERE grid_id = ?').run(gridId);
        for (const e of entries) {
          this.st('INSERT INTO roster (grid_id, shift, weekdays, staff_ids) VALUES (?, ?, ?, ?)').run(
            gridId,
            e.shift,
            JSON.stringify(e.weekdays),
            JSON.stringify(e.staffIds),
          );
        }
      })
      .immediate();
  }

  async listRoster(gridId?: string): Promise<RosterEntry[]> {
    const rows = gridId
      ? (this.st('SELECT * FROM roster WHERE grid_id = ? ORDER BY id').all(gridId) as Row[])
      : (this.st('SELECT * FROM roster ORDER BY id').all() as Row[]);
    return rows.map((r) => ({
      gridId: String(r.grid_id),
      shift: r.shift as RosterEntry['shift'],
      weekdays: JSON.parse(String(r.weekdays)),
      staffIds: JSON.parse(String(r.staff_ids)),
    }));
  }

  async addOverride(o: RosterOverride): Promise<void> {
    this.st(
      'INSERT INTO roster_overrides (id, grid_id, date, shift, kind, staff_id, replacement_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ).run(o.id, o.gridId, o.date, o.shift, o.kind, o.staffId, o.replacementId);
  }

  async deleteOverride(id: string): Promise<RosterOverride | null> {
    const r = this.st('DELETE FROM roster_overrides WHERE id = ? RETURNING *').get(id) as Row | undefined;
    if (!r) return null;
    return {
      id: String(r.id),
      gridId: String(r.grid_id),
      date: String(r.date),
      shift: r.shift as RosterOverride['shift'],
      kind: r.kind as RosterOverride['kind'],
      staffId: (r.staff_id as string | null) ?? null,
      replacementId: (r.replacement_id as string | null) ?? null,
    };
  }

  async listOverrides(gridId?: string): Promise<RosterOverride[]> {
    const rows = gridId
      ? (this.st('SELECT * FROM roster_overrides WHERE grid_id = ? ORDER BY date').all(gridId) as Row[])
      : (this.st('SELECT * FROM roster_overrides ORDER BY date').all() as Row[]);
    return rows.map((r) => ({
      id: String(r.id),
      gridId: String(r.grid_id),
      date: String(r.date),
      shift: r.shift as RosterOverride['shift'],
      kind: r.kind as RosterOverride['kind'],
      staffId: (r.staff_id as string | null) ?? null,
      replacementId: (r.replacement_id as string | null) ?? null,
    }));
  }

  // ---- event log

  /** The event log's writer thread (none for an in-memory database, which only this connection sees). */
  private logWriter: LogWriter | null | undefined;
  private batchWriter: BatchWriter | undefined;

  /**
   * Durable before it resolves, like every other write here; written by the log writer thread, so the
   * gateway's event loop parses the next packets meanwhile and concurrent batches share one fsync.
   */
  async appendEvents(records: EventRecord[], presence: PresenceUpdate[] = []): Promise<AppendOutcome[]> {
    if (this.logWriter === undefined) {
      this.logWriter = this.inMemory ? null : new LogWriter(this.db.name, this.durable);
      // Checkpoints are the writer thread's from now on: never on this event loop.
      if (this.logWriter) this.db.pragma('wal_autocheckpoint = 0');
    }
    const rows = eventRows(records);
    if (this.logWriter) return outcomes(await this.logWriter.write(rows, presence));
    this.batchWriter ??= batchWriter(this.db);
    const seqs = this.batchWriter.write([{ rows, presence }])[0]!;
    while (this.batchWriter.step()) {}
    this.timelineReader();
    while (this.homeIndex?.step(this.batchWriter.position)) {}
    return outcomes(seqs);
  }

  /** Device rows only, through the same writer (and in order with the event batches). */
  async updatePresence(updates: PresenceUpdate[]): Promise<void> {
    if (updates.length > 0) await this.appendEvents([], updates);
  }

  async readEvents(afterSeq: number, limit: number): Promise<LoggedEvent[]> {
    const rows = this.st(
      `SELECT seq, device_id, home_id, received_at, ts, body, flags FROM events
       WHERE seq > ? AND status = 'accepted' ORDER BY seq LIMIT ?`,
    ).all(afterSeq, limit) as Row[];
    return rows.map(loggedEventFrom);
  }

  async countEvents(status?: 'accepted' | 'rejected'): Promise<number> {
    const r = (
      status
        ? this.st('SELECT COUNT(*) AS n FROM events WHERE status = ?').get(status)
        : this.st('SELECT COUNT(*) AS n FROM events').get()
    ) as Row;
    return Number(r.n);
  }

  async listHomeEvents(
    homeId: string,
    range: { from: number; to: number; types?: string[] },
    limit: number,
  ): Promise<LoggedEvent[]> {
    const types = range.types ?? [];
    const typeClause = types.length ? `AND type IN (${types.map(() => '?').join(',')})` : '';
    // The household index reaches its cursor; the events logged past it (its thread indexes what is
    // durable every 200 ms, home-index.ts) are read from the log's tail. One statement: one snapshot of
    // both files (the index never reaches past what the log holds). An indexed row is taken only for its
    // own home, whatever the index says.
    const reader = this.timelineReader();
    const sql = `SELECT seq, device_id, home_id, received_at, ts, body, flags FROM main.events
         WHERE seq IN (SELECT seq FROM idx.events_by_home WHERE home_id = ? AND ts >= ? AND ts < ?)
           AND home_id = ? ${typeClause}
         UNION ALL
         SELECT seq, device_id, home_id, received_at, ts, body, flags FROM main.events
         WHERE seq > ${indexedUpTo('idx')}
           AND home_id = ? AND ts >= ? AND ts < ? AND status = 'accepted' ${typeClause}
         ORDER BY ts, seq LIMIT ?`;
    const rows = this.st(sql, reader).all(
      ...[homeId, range.from, range.to, homeId, ...types],
      ...[homeId, range.from, range.to, ...types],
      limit,
    ) as Row[];
    return rows.map(loggedEventFrom);
  }

  async getCursor(name: string): Promise<number> {
    const r = this.st('SELECT seq FROM cursors WHERE name = ?').get(name) as Row | undefined;
    return r ? Number(r.seq) : 0;
  }

  async getHomeState(homeId: string): Promise<StoredHomeState | null> {
    const r = this.st('SELECT state, learned FROM home_states WHERE home_id = ?').get(homeId) as
      | Row
      | undefined;
    return r ? storedHomeState(r) : null;
  }

  async loadHomeStates(page?: {
    after: string | null;
    limit: number;
  }): Promise<Map<string, StoredHomeState>> {
    const rows = (
      page
        ? this.st(
            'SELECT home_id, state, learned FROM home_states WHERE home_id > ? ORDER BY home_id LIMIT ?',
          ).all(page.after ?? '', page.limit)
        : this.st('SELECT home_id, state, learned FROM home_states').all()
    ) as Row[];
    return new Map(rows.map((r) => [String(r.home_id), storedHomeState(r)]));
  }

  // ---- alerts

  private bumpChange(): number {
    const r = this.st(
      `UPDATE counters SET value = value + 1 WHERE name = 'alert_change' RETURNING value`,
    ).get() as Row;
    return Number(r.value);
  }

  private insertHistory(entries: HistoryEntry[]): void {
    const stmt = this.st(
      'INSERT INTO alert_history (alert_id, at, action, from_state, to_state, actor, channel, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    for (const h of entries) {
      stmt.run(h.alertId, h.at, h.action, h.fromState, h.toState, h.actor, h.channel, JSON.stringify(h.data));
    }
  }

  private insertAlert(a: Alert): void {
    a.changeSeq = this.bumpChange();
    try {
      this.insertAlertRow(a);
    } catch (e) {
      // RULE-11: another alert of the rule opened for the household meanwhile (the urgent lane, RULE-16):
      // the writer evaluates again against it.
      if (/UNIQUE constraint failed: alerts\.household_id/.test((e as Error).message))
        throw new StaleWriteError(a.id);
      throw e;
    }
  }

  private insertAlertRow(a: Alert): void {
    this.st(
      `INSERT INTO alerts (id, household_id, grid_id, community, rule, severity, state, is_open, raised_at, updated_at,
         next_step_at, change_seq, version, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      a.id,
      a.householdId,
      a.gridId,
      a.community,
      a.rule,
      a.severity,
      a.state,
      isOpen(a.state) ? 1 : 0,
      a.raisedAt,
      a.updatedAt,
      a.nextStepAt,
      a.changeSeq,
      a.version,
      JSON.stringify(a),
    );
  }

  private updateAlert(a: Alert): void {
    const changeSeq = this.bumpChange();
    const info = this.st(
      `UPDATE alerts SET state = ?, is_open = ?, updated_at = ?, next_step_at = ?, change_seq = ?, version = ?, body = ?
       WHERE id = ? AND version = ?`,
    ).run(
      a.state,
      isOpen(a.state) ? 1 : 0,
      a.updatedAt,
      a.nextStepAt,
      changeSeq,
      a.version,
      JSON.stringify({ ...a, changeSeq }),
      a.id,
      a.version - 1,
    );
    if (info.changes !== 1) throw new StaleWriteError(a.id);
    a.changeSeq = changeSeq;
  }

  async commitRules(c: RuleCommit): Promise<void> {
    this.db
      .transaction(() => {
        // Changed alerts first: a batch may close an alert and open a new one of the same rule for the same
        // household (a device flapping offline/online/offline); inserting first would break "one open alert".
        for (const a of c.updated) this.updateAlert(a);
        for (const a of c.raised) this.insertAlert(a);
        this.insertHistory(c.history);
        // DATA-08: `learned` only when given; the stored one stays otherwise.
        const hs = this.st(
          `INSERT INTO home_states (home_id, state, learned) VALUES (?, ?, ?)
           ON CONFLICT (home_id) DO UPDATE SET state = excluded.state, learned = COALESCE(excluded.learned, home_states.learned)`,
        );
        for (const h of c.homeStates)
          hs.run(
            h.homeId,
            JSON.stringify(h.state),
            h.learned === undefined ? null : JSON.stringify(h.learned),
          );
        this.st(
          'INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq',
        ).run(c.cursor.name, c.cursor.seq);
      })
      .immediate();
  }

  async saveAlert(alert: Alert, history: HistoryEntry[]): Promise<void> {
    this.db
      .transaction(() => {
        if (alert.version === 1) this.insertAlert(alert);
        else this.updateAlert(alert);
        this.insertHistory(history);
      })
      .immediate();
  }

  async getAlert(id: string): Promise<Alert | null> {
    const r = this.st('SELECT body, change_seq FROM alerts WHERE id = ?').get(id) as Row | undefined;
    return r ? alertFrom(r) : null;
  }

  async listAlerts(f: AlertFilter): Promise<Alert[]> {
    const list = (xs: unknown[] | undefined) => (xs ?? []).map(() => '?').join(',') || "''";
    const where = new Where()
      .and(f.state === 'open', 'is_open = 1')
      .and(f.state !== undefined && f.state !== 'open', 'state = ?', f.state)
      .and(!!f.states, `state IN (${list(f.states)})`, ...(f.states ?? []))
      .and(!!f.householdId, 'household_id = ?', f.householdId)
      .and(!!f.gridIds, `grid_id IN (${list(f.gridIds)})`, ...(f.gridIds ?? []))
      .and(!!f.notGridIds, `grid_id NOT IN (${list(f.notGridIds)})`, ...(f.notGridIds ?? []))
      .and(!!f.rule, 'rule = ?', f.rule)
      .and(!!f.severities, `severity IN (${list(f.severities)})`, ...(f.severities ?? []))
      .and(f.raisedBefore !== undefined, 'raised_at < ?', f.raisedBefore)
      .and(!!f.notAccepted, `json_extract(body, '$.acceptedAt') IS NULL`)
      .and(
        !!f.involving,
        `(json_extract(body, '$.assigneeId') = ? OR EXISTS (SELECT 1 FROM json_each(body, '$.responders') WHERE value = ?))`,
        f.involving,
        f.involving,
      );
    const sql = `SELECT body, change_seq FROM alerts ${where} ORDER BY raised_at DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...where.args, f.limit ?? 500) as Row[]).map(alertFrom);
  }

  async countOpenAlerts(gridIds?: string[]): Promise<OpenAlertCount[]> {
    const where = new Where()
      .and(true, 'is_open = 1')
      .and(!!gridIds, `grid_id IN (${(gridIds ?? []).map(() => '?').join(',') || "''"})`, ...(gridIds ?? []));
    const sql = `SELECT state, severity, COUNT(*) AS n FROM alerts ${where} GROUP BY state, severity`;
    return (this.db.prepare(sql).all(...where.args) as Row[]).map((r) => ({
      state: r.state as OpenAlertCount['state'],
      severity: r.severity as OpenAlertCount['severity'],
      count: Number(r.n),
    }));
  }

  async findOpenAlert(householdId: string, rule: string): Promise<Alert | null> {
    const r = this.st(
      `SELECT body, change_seq FROM alerts WHERE household_id = ? AND rule = ? AND is_open = 1`,
    ).get(householdId, rule) as Row | undefined;
    return r ? alertFrom(r) : null;
  }

  async alertHistory(alertId: string): Promise<HistoryEntry[]> {
    return (this.st('SELECT * FROM alert_history WHERE alert_id = ? ORDER BY id').all(alertId) as Row[]).map(
      (r) => ({
        alertId: String(r.alert_id),
        at: Number(r.at),
        action: String(r.action),
        fromState: (r.from_state as HistoryEntry['fromState']) ?? null,
        toState: (r.to_state as HistoryEntry['toState']) ?? null,
        actor: String(r.actor),
        channel: r.channel as HistoryEntry['channel'],
        data: JSON.parse(String(r.data)),
      }),
    );
  }

  async listPendingEscalations(): Promise<Alert[]> {
    return (
      this.st(
        `SELECT body, change_seq FROM alerts WHERE is_open = 1 AND next_step_at IS NOT NULL ORDER BY next_step_at`,
      ).all() as Row[]
    ).map(alertFrom);
  }

  async currentChangeSeq(): Promise<number> {
    const r = this.st(`SELECT value FROM counters WHERE name = 'alert_change'`).get() as Row;
    return Number(r.value);
  }

  async listAlertsRaisedBetween(from: number, to: number, gridIds?: string[]): Promise<Alert[]> {
    const grids = gridIds ? `AND grid_id IN (${gridIds.map(() => '?').join(',') || "''"})` : '';
    return (
      this.db
        .prepare(
          `SELECT body, change_seq FROM alerts WHERE raised_at >= ? AND raised_at < ? ${grids} ORDER BY raised_at`,
        )
        .all(from, to, ...(gridIds ?? [])) as Row[]
    ).map(alertFrom);
  }

  async alertChangesSince(changeSeq: number, limit: number): Promise<Alert[]> {
    return (
      this.st('SELECT body, change_seq FROM alerts WHERE change_seq > ? ORDER BY change_seq LIMIT ?').all(
        changeSeq,
        limit,
      ) as Row[]
    ).map(alertFrom);
  }

  // ---- deliveries, sessions, audit

  async recordDelivery(d: DeliveryRecord): Promise<void> {
    this.st(
      'INSERT INTO deliveries (alert_id, staff_id, channel, at, ok, error, delivered) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ).run(d.alertId, d.staffId, d.channel, d.at, d.ok ? 1 : 0, d.error, d.delivered ? 1 : 0);
  }

  async listDeliveries(alertId: string): Promise<DeliveryRecord[]> {
    return (this.st('SELECT * FROM deliveries WHERE alert_id = ? ORDER BY id').all(alertId) as Row[]).map(
      (r) => ({
        alertId: String(r.alert_id),
        staffId: (r.staff_id as string | null) ?? null,
        channel: String(r.channel),
        at: Number(r.at),
        ok: Number(r.ok) === 1,
        error: (r.error as string | null) ?? null,
        ...(Number(r.delivered) === 1 ? { delivered: true } : {}),
      }),
    );
  }

  async createSession(s: Session): Promise<void> {
    this.st('INSERT INTO sessions (token_hash, staff_id, created_at, expires_at) VALUES (?, ?, ?, ?)').run(
      s.tokenHash,
      s.staffId,
      s.createdAt,
      s.expiresAt,
    );
  }

  async getSession(tokenHash: string): Promise<Session | null> {
    const r = this.st('SELECT * FROM sessions WHERE token_hash = ?').get(tokenHash) as Row | undefined;
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
    this.st('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash);
  }

  async deleteStaffSessions(staffId: string): Promise<number> {
    return this.st('DELETE FROM sessions WHERE staff_id = ?').run(staffId).changes;
  }

  async audit(e: AuditEntry): Promise<void> {
    this.st('INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)').run(
      e.at,
      e.actor,
      e.action,
      e.target,
      JSON.stringify(e.detail),
    );
  }

  async queryAudit(f: AuditFilter): Promise<AuditEntry[]> {
    // An action ending in '.' is a prefix: 'household.' is every household action.
    const prefix = f.action?.endsWith('.') ?? false;
    const where = new Where()
      .and(f.actor !== undefined, 'actor = ?', f.actor)
      .and(f.target !== undefined, 'target = ?', f.target)
      .and(prefix, 'substr(action, 1, ?) = ?', f.action?.length, f.action)
      .and(f.action !== undefined && !prefix, 'action = ?', f.action)
      .and(f.from !== undefined, 'at >= ?', f.from)
      .and(f.to !== undefined, 'at < ?', f.to);
    const sql = `SELECT * FROM audit_log ${where} ORDER BY id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...where.args, f.limit) as Row[]).map((r) => ({
      at: Number(r.at),
      actor: String(r.actor),
      action: String(r.action),
      target: String(r.target),
      detail: JSON.parse(String(r.detail)),
    }));
  }

  async listDeliveriesSince(since: number, limit: number): Promise<DeliveryRecord[]> {
    return (
      this.st('SELECT * FROM deliveries WHERE at >= ? ORDER BY id LIMIT ?').all(since, limit) as Row[]
    ).map((r) => ({
      alertId: String(r.alert_id),
      staffId: (r.staff_id as string | null) ?? null,
      channel: String(r.channel),
      at: Number(r.at),
      ok: Number(r.ok) === 1,
      error: (r.error as string | null) ?? null,
      ...(Number(r.delivered) === 1 ? { delivered: true } : {}),
    }));
  }

  async updateStaff(id: string, p: StaffPatch): Promise<boolean> {
    const sets: string[] = [];
    const args: unknown[] = [];
    const set = (col: string, v: unknown) => {
      sets.push(`${col} = ?`);
      args.push(v);
    };
    if (p.name !== undefined) set('name', p.name);
    if (p.phone !== undefined) set('phone', p.phone);
    if (p.roles !== undefined) set('roles', JSON.stringify(p.roles));
    if (p.gridIds !== undefined) set('grid_ids', JSON.stringify(p.gridIds));
    if (p.disabled !== undefined) set('disabled', p.disabled ? 1 : 0);
    if (p.passwordHash !== undefined) set('password_hash', p.passwordHash);
    if (sets.length === 0) return (await this.getStaff(id)) !== null;
    return this.db.prepare(`UPDATE staff SET ${sets.join(', ')} WHERE id = ?`).run(...args, id).changes === 1;
  }

  async listAudit(limit: number): Promise<AuditEntry[]> {
    return (this.st('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?').all(limit) as Row[]).map((r) => ({
      at: Number(r.at),
      actor: String(r.actor),
      action: String(r.action),
      target: String(r.target),
      detail: JSON.parse(String(r.detail)),
    }));
  }
}
