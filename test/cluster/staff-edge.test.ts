/**
 * CLU-13 through the deployment's own HAProxy configuration (deploy/haproxy.cfg, its servers pointed at
 * real processes on loopback): a device gateway, a staff gateway and a dispatcher on a real PostgreSQL and
 * Debian's redis-server, devices and a responder's app all connecting to HAProxy's one MQTT address.
 *
 * - The apps (client ids `staff:{id}`) are sent to the staff gateway, the device to the device gateway,
 *   and the notice of the device's fall crosses to the apps.
 * - `kill -9` of the staff gateway: once HAProxy's health check has seen it gone, the apps connect to the
 *   device gateway (the backup) and the next fall's notice still reaches them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as connectSocket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../gateway/protocol.ts';
import { SystemClock } from '../../kernel/clock.ts';
import type { DeviceIdentity } from '../../simulators/device.ts';
import { eventually } from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { type Cluster, freePort, type RoleProcess, startCluster } from './processes.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const haproxy = existsSync('/usr/sbin/haproxy');

/** deploy/haproxy.cfg with its addresses on loopback: the deployment's routing rules, unchanged. */
function loopbackConfig(ports: {
  socket: string;
  mqtt: number;
  http: number;
  deviceGateway: RoleProcess;
  staffGateway: RoleProcess;
  dispatcher: RoleProcess;
}): string {
  /** A gateway's address and its check on its own HTTP port, where the file names a compose service. */
  const gateway = (p: RoleProcess) => `127.0.0.1:${p.mqtt} check port ${p.http}`;
  let cfg = readFileSync(join(import.meta.dirname, '../../deploy/haproxy.cfg'), 'utf8');
  const swaps: [RegExp, string][] = [
    [/maxconn 200000/, `maxconn 2000\n    stats socket ${ports.socket} level admin`],
    [/bind :1883/, `bind 127.0.0.1:${ports.mqtt}`],
    [/bind :8080/, `bind 127.0.0.1:${ports.http}`],
    // Quicker checks than production's, so the test waits seconds for a dead gateway to be seen.
    [/default-server inter 2s fall 2 rise 2/, 'default-server inter 300ms fall 2 rise 1'],
    [/gateway-staff-1:1883 check port 8080/, gateway(ports.staffGateway)],
    // The device gateway: its own server line and its backup line for the staff apps.
    [/gateway-1:1883 check port 8080/g, gateway(ports.deviceGateway)],
    [/ *server gateway-2 .*\n/g, ''],
    [/dispatcher-1:8080 check/, `127.0.0.1:${ports.dispatcher.http} check`],
    [/ *server dispatcher-2 .*\n/, ''],
  ];
  for (const [from, to] of swaps) {
    if (!from.test(cfg)) throw new Error(`deploy/haproxy.cfg no longer has ${from}`);
    cfg = cfg.replace(from, to);
  }
  return cfg;
}

describe.skipIf(pgBackend.skip || !haproxy)(
  'responders’ apps on a gateway of their own, through HAProxy',
  () => {
    let cluster: Cluster;
    let deviceGw: RoleProcess;
    let staffGw: RoleProcess;
    let proxy: ChildProcess;
    /** HAProxy's MQTT address, as a gateway for the cluster's client helpers. */
    let edge: RoleProcess;
    /** HAProxy's admin socket, where the servers' check status is read. */
    let socket: string;
    const clock = new SystemClock();
    const notices: string[] = [];
    let apps: mqtt.MqttClient[] = [];

    beforeAll(async () => {
      cluster = await startCluster({
        grids: 1,
        householdsPerGrid: 3,
        seededAt: clock.now(),
        redis: true,
        gateways: ['gateway-1', 'gateway-staff-1'],
        dispatchers: ['dispatcher-1'],
        env: { HEALTH_CHECK_MS: '300' },
      });
      deviceGw = cluster.gateways.get('gateway-1')!;
      staffGw = cluster.gateways.get('gateway-staff-1')!;
      const ports = { mqtt: await freePort(), http: await freePort() };
      const dir = mkdtempSync(join(tmpdir(), 'g365-haproxy-'));
      const cfg = join(dir, 'haproxy.cfg');
      socket = join(dir, 'admin.sock');
      writeFileSync(
        cfg,
        loopbackConfig({
          ...ports,
          socket,
          deviceGateway: deviceGw,
          staffGateway: staffGw,
          dispatcher: cluster.dispatcher,
        }),
      );
      let out = '';
      proxy = spawn('/usr/sbin/haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
      proxy.stdout!.on('data', (c) => (out += c));
      proxy.stderr!.on('data', (c) => (out += c));
      edge = { ...deviceGw, role: 'haproxy', mqtt: ports.mqtt };
      // HAProxy listens once its configuration is loaded; its first checks pass within a few hundred ms.
      await eventually(
        async () => {
          if (proxy.exitCode !== null) throw new Error(`haproxy exited: ${out}`);
          const r = await fetch(`http://127.0.0.1:${ports.http}/readyz`).catch(() => null);
          return r?.ok ? true : undefined;
        },
        20_000,
        'HAProxy serving the dispatcher',
      );
    }, 120_000);
    afterAll(async () => {
      for (const a of apps) a.end(true);
      proxy?.kill('SIGKILL');
      await cluster?.stop();
    });

    const connected = async (p: RoleProcess) => {
      const text = await (await fetch(`http://127.0.0.1:${p.http}/metrics`)).text();
      return Number(/^g365_devices_connected (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
    };
    const radars = () => cluster.devices.filter((d) => d.kind === 'fall');
    /** What HAProxy's checks say of a server (`UP`, `DOWN`…), from its admin socket's `show stat`. */
    const serverStatus = (backend: string, server: string) =>
      new Promise<string>((resolve, reject) => {
        let csv = '';
        const s = connectSocket(socket, () => s.end('show stat\n'));
        s.on('data', (c) => (csv += c));
        s.on('error', reject);
        s.on('close', () => {
          const row = csv.split('\n').find((l) => l.startsWith(`${backend},${server},`));
          // Column 18 of `show stat` is the status.
          resolve(row?.split(',')[17] ?? 'missing');
        });
      });
    /** Every rostered responder's app, connected through HAProxy. */
    const connectApps = async () => {
      apps = await cluster.rosterApps((_staff, p) => notices.push(p), edge);
      return apps.length;
    };
    const fall = async (radar: DeviceIdentity) => {
      const device = await cluster.device(radar, edge);
      await device.publishAsync(
        topics.events(radar.homeId, radar.id),
        JSON.stringify({ type: 'fall', ts: clock.now(), seq: 1, state: 'detected', room: radar.room }),
        { qos: 1 },
      );
      const alert = await eventually(
        async () =>
          (await cluster.store.listAlerts({ rule: 'FALL', limit: 10 })).find(
            (a) => a.householdId === radar.homeId,
          ),
        15_000,
        'the FALL alert',
      );
      return { device, alert };
    };
    const noticeOf = (alertId: string) =>
      eventually(
        async () => notices.find((p) => JSON.parse(p).alertId === alertId),
        15_000,
        `the app's notice of ${alertId}`,
      );

    it('sends the apps to the staff gateway and the devices to the device gateway; the notice crosses', async () => {
      const n = await connectApps();
      expect(n).toBeGreaterThan(0);
      expect(await connected(staffGw)).toBe(n);
      const { alert } = await fall(radars()[0]!);
      // The device and nothing else on the device gateway: no app is there.
      expect(await connected(deviceGw)).toBe(1);
      expect(await connected(staffGw)).toBe(n);
      expect(JSON.parse(await noticeOf(alert.id)).householdId).toBe(alert.householdId);
    }, 60_000);

    it('sends the apps to the device gateway once the staff gateway is dead, and the notice still reaches them', async () => {
      for (const a of apps) a.end(true);
      await staffGw.kill();
      await eventually(
        async () =>
          (await serverStatus('staff-gateways', 'gateway-staff-1')).startsWith('DOWN') ? true : undefined,
        30_000,
        'HAProxy seeing the staff gateway down',
      );
      const n = await connectApps();
      // The device of the first fall and every app, on the one gateway left.
      expect(await connected(deviceGw)).toBe(1 + n);
      const { alert } = await fall(radars()[1]!);
      expect(await connected(deviceGw)).toBe(2 + n);
      expect(JSON.parse(await noticeOf(alert.id)).alertId).toBe(alert.id);
    }, 90_000);
  },
);
