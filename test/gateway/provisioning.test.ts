/**
 * Device provisioning through the whole service (DEV-01, SPEC §11): admins disable, enable and
 * rotate device secrets through the API (audited; the live session ends at once), device health shows
 * rejections by reason, the bulk CSV import CLI creates devices with secrets shown once, and /metrics
 * carries the gateway's figures.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../gateway/protocol.ts';
import { SystemClock } from '../../kernel/clock.ts';
import type { DeviceIdentity } from '../../simulators/device.ts';
import { apiCall, eventually, type Harness, login, startHarness } from '../helpers.ts';

const run = promisify(execFile);
const clock = new SystemClock();
let h: Harness;
let admin: string;
let dispatcher: string;
let device: DeviceIdentity;

beforeAll(async () => {
  h = await startHarness({ clock, grids: 1, perGrid: 2 });
  admin = await login(h.baseUrl, 'admin', 'admin-password-365');
  dispatcher = await login(h.baseUrl, 'dispatcher');
  device = h.devices[0]!;
});

afterAll(async () => {
  await h.close();
});

function connect(id: string, secret: string): Promise<MqttClient> {
  return mqtt.connectAsync({
    host: '127.0.0.1',
    port: h.service.mqttPort,
    clientId: id,
    username: id,
    password: secret,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
}

describe('device provisioning API', () => {
  it('lets only an admin disable a device; its live session ends and it gets CONNACK 5 until enabled', async () => {
    const live = await connect(device.id, device.secret);
    const closed = new Promise<void>((r) => live.once('close', () => r()));
    const forbidden = await apiCall(h.baseUrl, dispatcher, 'POST', `/api/devices/${device.id}/disable`);
    expect(forbidden.status).toBe(403);
    const res = await apiCall<{ device: { disabled: boolean } }>(
      h.baseUrl,
      admin,
      'POST',
      `/api/devices/${device.id}/disable`,
    );
    expect(res.status).toBe(200);
    expect(res.body.device.disabled).toBe(true);
    await closed;
    live.end(true);
    await expect(connect(device.id, device.secret)).rejects.toMatchObject({ code: 5 });
    expect((await apiCall(h.baseUrl, admin, 'POST', `/api/devices/${device.id}/enable`)).status).toBe(200);
    const back = await connect(device.id, device.secret);
    await back.endAsync();
    const audit = await h.store.listAudit(50);
    expect(audit.filter((a) => a.target === device.id).map((a) => a.action)).toEqual(
      expect.arrayContaining(['device.disable', 'device.enable']),
    );
  });

  it('rotates a secret: the new one is shown once, the old one stops working at once', async () => {
    const live = await connect(device.id, device.secret);
    const closed = new Promise<void>((r) => live.once('close', () => r()));
    const res = await apiCall<{ id: string; secret: string }>(
      h.baseUrl,
      admin,
      'POST',
      `/api/devices/${device.id}/rotate-secret`,
    );
    expect(res.status).toBe(200);
    expect(res.body.secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    await closed;
    live.end(true);
    await expect(connect(device.id, device.secret)).rejects.toMatchObject({ code: 4 });
    const fresh = await connect(device.id, res.body.secret);
    await fresh.endAsync();
    // Only the salted hash is stored, in the device format (SEC-05).
    const stored = (await h.store.findDevice(device.id))?.secretHash;
    expect(stored).not.toContain(res.body.secret);
    expect(stored).toMatch(/^hmac-sha256\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
    expect((await h.store.listAudit(50)).some((a) => a.action === 'device.rotate_secret')).toBe(true);
    device = { ...device, secret: res.body.secret };
  });

  it('stores a provisioned device secret as a salted HMAC and staff passwords as scrypt (SEC-05)', async () => {
    const res = await apiCall<{ id: string; secret: string }>(h.baseUrl, admin, 'POST', '/api/devices', {
      id: 'sec05-door',
      homeId: device.homeId,
      kind: 'door',
      room: 'entrance',
    });
    expect(res.status).toBe(201);
    expect((await h.store.findDevice('sec05-door'))?.secretHash).toMatch(/^hmac-sha256\$/);
    // The seeded devices too: every path that issues a secret stores the device format.
    expect((await h.store.findDevice(device.id))?.secretHash).toMatch(/^hmac-sha256\$/);
    expect((await h.store.getStaffByUsername('admin'))?.passwordHash).toMatch(/^scrypt\$16384\$8\$1\$/);
    const c = await connect('sec05-door', res.body.secret);
    await c.endAsync();
  });

  it('answers 404 for an unknown device and 401 without a login', async () => {
    expect((await apiCall(h.baseUrl, admin, 'POST', '/api/devices/nobody/rotate-secret')).status).toBe(404);
    expect((await apiCall(h.baseUrl, null, 'POST', `/api/devices/${device.id}/disable`)).status).toBe(401);
  });

  it('shows rejected messages by reason in GET /api/devices/{id} and the gateway figures on /metrics', async () => {
    const c = await connect(device.id, device.secret);
    const topic = topics.events(device.homeId, device.id);
    await c.publishAsync(topic, 'not json', { qos: 1 });
    await c.publishAsync(topic, JSON.stringify({ type: 'sos', ts: clock.now(), extra: 1 }), { qos: 1 });
    await c.endAsync();
    const res = await eventually(
      async () => {
        const r = await apiCall<{
          device: { rejectedCount: number };
          rejectedByReason: Record<string, number>;
        }>(h.baseUrl, dispatcher, 'GET', `/api/devices/${device.id}`);
        return r.body.device?.rejectedCount >= 2 ? r : undefined;
      },
      5000,
      'rejections in device health',
    );
    expect(res.body.rejectedByReason['payload is not valid JSON']).toBe(1);
    expect(Object.values(res.body.rejectedByReason).reduce((a, b) => a + b, 0)).toBe(2);
    const metrics = await (await fetch(`${h.baseUrl}/metrics`)).text();
    expect(metrics).toMatch(/g365_events_rejected_total\{reason="payload is not valid JSON"\} [1-9]/);
    expect(metrics).toMatch(/g365_mqtt_auth_failures_total [1-9]/);
    expect(metrics).toMatch(/g365_event_log_write_seconds_count [1-9]/);
    expect(metrics).toContain('g365_mqtt_throttled_total');
    expect(metrics).toContain('g365_telemetry_dropped_total');
    expect(metrics).toContain('g365_devices_online');
  });
});

describe('bulk CSV device import CLI', () => {
  const cli = join(import.meta.dirname, '..', '..', 'dispatcher', 'devices-cli.ts');
  const env = () => ({ ...process.env, DATA_DIR: h.dir, LOG_LEVEL: 'silent' });

  it('imports nothing and names each bad line when any row is wrong', async () => {
    const file = join(h.dir, 'bad.csv');
    const home = device.homeId;
    writeFileSync(
      file,
      `id,homeId,kind,room\nnew-1,${home},door,entrance\nnew-2,${home},toaster,kitchen\nnew-3,no-such-home,door,entrance\n`,
    );
    const err = (await run(process.execPath, ['--import', 'tsx', cli, file], { env: env() }).catch(
      (e: unknown) => e,
    )) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/line 3: kind/);
    expect(err.stderr).toMatch(/line 4: no household no-such-home/);
    expect(await h.store.getDeviceState('new-1')).toBeNull();
  });

  it('creates every device with a new secret written once to a private file, and the devices can log in', async () => {
    const file = join(h.dir, 'devices.csv');
    const out = join(h.dir, 'secrets.csv');
    const home = device.homeId;
    writeFileSync(
      file,
      `id,homeId,kind,room\nbulk-1,${home},door,entrance\n"bulk-2",${home},motion,"living room"\n`,
    );
    const { stderr } = await run(process.execPath, ['--import', 'tsx', cli, file, '--out', out], {
      env: env(),
    });
    expect(stderr).toMatch(/imported 2 device/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('id,secret');
    const secrets = new Map(lines.slice(1).map((l) => l.split(',') as [string, string]));
    expect([...secrets.keys()]).toEqual(['bulk-1', 'bulk-2']);
    expect(await h.store.getDeviceState('bulk-2')).toMatchObject({ kind: 'motion', room: 'living' });
    expect((await h.store.findDevice('bulk-1'))?.secretHash).toMatch(/^hmac-sha256\$/);
    const c = await connect('bulk-1', secrets.get('bulk-1')!);
    await c.endAsync();
  });
});
