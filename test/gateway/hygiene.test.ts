/**
 * Protocol hygiene beyond aedes' defaults (EDGE-01), with raw bytes and mqtt-packet on a real
 * gateway: what MQTT 3.1.1 forbids closes the connection, sizes and rates are bounded, and the gateway
 * keeps serving well-behaved devices through it all.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/gateway.ts';
import { topics } from '../../gateway/protocol.ts';
import { eventually } from '../helpers.ts';
import {
  clock,
  connectDevice,
  encodeLength,
  type GatewayWorld,
  gatewayWorld,
  RawClient,
  rawPublish,
} from './fixtures.ts';

let world: GatewayWorld;
let gw: Gateway;

beforeAll(async () => {
  world = await gatewayWorld();
  gw = await world.start({
    connectTimeoutMs: 500,
    limits: { idleWithoutKeepaliveMs: 500 },
  });
});

afterAll(async () => {
  await world.close();
});

const violations = (reason: string) => gw.metrics.violationsByReason.get(reason) ?? 0;
const event = (seq: number) =>
  Buffer.from(JSON.stringify({ type: 'fall', ts: clock.now(), seq, state: 'cleared', room: 'bathroom' }));
const fallTopic = Buffer.from(topics.events('h1', 'h1-fall'));

async function loggedIn(id = 'h1-fall'): Promise<RawClient> {
  const c = await RawClient.open(gw.port);
  expect(await c.login(id)).toBe(0);
  return c;
}

describe('gateway hygiene: sizes', () => {
  it('closes a connection that declares a 256 MB PUBLISH as soon as the length is read, without buffering it', async () => {
    const c = await loggedIn();
    const before = violations('packet too large');
    // Fixed header of a QoS 1 PUBLISH with remaining length 268,435,455 and the first few bytes of it.
    c.write(Buffer.concat([Buffer.from([0x32, 0xff, 0xff, 0xff, 0x7f]), Buffer.alloc(1024, 0x61)]));
    await c.closed;
    expect(violations('packet too large')).toBe(before + 1);
  });

  it('closes a connection that sends a 16 KB PUBLISH, and records nothing from it', async () => {
    const c = await loggedIn();
    const before = await world.store.countEvents('rejected');
    c.write(rawPublish(fallTopic, Buffer.alloc(16 * 1024, 0x20), 1, 7));
    await c.closed;
    // Refused at the transport: not even recorded as a rejected event, and never acknowledged.
    expect(await world.store.countEvents('rejected')).toBe(before);
    expect(c.packets.some((p) => p.cmd === 'puback')).toBe(false);
  });

  it('refuses a topic more than 16 levels deep', async () => {
    const c = await loggedIn();
    const before = violations('topic too deep');
    c.write(rawPublish(Buffer.from(`g365/${'a/'.repeat(30)}x`), event(1), 1, 3));
    await c.closed;
    expect(violations('topic too deep')).toBe(before + 1);
  });
});

describe('gateway hygiene: what MQTT 3.1.1 forbids is refused and the connection closed', () => {
  it('invalid UTF-8 in a PUBLISH topic', async () => {
    const c = await loggedIn();
    const before = violations('invalid UTF-8 in topic');
    c.write(
      rawPublish(Buffer.concat([fallTopic.subarray(0, 10), Buffer.from([0xc3, 0x28])]), event(2), 1, 4),
    );
    await c.closed;
    expect(violations('invalid UTF-8 in topic')).toBe(before + 1);
  });

  it('U+0000 in a PUBLISH topic', async () => {
    const c = await loggedIn();
    const before = violations('invalid UTF-8 in topic');
    c.write(rawPublish(Buffer.concat([fallTopic, Buffer.from([0])]), event(3), 1, 5));
    await c.closed;
    expect(violations('invalid UTF-8 in topic')).toBe(before + 1);
  });

  it('a QoS 1 PUBLISH with packet id 0, which is not recorded', async () => {
    const c = await loggedIn();
    const before = violations('packet id 0');
    const seqsBefore = (await world.store.readEvents(0, 1_000_000)).filter(
      (e) => e.deviceId === 'h1-fall' && 'seq' in e.event && e.event.seq === 4242,
    );
    c.write(rawPublish(fallTopic, event(4242), 1, 0));
    await c.closed;
    expect(violations('packet id 0')).toBe(before + 1);
    const seqsAfter = (await world.store.readEvents(0, 1_000_000)).filter(
      (e) => e.deviceId === 'h1-fall' && 'seq' in e.event && e.event.seq === 4242,
    );
    expect(seqsAfter).toEqual(seqsBefore);
    expect(c.packets.some((p) => p.cmd === 'puback')).toBe(false);
  });

  it('a wildcard in the will topic, before any login is attempted', async () => {
    const c = await RawClient.open(gw.port);
    const before = violations('wildcard in will topic');
    const failures = gw.metrics.authFailures;
    c.write({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: 'h1-fall',
      keepalive: 60,
      username: 'h1-fall',
      password: Buffer.from('whatever'),
      will: { topic: 'g365/v1/homes/+/devices/#', payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    await c.closed;
    expect(violations('wildcard in will topic')).toBe(before + 1);
    expect(gw.metrics.authFailures).toBe(failures);
  });

  it('an empty client id with clean session off gets CONNACK 2 (identifier rejected) and is closed', async () => {
    const c = await RawClient.open(gw.port);
    // mqtt-packet will not even generate this packet, so by hand: flags 0xC0 = user name and password, clean 0.
    const str = (t: string) => Buffer.concat([Buffer.from([0, t.length]), Buffer.from(t)]);
    const body = Buffer.concat([
      str('MQTT'),
      Buffer.from([4, 0xc0, 0, 60]),
      str(''),
      str('h1-fall'),
      str('fall-secret-1'),
    ]);
    c.write(Buffer.concat([Buffer.from([0x10]), encodeLength(body.length), body]));
    await c.closed;
    expect(c.packets).toMatchObject([{ cmd: 'connack', returnCode: 2 }]);
    expect(violations('empty client id without clean session')).toBeGreaterThan(0);
  });

  it('a first packet that is not CONNECT', async () => {
    const c = await RawClient.open(gw.port);
    c.write(rawPublish(fallTopic, event(5), 0));
    await c.closed;
    expect(violations('first packet is not CONNECT')).toBeGreaterThan(0);
  });

  it('QoS 3', async () => {
    const c = await loggedIn();
    const p = rawPublish(fallTopic, event(6), 1, 9);
    p[0] = 0x36; // QoS bits 11
    c.write(p);
    await c.closed;
    expect(violations('QoS 3')).toBeGreaterThan(0);
  });
});

describe('gateway hygiene: bounded resources', () => {
  it('closes a connection that keeps more than 8 QoS 2 publishes waiting for PUBREL', async () => {
    const c = await loggedIn('h1-door');
    const before = violations('QoS 2 flood');
    const topic = Buffer.from(topics.events('h1', 'h1-door'));
    for (let i = 1; i <= 20; i++) {
      const ev = Buffer.from(JSON.stringify({ type: 'door', ts: clock.now(), state: 'open' }));
      c.write(rawPublish(topic, ev, 2, i));
    }
    await c.closed;
    expect(violations('QoS 2 flood')).toBe(before + 1);
  });

  it('closes a slow partial CONNECT after the connect timeout', async () => {
    const c = await RawClient.open(gw.port);
    // Ten bytes of a CONNECT that declares forty.
    c.write(
      Buffer.concat([
        Buffer.from([0x10]),
        encodeLength(40),
        Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2]),
      ]),
    );
    await c.closed;
    expect(c.packets).toEqual([]);
  });

  it('closes a connection without keep-alive that stays silent (half-open)', async () => {
    const c = await RawClient.open(gw.port);
    expect(await c.login('h1-motion', undefined, { keepalive: 0 })).toBe(0);
    await c.closed;
    expect(violations('idle without keep-alive')).toBeGreaterThan(0);
  });

  it('survives 100 connections of random garbage and still serves a device', async () => {
    const conns = await Promise.all(Array.from({ length: 100 }, () => RawClient.open(gw.port)));
    for (const c of conns) c.write(randomBytes(64 * 1024));
    await Promise.all(conns.map((c) => c.closed));
    const d = await connectDevice(gw.port, 'h1-fall');
    await d.publishAsync(
      topics.events('h1', 'h1-fall'),
      JSON.stringify({ type: 'fall', ts: clock.now(), state: 'cleared' }),
      { qos: 1 },
    );
    await d.endAsync();
  });
});

describe('gateway hygiene: per-device rate limit', () => {
  it('throttles a flooding device without losing its events and without starving another device', async () => {
    const g = await world.start({ limits: { publishRate: { perSecond: 40, burst: 5 } } });
    const flooder = await connectDevice(g.port, 'h1-motion');
    const other = await connectDevice(g.port, 'h2-fall');
    const topic = topics.events('h1', 'h1-motion');
    const order: string[] = [];
    const flood = Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        flooder.publishAsync(
          topic,
          JSON.stringify({
            type: 'motion',
            ts: clock.now(),
            seq: 10_000 + i,
            state: 'active',
            room: 'living',
          }),
          { qos: 1 },
        ),
      ),
    ).then(() => order.push('flood done'));
    await eventually(() => g.metrics.throttled > 0, 10_000, 'throttling');
    await other.publishAsync(
      topics.events('h2', 'h2-fall'),
      JSON.stringify({ type: 'fall', ts: clock.now(), state: 'cleared' }),
      { qos: 1 },
    );
    order.push('other acknowledged');
    await flood;
    // The other device got its PUBACK while the flood was still being held back.
    expect(order).toEqual(['other acknowledged', 'flood done']);
    const logged = (await world.store.readEvents(0, 1_000_000)).filter(
      (e) => e.deviceId === 'h1-motion' && 'seq' in e.event && (e.event.seq ?? 0) >= 10_000,
    );
    expect(logged).toHaveLength(60);
    await Promise.all([flooder.endAsync(), other.endAsync()]);
  });
});

describe('gateway admission control (EDGE-03)', () => {
  it('stops reading sockets while the durable log is behind, and still acknowledges and logs every event', async () => {
    const g = await world.start({
      admission: { high: 8, low: 2 },
      limits: { publishRate: { perSecond: 100_000, burst: 100_000 } },
    });
    const devices = await Promise.all(['h1-motion', 'h1-fall'].map((id) => connectDevice(g.port, id)));
    const [motion, fall] = devices as [
      Awaited<ReturnType<typeof connectDevice>>,
      Awaited<ReturnType<typeof connectDevice>>,
    ];
    const burst = [
      ...Array.from({ length: 200 }, (_, i) =>
        motion.publishAsync(
          topics.events('h1', 'h1-motion'),
          JSON.stringify({
            type: 'motion',
            ts: clock.now(),
            seq: 60_000 + i,
            state: 'active',
            room: 'living',
          }),
          { qos: 1 },
        ),
      ),
      ...Array.from({ length: 200 }, (_, i) =>
        fall.publishAsync(
          topics.events('h1', 'h1-fall'),
          JSON.stringify({ type: 'fall', ts: clock.now(), seq: 60_000 + i, state: 'cleared' }),
          { qos: 1 },
        ),
      ),
    ];
    await Promise.all(burst);
    expect(g.metrics.admissionClosed).toBeGreaterThan(0);
    const logged = (await world.store.readEvents(0, 1_000_000)).filter(
      (e) => 'seq' in e.event && (e.event.seq ?? 0) >= 60_000 && (e.event.seq ?? 0) < 60_200,
    );
    expect(logged).toHaveLength(400);
    await Promise.all(devices.map((d) => d.endAsync()));
  });
});
