/**
 * The device edge (SPEC §3): an aedes MQTT 3.1.1 broker that authenticates every device, enforces the
 * topic ACL, validates each payload, writes every message (accepted or rejected) to the durable log
 * before acknowledging it, tracks presence, and hands accepted events to the rules in-process.
 *
 * Adapter only: decisions about alerts live downstream.
 */
import { createHash } from 'node:crypto';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Clock } from '../kernel/clock.ts';
import type { Logger } from '../kernel/log.ts';
import { GroupCommitLog } from './event-log.ts';
import type { DeviceCredentials, EventRecord, GatewayStore, LoggedEvent, PresenceUpdate } from './ports.ts';
import {
  MAX_EVENT_BYTES,
  MAX_FUTURE_SKEW_MS,
  MAX_PAST_SKEW_MS,
  parseDeviceTopic,
  parseStaffTopic,
  statusPayload,
  topics,
  validateEvent,
} from './protocol.ts';
import { verifySecret } from './secrets.ts';

export interface GatewayMetrics {
  connected: number;
  accepted: number;
  duplicates: number;
  rejectedByReason: Map<string, number>;
  authFailures: number;
  aclDenied: number;
  clientErrors: number;
}

export interface GatewayDeps {
  store: GatewayStore;
  clock: Clock;
  log: Logger;
  /** Accepted, non-duplicate events in log order, after they are durable. */
  onEvents?: (events: LoggedEvent[]) => void;
  /** Device presence changes (connect, disconnect, will, heartbeat). */
  onPresence?: (update: PresenceUpdate & { homeId: string }) => void;
  /** Staff clients (responder apps) log in with username = staff id and password = an API token. */
  authenticateStaff?: (staffId: string, token: string) => Promise<boolean>;
  port?: number;
  host?: string;
}

type Identity = { kind: 'device'; device: DeviceCredentials } | { kind: 'staff'; staffId: string };

const IDENTITY = Symbol('g365.identity');
type IdentifiedClient = Client & { [IDENTITY]?: Identity };

class AuthError extends Error implements AuthenticateError {
  constructor(
    readonly returnCode: 4 | 5,
    message: string,
  ) {
    super(message);
  }
}

export class Gateway {
  readonly metrics: GatewayMetrics = {
    connected: 0,
    accepted: 0,
    duplicates: 0,
    rejectedByReason: new Map(),
    authFailures: 0,
    aclDenied: 0,
    clientErrors: 0,
  };
  private broker: Aedes | undefined;
  private server: Server | undefined;
  private eventLog: GroupCommitLog;
  /** Successful logins remembered as a fast digest, so reconnect storms do not pay scrypt each time. */
  private readonly verified = new Map<string, string>();
  private readonly pendingPresence = new Map<string, PresenceUpdate>();
  private presenceScheduled = false;
  private presenceWrite: Promise<void> = Promise.resolve();

  constructor(private readonly deps: GatewayDeps) {
    this.eventLog = new GroupCommitLog({
      store: deps.store,
      onCommitted: (records, outcomes) => this.committed(records, outcomes),
    });
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  async start(): Promise<void> {
    const broker = await Aedes.createBroker({
      authenticate: (client, username, password, done) => {
        this.authenticate(client as IdentifiedClient, username, password).then(
          () => done(null, true),
          (e: unknown) => {
            if (e instanceof AuthError) {
              this.metrics.authFailures++;
              this.deps.log.info(
                { clientId: client.id, reason: e.message, code: e.returnCode },
                'mqtt login refused',
              );
              done(e, false);
            } else {
              this.deps.log.error({ err: e }, 'mqtt authentication failed');
              done(
                Object.assign(new Error('server unavailable'), { returnCode: 3 }) as AuthenticateError,
                false,
              );
            }
          },
        );
      },
      authorizePublish: (client, packet, done) => {
        if (!client) return done(null); // the broker's own publishes (notifications, error reports)
        this.authorizePublish(
          client as IdentifiedClient,
          packet.topic,
          packet.payload as Buffer,
          packet.retain,
        ).then(
          () => done(null),
          (e: Error) => done(e),
        );
      },
      authorizeSubscribe: (client, sub, done) => {
        const identity = (client as IdentifiedClient)[IDENTITY];
        if (identity && this.maySubscribe(identity, sub.topic)) return done(null, sub);
        this.metrics.aclDenied++;
        this.deps.log.info({ clientId: client.id, topic: sub.topic }, 'subscription refused by ACL');
        done(null, null); // SUBACK 0x80
      },
    });
    this.broker = broker;
    broker.on('client', () => {
      this.metrics.connected++;
    });
    broker.on('clientReady', (client) => this.presence(client as IdentifiedClient, true));
    broker.on('clientDisconnect', (client) => {
      this.metrics.connected = Math.max(0, this.metrics.connected - 1);
      this.presence(client as IdentifiedClient, false);
    });
    broker.on('clientError', (client, err) => {
      this.metrics.clientErrors++;
      this.deps.log.debug({ clientId: client.id, err: err.message }, 'mqtt client error');
    });
    broker.on('connectionError', (_client, err) => {
      this.metrics.clientErrors++;
      this.deps.log.debug({ err: err.message }, 'mqtt connection error');
    });

    const server = createServer({ noDelay: true }, (socket) => broker.handle(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.deps.port ?? 1883, this.deps.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.deps.log.info({ port: this.port }, 'mqtt gateway listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    const broker = this.broker;
    this.server = undefined;
    this.broker = undefined;
    if (server) await new Promise<void>((r) => server.close(() => r()));
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
    await this.eventLog.drain();
    this.flushPresence();
    await this.presenceWrite;
  }

  /** Publishes from the service itself (staff notifications): QoS 1 so a native app gets it once connected. */
  publish(topic: string, payload: string, qos: 0 | 1 = 1): Promise<void> {
    const broker = this.broker;
    if (!broker) return Promise.reject(new Error('gateway is not running'));
    return new Promise((resolve, reject) =>
      broker.publish(
        { cmd: 'publish', topic, payload: Buffer.from(payload), qos, retain: false, dup: false },
        (e) => (e ? reject(e) : resolve()),
      ),
    );
  }

  private async authenticate(
    client: IdentifiedClient,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<void> {
    const user = username ?? '';
    const secret = password?.toString('utf8') ?? '';
    const staff = parseStaffUser(user);
    if (staff) {
      if (
        this.deps.authenticateStaff &&
        (await this.deps.authenticateStaff(staff, secret)) &&
        client.id === user
      ) {
        client[IDENTITY] = { kind: 'staff', staffId: staff };
        return;
      }
      throw new AuthError(4, 'bad staff credentials');
    }
    const device = await this.deps.store.findDevice(user);
    if (!device) throw new AuthError(4, 'unknown device');
    // SPEC §3: client id = username = device id; a secret used under another client id is refused.
    if (client.id !== device.id) throw new AuthError(4, 'client id does not match the device');
    const digest = createHash('sha256')
      .update(device.secretHash)
      .update('\0')
      .update(secret)
      .digest('base64');
    if (this.verified.get(device.id) !== digest) {
      if (!(await verifySecret(secret, device.secretHash))) throw new AuthError(4, 'wrong secret');
      this.verified.set(device.id, digest);
    }
    if (device.disabled) throw new AuthError(5, 'device disabled');
    client[IDENTITY] = { kind: 'device', device };
  }

  private maySubscribe(identity: Identity, topic: string): boolean {
    if (identity.kind === 'staff') return parseStaffTopic(topic)?.staff === identity.staffId;
    const d = identity.device;
    return topic === topics.errors(d.homeId, d.id);
  }

  private async authorizePublish(
    client: IdentifiedClient,
    topic: string,
    payload: Buffer,
    retain: boolean,
  ): Promise<void> {
    const identity = client[IDENTITY];
    const parsed = parseDeviceTopic(topic);
    if (
      identity?.kind !== 'device' ||
      !parsed ||
      parsed.device !== identity.device.id ||
      parsed.home !== identity.device.homeId ||
      parsed.channel === 'errors' ||
      (retain && parsed.channel !== 'status')
    ) {
      this.metrics.aclDenied++;
      this.deps.log.info({ clientId: client.id, topic }, 'publish refused by ACL');
      throw new Error('publish not authorized');
    }
    const device = identity.device;
    const receivedAt = this.deps.clock.now();
    if (parsed.channel === 'status') {
      const s = statusPayload.safeParse(payload.toString('utf8'));
      if (s.success)
        this.presenceUpdate({
          deviceId: device.id,
          homeId: device.homeId,
          online: s.data === 'online',
          lastSeenAt: receivedAt,
        });
      return;
    }
    const result = validateEvent(payload, device.kind);
    if (!result.ok) {
      await this.reject(device, topic, payload, receivedAt, result.reason);
      return;
    }
    const ev = result.event;
    const flags: string[] = [];
    let ts = ev.ts;
    if (ts > receivedAt + MAX_FUTURE_SKEW_MS || ts < receivedAt - MAX_PAST_SKEW_MS) {
      flags.push('clock_skew');
      ts = receivedAt;
    }
    const event = { ...ev, ts };
    const outcome = await this.eventLog.append({
      deviceId: device.id,
      homeId: device.homeId,
      receivedAt,
      topic,
      status: 'accepted',
      ts,
      type: ev.type,
      deviceSeq: ev.seq ?? null,
      body: JSON.stringify(event),
      reason: null,
      flags,
    });
    if (outcome.duplicate) this.metrics.duplicates++;
    else this.metrics.accepted++;
    const update: PresenceUpdate & { homeId: string } = {
      deviceId: device.id,
      homeId: device.homeId,
      lastSeenAt: receivedAt,
      online: true,
    };
    if (event.type === 'heartbeat') {
      if (event.battery !== undefined) update.battery = event.battery;
      if (event.rssi !== undefined) update.rssi = event.rssi;
      if (event.fw !== undefined) update.fw = event.fw;
    }
    this.presenceUpdate(update);
  }

  /** SPEC §3: a rejected message is still acknowledged, recorded with its reason, counted and reported. */
  private async reject(
    device: DeviceCredentials,
    topic: string,
    payload: Buffer,
    receivedAt: number,
    reason: string,
  ): Promise<void> {
    const key = reason.replace(/:.*$/, '');
    this.metrics.rejectedByReason.set(key, (this.metrics.rejectedByReason.get(key) ?? 0) + 1);
    this.deps.log.info({ deviceId: device.id, reason }, 'event rejected');
    await this.eventLog.append({
      deviceId: device.id,
      homeId: device.homeId,
      receivedAt,
      topic,
      status: 'rejected',
      ts: receivedAt,
      type: null,
      deviceSeq: null,
      body: payload.subarray(0, MAX_EVENT_BYTES).toString('utf8'),
      reason,
      flags: [],
    });
    this.presenceUpdate({
      deviceId: device.id,
      homeId: device.homeId,
      lastSeenAt: receivedAt,
      rejectedDelta: 1,
    });
    const report = JSON.stringify({ reason, topic, at: new Date(receivedAt).toISOString() });
    this.publish(topics.errors(device.homeId, device.id), report, 0).catch(() => {});
  }

  private presence(client: IdentifiedClient, online: boolean): void {
    const identity = client[IDENTITY];
    if (identity?.kind !== 'device') return;
    this.presenceUpdate({
      deviceId: identity.device.id,
      homeId: identity.device.homeId,
      online,
      lastSeenAt: this.deps.clock.now(),
    });
  }

  private presenceUpdate(u: PresenceUpdate & { homeId: string }): void {
    const { homeId: _home, ...update } = u;
    // Coalesced per turn of the event loop: a busy device costs one row update per batch, not per message.
    const prev = this.pendingPresence.get(u.deviceId);
    this.pendingPresence.set(
      u.deviceId,
      prev
        ? { ...prev, ...update, rejectedDelta: (prev.rejectedDelta ?? 0) + (update.rejectedDelta ?? 0) }
        : update,
    );
    if (!this.presenceScheduled) {
      this.presenceScheduled = true;
      setImmediate(() => this.flushPresence());
    }
    this.deps.onPresence?.(u);
  }

  private flushPresence(): void {
    this.presenceScheduled = false;
    const batch = [...this.pendingPresence.values()];
    this.pendingPresence.clear();
    if (batch.length === 0) return;
    this.presenceWrite = this.presenceWrite
      .then(() => this.deps.store.updatePresence(batch))
      .catch((e: unknown) => this.deps.log.error({ err: e }, 'presence update failed'));
  }

  private committed(records: EventRecord[], outcomes: { seq: number | null }[]): void {
    if (!this.deps.onEvents) return;
    const events: LoggedEvent[] = [];
    records.forEach((r, i) => {
      const seq = outcomes[i]?.seq;
      if (r.status !== 'accepted' || seq === null || seq === undefined) return;
      events.push({
        seq,
        deviceId: r.deviceId,
        homeId: r.homeId,
        receivedAt: r.receivedAt,
        ts: r.ts,
        flags: r.flags,
        event: JSON.parse(r.body),
      });
    });
    if (events.length) this.deps.onEvents(events);
  }
}

function parseStaffUser(username: string): string | null {
  return username.startsWith('staff:') ? username.slice('staff:'.length) : null;
}
