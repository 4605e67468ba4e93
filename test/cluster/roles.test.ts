/**
 * CLU-01, CLU-02: the same code as separate processes sharing PostgreSQL. A gateway process and a
 * dispatcher process, each started as an operator would (`tsx dispatcher/main.ts` with ROLE=…): a fall
 * from a real MQTT device on the gateway reaches the dispatcher's alert API and the responder's app
 * connected to the gateway; disabling the device through the dispatcher's API ends its connection on
 * the gateway; each process answers its own /healthz, /readyz and /metrics.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { getPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../dispatcher/config.ts';
import type { PostgresStore } from '../../dispatcher/store/postgres.ts';
import { topics } from '../../gateway/protocol.ts';
import { GATEWAY_NICE } from '../../kernel/priority.ts';
import type { DeviceIdentity } from '../../simulators/device.ts';
import { apiCall, eventually, tempDir } from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { appDeliveries, type Cluster, type RoleProcess, startCluster, startRole } from './processes.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

describe('ROLE on the embedded store', () => {
  it('refuses a gateway or dispatcher role on SQLite with a message naming DATABASE_URL', () => {
    for (const role of ['gateway', 'dispatcher'])
      for (const url of [undefined, 'sqlite:/tmp/x.sqlite']) {
        let error: unknown;
        try {
          loadConfig({ ROLE: role, DATABASE_URL: url });
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as ConfigError).problems[0]).toMatch(new RegExp(`^ROLE=${role}: .*DATABASE_URL`));
      }
    expect(loadConfig({}).ROLE).toBe('all');
    expect(() => loadConfig({ ROLE: 'edge' })).toThrow(/ROLE=.*edge/);
  });

  it('refuses a PROCESS_NICE outside -20…19 (CLU-12)', () => {
    for (const bad of ['20', '-21', 'high', '1.5'])
      expect(() => loadConfig({ PROCESS_NICE: bad })).toThrow(/PROCESS_NICE/);
    expect(loadConfig({ PROCESS_NICE: '-5' }).PROCESS_NICE).toBe(-5);
  });

  // setpriv drops CAP_SYS_NICE from the bounding set: only root may (CI runs as root).
  const asRoot = process.getuid?.() === 0 && existsSync('/usr/bin/setpriv') && getPriority() > -20;
  it.skipIf(!asRoot)(
    'runs as started when the system refuses a higher priority, and says so (CLU-12)',
    async () => {
      // Without CAP_SYS_NICE (dropped from the bounding set, so even root lacks it), a nice below the one the
      // process started with is refused by the system: the service says so and serves.
      const dir = tempDir('g365-nice-');
      const child = spawn(
        'setpriv',
        [
          '--bounding-set',
          '-sys_nice',
          process.execPath,
          '--import',
          'tsx',
          join(root, 'dispatcher/main.ts'),
        ],
        {
          cwd: root,
          env: {
            ...process.env,
            DATABASE_URL: undefined,
            ROLE: 'all',
            DATA_DIR: dir.path,
            MQTT_PORT: '0',
            HTTP_PORT: '0',
            ADMIN_PASSWORD: 'nice-test-password-365',
            PROCESS_NICE: String(Math.max(-20, getPriority() - 5)),
            LOG_LEVEL: 'warn',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (c) => {
        out += c;
      });
      child.stderr.on('data', (c) => {
        out += c;
      });
      try {
        await eventually(() => out.includes('Press Ctrl-C'), 80_000, `the service to start: ${out}`);
        expect(out).toMatch(
          /priority +nice \S+ \(PROCESS_NICE=-?\d+ refused: EACCES: a nice below -?\d+ needs CAP_SYS_NICE\)/,
        );
        expect(getPriority(child.pid!)).toBe(getPriority());
        const port = Number(/console +http:\/\/localhost:(\d+)/.exec(out)?.[1]);
        expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
        expect(out.match(/cannot set the process priority/g)).toHaveLength(1);
      } finally {
        child.kill('SIGKILL');
        dir.remove();
      }
    },
    90_000,
  );
});

describe.skipIf(pgBackend.skip)(`a gateway and a dispatcher process on ${pgBackend.name}`, () => {
  let cluster: Cluster;
  let store: PostgresStore;
  let gateway: RoleProcess;
  let dispatcher: RoleProcess;
  let devices: DeviceIdentity[];

  beforeAll(async () => {
    cluster = await startCluster({ grids: 1, householdsPerGrid: 1 });
    ({ store, gateway, dispatcher, devices } = cluster);
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  const url = (p: RoleProcess, path: string) => `http://127.0.0.1:${p.http}${path}`;

  it('runs a gateway below the dispatcher in CPU priority: ingestion yields to alerting (CLU-12)', async () => {
    // A gateway of its own at the role's default (the cluster's run at the test runner's priority, so that
    // they do not yield to the other test files running beside them).
    const own = await startRole('gateway', { DATABASE_URL: cluster.env.DATABASE_URL! });
    try {
      const nice = Math.max(GATEWAY_NICE, getPriority());
      // Every thread of it (Linux keeps a nice per thread: V8's collector threads too).
      const tids = readdirSync(`/proc/${own.child.pid}/task`).map(Number);
      expect(tids.length).toBeGreaterThan(1);
      expect(tids.map((t) => getPriority(t))).toEqual(tids.map(() => nice));
      if (nice !== getPriority()) expect(own.output()).toMatch(/priority +nice \d+ \(PROCESS_NICE; CLU-12\)/);
      // The dispatcher keeps the priority it was started with.
      expect(getPriority(dispatcher.child.pid!)).toBe(getPriority());
    } finally {
      await own.kill();
    }
  }, 90_000);

  it('serves its own health, readiness and metrics in each process', async () => {
    expect(gateway.mqtt).toBeGreaterThan(0);
    expect(dispatcher.mqtt).toBe(0);
    for (const p of [gateway, dispatcher]) {
      expect((await fetch(url(p, '/healthz'))).status).toBe(200);
      await eventually(
        async () => (await fetch(url(p, '/readyz'))).status === 200,
        20_000,
        `${p.role} ready`,
      );
    }
    expect(await (await fetch(url(gateway, '/metrics'))).text()).toMatch(/^g365_devices_connected \d+$/m);
    expect(await (await fetch(url(dispatcher, '/metrics'))).text()).toMatch(/^g365_rules_cursor \d+$/m);
    // The gateway role has no API and no console.
    expect((await fetch(url(gateway, '/api/alerts'))).status).toBe(404);
  });

  it("suggests the responder's arrival when the home's door opens after they set off, from the community's rules", async () => {
    // On ROLE=dispatcher each community's pipeline hands the events of its own homes to the alerts (CLU-03):
    // a door opening after `en_route` flags the alert (SPEC §6).
    const admin = await cluster.admin();
    const button = devices.find((d) => d.kind === 'button')!;
    const door = devices.find((d) => d.kind === 'door' && d.homeId === button.homeId)!;
    const [buttonClient, doorClient] = [await cluster.device(button), await cluster.device(door)];
    await buttonClient.publishAsync(
      topics.events(button.homeId, button.id),
      JSON.stringify({ type: 'sos', ts: Date.now(), seq: 1 }),
      { qos: 1 },
    );
    const alert = await eventually(
      async () =>
        (
          await apiCall<{ alerts: { id: string; rule: string; assigneeId: string | null }[] }>(
            url(dispatcher, ''),
            admin,
            'GET',
            '/api/alerts?state=open',
          )
        ).body.alerts?.find((a) => a.rule === 'SOS' && a.assigneeId !== null),
      10_000,
      'the SOS alert, routed to a responder',
    );
    const token = await cluster.login(cluster.plan.staff.find((s) => s.id === alert.assigneeId)!.username);
    for (const action of ['accept', 'en-route'])
      expect(
        (await apiCall(url(dispatcher, ''), token, 'POST', `/api/alerts/${alert.id}/${action}`, {})).status,
      ).toBe(200);
    await doorClient.publishAsync(
      topics.events(door.homeId, door.id),
      JSON.stringify({ type: 'door', ts: Date.now(), seq: 1, state: 'open' }),
      { qos: 1 },
    );
    const suggested = await eventually(
      async () => (await store.getAlert(alert.id))?.arrivalSuggestedAt ?? undefined,
      10_000,
      'the arrival suggested on the alert',
    );
    expect(suggested).toBeGreaterThan(0);
    expect((await store.alertHistory(alert.id)).filter((e) => e.action === 'arrival_suggested')).toHaveLength(
      1,
    );
    const done = await apiCall(url(dispatcher, ''), token, 'POST', `/api/alerts/${alert.id}/on-site`, {});
    expect(done.status).toBe(200);
  }, 60_000);

  it('takes a fall on the gateway to the alert API of the dispatcher and the responder app on the gateway', async () => {
    const admin = await cluster.admin();
    // Every rostered responder's app connected to the gateway process, with a token from the dispatcher.
    const received = new Map<string, string[]>();
    const apps = await cluster.rosterApps((staffId, p) =>
      received.set(staffId, [...(received.get(staffId) ?? []), p]),
    );

    const radar = devices.find((d) => d.kind === 'fall')!;
    const device = await cluster.device(radar);
    const sentAt = Date.now();
    await device.publishAsync(
      topics.events(radar.homeId, radar.id),
      JSON.stringify({ type: 'fall', ts: sentAt, seq: 1, state: 'detected', room: radar.room }),
      { qos: 1 },
    );
    const alert = await eventually(
      async () => {
        const r = await apiCall<{ alerts: { id: string; rule: string; assigneeId: string | null }[] }>(
          url(dispatcher, ''),
          admin,
          'GET',
          '/api/alerts?state=open',
        );
        return r.body.alerts?.find((a) => a.rule === 'FALL' && a.assigneeId !== null);
      },
      10_000,
      'the FALL alert on the dispatcher, routed to its primary responder',
    );
    // The primary responder's app, connected to the other process, got the notice.
    const notice = await eventually(() => received.get(alert.assigneeId!)?.[0], 10_000, 'notice on the app');
    expect(JSON.parse(notice)).toMatchObject({ alertId: alert.id });
    // Recorded once the gateway that holds the app confirms it, a moment after the app has it.
    const deliveries = await appDeliveries(store, alert.id, alert.assigneeId!);
    expect(deliveries).toMatchObject([{ ok: true }]);

    // Disabled through the dispatcher: the gateway process ends the device's connection, and refuses it.
    let closed = false;
    device.once('close', () => {
      closed = true;
    });
    const res = await apiCall(url(dispatcher, ''), admin, 'POST', `/api/devices/${radar.id}/disable`);
    expect(res.status).toBe(200);
    await eventually(() => closed, 5_000, 'the device connection closed by the gateway process');
    await expect(cluster.device(radar)).rejects.toMatchObject({ code: 5 });

    // A responder disabled through the dispatcher: their app on the gateway process is closed (SEC-03).
    const primaryApp = apps.find((c) => c.options.clientId === `staff:${alert.assigneeId}`)!;
    let appClosed = false;
    primaryApp.once('close', () => {
      appClosed = true;
    });
    const off = await apiCall(url(dispatcher, ''), admin, 'PATCH', `/api/staff/${alert.assigneeId}`, {
      disabled: true,
    });
    expect(off.status).toBe(200);
    await eventually(() => appClosed, 5_000, "the disabled responder's app closed by the gateway process");
  }, 60_000);
});
