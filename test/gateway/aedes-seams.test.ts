/**
 * Pins what the gateway relies on past aedes' public API (gateway/aedes-seams.ts), on a real aedes broker
 * with real MQTT clients: an aedes upgrade that changes either fails here, not in production.
 */
import { createServer, type Server } from 'node:net';
import { Aedes } from 'aedes';
import mqemitter from 'mqemitter';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createBroker,
  isSweptWillOfLiveSession,
  markHandled,
  routeOnlyUnhandled,
  sessionsSubscribedTo,
} from '../../gateway/aedes-seams.ts';

let broker: Aedes | undefined;
let server: Server | undefined;
const clients: MqttClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true);
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await new Promise<void>((r) => (broker ? broker.close(() => r()) : r()));
  broker = undefined;
  server = undefined;
});

/** A broker on a free loopback port; publishes whose payload starts with `handled` are marked handled. */
async function start(): Promise<number> {
  broker = await Aedes.createBroker({
    authorizePublish: (_client, packet, done) => {
      if (String(packet.payload).startsWith('handled')) markHandled(packet);
      done(null);
    },
  });
  routeOnlyUnhandled(broker);
  const b = broker;
  server = createServer((socket) => b.handle(socket));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return (server!.address() as { port: number }).port;
}

async function client(port: number, opts: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, ...opts });
  clients.push(c);
  return c;
}

describe('aedes seams', () => {
  it('routes an inbound PUBLISH through broker.publish after authorizePublish, so a handled one goes nowhere', async () => {
    const port = await start();
    const seen: string[] = [];
    const emitted: string[] = [];
    broker!.on('publish', (packet) => {
      if (packet.topic === 't/1') emitted.push(String(packet.payload));
    });
    const sub = await client(port);
    sub.on('message', (_t, payload) => seen.push(String(payload)));
    await sub.subscribeAsync('t/1', { qos: 1 });
    const pub = await client(port);
    // QoS 1 from one client: handled in order, each acknowledged (publishAsync resolves on PUBACK).
    await pub.publishAsync('t/1', 'handled 1', { qos: 1 });
    await pub.publishAsync('t/1', 'routed 2', { qos: 1 });
    await pub.publishAsync('t/1', 'handled 3', { qos: 0 });
    await pub.publishAsync('t/1', 'routed 4', { qos: 1 });
    await expect.poll(() => seen).toEqual(['routed 2', 'routed 4']);
    expect(emitted).toEqual(['routed 2', 'routed 4']);
  });

  it("still routes the broker's own publishes (notifications)", async () => {
    const port = await start();
    const sub = await client(port);
    const seen: string[] = [];
    sub.on('message', (_t, payload) => seen.push(String(payload)));
    await sub.subscribeAsync('t/own', { qos: 1 });
    await new Promise<void>((resolve, reject) =>
      broker!.publish(
        { cmd: 'publish', topic: 't/own', payload: Buffer.from('notice'), qos: 1, retain: false, dup: false },
        (e) => (e ? reject(e) : resolve()),
      ),
    );
    await expect.poll(() => seen).toEqual(['notice']);
  });

  it("lists a persistent session's subscription from the broker's persistence after its client left", async () => {
    const port = await start();
    const c = await client(port, { clientId: 'staff:w1', clean: false });
    await c.subscribeAsync('g365/v1/staff/w1/alerts', { qos: 1 });
    expect(await sessionsSubscribedTo(broker!, 'g365/v1/staff/w1/alerts')).toEqual(['staff:w1']);
    await c.endAsync();
    await expect.poll(() => broker!.connectedClients).toBe(0);
    expect(await sessionsSubscribedTo(broker!, 'g365/v1/staff/w1/alerts')).toEqual(['staff:w1']);
    expect(await sessionsSubscribedTo(broker!, 'g365/v1/staff/w2/alerts')).toEqual([]);
  });
  it('tells of a session taken by another broker on the same bus before aedes closes the local one', async () => {
    // Two brokers on one shared bus, as two gateways on Redis (CLU-05); each on its own loopback port.
    const mq = mqemitter({ matchEmptyLevels: true });
    const seen: { clientId: string; stillOpen: boolean }[] = [];
    const a: Aedes = await createBroker({ mq, id: 'a' }, (clientId) => {
      const c = (a as unknown as { clients: Record<string, { closed: boolean }> }).clients[clientId];
      seen.push({ clientId, stillOpen: c !== undefined && !c.closed });
    });
    const b: Aedes = await createBroker({ mq, id: 'b' }, () => {});
    const servers = [a, b].map((x) => createServer((socket) => x.handle(socket)));
    for (const srv of servers) await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (i: number) => (servers[i]!.address() as { port: number }).port;
    try {
      const old = await client(port(0), { clientId: 'dev-1' });
      let closed = false;
      old.on('close', () => {
        closed = true;
      });
      await client(port(1), { clientId: 'dev-1' });
      await expect.poll(() => closed).toBe(true);
      expect(seen).toEqual([{ clientId: 'dev-1', stillOpen: true }]);
      // A stored will handed over for a live session is told apart from one of a closed session.
      expect(isSweptWillOfLiveSession({ closed: false }, { topic: 't', brokerId: 'a' })).toBe(true);
      expect(isSweptWillOfLiveSession({ closed: true }, { topic: 't', brokerId: 'a' })).toBe(false);
      expect(isSweptWillOfLiveSession({ closed: false }, { topic: 't' })).toBe(false);
    } finally {
      for (const c of clients.splice(0)) await c.endAsync(true);
      for (const srv of servers) await new Promise<void>((r) => srv.close(() => r()));
      for (const x of [a, b]) await new Promise<void>((r) => x.close(() => r()));
    }
  });
});
