/**
 * Device sessions on a real gateway: the will and retain ACL, presence transitions written into the event
 * log (SPEC §3, §5 DEVICE_OFFLINE), rejection counts by reason, and credential changes that end a live
 * session (the login limits are in login-flood.test.ts).
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/gateway.ts';
import type { LoggedEvent } from '../../gateway/ports.ts';
import { type PresenceEvent, topics } from '../../gateway/protocol.ts';
import { hashDeviceSecret } from '../../gateway/secrets.ts';
import { eventually } from '../helpers.ts';
import { clock, connectDevice, type GatewayWorld, gatewayWorld, RawClient, SECRET } from './fixtures.ts';

let world: GatewayWorld;
let gw: Gateway;
const handed: LoggedEvent[] = [];

beforeAll(async () => {
  world = await gatewayWorld();
  gw = await world.start({ onEvents: (e) => handed.push(...e) });
});

afterAll(async () => {
  await world.close();
});

async function presenceOf(deviceId: string): Promise<PresenceEvent[]> {
  return (await world.store.readEvents(0, 1_000_000))
    .filter((e) => e.deviceId === deviceId && e.event.type === 'presence')
    .map((e) => e.event as PresenceEvent);
}

const ownWill = (home: string, device: string) => ({
  topic: topics.status(home, device),
  payload: Buffer.from('offline'),
  qos: 1 as const,
  retain: true,
});

describe('gateway ACL: wills and retained messages (SPEC §3)', () => {
  it("refuses a will on another device's status topic with CONNACK 5 and counts it", async () => {
    const before = gw.metrics.aclDeniedByKind.get('will') ?? 0;
    await expect(
      connectDevice(gw.port, 'h1-fall', SECRET, { will: ownWill('h1', 'h1-door') }),
    ).rejects.toMatchObject({ code: 5 });
    await expect(
      connectDevice(gw.port, 'h1-fall', SECRET, {
        will: { ...ownWill('h1', 'h1-fall'), topic: topics.events('h1', 'h1-fall') },
      }),
    ).rejects.toMatchObject({ code: 5 });
    expect(gw.metrics.aclDeniedByKind.get('will')).toBe(before + 2);
  });

  it('accepts a retained offline will on its own status topic', async () => {
    const c = await connectDevice(gw.port, 'h1-fall', SECRET, { will: ownWill('h1', 'h1-fall') });
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  it('closes the connection of a retained publish outside the own status topic and records nothing', async () => {
    const c = await connectDevice(gw.port, 'h1-door');
    const before = gw.metrics.aclDeniedByKind.get('retain') ?? 0;
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish(
      topics.events('h1', 'h1-door'),
      JSON.stringify({ type: 'door', ts: clock.now(), seq: 777_001, state: 'open' }),
      { qos: 1, retain: true },
    );
    await closed;
    c.end(true);
    expect(gw.metrics.aclDeniedByKind.get('retain')).toBe(before + 1);
    const logged = await world.store.readEvents(0, 1_000_000);
    expect(logged.some((e) => 'seq' in e.event && e.event.seq === 777_001)).toBe(false);
  });
});

describe('gateway presence records in the event log', () => {
  it('writes online on connect and offline on a clean disconnect, and hands both to the rules', async () => {
    const before = (await presenceOf('h1-motion')).length;
    const c = await connectDevice(gw.port, 'h1-motion');
    await eventually(async () => (await presenceOf('h1-motion')).length === before + 1, 5000, 'online');
    await c.endAsync();
    const p = await eventually(
      async () => {
        const all = await presenceOf('h1-motion');
        return all.length === before + 2 ? all.slice(before) : undefined;
      },
      5000,
      'offline',
    );
    expect(p.map((x) => [x.state, x.cause])).toEqual([
      ['online', 'connect'],
      ['offline', 'disconnect'],
    ]);
    await eventually(
      () =>
        handed.filter((e) => e.deviceId === 'h1-motion' && e.event.type === 'presence').length >= before + 2,
      5000,
      'hand-off',
    );
    expect((await world.store.getDeviceState('h1-motion'))?.online).toBe(false);
  });

  it('writes offline with cause will when the connection is lost without DISCONNECT', async () => {
    const before = (await presenceOf('h1-fall')).length;
    const c = await connectDevice(gw.port, 'h1-fall', SECRET, { will: ownWill('h1', 'h1-fall') });
    await eventually(async () => (await presenceOf('h1-fall')).length === before + 1, 5000, 'online');
    c.stream.destroy();
    c.end(true);
    const last = await eventually(
      async () => {
        const all = await presenceOf('h1-fall');
        return all.length === before + 2 ? all.at(-1) : undefined;
      },
      5000,
      'offline',
    );
    expect(last).toMatchObject({ state: 'offline', cause: 'will' });
  });

  it('writes offline with cause keepalive when a device stops talking', async () => {
    const before = (await presenceOf('h1-door')).length;
    const raw = await RawClient.open(gw.port);
    // Keep-alive 1 s: aedes ends the session after 1.5 s without a packet [MQTT-3.1.2-24].
    expect(await raw.login('h1-door', SECRET, { keepalive: 1 })).toBe(0);
    const last = await eventually(
      async () => {
        const all = await presenceOf('h1-door');
        return all.length === before + 2 ? all.at(-1) : undefined;
      },
      10_000,
      'keep-alive timeout',
    );
    expect(last).toMatchObject({ state: 'offline', cause: 'keepalive' });
    raw.end();
  });

  it('writes a retained status change once, and keeps battery, signal and firmware from heartbeats', async () => {
    const c = await connectDevice(gw.port, 'h2-fall');
    const status = topics.status('h2', 'h2-fall');
    await c.publishAsync(status, 'online', { qos: 1, retain: true }); // already online: nothing new
    await c.publishAsync(status, 'offline', { qos: 1, retain: true });
    await c.publishAsync(
      topics.events('h2', 'h2-fall'),
      JSON.stringify({ type: 'heartbeat', ts: clock.now(), battery: 12, rssi: -71, fw: '1.4.2' }),
      { qos: 1 },
    );
    const p = await presenceOf('h2-fall');
    expect(p.at(-1)).toMatchObject({ state: 'offline', cause: 'status' });
    expect(p.filter((x) => x.cause === 'status')).toHaveLength(1);
    await eventually(
      async () => (await world.store.getDeviceState('h2-fall'))?.battery === 12,
      5000,
      'heartbeat stored',
    );
    expect(await world.store.getDeviceState('h2-fall')).toMatchObject({ rssi: -71, fw: '1.4.2' });
    await c.endAsync();
  });

  it("has a message's readings and rejection counts on the device's row by its PUBACK (DEV-12)", async () => {
    const c = await connectDevice(gw.port, 'h1-fall');
    const events = topics.events('h1', 'h1-fall');
    // No waiting after the acknowledgement: the row changed in the transaction that recorded the message.
    await c.publishAsync(events, JSON.stringify({ type: 'heartbeat', ts: clock.now(), battery: 33 }), {
      qos: 1,
    });
    expect(await world.store.getDeviceState('h1-fall')).toMatchObject({ battery: 33 });
    const key = 'payload is not valid JSON';
    const before = (await world.store.deviceRejections('h1-fall'))[key] ?? 0;
    await c.publishAsync(events, '{not json', { qos: 1 });
    expect((await world.store.deviceRejections('h1-fall'))[key]).toBe(before + 1);
    await c.publishAsync(events, JSON.stringify({ type: 'heartbeat', ts: clock.now(), battery: 31 }), {
      qos: 1,
    });
    expect(await world.store.getDeviceState('h1-fall')).toMatchObject({ battery: 31 });
    await c.endAsync();
  });

  it('writes no offline record for a session replaced by a new connection of the same device', async () => {
    const first = await connectDevice(gw.port, 'h1-motion');
    await eventually(async () => (await presenceOf('h1-motion')).at(-1)?.state === 'online', 5000, 'online');
    const before = (await presenceOf('h1-motion')).length;
    const second = await connectDevice(gw.port, 'h1-motion');
    await eventually(async () => (await presenceOf('h1-motion')).length === before + 1, 5000, 'reconnect');
    expect((await presenceOf('h1-motion')).slice(before).map((x) => x.state)).toEqual(['online']);
    first.end(true);
    await second.endAsync();
  });

  it('keeps a device online when a gateway it has left writes its late offline (DEV-11)', async () => {
    // A second gateway on the same store, with no bus between the two (as while Redis is down, CLU-06):
    // the first is never told the device moved.
    const other = await world.start();
    const online = async () => (await world.store.getDeviceState('h2-fall'))?.online;
    const before = (await presenceOf('h2-fall')).length;
    const left = await connectDevice(gw.port, 'h2-fall', SECRET, { will: ownWill('h2', 'h2-fall') });
    await eventually(async () => (await presenceOf('h2-fall')).length === before + 1, 5000, 'online on gw');
    const moved = await connectDevice(other.port, 'h2-fall');
    await eventually(
      async () => (await presenceOf('h2-fall')).length === before + 2,
      5000,
      'online on other',
    );
    // The first gateway loses the old connection and writes its offline (its row update rides with it).
    left.stream.destroy();
    left.end(true);
    const records = await eventually(
      async () => {
        const all = await presenceOf('h2-fall');
        return all.length === before + 3 ? all.slice(before) : undefined;
      },
      5000,
      'the late offline',
    );
    expect(records.map((r) => `${r.state}/${r.cause}`)).toEqual([
      'online/connect',
      'online/connect',
      'offline/will',
    ]);
    // Each record names its session: the offline is the older one's end, which the rules take as stale.
    expect(records[2]!.session).toBe(records[0]!.session);
    expect(records[1]!.session).toBeGreaterThan(records[0]!.session!);
    // The row keeps the newer session's state: still online.
    expect(await online()).toBe(true);
    // The newer session's own end is written.
    await moved.endAsync();
    await eventually(async () => (await online()) === false, 5000, 'offline after the newer session ends');
  });
});

describe('gateway: rejections by reason (SPEC §3 device health)', () => {
  it('counts rejected messages per device and per reason', async () => {
    const c = await connectDevice(gw.port, 'h1-door');
    const topic = topics.events('h1', 'h1-door');
    await c.publishAsync(topic, '{"nope', { qos: 1 });
    await c.publishAsync(topic, JSON.stringify({ type: 'door', ts: clock.now(), state: 'ajar' }), { qos: 1 });
    await c.publishAsync(topic, JSON.stringify({ type: 'door', ts: clock.now(), state: 'wide' }), { qos: 1 });
    const counts = await eventually(
      async () => {
        const r = await world.store.deviceRejections('h1-door');
        return (r['invalid state'] ?? 0) >= 2 ? r : undefined;
      },
      5000,
      'rejections by reason',
    );
    expect(counts).toMatchObject({ 'payload is not valid JSON': 1, 'invalid state': 2 });
    await c.endAsync();
  });
});

describe('gateway: credential changes end the live session', () => {
  let live: MqttClient;

  it('disconnects a device at once when it is disabled, and refuses it with CONNACK 5 after', async () => {
    live = await connectDevice(gw.port, 'h1-door');
    const closed = new Promise<void>((r) => live.once('close', () => r()));
    await world.store.setDeviceDisabled('h1-door', true);
    expect(gw.revokeDevice('h1-door')).toBe(true);
    await closed;
    live.end(true);
    await expect(connectDevice(gw.port, 'h1-door')).rejects.toMatchObject({ code: 5 });
    await world.store.setDeviceDisabled('h1-door', false);
  });

  it('disconnects a device whose secret was rotated; the old secret is refused, the new one accepted', async () => {
    live = await connectDevice(gw.port, 'h1-door');
    const closed = new Promise<void>((r) => live.once('close', () => r()));
    await world.store.rotateDeviceSecret('h1-door', hashDeviceSecret('the-new-secret'));
    gw.revokeDevice('h1-door');
    await closed;
    live.end(true);
    await expect(connectDevice(gw.port, 'h1-door', SECRET)).rejects.toMatchObject({ code: 4 });
    const again = await connectDevice(gw.port, 'h1-door', 'the-new-secret');
    await again.endAsync();
    await world.store.rotateDeviceSecret('h1-door', hashDeviceSecret(SECRET));
  });
});
