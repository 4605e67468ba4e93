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

  constructor(
    readonly identity: DeviceIdentity,
    private readonly broker: { host: string; port: number },
    private readonly clock: Clock,
  ) {}

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  async connect(): Promise<void> {
    const { id, homeId, secret } = this.identity;
    const client = mqtt.connect({
      host: this.broker.host,
      port: this.broker.port,
      protocolVersion: 4,
      clientId: id,
      username: id,
      password: secret,
      clean: true,
      keepalive: 60,
      reconnectPeriod: 2000,
      will: { topic: topics.status(homeId, id), payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.client = client;
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
