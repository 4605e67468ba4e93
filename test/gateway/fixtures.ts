/**
 * Gateway test fixtures: a real SQLite file with two homes and a few devices, gateways on loopback ports,
 * mqtt.js clients and a raw-socket MQTT client for malformed packets (built with mqtt-packet or by hand).
 */
import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { Store } from '../../dispatcher/store/store.ts';
import { Gateway, type GatewayDeps } from '../../gateway/gateway.ts';
import { hashDeviceSecret, hashPassword } from '../../gateway/secrets.ts';
import { SystemClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { encodeLength } from '../../simulators/mqtt-frame.ts';
import { bareHousehold, eventually, tempDir } from '../helpers.ts';
import { type Backend, testDatabase } from '../store-factory.ts';

export const SECRET = 'fall-secret-1';
export const clock = new SystemClock();

export interface GatewayWorld {
  store: Store;
  /** A scratch folder for the test's own files (certificates, a metrics server's data). */
  dir: ReturnType<typeof tempDir>;
  gateways: Gateway[];
  start(extra?: Partial<GatewayDeps>): Promise<Gateway>;
  close(): Promise<void>;
}

/**
 * Homes h1 (grid g1) and h2; devices h1-fall, h1-door, h1-motion, h2-fall and the disabled h1-off; on a
 * new database of `backend` (test/store-factory.ts; SQLite by default).
 */
export async function gatewayWorld(backend: Backend = 'sqlite'): Promise<GatewayWorld> {
  const db = await testDatabase(backend);
  const dir = tempDir();
  const store = db.open();
  await store.migrate();
  await store.upsertGrid({ id: 'g1', name: 'G1', community: 'c', leaderId: null });
  for (const h of ['h1', 'h2']) {
    await store.upsertHousehold(bareHousehold(h, 'g1'));
  }
  // As the service issues them (SEC-05): each device its own salted fast hash.
  const devices = [
    ['h1-fall', 'h1', 'fall', 'bathroom'],
    ['h1-door', 'h1', 'door', 'entrance'],
    ['h1-motion', 'h1', 'motion', 'living'],
    ['h1-off', 'h1', 'motion', 'bedroom'],
    ['h2-fall', 'h2', 'fall', 'bathroom'],
  ] as const;
  for (const [id, homeId, kind, room] of devices)
    await store.createDevice({ id, homeId, kind, room, secretHash: hashDeviceSecret(SECRET), createdAt: 0 });
  await store.setDeviceDisabled('h1-off', true);
  const gateways: Gateway[] = [];
  return {
    store,
    dir,
    gateways,
    async start(extra = {}) {
      const g = new Gateway({ store, clock, log: silentLogger(), port: 0, host: '127.0.0.1', ...extra });
      await g.start();
      gateways.push(g);
      return g;
    },
    async close() {
      for (const g of gateways) await g.stop();
      await store.close();
      await db.remove();
      dir.remove();
    },
  };
}

/**
 * A device secret's hash as stored before SEC-05: scrypt, the format staff passwords still use (a device row
 * that has not logged in since, re-hashed at its first good login).
 */
export const legacyDeviceHash = (secret: string): Promise<string> => hashPassword(secret);

export function connectDevice(
  port: number,
  id: string,
  password = SECRET,
  extra: mqtt.IClientOptions = {},
): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const c = mqtt.connect({
      host: '127.0.0.1',
      port,
      clientId: id,
      username: id,
      password,
      reconnectPeriod: 0,
      protocolVersion: 4,
      ...extra,
    });
    c.once('connect', () => resolve(c));
    c.once('error', (e) => {
      c.end(true);
      reject(e);
    });
  });
}

/** A raw TCP MQTT client: writes any bytes, parses what the gateway answers, reports when it is closed. */
export class RawClient {
  readonly packets: Packet[] = [];
  readonly closed: Promise<void>;
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });
  private constructor(readonly socket: Socket) {
    this.parser.on('packet', (p) => this.packets.push(p));
    this.parser.on('error', () => {});
    socket.on('data', (d) => this.parser.parse(d));
    socket.on('error', () => {});
    this.closed = new Promise((r) => socket.once('close', () => r()));
  }

  /** `localAddress` (127.0.0.2, …) makes the client come from another loopback address. */
  static open(port: number, localAddress?: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect({ port, host: '127.0.0.1', localAddress }, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  write(bytes: Buffer | Packet): void {
    this.socket.write(Buffer.isBuffer(bytes) ? bytes : mqttPacket.generate(bytes));
  }

  get isClosed(): boolean {
    return this.socket.destroyed || this.socket.readableEnded;
  }

  /** CONNECT as a device and wait for CONNACK. */
  async login(
    id: string,
    password = SECRET,
    extra: Partial<mqttPacket.IConnectPacket> = {},
  ): Promise<number> {
    this.write({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: id,
      keepalive: 60,
      username: id,
      password: Buffer.from(password),
      ...extra,
    });
    const ack = await eventually(
      () => this.packets.find((p) => p.cmd === 'connack') as mqttPacket.IConnackPacket | undefined,
      10_000,
      'CONNACK',
    );
    return ack.returnCode ?? -1;
  }

  end(): void {
    this.socket.destroy();
  }
}

/** A PUBLISH packet by hand, so the topic bytes can be anything (invalid UTF-8, U+0000). */
export function rawPublish(topic: Buffer, payload: Buffer, qos: 0 | 1 | 2, packetId = 1): Buffer {
  const idBytes = qos > 0 ? Buffer.from([packetId >> 8, packetId & 0xff]) : Buffer.alloc(0);
  const body = Buffer.concat([
    Buffer.from([topic.length >> 8, topic.length & 0xff]),
    topic,
    idBytes,
    payload,
  ]);
  return Buffer.concat([Buffer.from([0x30 | (qos << 1)]), encodeLength(body.length), body]);
}

export { encodeLength };
