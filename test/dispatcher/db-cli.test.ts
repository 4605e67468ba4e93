/**
 * The database chores of `npm run db` (dispatcher/db-cli.ts), run as the README says, on real databases:
 * moving a populated embedded data folder to PostgreSQL (the service then starts there with every open
 * alert and deadline as it was), an online SQLite backup while devices keep sending, and a PostgreSQL
 * backup with pg_dump / pg_restore.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../dispatcher/alerts/model.ts';
import { GuardianService } from '../../dispatcher/service.ts';
import { PostgresStore } from '../../dispatcher/store/postgres.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { topics } from '../../gateway/protocol.ts';
import { SystemClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { SimDevice } from '../../simulators/device.ts';
import { apiCall, eventually, login, startHarness, tempDir, testConfig } from '../helpers.ts';
import { BACKENDS, createTestDatabase } from '../store-factory.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** `npm run db -- <args>`, as a process of its own. */
const db = (args: string[]) =>
  run(process.execPath, ['--import', 'tsx', join(root, 'dispatcher', 'db-cli.ts'), ...args], { cwd: root });

/** What must survive a move: each open alert's state and deadlines (SPEC §6, §9). */
const deadlines = (alerts: Alert[]) =>
  alerts
    .map((a) => ({
      id: a.id,
      state: a.state,
      raisedAt: a.raisedAt,
      acceptDueAt: a.acceptDueAt,
      onSiteDueAt: a.onSiteDueAt,
      nextStepAt: a.nextStepAt,
      assigneeId: a.assigneeId,
      version: a.version,
    }))
    .sort((a, b) => a.id.localeCompare(b.id));

describe.skipIf(pgBackend.skip)(`moving an embedded data folder to ${pgBackend.name}`, () => {
  it('copies a populated data folder, verifies the counts, and the service starts there with every open alert and deadline', async () => {
    const clock = new SystemClock();
    const h = await startHarness({ clock });
    cleanups.push(() => h.close());
    // A populated folder: falls in two homes (one accepted), heartbeats, audit entries, deliveries.
    const falls = h.devices.filter((d) => d.kind === 'fall').slice(0, 2);
    for (const d of falls) {
      const radar = new SimDevice(d, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
      await radar.connect();
      await radar.send({ type: 'heartbeat', battery: 90 });
      await radar.send({ type: 'fall', state: 'detected', room: 'bathroom' });
      await radar.disconnect();
    }
    const open = await eventually(async () => {
      const a = await h.store.listAlerts({ state: 'open', severities: ['critical'] });
      return a.length === 2 && a.every((x) => x.state === 'notified') ? a : undefined;
    }, 20_000);
    const responder = h.plan.staff.find((s) => s.id === open[0]!.responders[0])!;
    const token = await login(h.baseUrl, responder.username);
    expect((await apiCall(h.baseUrl, token, 'POST', `/api/alerts/${open[0]!.id}/accept`, {})).status).toBe(
      200,
    );
    const before = deadlines(await h.store.listAlerts({ state: 'open', limit: 1000 }));
    const pending = (await h.store.listPendingEscalations()).map((a) => a.id).sort();
    const events = await h.store.countEvents();
    expect(pending.length).toBeGreaterThan(0);
    await h.service.stop();
    await h.store.close();

    const target = await createTestDatabase();
    cleanups.push(target.drop);
    // A folder last run by an older version (its newest migration not applied) is refused, with what to do,
    // and nothing is written.
    const file = join(h.dir, 'guardian365.sqlite');
    const raw = new Database(file);
    const latest = raw.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number };
    const newest = raw.prepare('SELECT * FROM schema_migrations WHERE version = ?').get(latest.v);
    raw.prepare('DELETE FROM schema_migrations WHERE version = ?').run(latest.v);
    await expect(db(['copy', '--from', h.dir, '--to', target.url])).rejects.toMatchObject({
      stderr: expect.stringContaining(
        `schema version ${latest.v - 1} and this version's is ${latest.v}: start the service on it once`,
      ),
    });
    raw.prepare('INSERT INTO schema_migrations VALUES (@version, @name, @applied_at)').run(newest);
    raw.close();
    const out = await db(['copy', '--from', h.dir, '--to', target.url]);
    expect(out.stdout).toContain('copy verified: every count matches');
    expect(out.stdout).toMatch(/ok {2}events +\d+ → \d+/);

    // A second copy into the same database is refused: it is not empty any more.
    await expect(db(['copy', '--from', h.dir, '--to', target.url])).rejects.toMatchObject({
      stderr: expect.stringContaining('not empty'),
    });

    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const service = new GuardianService({
      config: testConfig(dir.path, { DATABASE_URL: target.url }),
      clock,
      log: silentLogger(),
    });
    await service.start();
    cleanups.push(() => service.stop());
    expect(service.store.dialect).toBe('postgres');
    expect(deadlines(await service.store.listAlerts({ state: 'open', limit: 1000 }))).toEqual(before);
    expect((await service.store.listPendingEscalations()).map((a) => a.id).sort()).toEqual(pending);
    expect(await service.store.countEvents()).toBe(events);
    // The staff log in as before, and a device goes on where its log left off.
    const base = `http://127.0.0.1:${service.httpPort}`;
    expect(await login(base, responder.username)).toBeTruthy();
    const radar = new SimDevice(falls[1]!, { host: '127.0.0.1', port: service.mqttPort }, clock);
    await radar.connect();
    await radar.send({ type: 'heartbeat', battery: 80 });
    await radar.disconnect();
    await eventually(async () => (await service.store.countEvents()) > events, 10_000);
  });
});

describe('backups', () => {
  it('takes an online SQLite backup while devices send, and it holds every event acknowledged before it', async () => {
    const clock = new SystemClock();
    const h = await startHarness({ clock });
    cleanups.push(() => h.close());
    const d = h.devices.find((x) => x.kind === 'motion')!;
    const c = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: h.service.mqttPort,
      clientId: d.id,
      username: d.id,
      password: d.secret,
      reconnectPeriod: 0,
      protocolVersion: 4,
    });
    const acked: number[] = [];
    let sending = true;
    const sender = (async () => {
      for (let seq = 1; sending; seq++) {
        await c.publishAsync(
          topics.events(d.homeId, d.id),
          JSON.stringify({ type: 'motion', ts: Date.now(), seq, state: 'active', room: d.room }),
          { qos: 1 },
        );
        acked.push(seq);
      }
    })();
    await eventually(() => acked.length >= 200, 20_000);
    const ackedBefore = [...acked];
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const file = join(dir.path, 'backup.sqlite');
    const out = await db(['backup', '--from', h.dir, '--to', file]);
    expect(out.stdout).toContain('backup of');
    // The devices went on meanwhile.
    await eventually(() => acked.length > ackedBefore.length + 50, 20_000);
    sending = false;
    await sender;
    await c.endAsync();

    const copy = new SqliteStore(file);
    cleanups.push(() => copy.close());
    await copy.migrate();
    const seqs = new Set(
      (await copy.readEvents(0, 1_000_000))
        .filter((e) => e.deviceId === d.id && e.event.type === 'motion')
        .map((e) => (e.event as { seq?: number }).seq),
    );
    expect(ackedBefore.filter((s) => !seqs.has(s))).toEqual([]);
    expect((await copy.listGrids()).length).toBeGreaterThan(0);
  });

  it.skipIf(pgBackend.skip)('backs up PostgreSQL with pg_dump and restores it with pg_restore', async () => {
    const source = await createTestDatabase();
    cleanups.push(source.drop);
    const store = new PostgresStore({ url: source.url });
    await store.migrate();
    await store.upsertGrid({ id: 'g1', name: 'G1', community: 'c', leaderId: null });
    await store.audit({ at: 1, actor: 'a', action: 'x.y', target: 't', detail: { n: 1 } });
    await store.close();
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const dump = join(dir.path, 'g365.dump');
    await run('pg_dump', ['--format=custom', `--file=${dump}`, `--dbname=${source.url}`]);
    const restored = await createTestDatabase();
    cleanups.push(restored.drop);
    await run('pg_restore', ['--no-owner', `--dbname=${restored.url}`, dump]);
    const back = new PostgresStore({ url: restored.url });
    cleanups.push(() => back.close());
    expect(await back.migrate()).toBe(0);
    expect(await back.listGrids()).toEqual([{ id: 'g1', name: 'G1', community: 'c', leaderId: null }]);
    expect((await back.listAudit(10))[0]?.detail).toEqual({ n: 1 });
  });
});
