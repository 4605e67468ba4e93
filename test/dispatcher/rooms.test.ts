/**
 * Rooms are a vocabulary (SPEC §3): provisioning accepts only it, the bulk import maps the names people
 * type (卫生间 → bathroom) and refuses the rest naming the line, and the upgrade of an existing SQLite file
 * maps the rooms it holds and lists on device health the devices it could not map. The whole service on
 * loopback ports, the devices CLI as its own process, real MQTT devices, real SQLite files.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceHealth, DeviceState, ImportProblem, ImportResult } from '../../dispatcher/api/types.ts';
import { GuardianService } from '../../dispatcher/service.ts';
import { MIGRATIONS, migrationSql } from '../../dispatcher/store/migrations.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { hashDeviceSecret } from '../../gateway/secrets.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { instant, minutes } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import {
  apiCall,
  bareHousehold,
  type Harness,
  liveTo,
  login,
  rulesCaughtUp,
  startHarness,
  tempDir,
  testConfig,
} from '../helpers.ts';

const run = promisify(execFile);
const cli = join(import.meta.dirname, '..', '..', 'dispatcher', 'devices-cli.ts');
const START = Date.parse('2026-03-10T10:00:00+08:00');

const open: { close(): unknown }[] = [];
let h: Harness | undefined;
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

/** Runs `npm run devices:import` on a CSV file against the harness's data folder. */
async function importCsv(h: Harness, csv: string): Promise<{ code: number; stderr: string; out: string }> {
  const file = join(h.dir, `devices-${Math.random().toString(36).slice(2)}.csv`);
  const out = `${file}.secrets`;
  writeFileSync(file, csv);
  const env = { ...process.env, DATA_DIR: h.dir, LOG_LEVEL: 'silent' };
  return run(process.execPath, ['--import', 'tsx', cli, file, '--out', out], { env }).then(
    (r) => ({ code: 0, stderr: r.stderr, out }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr, out }),
  );
}

describe('the room vocabulary', () => {
  it('raises BATHROOM_DWELL at 40 min for a motion sensor imported in room 卫生间', async () => {
    const clock = new ManualClock(instant(START));
    h = await startHarness({ clock, grids: 1, perGrid: 1 });
    await h.store.upsertHousehold(bareHousehold('home-9', 'grid-1'));
    const r = await importCsv(
      h,
      'id,homeId,kind,room\nh9-bath,home-9,motion,卫生间\nh9-living,home-9,motion, 客厅 \n',
    );
    expect(r.stderr).toMatch(/imported 2 device/);
    expect(await h.store.getDeviceState('h9-bath')).toMatchObject({ room: 'bathroom', roomText: null });
    expect(await h.store.getDeviceState('h9-living')).toMatchObject({ room: 'living' });

    const secrets = new Map(
      (await import('node:fs'))
        .readFileSync(r.out, 'utf8')
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(',') as [string, string]),
    );
    const devices: SimDevice[] = [];
    for (const [id, room] of [
      ['h9-bath', 'bathroom'],
      ['h9-living', 'living'],
    ] as const) {
      const d = new SimDevice(
        { id, homeId: 'home-9', kind: 'motion', room, secret: secrets.get(id)! },
        { host: '127.0.0.1', port: h.service.mqttPort },
        clock,
      );
      await d.connect();
      open.push({ close: () => d.disconnect() });
      await d.send({ type: 'heartbeat', battery: 90 });
      devices.push(d);
    }
    const at = START + minutes(1);
    clock.advanceTo(instant(at));
    await devices[0]!.send({ type: 'motion', state: 'active', room: 'bathroom' });
    await rulesCaughtUp(h);
    const alerts = async () =>
      (await h!.store.listAlerts({ householdId: 'home-9' })).map((a) => [a.rule, a.raisedAt]);
    await liveTo(h, clock, devices, at + minutes(40) - 1);
    expect(await alerts()).toEqual([]);
    await liveTo(h, clock, devices, at + minutes(40));
    expect(await alerts()).toEqual([['BATHROOM_DWELL', at + minutes(40)]]);
  });

  it('refuses an import with a room outside the vocabulary, naming each line, and imports nothing', async () => {
    const clock = new ManualClock(instant(START));
    h = await startHarness({ clock, grids: 1, perGrid: 1 });
    const r = await importCsv(
      h,
      'id,homeId,kind,room\nok-1,home-1-01,motion,浴室\nbad-1,home-1-01,motion,阳台\nbad-2,home-1-01,door,\n',
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nothing imported');
    expect(r.stderr).toContain(
      'line 3: room: "阳台" is not a room we know; use one of bathroom (卫生间), bedroom (卧室)',
    );
    expect(r.stderr).toContain('line 4: room: "" is not a room we know');
    expect(r.stderr).not.toContain('line 2');
    expect(await h.store.getDeviceState('ok-1')).toBeNull();
  });

  it('maps typed rooms in the registry import (JSON and CSV), refuses the rest with the row, and shows new secrets once', async () => {
    const clock = new ManualClock(instant(START));
    h = await startHarness({ clock, grids: 1, perGrid: 1 });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const bad = await apiCall<{ errors: ImportProblem[] }>(h.baseUrl, admin, 'POST', '/api/registry/import', {
      devices: [
        { id: 'j-1', homeId: 'home-1-01', kind: 'motion', room: '洗手间' },
        { id: 'j-2', homeId: 'home-1-01', kind: 'motion', room: '储藏室' },
      ],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([
      {
        row: 'devices[1]',
        field: 'room',
        message:
          '"储藏室" is not a room we know; use one of bathroom (卫生间), bedroom (卧室), kitchen (厨房), living (客厅), entrance (入户门), other (其他)',
        text: {
          zh: '「房间」“储藏室”不是已知的房间，请从以下选择：卫生间、卧室、厨房、客厅、入户门、其他',
          en: 'room: "储藏室" is not a room we know; use one of bathroom (卫生间), bedroom (卧室), kitchen (厨房), living (客厅), entrance (入户门), other (其他)',
        },
      },
    ]);
    expect(await h.store.getDeviceState('j-1')).toBeNull();

    const res = await fetch(`${h.baseUrl}/api/registry/import/devices.csv`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'text/csv' },
      body: 'id,homeId,kind,room\nc-1,home-1-01,motion,卫生间\nhome-1-01-motion-kitchen,home-1-01,motion,厨房\n',
    });
    expect(res.status).toBe(200);
    const result = (await res.json()) as ImportResult;
    expect(result.imported.devices).toBe(2);
    expect(result.secrets.map((x) => x.id)).toEqual(['c-1']);
    expect(await h.store.getDeviceState('c-1')).toMatchObject({ room: 'bathroom', kind: 'motion' });
    expect((await h.store.findDevice('c-1'))?.secretHash).toMatch(/^hmac-sha256\$/);
    // The secret works: the imported sensor logs in with it.
    const dev = new SimDevice(
      { id: 'c-1', homeId: 'home-1-01', kind: 'motion', room: 'bathroom', secret: result.secrets[0]!.secret },
      { host: '127.0.0.1', port: h.service.mqttPort },
      clock,
    );
    await dev.connect();
    await dev.disconnect();
  });

  it('provisions through the API only with a room of the vocabulary, and lets an admin change it', async () => {
    const clock = new ManualClock(instant(START));
    h = await startHarness({ clock, grids: 1, perGrid: 1 });
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const bad = await apiCall<{ message: string }>(h.baseUrl, admin, 'POST', '/api/devices', {
      id: 'api-1',
      homeId: 'home-1-01',
      kind: 'motion',
      room: '卫生间',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(
      /room.*must be one of bathroom, bedroom, kitchen, living, entrance, other/,
    );
    const good = await apiCall(h.baseUrl, admin, 'POST', '/api/devices', {
      id: 'api-1',
      homeId: 'home-1-01',
      kind: 'motion',
      room: 'bathroom',
    });
    expect(good.status).toBe(201);
    const moved = await apiCall<{ device: DeviceState }>(
      h.baseUrl,
      admin,
      'POST',
      '/api/devices/api-1/room',
      {
        room: 'kitchen',
      },
    );
    expect(moved.body.device).toMatchObject({ room: 'kitchen', roomText: null });
    const refused = await apiCall(h.baseUrl, admin, 'POST', '/api/devices/api-1/room', { room: 'toilet' });
    expect(refused.status).toBe(400);
  });

  it('maps the free-text rooms of an existing SQLite file, and lists on device health the devices it could not map', async () => {
    const tmp = tempDir();
    open.push({ close: () => tmp.remove() });
    const file = join(tmp.path, 'guardian365.sqlite');
    // The file as the release before the vocabulary left it: schema version 7, rooms as admins typed them.
    const db = new Database(file);
    db.exec(
      'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
    );
    for (const m of MIGRATIONS.filter((m) => m.version <= 7)) {
      for (const sql of migrationSql(m, 'sqlite')) db.exec(sql);
      db.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(m.version, m.name, 0);
    }
    db.prepare("INSERT INTO grids (id, name, community) VALUES ('g1', 'G1', 'c1')").run();
    db.prepare(
      `INSERT INTO households (id, grid_id, building, unit, room, residents, contacts, access_notes, routine)
       VALUES ('hh', 'g1', '1', '1', '101', '[]', '[]', '', ?)`,
    ).run(JSON.stringify(bareHousehold('hh', 'g1').routine));
    const rooms: [string, string][] = [
      ['d-cn-bath', '卫生间'],
      ['d-cn-toilet', ' 厕所 '],
      ['d-en-bath', 'bathroom'],
      ['d-toilet', 'Toilet'],
      ['d-master', '主卧'],
      ['d-living', 'Living Room'],
      ['d-door', '玄关'],
      ['d-balcony', '阳台'],
      ['d-typo', 'bathrom'],
    ];
    const hash = hashDeviceSecret('x');
    for (const [id, room] of rooms)
      db.prepare(
        "INSERT INTO devices (id, home_id, kind, room, secret_hash, created_at) VALUES (?, 'hh', 'motion', ?, ?, 0)",
      ).run(id, room, hash);
    db.close();

    const store = new SqliteStore(file);
    open.push({ close: () => store.close() });
    expect(await store.migrate()).toBe(MIGRATIONS.filter((m) => m.version > 7).length);
    const after = new Map((await store.listDevices()).map((d) => [d.id, [d.room, d.roomText]]));
    expect(Object.fromEntries(after)).toEqual({
      'd-cn-bath': ['bathroom', null],
      'd-cn-toilet': ['bathroom', null],
      'd-en-bath': ['bathroom', null],
      'd-toilet': ['bathroom', null],
      'd-master': ['bedroom', null],
      'd-living': ['living', null],
      'd-door': ['entrance', null],
      'd-balcony': ['other', '阳台'],
      'd-typo': ['other', 'bathrom'],
    });

    const clock = new ManualClock(instant(START));
    const service = new GuardianService({ config: testConfig(tmp.path), clock, log: silentLogger(), store });
    await service.start();
    open.unshift({ close: () => service.stop() });
    const base = `http://127.0.0.1:${service.httpPort}`;
    const admin = await login(base, 'admin', 'admin-password-365');
    const health = await apiCall<DeviceHealth>(base, admin, 'GET', '/api/reports/devices');
    expect(health.body.unmappedRooms.map((d) => [d.id, d.homeId, d.gridId, d.roomText])).toEqual([
      ['d-balcony', 'hh', 'g1', '阳台'],
      ['d-typo', 'hh', 'g1', 'bathrom'],
    ]);
    // A person chooses the room: the device leaves the list.
    await apiCall(base, admin, 'POST', '/api/devices/d-typo/room', { room: 'bathroom' });
    const again = await apiCall<DeviceHealth>(base, admin, 'GET', '/api/reports/devices');
    expect(again.body.unmappedRooms.map((d) => d.id)).toEqual(['d-balcony']);
  });
});
