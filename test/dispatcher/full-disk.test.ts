/**
 * A full disk (SPEC §9: nothing acknowledged is lost; it heals itself) on a real 20 MB tmpfs: free space
 * runs low first and the dispatch screen warns; when the event log cannot write, devices are held (no
 * PUBACK, no disconnect), /readyz says why, and everything held is recorded and acknowledged once space is
 * freed; starting on a full disk fails with an error naming the folder. Needs root (mount); skipped, with
 * the reason in its name, only where mounting is impossible.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import type { SystemHealthReport } from '../../dispatcher/api/types.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { topics } from '../../gateway/protocol.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant } from '../../kernel/time.ts';
import { apiCall, eventually, startHarness, tempDir } from '../helpers.ts';
import { liveClient } from './dispatch-helpers.ts';

const root = join(import.meta.dirname, '..', '..');
const mnt = tempDir('g365-tmpfs-');
const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=20m', 'tmpfs', mnt.path], { encoding: 'utf8' });
const mounted = mount.status === 0;
const why = mounted
  ? ''
  : ` (skipped: cannot mount a tmpfs here: ${(mount.stderr || String(mount.error)).trim()})`;

afterAll(() => {
  if (mounted) spawnSync('umount', ['-l', mnt.path]);
  mnt.remove();
});

/** Fills the filesystem with one file until it refuses another byte; returns the file to remove. */
function fill(name: string): string {
  const file = join(mnt.path, name);
  const fd = openSync(file, 'w');
  const big = Buffer.alloc(256 * 1024, 7);
  try {
    for (;;) writeSync(fd, big);
  } catch {}
  try {
    for (;;) writeSync(fd, big.subarray(0, 512));
  } catch {}
  closeSync(fd);
  return file;
}

/** Leaves about `mb` MB free. */
function ballast(name: string, mb: number): string {
  const file = fill(name);
  const keep = spawnSync('truncate', ['-s', `-${mb}M`, file]);
  expect(keep.status).toBe(0);
  return file;
}

describe.skipIf(!mounted)(`a full disk on a 20 MB tmpfs${why}`, () => {
  it('warns before it is full, holds devices while the log cannot write, says why, and resumes by itself', {
    timeout: 150_000,
  }, async () => {
    const clock = new ManualClock(instant(Date.parse('2026-03-10T10:00:00+08:00')));
    const h = await startHarness({
      clock,
      grids: 1,
      perGrid: 1,
      dataParent: mnt.path,
      env: { DISK_LOW_MB: '8', HEALTH_CHECK_MS: '200' },
    });
    const live = await liveClient(h.baseUrl, 'dispatcher');
    const token = live.token;
    const health = async () =>
      (await apiCall<SystemHealthReport>(h.baseUrl, token, 'GET', '/api/system/health')).body;
    const kinds = async () => (await health()).warnings.map((w) => w.kind).sort();
    const metric = async (name: string) => {
      const text = await (await fetch(`${h.baseUrl}/metrics`)).text();
      return Number(text.match(new RegExp(`^${name} (\\S+)$`, 'm'))?.[1]);
    };
    const door = h.devices.find((d) => d.kind === 'door')!;
    const device = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: h.service.mqttPort,
      clientId: door.id,
      username: door.id,
      password: door.secret,
      reconnectPeriod: 0,
      keepalive: 60,
    });
    let closes = 0;
    device.on('close', () => closes++);
    const send = (seq: number) =>
      device.publishAsync(
        topics.events(door.homeId, door.id),
        JSON.stringify({ type: 'door', state: seq % 2 ? 'open' : 'closed', ts: clock.now(), seq }),
        { qos: 1 },
      );
    const files: string[] = [];
    try {
      await send(1);
      expect((await fetch(`${h.baseUrl}/readyz`)).status).toBe(200);
      expect(await kinds()).toEqual([]);
      expect(await metric('g365_disk_free_bytes')).toBeGreaterThan(8 * 1024 * 1024);

      // Free space runs low: the dispatch screen warns before anything fails.
      files.push(ballast('ballast-1', 5));
      await eventually(async () => (await kinds()).includes('disk_low'), 20_000, 'the low-space warning');
      expect(await metric('g365_disk_low')).toBe(1);
      expect((await fetch(`${h.baseUrl}/readyz`)).status).toBe(200);
      await send(2);

      // Full: the log cannot write. The device's events wait unacknowledged; it stays connected.
      files.push(fill('ballast-2'));
      let acked = 0;
      const held = Array.from({ length: 20 }, (_, i) => send(3 + i).then(() => acked++));
      const notReady = await eventually(
        async () => {
          const r = await fetch(`${h.baseUrl}/readyz`);
          return r.status === 503 ? ((await r.json()) as { reasons: string[] }) : undefined;
        },
        30_000,
        '/readyz not ready',
      );
      expect(notReady.reasons.join()).toMatch(/event log cannot write: .*(disk is full|SQLITE_FULL)/i);
      await eventually(
        async () => (await kinds()).includes('event_log_failing') && (await kinds()).includes('disk_full'),
        20_000,
        'the dispatch screen warnings',
      );
      expect(await metric('g365_event_log_failing')).toBe(1);
      // Live to the dispatch screen too.
      await eventually(
        () => live.got.systemHealth.some((r) => r.warnings.some((w) => w.kind === 'event_log_failing')),
        20_000,
        'the live warning',
      );
      // Several checks later (each sends the screens its figures): still held, not acknowledged, not
      // disconnected.
      const reports = live.got.systemHealth.length;
      await eventually(() => live.got.systemHealth.length >= reports + 5, 20_000, 'more checks');
      expect(acked).toBe(0);
      expect(closes).toBe(0);
      expect(device.connected).toBe(true);

      // Space freed: the held events are recorded and acknowledged by themselves, in order, once each.
      for (const f of files.splice(0)) rmSync(f);
      await eventually(() => acked === 20, 30_000, 'the held events acknowledged');
      await Promise.all(held);
      await eventually(
        async () => (await fetch(`${h.baseUrl}/readyz`)).status === 200,
        20_000,
        'ready again',
      );
      await eventually(async () => (await kinds()).length === 0, 20_000, 'the warnings cleared');
      const seqs = (await h.store.readEvents(0, 1_000_000))
        .filter((e) => e.deviceId === door.id && e.event.type === 'door')
        .map((e) => (e.event as { seq?: number }).seq);
      expect(seqs).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
      expect(closes).toBe(0);
      expect(await metric('g365_event_log_unavailable_total')).toBe(1);
    } finally {
      for (const f of files) rmSync(f, { force: true });
      live.close();
      await device.endAsync();
      await h.close();
    }
  });

  it('refuses to start on a full disk with an error that names the folder and says the disk is full', {
    timeout: 90_000,
  }, async () => {
    const dataDir = join(mnt.path, 'data');
    mkdirSync(dataDir, { recursive: true });
    const store = new SqliteStore(join(dataDir, 'guardian365.sqlite'));
    await store.migrate();
    await store.close();
    const file = fill('ballast-start');
    try {
      const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'dispatcher', 'main.ts')], {
        cwd: root,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/tmp',
          DATA_DIR: dataDir,
          MQTT_PORT: '0',
          HTTP_PORT: '0',
          MQTT_HOST: '127.0.0.1',
          HTTP_HOST: '127.0.0.1',
          ADMIN_PASSWORD: 'admin-password-365',
          LOG_LEVEL: 'fatal',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      proc.stdout!.on('data', (d) => {
        out += d;
      });
      proc.stderr!.on('data', (d) => {
        out += d;
      });
      const code = await new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
      expect(code).toBe(2);
      expect(out).toContain(`cannot start: disk full: the filesystem of the data folder ${dataDir}`);
      expect(out).not.toMatch(/SQLITE_IOERR_SHMSIZE/);
    } finally {
      rmSync(file, { force: true });
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
