/**
 * The gateway on a loopback port with a real SQLite file and real MQTT clients (mqtt.js and Debian's
 * mosquitto clients).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type mqtt from 'mqtt';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../dispatcher/store/store.ts';
import type { Gateway } from '../../gateway/gateway.ts';
import type { LoggedEvent } from '../../gateway/ports.ts';
import { topics } from '../../gateway/protocol.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { ms } from '../../kernel/time.ts';
import { eventually } from '../helpers.ts';
import { clock, connectDevice, type GatewayWorld, gatewayWorld, SECRET } from './fixtures.ts';

const run = promisify(execFile);
let world: GatewayWorld;
let store: Store;
let gateway: Gateway;
const handed: LoggedEvent[] = [];

beforeAll(async () => {
  world = await gatewayWorld();
  store = world.store;
  gateway = await world.start({ onEvents: (e) => handed.push(...e) });
});

afterAll(() => world.close());

const connect = (id: string, password: string, extra: mqtt.IClientOptions = {}): Promise<MqttClient> =>
  connectDevice(gateway.port, id, password, extra);

const fallTopic = topics.events('h1', 'h1-fall');

/** Accepted device events in the log (presence records, written by the gateway itself, left out). */
async function deviceEventCount(): Promise<number> {
  return (await store.readEvents(0, 1_000_000)).filter((e) => e.event.type !== 'presence').length;
}

describe('gateway: device authentication (SPEC §3)', () => {
  it('accepts a device with its own id and secret', async () => {
    const c = await connect('h1-fall', SECRET);
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  it('refuses a wrong secret with CONNACK 4', async () => {
    await expect(connect('h1-fall', 'wrong')).rejects.toMatchObject({ code: 4 });
  });

  it('refuses an unknown device with CONNACK 4', async () => {
    await expect(connect('nobody', SECRET)).rejects.toMatchObject({ code: 4 });
  });

  it('refuses a disabled device with CONNACK 5', async () => {
    await expect(connect('h1-off', SECRET)).rejects.toMatchObject({ code: 5 });
  });

  it("refuses a valid secret used under another device's client id", async () => {
    await expect(connect('h1-door', SECRET, { username: 'h1-fall' })).rejects.toMatchObject({ code: 4 });
  });
});

describe('gateway: events', () => {
  it('acknowledges a QoS 1 fall event only once it is in the durable log, then hands it to the rules', async () => {
    const c = await connect('h1-fall', SECRET);
    const before = await deviceEventCount();
    const ts = clock.now();
    await c.publishAsync(
      fallTopic,
      JSON.stringify({ type: 'fall', ts, seq: 1, state: 'detected', room: 'bathroom' }),
      { qos: 1 },
    );
    // PUBACK received: the record must already be there, no waiting.
    expect(await deviceEventCount()).toBe(before + 1);
    await eventually(
      () => handed.find((e) => e.deviceId === 'h1-fall' && e.event.type === 'fall'),
      5000,
      'hand-off',
    );
    await c.endAsync();
  });

  it('records a malformed event as rejected, counts it and reports the reason on the errors topic', async () => {
    const c = await connect('h1-fall', SECRET);
    await c.subscribeAsync(topics.errors('h1', 'h1-fall'), { qos: 0 });
    const report = new Promise<{ reason: string; topic: string }>((resolve) =>
      c.on('message', (_t, p) => resolve(JSON.parse(p.toString()))),
    );
    await c.publishAsync(fallTopic, '{"type":"fall", nope', { qos: 1 });
    expect((await report).reason).toBe('payload is not valid JSON');
    expect((await report).topic).toBe(fallTopic);
    await eventually(
      async () => ((await store.getDeviceState('h1-fall'))?.rejectedCount ?? 0) >= 1,
      5000,
      'rejected count',
    );
    // A well-behaved device is not disconnected for one bad message.
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  it('rejects an event type the device kind cannot send, and a payload over 2 KiB', async () => {
    const c = await connect('h1-fall', SECRET);
    const before = await store.countEvents('rejected');
    await c.publishAsync(fallTopic, JSON.stringify({ type: 'door', ts: clock.now(), state: 'open' }), {
      qos: 1,
    });
    await c.publishAsync(
      fallTopic,
      JSON.stringify({ type: 'fall', ts: clock.now(), state: 'detected', room: 'x'.repeat(3000) }),
      { qos: 1 },
    );
    expect(await store.countEvents('rejected')).toBe(before + 2);
    expect(gateway.metrics.rejectedByReason.get('a fall device cannot send door events')).toBe(1);
    await c.endAsync();
  });

  it('records a repeated seq once', async () => {
    const c = await connect('h1-door', SECRET);
    const before = await deviceEventCount();
    const msg = JSON.stringify({ type: 'door', ts: clock.now(), seq: 99, state: 'open' });
    await c.publishAsync(topics.events('h1', 'h1-door'), msg, { qos: 1 });
    await c.publishAsync(topics.events('h1', 'h1-door'), msg, { qos: 1 });
    expect(await deviceEventCount()).toBe(before + 1);
    await c.endAsync();
  });

  it('replaces a ts more than 5 minutes in the future by the receive time and flags clock_skew', async () => {
    const c = await connect('h1-door', SECRET);
    const future = clock.now() + 10 * 60_000;
    await c.publishAsync(
      topics.events('h1', 'h1-door'),
      JSON.stringify({ type: 'door', ts: future, seq: 100, state: 'closed' }),
      { qos: 1 },
    );
    const e = await eventually(
      () => handed.find((x) => x.deviceId === 'h1-door' && x.flags.includes('clock_skew')),
      5000,
      'skewed event',
    );
    expect(e.ts).toBeLessThan(future - 60_000);
    await c.endAsync();
  });
});

describe('gateway: topic ACL', () => {
  it('answers SUBACK 0x80 for #, another home and $SYS', async () => {
    const c = await connect('h1-fall', SECRET);
    // mqtt.js turns a 0x80 return code into an error that carries the SUBACK packet.
    const err = (await c
      .subscribeAsync(['#', 'g365/v1/homes/h2/#', '$SYS/#', topics.errors('h1', 'h1-fall')], { qos: 1 })
      .catch((e: unknown) => e)) as { packet?: { granted: number[] } };
    expect(err.packet?.granted).toEqual([128, 128, 128, 1]);
    await c.endAsync();
  });

  it('closes the connection of a device that publishes under another home and logs nothing for it', async () => {
    const c = await connect('h1-fall', SECRET);
    const before = await deviceEventCount();
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish(
      topics.events('h2', 'h1-fall'),
      JSON.stringify({ type: 'fall', ts: clock.now(), state: 'detected' }),
      { qos: 1 },
    );
    await closed;
    expect(await deviceEventCount()).toBe(before);
    expect(gateway.metrics.aclDenied).toBeGreaterThan(0);
    c.end(true);
  });
});

describe('gateway with Debian mosquitto clients', () => {
  it('accepts an event from mosquitto_pub at QoS 1 with device credentials', async () => {
    const before = await deviceEventCount();
    await run('mosquitto_pub', [
      '-h',
      '127.0.0.1',
      '-p',
      String(gateway.port),
      '-V',
      'mqttv311',
      '-i',
      'h1-door',
      '-u',
      'h1-door',
      '-P',
      SECRET,
      '-q',
      '1',
      '-t',
      topics.events('h1', 'h1-door'),
      '-m',
      JSON.stringify({ type: 'door', ts: clock.now(), state: 'open' }),
    ]);
    expect(await deviceEventCount()).toBe(before + 1);
  });

  it('refuses mosquitto_pub with a wrong password', async () => {
    await expect(
      run('mosquitto_pub', [
        '-h',
        '127.0.0.1',
        '-p',
        String(gateway.port),
        '-V',
        'mqttv311',
        '-i',
        'h1-door',
        '-u',
        'h1-door',
        '-P',
        'bad',
        '-t',
        'x',
        '-m',
        'y',
      ]),
    ).rejects.toMatchObject({
      stderr: expect.stringMatching(/not authori[sz]ed|bad user name or password|Connection Refused/i),
    });
  });
});

describe('gateway: presence on the device row (SPEC §3)', () => {
  it("rewrites a talking device's last-seen time once a minute, and records going offline at once (DEV-12)", async () => {
    // A gateway of its own on a clock the test moves: a message's row change is committed with the message,
    // before its PUBACK (DEV-12), so after each publish the row is what that message left.
    const manual = new ManualClock(clock.now());
    const g = await world.start({ clock: manual });
    const c = await connectDevice(g.port, 'h2-fall', SECRET);
    const t0 = manual.now();
    const lastSeen = async () => (await store.getDeviceState('h2-fall'))?.lastSeenAt;
    await eventually(
      async () => ((await lastSeen()) === t0 ? true : undefined),
      5_000,
      'h2-fall online at t0',
    );
    const topic = topics.events('h2', 'h2-fall');
    const heartbeat = () =>
      c.publishAsync(topic, JSON.stringify({ type: 'heartbeat', ts: manual.now() }), { qos: 1 });
    // Within the minute: acknowledged, and the row not rewritten for it…
    await manual.advance(ms(59_999));
    await heartbeat();
    expect(await lastSeen()).toBe(t0);
    // …a minute on: rewritten with that message.
    await manual.advance(ms(1));
    await heartbeat();
    expect(await lastSeen()).toBe(t0 + 60_000);
    // A reading is written with its message, whatever the minute.
    await manual.advance(ms(1_000));
    await c.publishAsync(topic, JSON.stringify({ type: 'heartbeat', ts: manual.now(), battery: 77 }), {
      qos: 1,
    });
    expect(await store.getDeviceState('h2-fall')).toMatchObject({ lastSeenAt: t0 + 61_000, battery: 77 });
    // A new session within the minute (the device came back on a new connection, taking the old one's
    // place): its start is a change of the row, written at once (DEV-11), not "seen again".
    await manual.advance(ms(1_000));
    const again = await connectDevice(g.port, 'h2-fall', SECRET);
    await eventually(
      async () => ((await lastSeen()) === t0 + 62_000 ? true : undefined),
      5_000,
      'the new session on the row',
    );
    c.end(true);
    // The end of the session is written straight away.
    await again.endAsync();
    await eventually(
      async () => ((await store.getDeviceState('h2-fall'))?.online === false ? true : undefined),
      5_000,
      'h2-fall offline',
    );
  });
});
