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
        resolve();
      });
      client.once('error', onError);
    });
    await client.publishAsync(topics.status(homeId, id), 'online', { qos: 1, retain: true });
  }

  /** Publishes one event at QoS 1 and resolves on PUBACK (the event is then durable at the gateway). */
  async send(event: EventBody, envelope: { ts?: number; seq?: number } = {}): Promise<void> {
    const client = this.client;
    if (!client) throw new Error(`device ${this.identity.id} is not connected`);
    const payload = { ts: envelope.ts ?? this.clock.now(), seq: envelope.seq ?? ++this.seq, ...event };
    await client.publishAsync(
      topics.events(this.identity.homeId, this.identity.id),
      JSON.stringify(payload),
      { qos: 1 },
    );
  }

  async disconnect(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync();
  }
}
