/**
 * The device edge (SPEC §3): an aedes MQTT 3.1.1 broker that authenticates every device, enforces the
 * topic ACL, validates each payload, writes every message (accepted or rejected) to the durable log
 * before acknowledging it, records presence transitions in the same log, exports telemetry, and hands
 * accepted events to the rules in-process.
 *
 * Adapter only: decisions about alerts live downstream.
 */
import { randomUUID } from 'node:crypto';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import type { Clock, Timer } from '../kernel/clock.ts';
import type { Logger } from '../kernel/log.ts';
import { instant } from '../kernel/time.ts';
import { GroupCommitLog, storageUnavailable } from './event-log.ts';
import { Admission, DEFAULT_LIMITS, type GuardLimits, MqttGuard } from './hygiene.ts';
import { type Connection, Listeners } from './listeners.ts';
import { LoginGate, type LoginGateOptions } from './login-gate.ts';
import type { DeviceCredentials, EventRecord, GatewayStore, LoggedEvent, PresenceUpdate } from './ports.ts';
import {
  type DeviceEvent,
  type LogEvent,
  MAX_EVENT_BYTES,
  MAX_FUTURE_SKEW_MS,
  MAX_PAST_SKEW_MS,
  type PresenceEvent,
  parseDeviceTopic,
  parseStaffTopic,
  statusPayload,
  topics,
  validateEvent,
} from './protocol.ts';
import type { InfluxTelemetry } from './telemetry.ts';

export interface GatewayMetrics {
  /** MQTT clients connected now (devices and staff apps). */
  connected: number;
  /** Devices with a live session now. */
  devicesOnline: number;
  accepted: number;
  duplicates: number;
  rejectedByReason: Map<string, number>;
  authFailures: number;
  /** Refusals held back before they were sent (the device or its address failed too often). */
  authThrottled: number;
  /** Device secret checks run (scrypt), answered from the gate's caches, skipped (connection gone). */
  loginChecks: number;
  loginCached: number;
  loginSkipped: number;
  /** Suspect logins refused unchecked (CONNACK 3) because the budget for suspect checks was used up. */
  loginBusy: number;
  /** Suspect secret checks waiting now. */
  loginQueued: number;
  aclDenied: number;
  /** ACL refusals by what was refused: publish, retain, subscribe, will. */
  aclDeniedByKind: Map<string, number>;
  /** Connections closed by the protocol guard, by reason (hygiene.ts). */
  violationsByReason: Map<string, number>;
  /** PUBLISH packets held back by the per-device rate limit. */
  throttled: number;
  /** Times admission control stopped reading from sockets because the log was behind. */
  admissionClosed: number;
  presenceRecords: number;
  clientErrors: number;
  /** Telemetry points dropped (buffer full or InfluxDB unavailable). */
  telemetryDropped: number;
  telemetryWritten: number;
  /** Telemetry points waiting for InfluxDB now, and whether its writes are failing (an outage). */
  telemetryBuffered: number;
  telemetryFailing: boolean;
  /** Records waiting for the durable log now. */
  logQueueDepth: number;
  /** Times the durable log stopped being able to write (disk full, I/O errors); 1 while it cannot now. */
  logUnavailable: number;
  logFailing: boolean;
}

/** While the durable log cannot write: since when (service clock) and the storage's error. */
export interface LogFailure {
  since: number;
  reason: string;
}

export interface GatewayDeps {
  store: GatewayStore;
  clock: Clock;
  log: Logger;
  /** Accepted, non-duplicate events (device events and presence records) in log order, after they are durable. */
  onEvents?: (events: LoggedEvent[]) => void;
  /** Device presence changes (connect, disconnect, will, heartbeat). */
  onPresence?: (update: PresenceUpdate & { homeId: string }) => void;
  /** Each durable log write: how long it took and how many records it carried. */
  onLogWrite?: (ms: number, records: number) => void;
  /**
   * Staff clients (responder apps) log in with username = staff id and password = an API token: when the
   * token's session ends (null: it is not valid for this staff member now). Asked again at that time and on
   * every `recheckStaff`, so a session that expires or is revoked ends its MQTT connection (SPEC §8).
   */
  authenticateStaff?: (staffId: string, token: string) => Promise<{ expiresAt: number } | null>;
  /** Optional InfluxDB export of accepted events (SPEC §9). Started and stopped by the gateway. */
  telemetry?: InfluxTelemetry;
  port?: number;
  host?: string;
  /** MQTT over TLS, when configured (certificate and key as PEM files). */
  tls?: { port: number; host?: string; certFile: string; keyFile: string };
  /** MQTT over WebSocket, when configured. */
  ws?: { port: number; host?: string; path?: string };
  limits?: Partial<GuardLimits>;
  /** Brute-force limit: failures of one device id (or distinct failing ids of one address) before refusals are slowed. */
  loginFailuresAllowed?: number;
  /** The login gate's bounds (login-gate.ts). */
  loginGate?: Partial<Omit<LoginGateOptions, 'failuresAllowed'>>;
  /** Refused logins are logged as one summary per period (the first of a period at once). */
  loginReportMs?: number;
  /** A complete CONNECT must arrive this soon after the connection opens. */
  connectTimeoutMs?: number;
  /** Admission control: stop reading sockets above `high` records waiting for the log, resume below `low`. */
  admission?: { high: number; low: number };
}

/** `session`: this connection's id in the event log, so a restarted seq count shows (duplicates.ts). */
type Identity =
  | { kind: 'device'; device: DeviceCredentials; session: string }
  | { kind: 'staff'; staffId: string; token: string; expiry: Timer | null };
/** Session ids unique across gateway processes sharing one database: this process's tag and a count. */
const SESSION_TAG = randomUUID().slice(0, 8);
let sessionCount = 0;

const IDENTITY = Symbol('g365.identity');
const KEEPALIVE_EXPIRED = Symbol('g365.keepaliveExpired');
const SESSION_ENDED = Symbol('g365.sessionEnded');
const SESSION_READY = Symbol('g365.sessionReady');
/** On a device's event publish that the gateway has fully handled: logged (or rejected) and acknowledged. */
const HANDLED = Symbol('g365.handled');
type IdentifiedClient = Client & {
  [IDENTITY]?: Identity;
  [SESSION_READY]?: boolean;
  [KEEPALIVE_EXPIRED]?: boolean;
  [SESSION_ENDED]?: boolean;
  /** aedes internals: set when the client sent DISCONNECT (a clean end), and the will before CONNACK. */
  _disconnected?: boolean;
  _will?: { topic: string; payload: Buffer; retain: boolean } | null;
  conn: Connection;
};

class AuthError extends Error implements AuthenticateError {
  constructor(
    readonly returnCode: 3 | 4 | 5,
    message: string,
  ) {
    super(message);
  }
}

/** A record with its event still parsed, so the hand-off to the rules does not parse the body again. */
type ParsedRecord = EventRecord & { parsed?: LogEvent };

/** Log back-pressure: above this many records waiting, sockets are not read; below the low mark, again. */
const ADMISSION = { high: 20_000, low: 5_000 };
/** How far behind a device row's last-seen time may be while the device keeps talking. */
const LAST_SEEN_STEP_MS = 5_000;

/** A login whose connection closed before its secret was checked: nothing to answer, nothing to count. */
class LoginGone extends Error {}

function bump(m: Map<string, number>, key: string, n = 1): void {
  m.set(key, (m.get(key) ?? 0) + n);
}

export class Gateway {
  private readonly m: GatewayMetrics = {
    connected: 0,
    devicesOnline: 0,
    accepted: 0,
    duplicates: 0,
    rejectedByReason: new Map(),
    authFailures: 0,
    authThrottled: 0,
    loginChecks: 0,
    loginCached: 0,
    loginSkipped: 0,
    loginBusy: 0,
    loginQueued: 0,
    aclDenied: 0,
    aclDeniedByKind: new Map(),
    violationsByReason: new Map(),
    throttled: 0,
    admissionClosed: 0,
    presenceRecords: 0,
    clientErrors: 0,
    telemetryDropped: 0,
    telemetryWritten: 0,
    telemetryBuffered: 0,
    telemetryFailing: false,
    logQueueDepth: 0,
    logUnavailable: 0,
    logFailing: false,
  };
  private logFailure: LogFailure | null = null;
  private broker: Aedes | undefined;
  private listeners: Listeners | undefined;
  private readonly eventLog: GroupCommitLog;
  private readonly admission = new Admission();
  private readonly limits: GuardLimits;
  private readonly gate: LoginGate;
  /** Refused logins since the last summary, by reason, and from how many addresses. */
  private refusals = { n: 0, byReason: new Map<string, number>(), addresses: new Map<string, number>() };
  private refusalTimer: NodeJS.Timeout | undefined;
  /** The live session of each device: a presence change from a superseded session is ignored. */
  private readonly sessions = new Map<string, IdentifiedClient>();
  /** The last presence state written to the log per device, so repeated `online` status adds nothing. */
  private readonly lastPresence = new Map<string, 'online' | 'offline'>();
  private readonly pendingPresence = new Map<string, PresenceUpdate>();
  /** Per online device, the last-seen time last queued for its row (see onlySeenAgain). */
  private readonly seenWritten = new Map<string, number>();
  private presenceScheduled = false;
  private presenceWrite: Promise<void> = Promise.resolve();
  private stopping = false;

  constructor(private readonly deps: GatewayDeps) {
    this.limits = { ...DEFAULT_LIMITS, ...deps.limits };
    this.gate = new LoginGate({
      ...deps.loginGate,
      ...(deps.loginFailuresAllowed !== undefined && { failuresAllowed: deps.loginFailuresAllowed }),
    });
    this.eventLog = new GroupCommitLog({
      store: deps.store,
      onCommitted: (records, outcomes) => this.committed(records, outcomes),
      onWriteLatency: (ms, n) => deps.onLogWrite?.(ms, n),
      onBatchSettled: () => this.admit(),
      takePresence: () => this.takePresence(),
      // Back to the pending updates: the next batch (or the idle write) carries them again.
      onPresenceFailed: (updates) => this.requeuePresence(updates),
      onUnavailable: (reason) => {
        this.logFailure = { since: deps.clock.now(), reason };
        this.m.logUnavailable++;
        // SPEC §9: nothing acknowledged is lost; devices are held (no PUBACK) until the log writes again.
        deps.log.error({ reason }, 'event log cannot write: holding devices until it can');
      },
      onAvailable: () => {
        const since = this.logFailure?.since;
        this.logFailure = null;
        deps.log.warn(
          { heldMs: since === undefined ? null : deps.clock.now() - since },
          'event log writes again: devices resume',
        );
      },
      onIdle: () => {
        if (this.pendingPresence.size > 0) this.schedulePresence();
      },
    });
  }

  /** The plain MQTT (TCP) port. */
  get port(): number {
    return this.listeners?.ports.tcp ?? 0;
  }

  get ports(): { tcp: number; tls: number; ws: number } {
    return this.listeners?.ports ?? { tcp: 0, tls: 0, ws: 0 };
  }

  async start(): Promise<void> {
    this.stopping = false;
    const broker = await Aedes.createBroker({
      // Slow partial CONNECTs: the guard forwards only complete packets, so this bounds them (item 5).
      connectTimeout: this.deps.connectTimeoutMs ?? 10_000,
      maxTopicLevels: this.limits.maxTopicLevels,
      maxInflightInbound: this.limits.maxInboundQos2,
      maxClientsIdLength: 64,
      authenticate: (client, username, password, done) => {
        this.authenticate(client as IdentifiedClient, username, password).then(
          () => done(null, true),
          (e: unknown) => {
            if (e instanceof AuthError) done(e, false);
            else if (e instanceof LoginGone)
              done(Object.assign(e, { returnCode: 3 }) as AuthenticateError, false);
            else {
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
          (handled) => {
            if (handled) (packet as { [HANDLED]?: true })[HANDLED] = true;
            done(null);
          },
          (e: Error) => done(e),
        );
      },
      authorizeSubscribe: (client, sub, done) => {
        const identity = (client as IdentifiedClient)[IDENTITY];
        if (identity && this.maySubscribe(identity, sub.topic)) return done(null, sub);
        this.denied('subscribe');
        this.deps.log.info({ clientId: client.id, topic: sub.topic }, 'subscription refused by ACL');
        done(null, null); // SUBACK 0x80
      },
    });
    // A device's events reach the rules from the durable log (onCommitted), and the ACL lets no client
    // subscribe to them (maySubscribe): aedes' routing of each one after its PUBACK (offline queues, the
    // subscription match, the 'publish' hooks) would find nobody, at a tenth of the event loop at
    // saturation. A handled event is routed no further; everything else (status, wills, notifications)
    // is routed as before. Allowing a subscription to device events means removing this.
    const route = broker.publish.bind(broker) as (p: unknown, c: unknown, done?: unknown) => void;
    (broker as { publish: unknown }).publish = (packet: object, client: unknown, done?: unknown) => {
      if ((packet as { [HANDLED]?: true })[HANDLED] && typeof done === 'function') return done(null);
      route(packet, client, done);
    };
    this.broker = broker;
    broker.on('clientReady', (client) => this.sessionStarted(client as IdentifiedClient));
    broker.on('clientDisconnect', (client) => this.sessionEnded(client as IdentifiedClient));
    broker.on('keepaliveTimeout', (client) => {
      (client as IdentifiedClient)[KEEPALIVE_EXPIRED] = true;
    });
    broker.on('clientError', (client, err) => {
      this.m.clientErrors++;
      this.deps.log.debug({ clientId: client.id, err: err.message }, 'mqtt client error');
    });
    broker.on('connectionError', (_client, err) => {
      this.m.clientErrors++;
      this.deps.log.debug({ err: err.message }, 'mqtt connection error');
    });

    this.deps.telemetry?.start();
    this.refusalTimer = setInterval(() => this.reportRefusals(), this.deps.loginReportMs ?? 60_000);
    this.refusalTimer.unref();
    const host = this.deps.host ?? '0.0.0.0';
    this.listeners = new Listeners(
      {
        tcp: { port: this.deps.port ?? 1883, host },
        tls: this.deps.tls && { ...this.deps.tls, host: this.deps.tls.host ?? host },
        ws: this.deps.ws && { ...this.deps.ws, host: this.deps.ws.host ?? host },
        maxFrameBytes: this.limits.maxPacketBytes + 5,
      },
      (conn) => this.accept(conn),
    );
    try {
      await this.listeners.start();
    } catch (e) {
      await this.stop();
      throw e;
    }
    this.deps.log.info({ ports: this.ports }, 'mqtt gateway listening');
  }

  async stop(): Promise<void> {
    // Shutting down is not every device going offline: no presence records from here on.
    this.stopping = true;
    clearInterval(this.refusalTimer);
    this.gate.stop();
    this.reportRefusals();
    const listeners = this.listeners;
    const broker = this.broker;
    this.listeners = undefined;
    this.broker = undefined;
    const closing = listeners?.stop();
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
    await closing;
    this.admission.open();
    // Shutting down while the storage cannot write: what is held stays unacknowledged (devices resend).
    this.eventLog.abandon();
    await this.eventLog.drain();
    this.flushPresence(true);
    await this.presenceWrite;
    await this.deps.telemetry?.stop();
    this.sessions.clear();
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

  /**
   * After a device is disabled or its secret rotated: forget the cached verification and end its live
   * session, so the old secret or the disabled device is out now, not at its next reconnect.
   */
  revokeDevice(deviceId: string): boolean {
    this.gate.forget(deviceId);
    const client = this.sessions.get(deviceId);
    if (!client) return false;
    this.deps.log.info({ deviceId }, 'device session ended after a credential change');
    client.close();
    return true;
  }

  /**
   * Checks every staff app's connection against the sessions in force (after any change of rights or
   * sessions): one whose token no longer stands for its staff member (disabled, password changed, logged
   * out, expired) is closed; the app must log in again. Returns how many were closed.
   */
  async recheckStaff(): Promise<number> {
    const clients = (
      this.broker as unknown as { clients?: Record<string, IdentifiedClient | undefined> } | undefined
    )?.clients;
    let closed = 0;
    for (const client of Object.values(clients ?? {}))
      if (client?.[IDENTITY]?.kind === 'staff' && !(await this.recheckClient(client))) closed++;
    return closed;
  }

  /** True when the staff client may stay; closes it otherwise. */
  private async recheckClient(client: IdentifiedClient): Promise<boolean> {
    const identity = client[IDENTITY];
    if (identity?.kind !== 'staff') return true;
    let session: { expiresAt: number } | null = null;
    try {
      session = (await this.deps.authenticateStaff?.(identity.staffId, identity.token)) ?? null;
    } catch (e) {
      this.deps.log.error({ err: e, staffId: identity.staffId }, 'staff session check failed; closing');
    }
    if (session) {
      identity.expiry?.cancel();
      identity.expiry = this.deps.clock.at(instant(session.expiresAt), () => void this.recheckClient(client));
      return true;
    }
    identity.expiry?.cancel();
    this.deps.log.info({ staffId: identity.staffId }, 'staff MQTT session ended: its login session ended');
    client.close();
    return false;
  }

  /**
   * Whether a notification on this staff member's topic reaches an app now or later: their app is
   * connected and subscribed to it, or a persistent session (clean session off) keeps QoS 1 messages for it.
   */
  async staffListening(staffId: string): Promise<boolean> {
    const broker = this.broker;
    if (!broker) return false;
    const topic = topics.staffAlerts(staffId);
    const client = this.staffClient(staffId) as
      | (Client & { subscriptions?: Record<string, unknown> })
      | undefined;
    if (client?.subscriptions?.[topic]) return true;
    // aedes' persistence (not in its types): the subscriptions of sessions that outlive their connection.
    const persistence = (
      broker as unknown as {
        persistence: { subscriptionsByTopic(topic: string): Promise<{ clientId: string }[]> };
      }
    ).persistence;
    const kept = await persistence.subscriptionsByTopic(topic);
    return kept.some((s) => s.clientId === `staff:${staffId}`);
  }

  /** A staff member's live MQTT client: aedes keeps its clients by client id (`staff:{id}`), not in its types. */
  /**
   * Ends the staff app sessions whose API token no longer authenticates (a password reset on the same data
   * folder ended that person's sessions, or the session expired). Returns how many were ended.
   */
  async endStaleStaffSessions(): Promise<number> {
    const check = this.deps.authenticateStaff;
    const clients = (this.broker as unknown as { clients?: Record<string, Client | undefined> } | undefined)
      ?.clients;
    if (!check || !clients) return 0;
    let ended = 0;
    for (const client of Object.values(clients)) {
      const identity = (client as IdentifiedClient | undefined)?.[IDENTITY];
      if (identity?.kind !== 'staff' || (await check(identity.staffId, identity.token))) continue;
      this.deps.log.info({ staffId: identity.staffId }, 'staff MQTT session ended: its login session ended');
      client!.close();
      ended++;
    }
    return ended;
  }

  private staffClient(staffId: string): Client | undefined {
    const clients = (this.broker as unknown as { clients?: Record<string, Client | undefined> } | undefined)
      ?.clients;
    return clients?.[`staff:${staffId}`];
  }

  /** Set while the durable log cannot write (readiness, the dispatch screen). */
  get logHealth(): LogFailure | null {
    return this.logFailure;
  }

  /** The gateway's counters, with the live figures read now (for /metrics). */
  get metrics(): GatewayMetrics {
    const m = this.m;
    m.connected = this.broker?.connectedClients ?? 0;
    m.devicesOnline = this.sessions.size;
    m.logQueueDepth = this.eventLog.depth;
    m.logFailing = this.logFailure !== null;
    const g = this.gate.stats;
    m.loginChecks = g.checks;
    m.loginCached = g.cached;
    m.loginSkipped = g.skipped;
    m.loginBusy = g.busy;
    m.loginQueued = g.queued;
    if (this.deps.telemetry) {
      m.telemetryDropped = this.deps.telemetry.stats.dropped;
      m.telemetryWritten = this.deps.telemetry.stats.written;
      m.telemetryBuffered = this.deps.telemetry.stats.buffered;
      m.telemetryFailing = this.deps.telemetry.stats.failing;
    }
    return m;
  }

  private accept(conn: Connection): void {
    const broker = this.broker;
    if (!broker) {
      conn.destroy();
      return;
    }
    const guard = new MqttGuard(
      conn,
      this.limits,
      {
        violation: (reason, address) => {
          bump(this.m.violationsByReason, reason);
          this.deps.log.info({ reason, address }, 'mqtt connection closed: protocol violation');
        },
        throttled: () => {
          this.m.throttled++;
        },
      },
      this.admission,
    );
    const client = broker.handle(guard) as IdentifiedClient;
    // aedes reports no disconnect for a client that never finished connecting; the socket's end still
    // must release the device's session slot (after aedes has set its own flags on the client).
    guard.once('close', () => setImmediate(() => this.sessionEnded(client)));
  }

  private denied(kind: 'publish' | 'retain' | 'subscribe' | 'will'): void {
    this.m.aclDenied++;
    bump(this.m.aclDeniedByKind, kind);
  }

  /**
   * SPEC §3 logins. A refused login is counted, its refusal held back when its device or address failed too
   * often (login-gate.ts), and summarised in the log once per period rather than once per attempt.
   */
  private async authenticate(
    client: IdentifiedClient,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<void> {
    const address = client.conn.remoteAddress ?? 'unknown';
    const user = username ?? '';
    try {
      await this.verify(client, user, password?.toString('utf8') ?? '', address);
    } catch (e) {
      if (!(e instanceof AuthError)) throw e;
      this.m.authFailures++;
      this.noteRefusal(e.message, address, client.id);
      const delay = this.gate.failed(user, address);
      if (delay > 0) {
        this.m.authThrottled++;
        await new Promise((r) => setTimeout(r, delay));
      }
      throw e;
    }
    this.gate.succeeded(user);
  }

  private async verify(
    client: IdentifiedClient,
    user: string,
    secret: string,
    address: string,
  ): Promise<void> {
    const will = client._will;
    const staff = parseStaffUser(user);
    if (staff) {
      const session =
        this.deps.authenticateStaff && client.id === user
          ? await this.deps.authenticateStaff(staff, secret)
          : null;
      if (session) {
        if (will) {
          this.denied('will');
          throw new AuthError(5, 'staff clients may not set a will');
        }
        const identity: Identity = { kind: 'staff', staffId: staff, token: secret, expiry: null };
        client[IDENTITY] = identity;
        // The session's end closes the connection (checked again then: it may have been extended).
        identity.expiry = this.deps.clock.at(
          instant(session.expiresAt),
          () => void this.recheckClient(client),
        );
        return;
      }
      throw new AuthError(4, 'bad staff credentials');
    }
    const device = await this.deps.store.findDevice(user);
    if (!device) throw new AuthError(4, 'unknown device');
    // SPEC §3: client id = username = device id; a secret used under another client id is refused.
    if (client.id !== device.id) throw new AuthError(4, 'client id does not match the device');
    const conn = client.conn as Connection & { destroyed?: boolean };
    const checked = await this.gate.check(
      device.id,
      address,
      secret,
      device.secretHash,
      () => !client.closed && !conn.destroyed,
    );
    if (checked === 'gone') throw new LoginGone('connection closed before its secret was checked');
    // Not checked: the device or its address failed too often and the budget for such checks is used up.
    if (checked === 'busy') throw new AuthError(3, 'too many failed logins: try again later');
    if (checked === 'wrong') throw new AuthError(4, 'wrong secret');
    if (device.disabled) throw new AuthError(5, 'device disabled');
    // SPEC §3 ACL: a device's will may only be its own status topic (the retained `offline`).
    if (will && will.topic !== topics.status(device.homeId, device.id)) {
      this.denied('will');
      throw new AuthError(5, 'will topic outside the device status topic');
    }
    client[IDENTITY] = { kind: 'device', device, session: `${SESSION_TAG}-${++sessionCount}` };
    // From here this client is the device's session; the one it replaces ends without a presence record.
    this.sessions.set(device.id, client);
  }

  /** The first refusal of a period is logged at once, the rest in the period's summary (reportRefusals). */
  private noteRefusal(reason: string, address: string, clientId: string): void {
    const r = this.refusals;
    if (r.n === 0) this.deps.log.info({ clientId, reason, address }, 'mqtt login refused');
    r.n++;
    bump(r.byReason, reason);
    if (r.addresses.size < 10_000 || r.addresses.has(address)) bump(r.addresses, address);
  }

  private reportRefusals(): void {
    const r = this.refusals;
    if (r.n <= 1) {
      if (r.n === 1) this.refusals = { n: 0, byReason: new Map(), addresses: new Map() };
      return;
    }
    const top = [...r.addresses].sort((a, b) => b[1] - a[1]).slice(0, 3);
    this.deps.log.warn(
      {
        refused: r.n,
        byReason: Object.fromEntries(r.byReason),
        addresses: r.addresses.size,
        top: top.map(([address, n]) => ({ address, n })),
        checks: this.gate.stats.checks,
        busy: this.gate.stats.busy,
      },
      'mqtt logins refused since the last report',
    );
    this.refusals = { n: 0, byReason: new Map(), addresses: new Map() };
  }

  private maySubscribe(identity: Identity, topic: string): boolean {
    if (identity.kind === 'staff') return parseStaffTopic(topic)?.staff === identity.staffId;
    const d = identity.device;
    return topic === topics.errors(d.homeId, d.id);
  }

  /** Resolves true when the publish was a device event, now logged (or rejected) and done with. */
  private async authorizePublish(
    client: IdentifiedClient,
    topic: string,
    payload: Buffer,
    retain: boolean,
  ): Promise<boolean> {
    const identity = client[IDENTITY];
    const parsed = parseDeviceTopic(topic);
    if (
      identity?.kind !== 'device' ||
      !parsed ||
      parsed.device !== identity.device.id ||
      parsed.home !== identity.device.homeId ||
      parsed.channel === 'errors'
    ) {
      this.denied('publish');
      this.deps.log.info({ clientId: client.id, topic }, 'publish refused by ACL');
      throw new Error('publish not authorized');
    }
    // SPEC §3: only the status topic is retained; a retained event would replay to every subscriber.
    if (retain && parsed.channel !== 'status') {
      this.denied('retain');
      this.deps.log.info({ clientId: client.id, topic }, 'retained publish refused by ACL');
      throw new Error('retained publish not authorized');
    }
    const device = identity.device;
    const receivedAt = this.deps.clock.now();
    if (parsed.channel === 'status') {
      if (client.closed) {
        // The will, published by aedes after an unclean end of the session.
        await this.endSession(client);
        return false;
      }
      const s = statusPayload.safeParse(payload.toString('utf8'));
      if (s.success && this.sessions.get(device.id) === client) {
        await this.recordPresence(device, s.data, 'status');
        this.presenceUpdate({
          deviceId: device.id,
          homeId: device.homeId,
          online: s.data === 'online',
          lastSeenAt: receivedAt,
        });
      }
      return false;
    }
    const result = validateEvent(payload, device.kind);
    if (!result.ok) {
      await this.reject(device, topic, payload, receivedAt, result.reason);
      return true;
    }
    const ev = result.event;
    const flags: string[] = [];
    let ts = ev.ts;
    if (ts > receivedAt + MAX_FUTURE_SKEW_MS || ts < receivedAt - MAX_PAST_SKEW_MS) {
      flags.push('clock_skew');
      ts = receivedAt;
    }
    const event = { ...ev, ts } as DeviceEvent;
    const outcome = await this.append({
      parsed: event,
      deviceId: device.id,
      homeId: device.homeId,
      receivedAt,
      topic,
      status: 'accepted',
      ts,
      type: ev.type,
      deviceSeq: ev.seq ?? null,
      session: identity.session,
      body: JSON.stringify(event),
      reason: null,
      flags,
    });
    if (outcome.duplicate) this.m.duplicates++;
    else {
      this.m.accepted++;
      this.deps.telemetry?.record(
        { home: device.homeId, device: device.id, kind: device.kind, room: device.room, grid: device.gridId },
        event,
      );
    }
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
    return true;
  }

  /** Appends through the group-commit log, with admission control when the log falls behind. */
  private append(record: ParsedRecord) {
    const result = this.eventLog.append(record);
    if (this.eventLog.depth > (this.deps.admission ?? ADMISSION).high && !this.admission.isClosed) {
      this.admission.close();
      this.m.admissionClosed++;
      this.deps.log.warn({ depth: this.eventLog.depth }, 'event log behind: not reading from sockets');
    }
    return result;
  }

  /** SPEC §3: a rejected message is still acknowledged, recorded with its reason, counted and reported. */
  private async reject(
    device: DeviceCredentials,
    topic: string,
    payload: Buffer,
    receivedAt: number,
    reason: string,
  ): Promise<void> {
    const key = reasonKey(reason);
    bump(this.m.rejectedByReason, key);
    this.deps.log.info({ deviceId: device.id, reason }, 'event rejected');
    await this.append({
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
      rejectedByReason: { [key]: 1 },
    });
    const report = JSON.stringify({ reason, topic, at: new Date(receivedAt).toISOString() });
    this.publish(topics.errors(device.homeId, device.id), report, 0).catch(() => {});
  }

  private sessionStarted(client: IdentifiedClient): void {
    const identity = client[IDENTITY];
    if (identity?.kind !== 'device' || this.sessions.get(identity.device.id) !== client) return;
    const device = identity.device;
    client[SESSION_READY] = true;
    this.recordPresence(device, 'online', 'connect').catch((e: unknown) =>
      this.deps.log.error({ err: e, deviceId: device.id }, 'presence record failed'),
    );
    this.presenceUpdate({
      deviceId: device.id,
      homeId: device.homeId,
      online: true,
      lastSeenAt: this.deps.clock.now(),
    });
  }

  private sessionEnded(client: IdentifiedClient): void {
    this.endSession(client).catch((e: unknown) =>
      this.deps.log.error({ err: e, clientId: client.id }, 'presence record failed'),
    );
  }

  /**
   * The end of a device's session, once, whichever comes first: its will (published by aedes on an unclean
   * end) or the disconnect. Cause: keep-alive timeout, clean DISCONNECT, or otherwise a lost connection
   * (the will case), as SPEC §5 DEVICE_OFFLINE needs to tell them apart.
   */
  private async endSession(client: IdentifiedClient): Promise<void> {
    const identity = client[IDENTITY];
    if (identity?.kind === 'staff') identity.expiry?.cancel();
    if (identity?.kind !== 'device' || client[SESSION_ENDED]) return;
    client[SESSION_ENDED] = true;
    const device = identity.device;
    if (this.sessions.get(device.id) !== client) return; // replaced by a newer session of the same device
    this.sessions.delete(device.id);
    if (this.stopping || !client[SESSION_READY]) return;
    const cause: PresenceEvent['cause'] = client[KEEPALIVE_EXPIRED]
      ? 'keepalive'
      : client._disconnected
        ? 'disconnect'
        : 'will';
    this.presenceUpdate({
      deviceId: device.id,
      homeId: device.homeId,
      online: false,
      lastSeenAt: this.deps.clock.now(),
    });
    await this.recordPresence(device, 'offline', cause);
  }

  /** A presence transition as a log record (type `presence`), so the rules see it in log order. */
  private async recordPresence(
    device: DeviceCredentials,
    state: 'online' | 'offline',
    cause: PresenceEvent['cause'],
  ): Promise<void> {
    if (cause === 'status' && this.lastPresence.get(device.id) === state) return;
    this.lastPresence.set(device.id, state);
    const ts = this.deps.clock.now();
    const body: PresenceEvent = { type: 'presence', ts, state, cause };
    this.m.presenceRecords++;
    await this.append({
      parsed: body,
      deviceId: device.id,
      homeId: device.homeId,
      receivedAt: ts,
      topic: topics.status(device.homeId, device.id),
      status: 'accepted',
      ts,
      type: 'presence',
      deviceSeq: null,
      body: JSON.stringify(body),
      reason: null,
      flags: [],
    });
  }

  private presenceUpdate(u: PresenceUpdate & { homeId: string }): void {
    this.deps.onPresence?.(u);
    if (this.onlySeenAgain(u)) return;
    // Coalesced per turn of the event loop: a busy device costs one row update per batch, not per message.
    const prev = this.pendingPresence.get(u.deviceId);
    if (!prev) {
      const { homeId: _home, ...update } = u;
      this.pendingPresence.set(u.deviceId, update);
    } else {
      // Merged in place: this runs for every accepted message.
      if (u.online !== undefined) prev.online = u.online;
      if (u.lastSeenAt !== undefined) prev.lastSeenAt = u.lastSeenAt;
      if (u.battery !== undefined) prev.battery = u.battery;
      if (u.rssi !== undefined) prev.rssi = u.rssi;
      if (u.fw !== undefined) prev.fw = u.fw;
      if (u.rejectedDelta) prev.rejectedDelta = (prev.rejectedDelta ?? 0) + u.rejectedDelta;
      if (u.rejectedByReason) {
        const reasons = prev.rejectedByReason ?? {};
        for (const [k, n] of Object.entries(u.rejectedByReason)) reasons[k] = (reasons[k] ?? 0) + n;
        prev.rejectedByReason = reasons;
      }
    }
    this.schedulePresence();
  }

  /**
   * True for an update that says no more than "still online, seen now" within `LAST_SEEN_STEP_MS` of the
   * last-seen time already on its way to the device row: that row is not rewritten for it (every accepted
   * message says this; written each time, it was a row update per device per batch, a fifth of the log
   * writer's work). The row's last-seen time is then at most that much behind; going offline, a change of
   * battery, signal or firmware, or a rejection is always written.
   */
  private onlySeenAgain(u: PresenceUpdate): boolean {
    const written = this.seenWritten.get(u.deviceId);
    const plain =
      u.online !== false &&
      u.lastSeenAt !== undefined &&
      u.battery === undefined &&
      u.rssi === undefined &&
      u.fw === undefined &&
      !u.rejectedDelta &&
      !u.rejectedByReason;
    if (plain && written !== undefined && u.lastSeenAt! - written < LAST_SEEN_STEP_MS) return true;
    if (u.online === false) this.seenWritten.delete(u.deviceId);
    else if (u.lastSeenAt !== undefined && (u.online === true || written !== undefined))
      this.seenWritten.set(u.deviceId, u.lastSeenAt);
    return false;
  }

  private requeuePresence(updates: PresenceUpdate[]): void {
    for (const u of updates) {
      const prev = this.pendingPresence.get(u.deviceId);
      if (!prev) {
        this.pendingPresence.set(u.deviceId, u);
        continue;
      }
      // What came later wins; counts add up.
      const merged: PresenceUpdate = { ...u, ...prev };
      if (u.rejectedDelta) merged.rejectedDelta = (prev.rejectedDelta ?? 0) + u.rejectedDelta;
      if (u.rejectedByReason) {
        const reasons = { ...u.rejectedByReason };
        for (const [k, n] of Object.entries(prev.rejectedByReason ?? {})) reasons[k] = (reasons[k] ?? 0) + n;
        merged.rejectedByReason = reasons;
      }
      this.pendingPresence.set(u.deviceId, merged);
    }
  }

  private schedulePresence(): void {
    if (this.presenceScheduled) return;
    this.presenceScheduled = true;
    setImmediate(() => this.flushPresence());
  }

  private takePresence(): PresenceUpdate[] {
    const batch = [...this.pendingPresence.values()];
    this.pendingPresence.clear();
    return batch;
  }

  /**
   * Device rows on their own transaction only when no log batch is on its way: otherwise the next batch
   * carries them (one fsync per batch, not two), and `onIdle` brings back any left when the log goes idle.
   */
  private flushPresence(force = false): void {
    this.presenceScheduled = false;
    if (!force && this.eventLog.busy) return;
    this.writePresence(this.takePresence());
  }

  private writePresence(batch: PresenceUpdate[]): void {
    if (batch.length === 0) return;
    this.presenceWrite = this.presenceWrite
      .then(() => this.deps.store.updatePresence(batch))
      .catch((e: unknown) => {
        if (!storageUnavailable(e) || this.stopping) {
          this.deps.log.error({ err: e }, 'presence update failed');
          return;
        }
        // The storage cannot write now: kept, and tried again with the next batch or in a second.
        this.requeuePresence(batch);
        setTimeout(() => this.schedulePresence(), 1_000).unref();
      });
  }

  /** Admission control (EDGE-03): read sockets again once the log has caught up. */
  private admit(): void {
    if (this.admission.isClosed && this.eventLog.depth < (this.deps.admission ?? ADMISSION).low) {
      this.admission.open();
      this.deps.log.info({ depth: this.eventLog.depth }, 'event log caught up: reading sockets again');
    }
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
        event: (r as ParsedRecord).parsed ?? JSON.parse(r.body),
      });
    });
    if (events.length) this.deps.onEvents(events);
  }
}

/** The stable part of a rejection reason (`invalid state: …` → `invalid state`), for counting. */
export function reasonKey(reason: string): string {
  return reason.replace(/:.*$/, '');
}

function parseStaffUser(username: string): string | null {
  return username.startsWith('staff:') ? username.slice('staff:'.length) : null;
}
