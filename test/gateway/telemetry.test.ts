/**
 * Telemetry to InfluxDB 2.x (DATA-03) against a real server: Debian's VictoriaMetrics
 * speaks the InfluxDB v2 write API (`/api/v2/write`). Points arrive with home, device, kind, room and grid
 * tags; an unreachable server never holds back a PUBACK, and what is dropped is counted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../gateway/protocol.ts';
import { InfluxTelemetry } from '../../gateway/telemetry.ts';
import { SystemClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { raiseFall } from '../dispatcher/dispatch-helpers.ts';
import { apiCall, eventually, login, startHarness } from '../helpers.ts';
import { clock, connectDevice, type GatewayWorld, gatewayWorld } from './fixtures.ts';

let world: GatewayWorld;
let vm: ChildProcess;
let vmUrl: string;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

let vmPort: number;

/** Debian's VictoriaMetrics on `vmPort`, its data in the world's folder (kept across a restart). */
async function startVm(): Promise<void> {
  vm = spawn(
    '/usr/bin/victoria-metrics',
    [
      `-httpListenAddr=127.0.0.1:${vmPort}`,
      `-storageDataPath=${join(world.dir.path, 'vm')}`,
      '-search.latencyOffset=0s',
      '-loggerLevel=ERROR',
    ],
    { stdio: 'ignore' },
  );
  await eventually(async () => (await fetch(`${vmUrl}/health`)).ok, 20_000, 'victoria-metrics up');
}

async function stopVm(): Promise<void> {
  const exited = new Promise((r) => vm.once('exit', r));
  vm.kill('SIGTERM');
  await exited;
}

beforeAll(async () => {
  world = await gatewayWorld();
  vmPort = await freePort();
  vmUrl = `http://127.0.0.1:${vmPort}`;
  await startVm();
});

afterAll(async () => {
  vm?.kill('SIGKILL');
  await world.close();
});

interface Series {
  metric: Record<string, string>;
  values: number[];
}

async function exported(match: string): Promise<Series[]> {
  const res = await fetch(`${vmUrl}/api/v1/export?match[]=${encodeURIComponent(match)}`);
  const text = await res.text();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Series);
}

describe('telemetry to InfluxDB 2.x', () => {
  it('writes accepted events and heartbeats as points tagged with home, device, kind, room and grid', async () => {
    const telemetry = new InfluxTelemetry({
      url: vmUrl,
      token: 'test-token',
      org: 'g365',
      bucket: 'telemetry',
      log: silentLogger(),
      flushMs: 100,
    });
    const gw = await world.start({ telemetry });
    const c = await connectDevice(gw.port, 'h1-fall');
    await c.publishAsync(
      topics.events('h1', 'h1-fall'),
      JSON.stringify({ type: 'heartbeat', ts: clock.now(), battery: 64, rssi: -60 }),
      { qos: 1 },
    );
    await c.publishAsync(
      topics.events('h1', 'h1-fall'),
      JSON.stringify({ type: 'fall', ts: clock.now(), state: 'detected', confidence: 0.9 }),
      { qos: 1 },
    );
    // A rejected message is not telemetry.
    await c.publishAsync(topics.events('h1', 'h1-fall'), '{"broken', { qos: 1 });
    await c.endAsync();
    const tags = { home: 'h1', device: 'h1-fall', kind: 'fall', room: 'bathroom', grid: 'g1' };
    const battery = await eventually(
      async () => (await exported('{__name__="heartbeat_battery"}'))[0],
      20_000,
      'heartbeat in victoria-metrics',
    );
    expect(battery.metric).toMatchObject(tags);
    expect(battery.values).toEqual([64]);
    const fall = await eventually(
      async () => (await exported('{__name__="device_event_value",type="fall"}'))[0],
      20_000,
      'fall event in victoria-metrics',
    );
    expect(fall.metric).toMatchObject({ ...tags, state: 'detected' });
    expect(fall.values).toEqual([1]);
    expect(telemetry.stats).toMatchObject({ written: 2, dropped: 0 });
  });

  it('never holds back a PUBACK when InfluxDB is unreachable, and counts the dropped points', async () => {
    const deadPort = await freePort();
    const telemetry = new InfluxTelemetry({
      url: `http://127.0.0.1:${deadPort}`,
      token: 't',
      org: 'o',
      bucket: 'b',
      log: silentLogger(),
      maxBuffer: 10,
      batchSize: 5,
      flushMs: 50,
    });
    const gw = await world.start({ telemetry, limits: { publishRate: { perSecond: 1000, burst: 1000 } } });
    const c = await connectDevice(gw.port, 'h1-motion');
    const topic = topics.events('h1', 'h1-motion');
    for (let i = 0; i < 100; i++) {
      await c.publishAsync(
        topic,
        JSON.stringify({ type: 'motion', ts: clock.now(), seq: 50_000 + i, state: 'active', room: 'living' }),
        { qos: 1 },
      );
    }
    await c.endAsync();
    // Every event is acknowledged and logged; the points that could not go anywhere are counted.
    const logged = (await world.store.readEvents(0, 1_000_000)).filter(
      (e) => e.deviceId === 'h1-motion' && e.event.type === 'motion' && (e.event.seq ?? 0) >= 50_000,
    );
    expect(logged).toHaveLength(100);
    await eventually(
      () => telemetry.stats.dropped + telemetry.stats.buffered === 100,
      20_000,
      'all points dropped or still buffered',
    );
    expect(telemetry.stats.written).toBe(0);
    expect(telemetry.stats.buffered).toBeLessThanOrEqual(10);
    expect(gw.metrics.telemetryDropped).toBe(telemetry.stats.dropped);
  });

  it('buffers the points of an outage and delivers them when InfluxDB is back, alert metrics included', async () => {
    const telemetry = new InfluxTelemetry({
      url: vmUrl,
      token: 'test-token',
      org: 'g365',
      bucket: 'telemetry',
      log: silentLogger(),
      flushMs: 50,
    });
    const gw = await world.start({ telemetry, limits: { publishRate: { perSecond: 1000, burst: 1000 } } });
    const c = await connectDevice(gw.port, 'h1-door');
    const topic = topics.events('h1', 'h1-door');
    const t0 = clock.now();
    const send = (i: number) =>
      c.publishAsync(topic, JSON.stringify({ type: 'door', ts: t0 + i, seq: 70_000 + i, state: 'open' }), {
        qos: 1,
      });
    const doors = async () => (await exported('{__name__="device_event_value",device="h1-door"}'))[0];
    await send(0);
    await eventually(async () => (await doors())?.values.length === 1, 20_000, 'the first point');

    // InfluxDB goes away: events are still acknowledged at once, their points wait.
    await stopVm();
    for (let i = 1; i <= 30; i++) await send(i);
    const tags = { community: 'c', grid: 'g1', rule: 'FALL', severity: 'critical' };
    telemetry.recordAlert(tags, 'raised', t0 + 100);
    telemetry.recordAlert(tags, 'accepted', t0 + 200, 95);
    telemetry.recordAlert(tags, 'on_site', t0 + 300, 610);
    telemetry.recordAlert(tags, 'breached', t0 + 400, 900);
    await eventually(() => telemetry.stats.failing, 20_000, 'writes failing');
    await eventually(() => telemetry.stats.buffered === 34, 20_000, 'the outage buffered');
    expect(gw.metrics.telemetryDropped).toBe(0);

    // Back: everything written during the outage arrives, in order, nothing dropped.
    await startVm();
    const after = await eventually(
      async () => {
        const s = await doors();
        return s && s.values.length === 31 ? s : undefined;
      },
      60_000,
      'the outage points in victoria-metrics',
    );
    expect(after.values).toEqual(Array(31).fill(1));
    const alerts = await eventually(
      async () => {
        const s = await exported('{__name__="alert_count",rule="FALL"}');
        return s.length === 4 ? s : undefined;
      },
      20_000,
      'the alert metrics',
    );
    expect(alerts.map((a) => a.metric.transition).sort()).toEqual([
      'accepted',
      'breached',
      'on_site',
      'raised',
    ]);
    const seconds = await exported('{__name__="alert_seconds",transition="on_site"}');
    expect(seconds[0]).toMatchObject({ metric: tags, values: [610] });
    expect(telemetry.stats).toMatchObject({ dropped: 0, failing: false, buffered: 0 });
    await c.endAsync();
  });

  it('writes the alert metrics of the service: a fall raised and accepted', async () => {
    const clock = new SystemClock();
    const h = await startHarness({
      clock,
      env: { INFLUX_URL: vmUrl, INFLUX_TOKEN: 't', INFLUX_ORG: 'o', INFLUX_BUCKET: 'b' },
    });
    const closers: { close(): unknown }[] = [];
    try {
      const alert = await raiseFall(h, clock, 'home-1-01', closers);
      const worker = await login(h.baseUrl, 'g1-worker');
      expect((await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${alert.id}/accept`, {})).status).toBe(
        200,
      );
      const points = await eventually(
        async () => {
          const s = await exported(`{__name__="alert_count",rule="FALL",grid="${alert.gridId}"}`);
          return s.length === 2 ? s : undefined;
        },
        20_000,
        'raised and accepted in victoria-metrics',
      );
      expect(points.map((p) => p.metric.transition).sort()).toEqual(['accepted', 'raised']);
      expect(points[0]!.metric).toMatchObject({ community: alert.community, severity: 'critical' });
    } finally {
      for (const c of closers) await c.close();
      await h.close();
    }
  });
});
