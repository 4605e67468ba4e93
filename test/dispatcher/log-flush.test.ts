/**
 * DATA-06 on a PostgreSQL server of the test's own, which it crashes (`pg_ctl stop -m immediate`: every
 * server process killed at once, crash recovery at the next start). Its WAL writer waits 10 s between
 * flushes and nothing else writes to its WAL (no autovacuum, no standby snapshots: `wal_level=minimal`),
 * so a commit that did not wait for the disk stays off it, and the WAL's flush position says so:
 *
 * - an ordinary append (it commits under the log lock without waiting for the disk) is on disk when it is
 *   answered, and is there after a crash (DEV-05);
 * - the rules' read of the log hands on an event only once it is on disk: an event they acted on is there
 *   after a crash, its position never given to another.
 *
 * It runs where the other PostgreSQL tests do (TEST_DATABASE_URL set), as root (the server runs as the
 * `postgres` user, as in `.ci/run`).
 */
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startThrowawayCluster, type ThrowawayCluster } from '../../bench/pg-cluster.ts';
import { PostgresStore } from '../../dispatcher/store/postgres.ts';
import { motionRecord as event, MOTION_T as T, TEST_DATABASE_URL } from '../store-factory.ts';

const why = !TEST_DATABASE_URL
  ? 'TEST_DATABASE_URL is not set'
  : !existsSync('/usr/lib/postgresql')
    ? "PostgreSQL's server is not installed"
    : process.getuid?.() !== 0
      ? 'not root (the server runs as the postgres user)'
      : null;
const title = `the event log's flush apart from its lock${why ? ` (skipped: ${why})` : ''}`;

describe.skipIf(why !== null)(title, () => {
  let cluster: ThrowawayCluster;
  beforeAll(async () => {
    cluster = await startThrowawayCluster([
      'fsync=on',
      'synchronous_commit=on',
      'wal_level=minimal',
      'max_wal_senders=0',
      'autovacuum=off',
      'wal_writer_delay=10000ms',
      'wal_writer_flush_after=1GB',
      'checkpoint_timeout=1h',
    ]);
  }, 60_000);
  afterAll(() => cluster?.stop());

  /** Whether everything written to the WAL so far is on disk. */
  const walOnDisk = async (c: pg.Client) =>
    (await c.query('SELECT pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn() AS ok')).rows[0].ok;

  /** `work` with a store and a plain connection to the server; then it crashes and starts again. */
  const thenCrash = async (work: (store: PostgresStore, c: pg.Client) => Promise<void>) => {
    const store = new PostgresStore({ url: cluster.url });
    const c = new pg.Client({ connectionString: cluster.url });
    try {
      await store.migrate();
      await c.connect();
      await work(store, c);
    } finally {
      await c.end().catch(() => {});
      await store.close();
    }
    cluster.crash();
    cluster.start();
    return new PostgresStore({ url: cluster.url });
  };

  it('answers an ordinary append once it is on disk, and it survives a crash of the server (DEV-05)', async () => {
    const after = await thenCrash(async (store, c) => {
      const flushedWhenAnswered: boolean[] = [];
      for (let seq = 1; seq <= 10; seq++) {
        const [outcome] = await store.appendEvents([event(seq)]);
        expect(outcome!.duplicate).toBe(false);
        flushedWhenAnswered.push(await walOnDisk(c));
      }
      // The appends did commit without waiting for the disk (or this test would prove nothing).
      expect(store.flushApart).toBe(true);
      expect(flushedWhenAnswered).toEqual(Array(10).fill(true));
    });
    try {
      const events = await after.readEvents(0, 100);
      expect(events.map((e) => [e.deviceId, e.ts - T])).toEqual(
        Array.from({ length: 10 }, (_, i) => ['h1-motion', i + 1]),
      );
    } finally {
      await after.close();
    }
  }, 60_000);

  it('hands the rules only events on disk: one they read is there after a crash', async () => {
    let readSeq = 0;
    const after = await thenCrash(async (store, c) => {
      const before = (await store.readEvents(0, 1000)).at(-1)?.seq ?? 0;
      // What an ordinary append leaves between its commit and its flush: rows visible, not on disk.
      await c.query(`BEGIN; SET LOCAL synchronous_commit = off;
        INSERT INTO events (device_id, home_id, received_at, topic, status, ts, type, device_seq, seq_count, body, flags)
        VALUES ('h2-door', 'h2', ${T}, 't', 'accepted', ${T}, 'door', 1, 0,
          '{"type":"door","ts":${T},"seq":1,"state":"open"}', '[]');
        COMMIT`);
      const written = (await c.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn;
      expect(await walOnDisk(c)).toBe(false);
      const flushesBefore = store.readFlushes;
      const read = await store.readEvents(before, 1000);
      expect(read.map((e) => e.deviceId)).toEqual(['h2-door']);
      readSeq = read[0]!.seq;
      // Handed on only once on disk.
      expect(
        (await c.query('SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS ok', [written])).rows[0].ok,
      ).toBe(true);
      expect(store.readFlushes - flushesBefore).toBe(1);
    });
    try {
      // The event the rules read is still at its position; the next append takes a new one.
      const events = await after.readEvents(readSeq - 1, 10);
      expect(events.map((e) => [e.seq, e.deviceId])).toEqual([[readSeq, 'h2-door']]);
      const [next] = await after.appendEvents([event(100)]);
      expect(next!.duplicate).toBe(false);
      expect(next!.seq).toBeGreaterThan(readSeq);
    } finally {
      await after.close();
    }
  }, 60_000);

  it("answers a fall's duplicate only once its original is on disk, when that is another's append", async () => {
    const store = new PostgresStore({ url: cluster.url });
    const c = new pg.Client({ connectionString: cluster.url });
    try {
      await store.migrate();
      await c.connect();
      // This store's appends flush apart (it has flushed once), so nothing below flushes on its own.
      await store.appendEvents([event(300)]);
      expect(store.flushApart).toBe(true);
      // Another gateway's append of h3-radar's fall, seq 1, between its commit and its flush.
      const body = JSON.stringify({ type: 'fall_detected', ts: T, seq: 1, room: 'bathroom' });
      await c.query(`BEGIN; SET LOCAL synchronous_commit = off;
        INSERT INTO device_seqs (device_id, seq_count, high, high_ts) VALUES ('h3-radar', 0, 1, ${T});
        INSERT INTO events (device_id, home_id, received_at, topic, status, ts, type, device_seq, seq_count, body, flags)
        VALUES ('h3-radar', 'h3', ${T}, 't', 'accepted', ${T}, 'fall_detected', 1, 0, '${body}', '[]');
        COMMIT`);
      expect(await walOnDisk(c)).toBe(false);
      // The device sends the fall again, through this gateway: a duplicate, urgent (RULE-16).
      const [again] = await store.appendEvents(
        [{ ...event(1), deviceId: 'h3-radar', homeId: 'h3', type: 'fall_detected', ts: T, body }],
        [],
        { urgent: true },
      );
      expect(again!.duplicate).toBe(true);
      expect(await walOnDisk(c)).toBe(true);
    } finally {
      await c.end().catch(() => {});
      await store.close();
    }
  }, 60_000);

  it('commits durably under the lock on a server that refuses the flush, and says so once', async () => {
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    const emit = [
      'pg_logical_emit_message(boolean, text, text)',
      'pg_logical_emit_message(boolean, text, bytea)',
    ];
    const url = new URL(cluster.url);
    url.username = 'g365_limited';
    const warnings: string[] = [];
    const store = new PostgresStore({ url: url.toString(), onWarning: (m) => warnings.push(m) });
    try {
      const owner = new PostgresStore({ url: cluster.url });
      await owner.migrate();
      await owner.close();
      await admin.query(`CREATE ROLE g365_limited LOGIN; GRANT pg_read_all_data, pg_write_all_data TO g365_limited;
        ${emit.map((f) => `REVOKE EXECUTE ON FUNCTION ${f} FROM PUBLIC;`).join(' ')}`);
      const flushedWhenAnswered: boolean[] = [];
      for (let seq = 201; seq <= 205; seq++) {
        const [outcome] = await store.appendEvents([event(seq)]);
        expect(outcome!.duplicate).toBe(false);
        flushedWhenAnswered.push(await walOnDisk(admin));
      }
      expect(flushedWhenAnswered).toEqual(Array(5).fill(true));
      expect(store.flushApart).toBe(false);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/refuses their flush apart \(DATA-06\).*permission denied/);
    } finally {
      await store.close();
      await admin.query(emit.map((f) => `GRANT EXECUTE ON FUNCTION ${f} TO PUBLIC;`).join(' '));
      await admin.end();
    }
  }, 60_000);
});
