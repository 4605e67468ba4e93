/**
 * Versioned schema migrations: one logical list for both backends (SPEC §9 "one schema, migrations for
 * both"), each step with its physical form per backend. SQLite's steps are portable SQL with a few dialect
 * words filled in; PostgreSQL's are its own (JSONB documents, its indexes) where the physical design
 * differs, and empty where a step only concerns SQLite's physical design (the seq windows, the household
 * index file). A step never changes once released: add a new one.
 */
import { roomNames } from '../rooms.ts';

export type Dialect = 'sqlite' | 'postgres';

interface Words {
  serial: string;
  bigint: string;
  blob: string;
  /** A table stored in its primary key's order (SQLite; PostgreSQL has no such clause). */
  clustered: string;
}

const WORDS: Record<Dialect, Words> = {
  sqlite: {
    serial: 'INTEGER PRIMARY KEY AUTOINCREMENT',
    bigint: 'INTEGER',
    blob: 'BLOB',
    clustered: ' WITHOUT ROWID',
  },
  postgres: { serial: 'BIGSERIAL PRIMARY KEY', bigint: 'BIGINT', blob: 'BYTEA', clustered: '' },
};

/** The SPEC §6 ladder as the escalation policy of alerts raised before version 11 (ESC-02). */
const SPEC_LADDER = JSON.stringify({
  acceptWithinMin: 3,
  onSiteWithinMin: 15,
  steps: [
    { kind: 'notify_primary', afterMin: 0 },
    { kind: 'notify_next', afterMin: 3 },
    { kind: 'notify_all', afterMin: 6 },
    { kind: 'sla_at_risk', afterMin: 12 },
    { kind: 'sla_breach', afterMin: 15 },
  ],
});

export interface Migration {
  version: number;
  name: string;
  sql: (w: Words) => string[];
  /** PostgreSQL's physical step, when it is not `sql` with PostgreSQL's words. */
  postgres?: string[];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: (w) => [
      `CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      `CREATE TABLE counters (name TEXT PRIMARY KEY, value ${w.bigint} NOT NULL)`,
      `INSERT INTO counters (name, value) VALUES ('alert_change', 0)`,
      `CREATE TABLE grids (id TEXT PRIMARY KEY, name TEXT NOT NULL, community TEXT NOT NULL, leader_id TEXT)`,
      `CREATE TABLE households (
        id TEXT PRIMARY KEY, grid_id TEXT NOT NULL REFERENCES grids(id), building TEXT NOT NULL, unit TEXT NOT NULL,
        room TEXT NOT NULL, residents TEXT NOT NULL, contacts TEXT NOT NULL, access_notes TEXT NOT NULL,
        routine TEXT NOT NULL, away_until ${w.bigint}, away_reason TEXT)`,
      `CREATE INDEX households_grid ON households (grid_id)`,
      `CREATE TABLE staff (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL, roles TEXT NOT NULL, grid_ids TEXT NOT NULL,
        username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0)`,
      `CREATE TABLE devices (
        id TEXT PRIMARY KEY, home_id TEXT NOT NULL REFERENCES households(id), kind TEXT NOT NULL, room TEXT NOT NULL,
        secret_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, created_at ${w.bigint} NOT NULL,
        online INTEGER NOT NULL DEFAULT 0, last_seen_at ${w.bigint}, battery REAL, rssi REAL, fw TEXT,
        rejected_count ${w.bigint} NOT NULL DEFAULT 0)`,
      `CREATE INDEX devices_home ON devices (home_id)`,
      `CREATE TABLE roster (
        id ${w.serial}, grid_id TEXT NOT NULL, shift TEXT NOT NULL, weekdays TEXT NOT NULL, staff_ids TEXT NOT NULL)`,
      `CREATE INDEX roster_grid ON roster (grid_id)`,
      `CREATE TABLE roster_overrides (
        id TEXT PRIMARY KEY, grid_id TEXT NOT NULL, date TEXT NOT NULL, shift TEXT NOT NULL, kind TEXT NOT NULL,
        staff_id TEXT, replacement_id TEXT)`,
      `CREATE TABLE events (
        seq ${w.serial}, device_id TEXT NOT NULL, home_id TEXT NOT NULL, received_at ${w.bigint} NOT NULL,
        topic TEXT NOT NULL, status TEXT NOT NULL, ts ${w.bigint} NOT NULL, type TEXT, device_seq ${w.bigint},
        body TEXT NOT NULL, reason TEXT, flags TEXT NOT NULL)`,
      // SPEC §3: a repeated seq from one device is a duplicate and is recorded once.
      `CREATE UNIQUE INDEX events_device_seq ON events (device_id, device_seq) WHERE device_seq IS NOT NULL AND status = 'accepted'`,
      `CREATE INDEX events_home_ts ON events (home_id, ts)`,
      `CREATE TABLE cursors (name TEXT PRIMARY KEY, seq ${w.bigint} NOT NULL)`,
      // The rules engine's per-home state, committed with the cursor so a restart resumes exactly.
      `CREATE TABLE home_states (home_id TEXT PRIMARY KEY, state TEXT NOT NULL)`,
      `CREATE TABLE alerts (
        id TEXT PRIMARY KEY, household_id TEXT NOT NULL, grid_id TEXT NOT NULL, community TEXT NOT NULL,
        rule TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL, is_open INTEGER NOT NULL,
        raised_at ${w.bigint} NOT NULL, updated_at ${w.bigint} NOT NULL, next_step_at ${w.bigint},
        change_seq ${w.bigint} NOT NULL, version INTEGER NOT NULL, body TEXT NOT NULL)`,
      // One open alert per (household, rule): SPEC §5 "one alert per problem", enforced by the database too.
      `CREATE UNIQUE INDEX alerts_one_open ON alerts (household_id, rule) WHERE is_open = 1`,
      `CREATE INDEX alerts_open ON alerts (is_open, severity)`,
      `CREATE INDEX alerts_change ON alerts (change_seq)`,
      `CREATE INDEX alerts_next_step ON alerts (next_step_at) WHERE next_step_at IS NOT NULL`,
      `CREATE TABLE alert_history (
        id ${w.serial}, alert_id TEXT NOT NULL, at ${w.bigint} NOT NULL, action TEXT NOT NULL, from_state TEXT,
        to_state TEXT, actor TEXT NOT NULL, channel TEXT NOT NULL, data TEXT NOT NULL)`,
      `CREATE INDEX alert_history_alert ON alert_history (alert_id)`,
      `CREATE TABLE deliveries (
        id ${w.serial}, alert_id TEXT NOT NULL, staff_id TEXT, channel TEXT NOT NULL, at ${w.bigint} NOT NULL,
        ok INTEGER NOT NULL, error TEXT)`,
      `CREATE INDEX deliveries_alert ON deliveries (alert_id)`,
      `CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, staff_id TEXT NOT NULL, created_at ${w.bigint} NOT NULL,
        expires_at ${w.bigint} NOT NULL)`,
      `CREATE TABLE audit_log (id ${w.serial}, at ${w.bigint} NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        target TEXT NOT NULL, detail TEXT NOT NULL)`,
    ],
    // PostgreSQL: documents as JSONB, flags as BOOLEAN, and the indexes its queries use (SPEC §8
    // household timeline, open alerts by grid, audit by who and when). SPEC §3 duplicates: a unique index
    // per device and seq count (the rule in gateway/duplicates.ts; device_seqs holds each device's count).
    postgres: [
      `CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      `CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
      `INSERT INTO counters (name, value) VALUES ('alert_change', 0)`,
      `CREATE TABLE grids (id TEXT PRIMARY KEY, name TEXT NOT NULL, community TEXT NOT NULL, leader_id TEXT)`,
      `CREATE TABLE households (
        id TEXT PRIMARY KEY, grid_id TEXT NOT NULL REFERENCES grids(id), building TEXT NOT NULL, unit TEXT NOT NULL,
        room TEXT NOT NULL, residents JSONB NOT NULL, contacts JSONB NOT NULL, access_notes TEXT NOT NULL,
        routine JSONB NOT NULL, away_until BIGINT, away_reason TEXT)`,
      `CREATE INDEX households_grid ON households (grid_id)`,
      `CREATE TABLE staff (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT NOT NULL, roles JSONB NOT NULL, grid_ids JSONB NOT NULL,
        username TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, disabled BOOLEAN NOT NULL DEFAULT false)`,
      `CREATE TABLE devices (
        id TEXT PRIMARY KEY, home_id TEXT NOT NULL REFERENCES households(id), kind TEXT NOT NULL, room TEXT NOT NULL,
        secret_hash TEXT NOT NULL, disabled BOOLEAN NOT NULL DEFAULT false, created_at BIGINT NOT NULL,
        online BOOLEAN NOT NULL DEFAULT false, last_seen_at BIGINT, battery REAL, rssi REAL, fw TEXT,
        rejected_count BIGINT NOT NULL DEFAULT 0)`,
      `CREATE INDEX devices_home ON devices (home_id)`,
      `CREATE TABLE roster (
        id BIGSERIAL PRIMARY KEY, grid_id TEXT NOT NULL, shift TEXT NOT NULL, weekdays JSONB NOT NULL,
        staff_ids JSONB NOT NULL)`,
      `CREATE INDEX roster_grid ON roster (grid_id)`,
      `CREATE TABLE roster_overrides (
        id TEXT PRIMARY KEY, grid_id TEXT NOT NULL, date TEXT NOT NULL, shift TEXT NOT NULL, kind TEXT NOT NULL,
        staff_id TEXT, replacement_id TEXT)`,
      // body: the event (accepted) as JSONB; raw: the payload text of a rejected message (any bytes).
      `CREATE TABLE events (
        seq BIGSERIAL PRIMARY KEY, device_id TEXT NOT NULL, home_id TEXT NOT NULL, received_at BIGINT NOT NULL,
        topic TEXT NOT NULL, status TEXT NOT NULL, ts BIGINT NOT NULL, type TEXT, device_seq BIGINT,
        seq_count INTEGER NOT NULL DEFAULT 0, body JSONB, raw TEXT, reason TEXT, flags JSONB NOT NULL,
        CHECK (CASE WHEN status = 'accepted' THEN body IS NOT NULL ELSE raw IS NOT NULL END))`,
      `CREATE UNIQUE INDEX events_device_seq ON events (device_id, seq_count, device_seq)
        WHERE device_seq IS NOT NULL AND status = 'accepted'`,
      `CREATE INDEX events_home_ts ON events (home_id, ts, seq) WHERE status = 'accepted'`,
      `CREATE TABLE device_seqs (device_id TEXT PRIMARY KEY, seq_count INTEGER NOT NULL, high BIGINT NOT NULL,
        high_ts BIGINT NOT NULL, session TEXT)`,
      `CREATE TABLE cursors (name TEXT PRIMARY KEY, seq BIGINT NOT NULL)`,
      `CREATE TABLE home_states (home_id TEXT PRIMARY KEY, state JSONB NOT NULL)`,
      `CREATE TABLE alerts (
        id TEXT PRIMARY KEY, household_id TEXT NOT NULL, grid_id TEXT NOT NULL, community TEXT NOT NULL,
        rule TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL, is_open BOOLEAN NOT NULL,
        raised_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, next_step_at BIGINT,
        change_seq BIGINT NOT NULL, version INTEGER NOT NULL, body JSONB NOT NULL)`,
      `CREATE UNIQUE INDEX alerts_one_open ON alerts (household_id, rule) WHERE is_open`,
      `CREATE INDEX alerts_open_grid ON alerts (grid_id, raised_at DESC) WHERE is_open`,
      `CREATE INDEX alerts_open_raised ON alerts (raised_at DESC) WHERE is_open`,
      `CREATE INDEX alerts_household ON alerts (household_id, raised_at DESC)`,
      `CREATE INDEX alerts_raised ON alerts (raised_at)`,
      `CREATE INDEX alerts_change ON alerts (change_seq)`,
      `CREATE INDEX alerts_next_step ON alerts (next_step_at) WHERE is_open AND next_step_at IS NOT NULL`,
      `CREATE TABLE alert_history (
        id BIGSERIAL PRIMARY KEY, alert_id TEXT NOT NULL, at BIGINT NOT NULL, action TEXT NOT NULL,
        from_state TEXT, to_state TEXT, actor TEXT NOT NULL, channel TEXT NOT NULL, data JSONB NOT NULL)`,
      `CREATE INDEX alert_history_alert ON alert_history (alert_id, id)`,
      `CREATE TABLE deliveries (
        id BIGSERIAL PRIMARY KEY, alert_id TEXT NOT NULL, staff_id TEXT, channel TEXT NOT NULL, at BIGINT NOT NULL,
        ok BOOLEAN NOT NULL, error TEXT)`,
      `CREATE INDEX deliveries_alert ON deliveries (alert_id, id)`,
      `CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, staff_id TEXT NOT NULL, created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL)`,
      `CREATE TABLE audit_log (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, target TEXT NOT NULL, detail JSONB NOT NULL)`,
    ],
  },
  {
    version: 3,
    name: 'gateway: rejected messages per device and reason',
    sql: () => [
      // SPEC §3: rejections are counted per device; device health shows them by reason.
      `CREATE TABLE device_rejections (device_id TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (device_id, reason))`,
    ],
  },
  {
    version: 4,
    name: 'dispatch: audit queries by actor, target and time',
    sql: () => [
      // SPEC §8: admins query the audit log by who, what and when.
      `CREATE INDEX audit_log_actor ON audit_log (actor, at)`,
      `CREATE INDEX audit_log_target ON audit_log (target, at)`,
      `CREATE INDEX audit_log_at ON audit_log (at)`,
      `CREATE INDEX deliveries_at ON deliveries (at)`,
    ],
    postgres: [
      `CREATE INDEX audit_log_actor ON audit_log (actor, at)`,
      `CREATE INDEX audit_log_target ON audit_log (target, at)`,
      `CREATE INDEX audit_log_at ON audit_log (at)`,
      `CREATE INDEX audit_log_action ON audit_log (action text_pattern_ops, at)`,
      `CREATE INDEX deliveries_at ON deliveries (at)`,
    ],
  },
  {
    version: 5,
    name: 'gateway: duplicate seqs found by a window per device instead of a unique index',
    // SQLite's physical design only (seq windows, household index file): PostgreSQL's version 1 has
    // its own (the unique index per device seq, device_seqs, events_home_ts).
    postgres: [],
    sql: (w) => [
      // SPEC §3 duplicates: the log writer keeps the last seqs of each device on its row (event-batch.ts),
      // written in the same transaction as the events; the index cost a random page write per event.
      `ALTER TABLE devices ADD COLUMN seq_high ${w.bigint}`,
      `ALTER TABLE devices ADD COLUMN seq_window ${w.blob}`,
      `UPDATE devices SET seq_high = (SELECT MAX(device_seq) FROM events
         WHERE events.device_id = devices.id AND events.status = 'accepted')`,
      `DROP INDEX events_device_seq`,
    ],
  },
  {
    version: 6,
    name: 'gateway: the household index of the event log written in sorted chunks',
    // SQLite's physical design only (seq windows, household index file): PostgreSQL's version 1 has
    // its own (the unique index per device seq, device_seqs, events_home_ts).
    postgres: [],
    sql: (w) => [
      // The timeline's (home, time) index was a random page write per event, most of the log's disk
      // writes. The log writer now adds each chunk of a few thousand events to it at once, in home order
      // (event-batch.ts); the cursor says how far it and the devices' seq windows reach.
      `CREATE TABLE events_by_home (home_id TEXT NOT NULL, ts ${w.bigint} NOT NULL, seq ${w.bigint} NOT NULL,
        PRIMARY KEY (home_id, ts, seq))${w.clustered}`,
      `INSERT INTO events_by_home (home_id, ts, seq) SELECT home_id, ts, seq FROM events WHERE status = 'accepted'`,
      `DROP INDEX events_home_ts`,
      `INSERT INTO cursors (name, seq) SELECT 'event-log-derived', COALESCE(MAX(seq), 0) FROM events`,
    ],
  },
  {
    version: 7,
    name: 'gateway: the household index in a file of its own; seq windows saved in small steps',
    // SQLite's physical design only (seq windows, household index file): PostgreSQL's version 1 has
    // its own (the unique index per device seq, device_seqs, events_home_ts).
    postgres: [],
    sql: (w) => [
      // Keeping the household index up in the log's file held the log's write lock for 5–11 ms several
      // times a second at 10,000 events/s: it moves to a file of its own, written by its own thread
      // (home-index.ts, whose start moves the old table and its cursor there and then drops them here).
      // The seq windows are saved between the log's batches a few hundred devices at a time
      // (event-batch.ts), each with the log position it reflects, and have a cursor of their own (where
      // the old one reached).
      `ALTER TABLE devices ADD COLUMN seq_window_at ${w.bigint}`,
      `INSERT INTO cursors (name, seq) SELECT 'event-log-windows', seq FROM cursors WHERE name = 'event-log-derived'`,
    ],
  },
  {
    version: 8,
    name: 'notify: delivery receipts beside attempts',
    postgres: [`ALTER TABLE deliveries ADD COLUMN delivered BOOLEAN NOT NULL DEFAULT false`],
    sql: () => [
      // NOTIFY-02: a channel's own word that a message reached the person's phone (a push service worker's
      // receipt, a page's acknowledgement) is recorded beside the send attempts.
      `ALTER TABLE deliveries ADD COLUMN delivered INTEGER NOT NULL DEFAULT 0`,
    ],
  },
  {
    version: 9,
    name: 'gateway: duplicates judged on exact seqs and times, whatever their values',
    // SQLite's physical design only (seq windows, household index file): PostgreSQL's version 1 has
    // its own (the unique index per device seq, device_seqs, events_home_ts).
    postgres: [],
    sql: (w) => [
      // SPEC §3: a duplicate is recorded once whatever its distance to the device's highest seq. The saved
      // list of each device's newest seqs with their event times (event-batch.ts) replaces the bitmap of
      // the 1,024 values below the highest, which epoch-ms seqs overran at once.
      `ALTER TABLE devices ADD COLUMN seq_recent ${w.blob}`,
    ],
  },
  {
    version: 10,
    name: 'devices: rooms from the SPEC §3 vocabulary',
    sql: () => {
      // Rooms were free text, and a rule keyed on `bathroom` never saw a sensor registered as 卫生间. Each
      // stored room is mapped with the names an import accepts (rooms.ts, compared as `roomKey` does); one
      // that means no room for certain keeps its text in `room_text` and counts as `other` until a person
      // chooses (device health lists it). The alias table only ever grows, so this step's outcome holds.
      const key = `lower(replace(replace(replace(replace(trim(room), ' ', ''), '\u3000', ''), '_', ''), '-', ''))`;
      const byRoom = new Map<string, string[]>();
      for (const [name, room] of roomNames()) byRoom.set(room, [...(byRoom.get(room) ?? []), name]);
      const list = (names: string[]) => names.map((n) => `'${n.replaceAll("'", "''")}'`).join(', ');
      const all = list(roomNames().map(([name]) => name));
      const cases = [...byRoom].map(([room, names]) => `WHEN ${key} IN (${list(names)}) THEN '${room}'`);
      return [
        `ALTER TABLE devices ADD COLUMN room_text TEXT`,
        `UPDATE devices SET room_text = room WHERE ${key} NOT IN (${all})`,
        `UPDATE devices SET room = CASE ${cases.join(' ')} ELSE 'other' END`,
      ];
    },
  },
  {
    version: 11,
    name: 'alerts: the escalation policy each alert was raised under',
    // ESC-02: every safety alert keeps a snapshot of its escalation policy. Alerts raised before policies
    // existed ran the SPEC §6 ladder, and their stored step index and deadlines are that ladder's: they get
    // it as their snapshot. Written out here, not imported, so this step never changes once released.
    sql: () => [
      `UPDATE alerts SET body = json_set(body, '$.policy', json('${SPEC_LADDER}'))
        WHERE severity <> 'technical' AND json_extract(body, '$.policy') IS NULL`,
    ],
    postgres: [
      `UPDATE alerts SET body = jsonb_set(body, '{policy}', '${SPEC_LADDER}'::jsonb)
        WHERE severity <> 'technical' AND body->'policy' IS NULL`,
    ],
  },
  {
    version: 13,
    name: 'registry: grids, households, staff and devices retired, not deleted',
    sql: (w) => [
      // DATA-04: a retired record leaves every list and routing but stays readable where its alerts and
      // the audit log name it; its id is never given to anything else.
      ...['grids', 'households', 'staff', 'devices'].map(
        (t) => `ALTER TABLE ${t} ADD COLUMN retired_at ${w.bigint}`,
      ),
    ],
  },
  {
    version: 14,
    name: 'cluster: community leases with a fencing epoch',
    // CLU-03: which dispatcher instance works for a community, until when (the database's clock, ms), and an
    // epoch that grows at every change of holder: writes of the rules and escalation check it in their own
    // transaction. Only separate dispatcher processes use it (PostgreSQL); on SQLite the table stays empty.
    sql: (w) => [
      `CREATE TABLE IF NOT EXISTS community_leases (community TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch ${w.bigint} NOT NULL, expires_at ${w.bigint} NOT NULL)`,
    ],
  },
  {
    version: 15,
    name: 'cluster: live dispatcher instances; presence of the newest device session',
    sql: (w) => [
      // CLU-08: each dispatcher instance keeps a row here alive like a lease (the database's clock, ms); the
      // live rows are the instances the communities are spread over. Separate dispatchers only (PostgreSQL).
      `CREATE TABLE IF NOT EXISTS dispatcher_instances (holder TEXT PRIMARY KEY, expires_at ${w.bigint} NOT NULL)`,
      // DEV-11: when the device's newest session started; a presence write of an older session (a late
      // `offline` of a gateway the device has left) never overwrites the newer one's state.
      `ALTER TABLE devices ADD COLUMN session_at ${w.bigint}`,
    ],
  },
  {
    version: 16,
    name: 'home states kept as the rules wrote them',
    // The rules rewrite a home's state with every page that touches it, about one row per event, and only
    // ever read it back whole: PostgreSQL keeps the JSON text as written (no jsonb parse on each write),
    // and room left on each page lets the rewrite stay on its page without touching the index (HOT).
    // SQLite has kept the text since the start.
    sql: () => [],
    postgres: [
      'ALTER TABLE home_states ALTER COLUMN state TYPE TEXT USING state::text',
      'ALTER TABLE home_states SET (fillfactor = 70)',
    ],
  },
  {
    version: 17,
    name: 'event-log appends: device rows before the log lock',
    // DEV-12: an append writes its devices' rows before it takes the log lock, in the same transaction; a
    // short-way append whose seq-state guard fails under the lock must then undo them: it raises this
    // error (SQLSTATE G3650) and the whole transaction rolls back. VOLATILE (the default, said here): the
    // planner must never evaluate it ahead of time. Most events rewrite their device's row (last seen,
    // readings; the last-seen step skips the rest): room left on each page keeps the rewrite on its page,
    // off the indexes (HOT). That applies to pages written from now on; an existing database's devices
    // table keeps its full pages until it is rewritten (VACUUM FULL, in a quiet hour). SQLite has no log
    // lock (one process writes).
    sql: () => [],
    postgres: [
      `CREATE OR REPLACE FUNCTION g365_seq_state_moved() RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
       BEGIN
         RAISE EXCEPTION 'a device''s seq state moved on since this gateway judged it' USING ERRCODE = 'G3650';
       END $$`,
      'ALTER TABLE devices SET (fillfactor = 70)',
    ],
  },
  {
    version: 18,
    name: 'home states: the learned days apart from what every event rewrites',
    // DATA-08: a home's learned days (RULE-14: up to 28, ~3.5 KB of JSON) change once a day; the rest of
    // its state at every event. Written apart, only when they changed: the row's every-event rewrite
    // carries ~0.6 KB instead of ~4 KB (PostgreSQL compressed the larger text at each write), and an
    // unchanged `learned` stays as stored. NULL for a state stored before (its days are still inside it).
    sql: () => ['ALTER TABLE home_states ADD COLUMN learned TEXT'],
  },
];

export function migrationSql(m: Migration, dialect: Dialect): string[] {
  if (dialect === 'postgres' && m.postgres) return m.postgres;
  return m.sql(WORDS[dialect]);
}

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
