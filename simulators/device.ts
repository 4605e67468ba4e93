/**
 * One simulated device: an MQTT client with its own credentials that speaks SPEC §3 exactly as a real
 * sensor would (client id = username = device id, retained `offline` will, QoS 1 events with `seq`).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { type DeviceKind, type EventBody, topics } from '../gateway/protocol.ts';
import type { Clock } from '../kernel/clock.ts';

export interface DeviceIdentity {
  id: string;
  homeId: string;
  kind: DeviceKind;
  room: string;
  secret: string;
}

export class SimDevice {
  private client: MqttClient | undefined;
  private seq = 0;
  /** The last connection error while reconnecting, for diagnostics. */
  lastError: string | undefined;

  /** Connections lost in a row (reset by a CONNACK): the back-off before the next attempt grows with it. */
  private failures = 0;
  /** Sessions established so far (the first connect and every reconnection). */
  connects = 0;

  /**
   * `broker`: one gateway address, or several (CLU-05): a device given several tries the next one in turn
   * after each lost connection or failed attempt, after a jittered back-off, as a device behind no load
   * balancer would, so the devices of a dead gateway do not all land on the next one in the same instant.
   */
  constructor(
    readonly identity: DeviceIdentity,
    broker: { host: string; port: number } | readonly { host: string; port: number }[],
    private readonly clock: Clock,
    private readonly random: () => number = Math.random,
  ) {
    this.brokers = Array.isArray(broker) ? broker : [broker as { host: string; port: number }];
  }

  private readonly brokers: readonly { host: string; port: number }[];

  /** Full jitter on an exponential back-off: 0.25–0.5 s, then up to 8 s after failures in a row. */
  private backoffMs(): number {
    const ceiling = Math.min(8_000, 500 * 2 ** Math.min(this.failures, 4));
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  async connect(): Promise<void> {
    const { id, homeId, secret } = this.identity;
    const several = this.brokers.length > 1;
    const client = mqtt.connect({
      host: this.brokers[0]!.host,
      port: this.brokers[0]!.port,
      // mqtt.js takes the next address of `servers` for each new connection, round robin.
      ...(several && { servers: this.brokers.map((b) => ({ host: b.host, port: b.port })) }),
      protocolVersion: 4,
      clientId: id,
      username: id,
      password: secret,
      clean: true,
      keepalive: 60,
      reconnectPeriod: several ? this.backoffMs() : 2000,
      connectTimeout: several ? 5_000 : 30_000,
      will: { topic: topics.status(homeId, id), payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.client = client;
    client.on('connect', () => {
      this.connects++;
      this.failures = 0;
    });
    if (several)
      // Before mqtt.js arms its reconnect timer on this close: the delay of the next attempt, jittered.
      client.prependListener('close', () => {
        client.options.reconnectPeriod = this.backoffMs();
        this.failures++;
      });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => {
        client.end(true);
        reject(e);
      };
      client.once('connect', () => {
        client.off('error', onError);
        // From now on the device rides out outages as a real one does: mqtt.js reconnects every 2 s and
        // reports a refused attempt as an 'error' event, kept here for diagnostics.
        client.on('error', (e) => {
          this.lastError = e.message;
        });
        resolve();
      });
      client.once('error', onError);
    });
    await client.publishAsync(topics.status(homeId, id), 'online', { qos: 1, retain: true });
  }

  /**
   * Publishes one event at QoS 1 and resolves on PUBACK (the event is then durable at the gateway). `seq`
   * follows the event time (and always increases), so a device restarted with the same identity is not
   * taken for a repeat of its earlier messages (SPEC §3: a repeated `seq` is a duplicate).
   */
  async send(event: EventBody, envelope: { ts?: number; seq?: number } = {}): Promise<void> {
    const client = this.client;
    if (!client) throw new Error(`device ${this.identity.id} is not connected`);
    const ts = envelope.ts ?? this.clock.now();
    this.seq = envelope.seq ?? Math.max(this.seq + 1, ts);
    const payload = { ts, seq: this.seq, ...event };
    await client.publishAsync(
      topics.events(this.identity.homeId, this.identity.id),
      JSON.stringify(payload),
      { qos: 1 },
    );
  }

  /** Publishes raw bytes on the device's own events topic (garbage and oversized payload scenarios). */
  async sendRaw(payload: Buffer): Promise<void> {
    const client = this.client;
    if (!client) throw new Error(`device ${this.identity.id} is not connected`);
    await client.publishAsync(topics.events(this.identity.homeId, this.identity.id), payload, { qos: 1 });
  }

  /** The connection drops without a DISCONNECT packet, so the broker publishes the `offline` will. */
  async drop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync(true);
  }

  async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync();
  }
}

/**
 * One login attempt with the given credentials, without retrying; resolves with the CONNACK return code
 * (0 = accepted, 4 = bad user name or password, 5 = not authorised). An accepted session is closed at once.
 */
export async function tryLogin(
  broker: { host: string; port: number },
  credentials: { clientId: string; username: string; password: string },
): Promise<number> {
  const client = mqtt.connect({
    host: broker.host,
    port: broker.port,
    protocolVersion: 4,
    ...credentials,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      client.once('connect', () => resolve(0));
      client.once('error', (e: Error & { code?: unknown }) =>
        typeof e.code === 'number' ? resolve(e.code) : reject(e),
      );
    });
  } finally {
    await client.endAsync(true);
  }
}
