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
import { silentLogger } from '../../kernel/log.ts';
import { eventually } from '../helpers.ts';
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

beforeAll(async () => {
  world = await gatewayWorld();
  const port = await freePort();
  vmUrl = `http://127.0.0.1:${port}`;
  vm = spawn(
    '/usr/bin/victoria-metrics',
    [
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageDataPath=${join(world.dir.path, 'vm')}`,
      '-search.latencyOffset=0s',
      '-loggerLevel=ERROR',
    ],
    { stdio: 'ignore' },
  );
  await eventually(async () => (await fetch(`${vmUrl}/health`)).ok, 20_000, 'victoria-metrics up');
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
});
