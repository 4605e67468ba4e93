/**
 * CLU-01, CLU-02: the same code as separate processes sharing PostgreSQL. A gateway process and a
 * dispatcher process, each started as an operator would (`tsx dispatcher/main.ts` with ROLE=…): a fall
 * from a real MQTT device on the gateway reaches the dispatcher's alert API and the responder's app
 * connected to the gateway; disabling the device through the dispatcher's API ends its connection on
 * the gateway; each process answers its own /healthz, /readyz and /metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../dispatcher/config.ts';
import type { PostgresStore } from '../../dispatcher/store/postgres.ts';
import { topics } from '../../gateway/protocol.ts';
import type { DeviceIdentity } from '../../simulators/device.ts';
import { apiCall, eventually } from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { appDeliveries, type Cluster, type RoleProcess, startCluster } from './processes.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;

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
