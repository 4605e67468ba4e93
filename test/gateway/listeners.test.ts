/**
 * The gateway's doors (EDGE-05): MQTT over TLS with a self-signed certificate made here with
 * openssl, and MQTT over WebSocket, each with a real mqtt.js client and the same device rules as TCP.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/gateway.ts';
import { topics } from '../../gateway/protocol.ts';
import { clock, type GatewayWorld, gatewayWorld, SECRET } from './fixtures.ts';

const run = promisify(execFile);
let world: GatewayWorld;
let gw: Gateway;
let cert: Buffer;

beforeAll(async () => {
  world = await gatewayWorld();
  const certFile = join(world.dir.path, 'cert.pem');
  const keyFile = join(world.dir.path, 'key.pem');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout',
    keyFile,
    '-out',
    certFile,
  ]);
  cert = readFileSync(certFile);
  gw = await world.start({
    tls: { port: 0, certFile, keyFile },
    ws: { port: 0 },
  });
});

afterAll(async () => {
  await world.close();
});

async function publishOne(client: mqtt.MqttClient, seq: number): Promise<void> {
  await client.publishAsync(
    topics.events('h1', 'h1-fall'),
    JSON.stringify({ type: 'fall', ts: clock.now(), seq, state: 'cleared', room: 'bathroom' }),
    { qos: 1 },
  );
}

async function logged(seq: number): Promise<boolean> {
  return (await world.store.readEvents(0, 1_000_000)).some(
    (e) => e.deviceId === 'h1-fall' && e.event.type === 'fall' && e.event.seq === seq,
  );
}

describe('gateway listeners', () => {
  it('accepts a device over MQTT with TLS, its event durable before the PUBACK', async () => {
    const c = await mqtt.connectAsync(`mqtts://127.0.0.1:${gw.ports.tls}`, {
      clientId: 'h1-fall',
      username: 'h1-fall',
      password: SECRET,
      ca: cert,
      reconnectPeriod: 0,
    });
    await publishOne(c, 90_001);
    expect(await logged(90_001)).toBe(true);
    await c.endAsync();
  });

  it('refuses a wrong secret over TLS with CONNACK 4', async () => {
    await expect(
      mqtt.connectAsync(`mqtts://127.0.0.1:${gw.ports.tls}`, {
        clientId: 'h1-fall',
        username: 'h1-fall',
        password: 'nope',
        ca: cert,
        reconnectPeriod: 0,
      }),
    ).rejects.toMatchObject({ code: 4 });
  });

  it('accepts a device over MQTT on WebSocket, its event durable before the PUBACK', async () => {
    const c = await mqtt.connectAsync(`ws://127.0.0.1:${gw.ports.ws}`, {
      clientId: 'h1-fall',
      username: 'h1-fall',
      password: SECRET,
      reconnectPeriod: 0,
    });
    await publishOne(c, 90_002);
    expect(await logged(90_002)).toBe(true);
    // The ACL is the same on every door.
    const err = (await c.subscribeAsync('#', { qos: 1 }).catch((e: unknown) => e)) as {
      packet?: { granted: number[] };
    };
    expect(err.packet?.granted).toEqual([128]);
    await c.endAsync();
  });

  it('closes a WebSocket client whose frame is larger than the packet limit', async () => {
    const c = await mqtt.connectAsync(`ws://127.0.0.1:${gw.ports.ws}`, {
      clientId: 'h1-fall',
      username: 'h1-fall',
      password: SECRET,
      reconnectPeriod: 0,
    });
    const closed = new Promise<void>((r) => c.once('close', () => r()));
    c.publish(topics.events('h1', 'h1-fall'), Buffer.alloc(64 * 1024, 0x20), { qos: 1 });
    await closed;
    c.end(true);
  });
});
