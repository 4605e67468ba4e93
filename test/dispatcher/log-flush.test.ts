/**
 * DATA-06 on a PostgreSQL server of the test's own, which it crashes (`pg_ctl stop -m immediate`: every
 * server process killed at once, crash recovery at the next start). Its WAL writer waits 10 s between
 * flushes and nothing else writes to its WAL (no autovacuum, no standby snapshots: `wal_level=minimal`),
 * so a commit that did not wait for the disk stays off it, and the WAL's flush position says so:
 *
 * - an ordinary append (it commits under the log lock without waiting for the disk) is on disk when it is
 *   answered, and is there after a crash (DEV-05);
 * - the rules' read of the log hands on an event only once it is on disk: an event they acted on is there
 *   after a crash, its position never given to another;
 * - a fall's append tells the dispatchers at its commit, before its flush, and is answered after it
 *   (DATA-07); an alert's write is durable whatever the server's default, and with it the fall it was
 *   raised from.
 *
 * It runs where the other PostgreSQL tests do (TEST_DATABASE_URL set), as root (the server runs as the
 * `postgres` user, as in `.ci/run`).
 */
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startThrowawayCluster, type ThrowawayCluster } from '../../bench/pg-cluster.ts';
import { raise } from '../../dispatcher/alerts/lifecycle.ts';
import { PostgresStore } from '../../dispatcher/store/postgres.ts';
import { motionRecord as event, MOTION_T as T, TEST_DATABASE_URL } from '../store-factory.ts';

const why = !TEST_DATABASE_URL
  ? 'TEST_DATABASE_URL is not set'
  : !existsSync('/usr/lib/postgresql')
    ? "PostgreSQL's server is not installed"
    : process.getuid?.() !== 0
      ? 'not root (the server runs as the postgres user)'
      : null;
/** A fall's body as its device sends it (RULE-16). */
const fallBody = (seq = 1, ts = T) => JSON.stringify({ type: 'fall_detected', ts, seq, room: 'bathroom' });

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

  /**
   * What an append leaves between its commit and its flush, written by another process: an accepted event,
   * visible and not on disk (`before`: more statements in its transaction). Its position, and the WAL's end
   * just after it.
   */
  const commitUnflushed = async (
    c: pg.Client,
    e: { deviceId: string; homeId: string; type: string; body: string },
    before = '',
  ) => {
    const done = (await c.query(`BEGIN; SET LOCAL synchronous_commit = off; ${before}
      INSERT INTO events (device_id, home_id, received_at, topic, status, ts, type, device_seq, seq_count, body, flags)
      VALUES ('${e.deviceId}', '${e.homeId}', ${T}, 't', 'accepted', ${T}, '${e.type}', 1, 0, '${e.body}', '[]')
      RETURNING seq;
      COMMIT`)) as unknown as pg.QueryResult[];
    const lsn = (await c.query('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0].lsn as string;
    return { seq: Number(done.at(-2)!.rows[0].seq), lsn };
  };

  /** Whether the WAL is on disk up to `lsn`. */
  const onDiskTo = async (c: pg.Client, lsn: string) =>
    (await c.query('SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS ok', [lsn])).rows[0].ok;

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
      const { lsn: written } = await commitUnflushed(c, {
        deviceId: 'h2-door',
        homeId: 'h2',
        type: 'door',
        body: `{"type":"door","ts":${T},"seq":1,"state":"open"}`,
      });
      expect(await walOnDisk(c)).toBe(false);
      const flushesBefore = store.readFlushes;
      const read = await store.readEvents(before, 1000);
      expect(read.map((e) => e.deviceId)).toEqual(['h2-door']);
      readSeq = read[0]!.seq;
      // Handed on only once on disk.
      expect(await onDiskTo(c, written)).toBe(true);
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
      const body = fallBody();
      await commitUnflushed(
        c,
        { deviceId: 'h3-radar', homeId: 'h3', type: 'fall_detected', body },
        `INSERT INTO device_seqs (device_id, seq_count, high, high_ts) VALUES ('h3-radar', 0, 1, ${T});`,
      );
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

  it("writes an alert durably whatever the server's default, and with it the fall it was raised from (DATA-07)", async () => {
    let seq = 0;
    /** The server's default for every new session: commits that do not wait for the disk (`off`), or not. */
    const serverDefault = async (sql: string) => {
      const admin = new pg.Client({ connectionString: cluster.url });
      await admin.connect();
      await admin.query(`ALTER DATABASE postgres ${sql}`).finally(() => admin.end());
    };
    await serverDefault('SET synchronous_commit = off');
    let after: PostgresStore | undefined;
    try {
      after = await thenCrash(async (_gateway, c) => {
        const dispatcher = new PostgresStore({ url: cluster.url });
        try {
          // A fall between its commit and its flush, as the urgent lane is told of it.
          const fallen = await commitUnflushed(c, {
            deviceId: 'h5-radar',
            homeId: 'h5',
            type: 'fall_detected',
            body: fallBody(),
          });
          seq = fallen.seq;
          expect(await walOnDisk(c)).toBe(false);
          const { alert } = raise(
            {
              rule: 'FALL',
              householdId: 'h5',
              deviceId: 'h5-radar',
              at: T,
              evidence: { seq, deviceId: 'h5-radar', type: 'fall_detected', at: T, summary: 'fall' },
              explanation: { zh: '跌倒', en: 'fall' },
            },
            { id: 'al_data07', gridId: 'g1', community: 'c', responders: ['p1'] },
          );
          await dispatcher.saveAlert(alert, []);
          // Answered once on disk: the alert, and the fall before it in the WAL.
          expect(await onDiskTo(c, fallen.lsn)).toBe(true);
        } finally {
          await dispatcher.close();
        }
      });
      const events = await after.readEvents(seq - 1, 10);
      expect(events.map((e) => [e.seq, e.deviceId])).toEqual([[seq, 'h5-radar']]);
      expect((await after.getAlert('al_data07'))?.evidence.at(0)?.seq).toBe(seq);
    } finally {
      await after?.close();
      await serverDefault('RESET synchronous_commit');
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

/**
 * DATA-07 on a server of the test's own that can have a synchronous standby (none is ever connected): while
 * `synchronous_standby_names` names one, every durable commit waits, so an append's flush cannot finish.
 */
describe.skipIf(why !== null)(`a fall told before its flush${why ? ` (skipped: ${why})` : ''}`, () => {
  let cluster: ThrowawayCluster;
  beforeAll(async () => {
    cluster = await startThrowawayCluster(['fsync=on', 'synchronous_commit=on', 'max_wal_senders=2']);
  }, 60_000);
  afterAll(() => cluster?.stop());

  /** A fall of h4-radar, as a gateway appends it (RULE-16). */
  const fall = (seq: number) =>
    event(seq, {
      deviceId: 'h4-radar',
      homeId: 'h4',
      type: 'fall_detected',
      ts: T + seq,
      body: fallBody(seq, T + seq),
    });

  /**
   * Whether a durable commit now waits for a synchronous standby (the checkpointer sets that some time after
   * a reload): a probe's commit is seen waiting for one (`SyncRep`), then cancelled, which leaves it
   * committed here.
   */
  const waitsForStandby = async (admin: pg.Client): Promise<boolean> => {
    const probe = new pg.Client({ connectionString: cluster.url });
    await probe.connect();
    try {
      const pid = (await probe.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      let done = false;
      const commit = probe
        .query(`BEGIN; SET LOCAL synchronous_commit = on;
          SELECT pg_logical_emit_message(true, 'g365-test', 'probe'); COMMIT`)
        .finally(() => {
          done = true;
        });
      for (;;) {
        if (done) {
          await commit;
          return false;
        }
        const seen = await admin.query(
          "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'SyncRep'",
          [pid],
        );
        if (seen.rowCount === 1) {
          await admin.query('SELECT pg_cancel_backend($1)', [pid]);
          await commit;
          return true;
        }
      }
    } finally {
      await probe.end();
    }
  };

  /** Sets (or resets, null) synchronous_standby_names and waits until durable commits wait or not. */
  const standby = async (c: pg.Client, names: string | null) => {
    await c.query(
      names === null
        ? 'ALTER SYSTEM RESET synchronous_standby_names'
        : `ALTER SYSTEM SET synchronous_standby_names = '${names}'`,
    );
    await c.query('SELECT pg_reload_conf()');
    if (names === null) return;
    const deadline = Date.now() + 30_000;
    while (!(await waitsForStandby(c))) {
      if (Date.now() > deadline) throw new Error('synchronous_standby_names never took effect');
    }
  };

  it('tells the dispatchers of a fall at its commit, and answers it only after its flush (DATA-07)', async () => {
    // A statement timeout longer than the test: a commit's wait for the standby is never cancelled (which
    // PostgreSQL turns into a local commit, and a fall committed durably under the lock would then be told).
    const store = new PostgresStore({ url: cluster.url, statementTimeoutMs: 120_000 });
    const admin = new pg.Client({ connectionString: cluster.url });
    const listener = new pg.Client({ connectionString: cluster.url });
    try {
      await store.migrate();
      await admin.connect();
      await listener.connect();
      await store.appendEvents([event(400)]);
      expect(store.flushApart).toBe(true);
      store.announceUrgent = 'g365_test_urgent';
      const told: { seq: number; deviceId: string }[][] = [];
      const tellings: (() => void)[] = [];
      listener.on('notification', (n) => {
        told.push(JSON.parse(n.payload ?? '[]'));
        for (const wake of tellings.splice(0)) wake();
      });
      await listener.query('LISTEN g365_test_urgent');
      // Every durable commit now waits for a standby that is not there: the fall's flush cannot finish.
      await standby(admin, 'g365_nobody');
      let answered = false;
      const append = store.appendEvents([fall(1)], [], { urgent: true }).finally(() => {
        answered = true;
      });
      // Told at its commit, while its flush waits: within 30 s (the code before told only after the flush,
      // never here).
      let giveUp: NodeJS.Timeout | undefined;
      if (told.length === 0)
        await new Promise<void>((wake) => {
          tellings.push(wake);
          giveUp = setTimeout(wake, 30_000);
        });
      clearTimeout(giveUp);
      expect(told.length, 'the dispatchers were told of the fall while its flush waited').toBe(1);
      expect(told[0]!.map((e) => e.deviceId)).toEqual(['h4-radar']);
      // The dispatchers know of the fall; the device is not answered: its event is not durable yet.
      expect(answered).toBe(false);
      await standby(admin, null);
      const [outcome] = await append;
      expect(outcome!.duplicate).toBe(false);
      expect(outcome!.seq).toBe(told[0]![0]!.seq);
    } finally {
      await standby(admin, null).catch(() => {});
      await listener.end().catch(() => {});
      await admin.end().catch(() => {});
      await store.close();
    }
  }, 60_000);
});
