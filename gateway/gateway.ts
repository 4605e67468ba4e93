/**
 * The device edge (DEV-01..10, EDGE-01..05): an aedes MQTT 3.1.1 broker that authenticates every device,
 * enforces the topic ACL, validates each payload, writes every message (accepted or rejected) to the durable
 * log before acknowledging it, records presence transitions in the same log, exports telemetry, and hands
 * accepted events to the rules in-process.
 *
 * This file is the aedes adapter: it translates aedes' hooks and events and delegates the decisions to
 * their units, as aedes itself keeps each collaborator an option and each packet type in its own file:
 *   auth.ts      who a CONNECT is (device secrets through login-gate.ts, staff tokens), or its CONNACK code;
 *                legacy device hashes re-hashed through rehash.ts
 *   acl.ts       where an identity may publish, retain, subscribe and set its will (pure)
 *   presence.ts  device sessions, presence records and device rows
 *   hygiene.ts   the protocol guard every connection passes first, and admission control
 *   event-log.ts the group-commit durable log
 *   aedes-seams.ts  the reaches past aedes' public API, pinned by tests
 *   mesh.ts      several gateways on one Redis bus (CLU-05), when configured
 * Decisions about alerts live downstream.
 */
import type { Aedes, AuthenticateError, Client } from 'aedes';
import type { Clock } from '../kernel/clock.ts';
import type { Logger } from '../kernel/log.ts';
import { instant } from '../kernel/time.ts';
import { type AclRefusal, mayPublish, maySubscribe } from './acl.ts';
import {
  createBroker,
  isSweptWillOfLiveSession,
  markHandled,
  routeOnlyUnhandled,
  sessionsSubscribedTo,
} from './aedes-seams.ts';
import {
  AuthError,
  Authenticator,
  bump,
  type Identity,
  LoginGone,
  STAFF_USER,
  type StaffCheck,
} from './auth.ts';
import { GroupCommitLog } from './event-log.ts';
import { Admission, DEFAULT_LIMITS, type GuardLimits, MqttGuard } from './hygiene.ts';
import { type Connection, Listeners } from './listeners.ts';
import { LoginGate, type LoginGateOptions } from './login-gate.ts';
import type {
  AppendOutcome,
  DeviceCredentials,
  EventRecord,
  GatewayStore,
  LoggedEvent,
  PresenceUpdate,
} from './ports.ts';
import { Presence } from './presence.ts';
import {
  type DeviceEvent,
  isUrgent,
  type LogEvent,
  MAX_EVENT_BYTES,
  MAX_FUTURE_SKEW_MS,
  MAX_PAST_SKEW_MS,
  statusPayload,
  topics,
  validateEvent,
} from './protocol.ts';
import { SecretRehash } from './rehash.ts';
import { verifyFastDeviceSecret } from './secrets.ts';
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
  /** Fast-format device secret checks (SEC-05), run at once. */
  loginFastChecks: number;
  /** Legacy secret checks run (scrypt), answered from the gate's caches, skipped (connection gone). */
  loginChecks: number;
  loginCached: number;
  /** Legacy device hashes re-hashed to the fast format after a good login (SEC-05). */
  loginRehashed: number;
  /** Times a login asked again (a device's row, a staff app's session): a revocation or re-check overtook it. */
  loginRechecked: number;
  /** Of those, refused: the device was disabled, removed or re-keyed, or the staff session ended (DEV-01, CLU-02). */
  loginRevokedUnderWay: number;
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
  /**
   * Accepted, non-duplicate events (device events and presence records) in log order, after they are
   * durable; `announced`: the positions of those the store already told the dispatchers of in their commit
   * (RULE-16).
   */
  onEvents?: (events: LoggedEvent[], announced: ReadonlySet<number>) => void;
  /** DEV-12: ordinary batches leave at most once per this many ms (0 or absent: every turn). */
  logPaceMs?: number;
  /**
   * DEV-01: every this many ms the devices connected here are checked against their rows (one query), so a
   * device disabled or re-keyed without a revocation reaching this process (a change made in the database
   * by hand, a notification lost) is disconnected within that time. 0 or absent: only on `recheckDevices`.
   */
  deviceRecheckMs?: number;
  /** Device presence changes (connect, disconnect, will, heartbeat). */
  onPresence?: (update: PresenceUpdate & { homeId: string }) => void;
  /** Each durable log write: how long it took and how many records it carried. */
  onLogWrite?: (ms: number, records: number) => void;
  /**
   * Staff clients (responder apps) log in with username = staff id and password = an API token: when the
   * token's session ends (null: it is not valid for this staff member now). Asked again at that time and on
   * every `recheckStaff`, so a session that expires or is revoked ends its MQTT connection (SPEC §8).
   */
  authenticateStaff?: StaffCheck;
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
  /**
   * CLU-05: several gateways share aedes' message bus (mesh.ts): aedes' `mq` and this broker's unique id.
   * Unset: one gateway, aedes' in-memory bus.
   */
  mesh?: { mq: unknown; brokerId: string };
}

const IDENTITY = Symbol('g365.identity');
const GUARD = Symbol('g365.guard');
const WILL_TOPIC = Symbol('g365.willTopic');
const KEEPALIVE_EXPIRED = Symbol('g365.keepaliveExpired');
/** A staff app subscribed to its alerts topic on this connection. */
const LISTENING = Symbol('g365.listening');
type GatewayClient = Client & {
  [IDENTITY]?: Identity;
  [GUARD]?: MqttGuard;
  /** The will topic of the CONNECT (aedes' preConnect hands us the packet), null without a will. */
  [WILL_TOPIC]?: string | null;
  [KEEPALIVE_EXPIRED]?: boolean;
  [LISTENING]?: boolean;
};

/** A record with its event still parsed, so the hand-off to the rules does not parse the body again. */
type ParsedRecord = EventRecord & { parsed?: LogEvent };

/** A login being checked; `changed` once its device was revoked or re-checked meanwhile. */
interface LoginUnderWay {
  changed: boolean;
}

/**
 * DEV-01: why a device's row (`undefined` or `null`: gone) no longer stands for a session or login that holds
 * `secretHash`, or null. The secret is judged before disabled, as at login (CONNACK 4 before 5); given the
 * secret itself, a row re-keyed to a hash it matches still stands (a login that already used the new one).
 */
function credentialsChange(
  row: { secretHash: string; disabled: boolean } | null | undefined,
  secretHash: string,
  secret?: string,
): 'removed' | 'secret' | 'disabled' | null {
  if (!row) return 'removed';
  const matches =
    row.secretHash === secretHash ||
    (secret !== undefined && verifyFastDeviceSecret(secret, row.secretHash) === true);
  if (!matches) return 'secret';
  return row.disabled ? 'disabled' : null;
}

/** Log back-pressure: above this many records waiting, sockets are not read; below the low mark, again. */
const ADMISSION = { high: 20_000, low: 5_000 };

export class Gateway {
  private readonly m: GatewayMetrics = {
    connected: 0,
    devicesOnline: 0,
    accepted: 0,
    duplicates: 0,
    rejectedByReason: new Map(),
    authFailures: 0,
    authThrottled: 0,
    loginFastChecks: 0,
    loginChecks: 0,
    loginCached: 0,
    loginRehashed: 0,
    loginRechecked: 0,
    loginRevokedUnderWay: 0,
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
  private readonly rehash: SecretRehash;
  private readonly auth: Authenticator;
  private readonly presence: Presence<GatewayClient>;
  /** Logged-in staff apps by client id (`staff:{id}`), for the session checks and `staffListening`. */
  private readonly staffClients = new Map<string, GatewayClient>();
  /**
   * Logins under way, by username. A revocation of the device or a re-check of every device (DEV-01, CLU-02)
   * marks a device login, a re-check of the staff apps a staff login, while it is checked: it may have read
   * what the change made stale, and asks again before it becomes a session (`authenticate`).
   */
  private readonly loginsUnderWay = new Map<string, Set<LoginUnderWay>>();
  private refusalTimer: NodeJS.Timeout | undefined;
  private recheckTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: GatewayDeps) {
    this.limits = { ...DEFAULT_LIMITS, ...deps.limits };
    this.gate = new LoginGate({
      ...deps.loginGate,
      ...(deps.loginFailuresAllowed !== undefined && { failuresAllowed: deps.loginFailuresAllowed }),
    });
    this.rehash = new SecretRehash(deps.store);
    this.auth = new Authenticator({
      store: deps.store,
      log: deps.log,
      gate: this.gate,
      rehash: this.rehash,
      authenticateStaff: deps.authenticateStaff,
      onWillDenied: () => this.denied('will'),
    });
    this.presence = new Presence<GatewayClient>({
      store: deps.store,
      clock: deps.clock,
      log: deps.log,
      append: (record) => this.append(record),
      logBusy: () => this.eventLog.busy,
      onPresence: deps.onPresence,
    });
    this.eventLog = new GroupCommitLog({
      store: deps.store,
      paceMs: deps.logPaceMs,
      onCommitted: (records, outcomes) => this.committed(records, outcomes),
      onWriteLatency: (ms, n) => deps.onLogWrite?.(ms, n),
      onBatchSettled: () => this.admit(),
      takePresence: () => this.presence.take(),
      // Back to the pending updates: the next batch (or the idle write) carries them again.
      onPresenceFailed: (updates) => this.presence.requeue(updates),
      onUnavailable: (reason) => {
        this.logFailure = { since: deps.clock.now(), reason };
        this.m.logUnavailable++;
        // EDGE-04: nothing acknowledged is lost; devices are held (no PUBACK) until the log writes again.
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
      onIdle: () => this.presence.idle(),
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
    this.presence.stopping = false;
    const broker = await createBroker(
      {
        ...(this.deps.mesh && { mq: this.deps.mesh.mq, id: this.deps.mesh.brokerId }),
        // Slow partial CONNECTs: the guard forwards only complete packets, so this bounds them (EDGE-01).
        connectTimeout: this.deps.connectTimeoutMs ?? 10_000,
        maxTopicLevels: this.limits.maxTopicLevels,
        maxInflightInbound: this.limits.maxInboundQos2,
        maxClientsIdLength: 64,
        preConnect: (client, packet, done) => {
          // The will is checked at login (acl.ts mayWill); aedes hands the CONNECT packet only here.
          (client as GatewayClient)[WILL_TOPIC] = packet.will?.topic ?? null;
          done(null, true);
        },
        authenticate: (client, username, password, done) => {
          this.authenticate(client as GatewayClient, username, password).then(
            () => done(null, true),
            (e: unknown) => {
              if (e instanceof AuthError) {
                // EDGE-02: a suspect login's refusal is sent late; meanwhile only its socket waits.
                if (e.holdMs > 0) (client as GatewayClient)[GUARD]?.holdRefusal(e.holdMs);
                done(e, false);
              } else if (e instanceof LoginGone)
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
          if (isSweptWillOfLiveSession(client, packet)) {
            // CLU-06: not the device's word; dropped, and aedes deletes the stored copy.
            markHandled(packet);
            return done(null);
          }
          this.onPublish(client as GatewayClient, packet.topic, packet.payload as Buffer, packet.retain).then(
            (handled) => {
              if (handled) markHandled(packet);
              done(null);
            },
            (e: Error) => done(e),
          );
        },
        authorizeSubscribe: (client, sub, done) => {
          if (maySubscribe((client as GatewayClient)[IDENTITY], sub.topic)) return done(null, sub);
          this.denied('subscribe');
          this.deps.log.info({ clientId: client.id, topic: sub.topic }, 'subscription refused by ACL');
          done(null, null); // SUBACK 0x80
        },
      },
      (clientId) => this.takenOver(clientId),
    );
    routeOnlyUnhandled(broker);
    this.broker = broker;
    broker.on('clientReady', (client) => {
      const identity = (client as GatewayClient)[IDENTITY];
      if (identity?.kind === 'device') this.presence.started(identity.device, client as GatewayClient);
    });
    broker.on('clientDisconnect', (client) => this.sessionEnded(client as GatewayClient));
    broker.on('keepaliveTimeout', (client) => {
      (client as GatewayClient)[KEEPALIVE_EXPIRED] = true;
    });
    broker.on('subscribe', (subs, client) => {
      const identity = (client as GatewayClient)[IDENTITY];
      if (identity?.kind !== 'staff') return;
      const topic = topics.staffAlerts(identity.staffId);
      // Refused filters come back with QoS 128.
      if (subs.some((s) => s.topic === topic && (s.qos as number) !== 128))
        (client as GatewayClient)[LISTENING] = true;
    });
    broker.on('unsubscribe', (unsubs, client) => {
      const identity = (client as GatewayClient)[IDENTITY];
      if (identity?.kind === 'staff' && unsubs.includes(topics.staffAlerts(identity.staffId)))
        (client as GatewayClient)[LISTENING] = false;
    });
    broker.on('clientError', (client, err) => {
      this.m.clientErrors++;
      this.deps.log.debug({ clientId: client.id, err: err.message }, 'mqtt client error');
    });
    // aedes' periodic will sweep reports a failed publish (the Redis bus down, CLU-06) as an 'error' event.
    (broker as unknown as NodeJS.EventEmitter).on('error', (err: Error) => {
      this.deps.log.warn({ err: err.message }, 'mqtt broker error');
    });
    broker.on('connectionError', (_client, err) => {
      this.m.clientErrors++;
      this.deps.log.debug({ err: err.message }, 'mqtt connection error');
    });

    this.deps.telemetry?.start();
    // An operator's log summary on a real interval: a reporting period, not domain time.
    this.refusalTimer = setInterval(() => this.auth.reportRefusals(), this.deps.loginReportMs ?? 60_000);
    this.refusalTimer.unref();
    // A safety net on a real interval (a check of the database, not domain time), after the revocations.
    if (this.deps.deviceRecheckMs) {
      // A tick while a check runs is dropped, not queued: a pass longer than the period cannot chain passes.
      this.recheckTimer = setInterval(() => {
        if (!this.recheck) void this.recheckDevices();
      }, this.deps.deviceRecheckMs);
      this.recheckTimer.unref();
    }
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
    this.presence.stopping = true;
    clearInterval(this.refusalTimer);
    clearInterval(this.recheckTimer);
    this.gate.stop();
    this.auth.reportRefusals();
    const listeners = this.listeners;
    const broker = this.broker;
    this.listeners = undefined;
    this.broker = undefined;
    const closing = listeners?.stop();
    if (broker) await new Promise<void>((r) => broker.close(() => r()));
    await closing;
    await this.rehash.flush();
    this.admission.open();
    // Shutting down while the storage cannot write: what is held stays unacknowledged (devices resend).
    this.eventLog.abandon();
    await this.eventLog.drain();
    await this.presence.stop();
    await this.deps.telemetry?.stop();
    this.staffClients.clear();
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
   * session, so the old secret or the disabled device is out now, not at its next reconnect (DEV-01).
   */
  revokeDevice(deviceId: string): boolean {
    this.gate.forget(deviceId);
    // A login of this device under way may have read its row before the change: it reads it again.
    for (const login of this.loginsUnderWay.get(deviceId) ?? []) login.changed = true;
    const client = this.presence.session(deviceId);
    if (!client) return false;
    this.deps.log.info({ deviceId }, 'device session ended after a credential change');
    client.close();
    return true;
  }

  /**
   * CLU-02: checks every device connected here against its row now, for when a revocation may have been
   * missed (this process's link to the dispatchers' messages was lost meanwhile): a device disabled,
   * removed, or whose secret changed since it logged in is disconnected, as its revocation would have done.
   * One query for all of them. A check that fails (the database is back but not yet answering) is tried
   * again, 1 s doubling to 30 s, until one goes through. A check asked for while one runs is answered by
   * one more pass after it (the running one may have read the rows before the change it is asked for);
   * however many ask meanwhile, one more. Resolves with how many devices were ended.
   */
  recheckDevices(): Promise<number> {
    if (this.recheck) {
      this.recheckAgain = true;
      return this.recheck;
    }
    this.recheck = (async () => {
      try {
        let ended = 0;
        do {
          this.recheckAgain = false;
          ended += await this.recheckUntilDone();
        } while (this.recheckAgain && this.broker);
        return ended;
      } finally {
        // In the same turn as the loop's last look at `recheckAgain`: a request after it starts a new run.
        this.recheck = undefined;
      }
    })();
    return this.recheck;
  }

  private recheck: Promise<number> | undefined;
  /** A re-check was asked for while one ran: one more pass follows it. */
  private recheckAgain = false;

  /** Marks the logins under way whose username `which` picks: each asks again before it becomes a session. */
  private markLogins(which: (user: string) => boolean): void {
    for (const [user, logins] of this.loginsUnderWay)
      if (which(user)) for (const login of logins) login.changed = true;
  }

  private async recheckUntilDone(): Promise<number> {
    for (let wait = 1_000; ; wait = Math.min(wait * 2, 30_000)) {
      try {
        return await this.recheckOnce();
      } catch (e) {
        this.deps.log.warn({ err: e, retryMs: wait }, 'device re-check failed: trying again');
        // A retry pace for the database, not domain time: a real timer.
        await new Promise((r) => setTimeout(r, wait).unref());
        if (!this.broker) return 0;
      }
    }
  }

  private async recheckOnce(): Promise<number> {
    // Device logins under way are not sessions yet; they may have read their rows before the missed change.
    this.markLogins((user) => !user.startsWith(STAFF_USER));
    const live = this.presence.liveSessions();
    if (live.length === 0) return 0;
    const now = await this.deps.store.credentialsNow(live.map(([id]) => id));
    const ended = { disabled: 0, removed: 0, secret: 0 };
    for (const [id, client] of live) {
      const identity = client[IDENTITY];
      // Replaced or gone meanwhile: a newer session was checked at its own login.
      if (identity?.kind !== 'device' || this.presence.session(id) !== client || client.closed) continue;
      const why = credentialsChange(now.get(id), identity.device.secretHash);
      if (why && this.revokeDevice(id)) ended[why]++;
    }
    const total = ended.disabled + ended.removed + ended.secret;
    if (total > 0) this.deps.log.warn({ ended }, 'devices disconnected whose credentials changed unseen');
    return total;
  }

  /**
   * Checks every staff app's connection against the sessions in force (after any change of rights or
   * sessions): one whose token no longer stands for its staff member (disabled, password changed, logged
   * out, expired) is closed; the app must log in again. Returns how many were closed.
   */
  async recheckStaff(): Promise<number> {
    // Staff logins under way are not connections yet: each asks about its token again before it is one.
    this.markLogins((user) => user.startsWith(STAFF_USER));
    let closed = 0;
    for (const client of [...this.staffClients.values()]) if (!(await this.recheckClient(client))) closed++;
    return closed;
  }

  /**
   * Ends the staff app sessions whose API token no longer authenticates (a password reset on the same data
   * folder ended that person's sessions, or the session expired). Returns how many were ended.
   */
  async endStaleStaffSessions(): Promise<number> {
    const check = this.deps.authenticateStaff;
    if (!check) return 0;
    let ended = 0;
    for (const client of [...this.staffClients.values()]) {
      const identity = client[IDENTITY];
      if (identity?.kind !== 'staff' || (await check(identity.staffId, identity.token))) continue;
      this.deps.log.info({ staffId: identity.staffId }, 'staff MQTT session ended: its login session ended');
      client.close();
      ended++;
    }
    return ended;
  }

  /**
   * Whether a notification on this staff member's topic reaches an app now or later: their app is
   * connected and subscribed to it, or a persistent session (clean session off) keeps QoS 1 messages for it.
   */
  async staffListening(staffId: string): Promise<boolean> {
    const broker = this.broker;
    if (!broker) return false;
    const clientId = `staff:${staffId}`;
    if (this.staffClients.get(clientId)?.[LISTENING]) return true;
    return (await sessionsSubscribedTo(broker, topics.staffAlerts(staffId))).includes(clientId);
  }

  /** Set while the durable log cannot write (readiness, the dispatch screen). */
  get logHealth(): LogFailure | null {
    return this.logFailure;
  }

  /** The gateway's counters, with the live figures read now (for /metrics). */
  get metrics(): GatewayMetrics {
    const m = this.m;
    m.connected = this.broker?.connectedClients ?? 0;
    m.devicesOnline = this.presence.online;
    m.presenceRecords = this.presence.records;
    m.authFailures = this.auth.stats.failures;
    m.authThrottled = this.auth.stats.throttled;
    m.logQueueDepth = this.eventLog.depth;
    m.logFailing = this.logFailure !== null;
    const g = this.gate.stats;
    m.loginFastChecks = g.fast;
    m.loginChecks = g.checks;
    m.loginCached = g.cached;
    m.loginRehashed = this.rehash.upgraded;
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

  /** Every connection passes the protocol guard (hygiene.ts) before aedes sees a byte. */
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
    const client = broker.handle(guard) as GatewayClient;
    client[GUARD] = guard;
    // aedes reports no disconnect for a client that never finished connecting; the socket's end still
    // must release the device's session slot (after aedes has run its own close of the client).
    guard.once('close', () => setImmediate(() => this.sessionEnded(client)));
  }

  private denied(kind: AclRefusal): void {
    this.m.aclDenied++;
    bump(this.m.aclDeniedByKind, kind);
  }

  private async authenticate(
    client: GatewayClient,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<void> {
    const guard = client[GUARD];
    const user = username ?? '';
    const secret = password?.toString('utf8') ?? '';
    const login: LoginUnderWay = { changed: false };
    const underWay = this.loginsUnderWay.get(user) ?? new Set<LoginUnderWay>();
    this.loginsUnderWay.set(user, underWay);
    underWay.add(login);
    try {
      const { identity, sessionEndsAt } = await this.auth.login({
        clientId: client.id,
        username: user,
        password: secret,
        address: guard?.remoteAddress ?? 'unknown',
        willTopic: client[WILL_TOPIC] ?? null,
        alive: () => !client.closed && !guard?.destroyed,
      });
      if (identity.kind === 'device') {
        // DEV-01: overtaken by a revocation or a re-check meanwhile, the login takes the device's row as it
        // is now. The last look at `changed` and the claim run in one synchronous block: nothing comes
        // between them.
        while (login.changed) {
          login.changed = false;
          identity.device = await this.rowNow(identity.device, secret);
        }
        // Closed while it was checked: its socket's end has passed (sessionEnded saw no identity).
        if (client.closed || guard?.destroyed) throw new LoginGone('connection closed during its login');
        client[IDENTITY] = identity;
        // From here this client is the device's session; the one it replaces ends without a presence record.
        this.presence.claim(identity.device.id, client);
        return;
      }
      // CLU-02: a change of staff rights or sessions while the token was checked (recheckStaff found no
      // connection to close yet): the token is asked about again, as the connections were.
      let endsAt = sessionEndsAt;
      while (login.changed) {
        login.changed = false;
        this.m.loginRechecked++;
        // Asked directly: a failure to ask is CONNACK 3 (server unavailable), as at the first check.
        const session = await this.deps.authenticateStaff?.(identity.staffId, identity.token);
        if (!session) {
          this.m.loginRevokedUnderWay++;
          this.deps.log.info(
            { staffId: identity.staffId },
            'staff MQTT login refused: its session ended meanwhile',
          );
          throw new AuthError(4, 'staff session ended while its login was checked');
        }
        endsAt = session.expiresAt;
      }
      client[IDENTITY] = identity;
      // A connection that closed while its token was checked has already had its end (sessionEnded).
      if (client.closed || guard?.destroyed) return;
      this.staffClients.set(client.id, client);
      // The login session's end closes the connection (checked again then: it may have been extended).
      if (endsAt !== undefined)
        identity.expiry = this.deps.clock.at(instant(endsAt), () => void this.recheckClient(client));
    } finally {
      underWay.delete(login);
      if (underWay.size === 0 && this.loginsUnderWay.get(user) === underWay) this.loginsUnderWay.delete(user);
    }
  }

  /**
   * DEV-01: the row of a device whose login a revocation (or a re-check, CLU-02) overtook: without this, a
   * login that read the row just before the change would outlive it (the revocation found no session to
   * end), or keep a kind that was changed (DEV-04). Refused, as `verify` would refuse it now, when the row
   * is gone or its secret no longer matches (CONNACK 4) or the device is disabled (5). These refusals stay
   * out of the failed-login accounting (the login gate's budget and hold-back): the secret matched when it
   * was checked; they are counted apart.
   */
  private async rowNow(device: DeviceCredentials, secret: string): Promise<DeviceCredentials> {
    this.m.loginRechecked++;
    const row = await this.deps.store.findDevice(device.id);
    const why = credentialsChange(row, device.secretHash, secret);
    if (!why) return row!;
    this.m.loginRevokedUnderWay++;
    this.deps.log.info(
      { deviceId: device.id, why },
      'device login refused: its credentials changed meanwhile',
    );
    throw new AuthError(why === 'disabled' ? 5 : 4, `device ${why} while its login was checked`);
  }

  /** True when the staff client may stay; closes it otherwise. */
  private async recheckClient(client: GatewayClient): Promise<boolean> {
    const identity = client[IDENTITY];
    if (identity?.kind !== 'staff') return true;
    const session = await this.auth.staffSession(identity);
    identity.expiry?.cancel();
    if (session) {
      identity.expiry = this.deps.clock.at(instant(session.expiresAt), () => void this.recheckClient(client));
      return true;
    }
    this.deps.log.info({ staffId: identity.staffId }, 'staff MQTT session ended: its login session ended');
    client.close();
    return false;
  }

  /** CLU-05: another gateway took this device's session; aedes closes the connection here next. */
  private takenOver(clientId: string): void {
    const client = this.presence.session(clientId);
    if (!client || client.id !== clientId) return;
    this.deps.log.info({ deviceId: clientId }, 'device session taken over by another gateway');
    this.presence.handOver(clientId);
  }

  /** A client's session is over (disconnect, or its socket closed before it finished connecting). */
  private sessionEnded(client: GatewayClient): void {
    const identity = client[IDENTITY];
    if (identity?.kind === 'staff') {
      identity.expiry?.cancel();
      if (this.staffClients.get(client.id) === client) this.staffClients.delete(client.id);
      return;
    }
    if (identity?.kind !== 'device') return;
    this.endDeviceSession(client, identity.device).catch((e: unknown) =>
      this.deps.log.error({ err: e, clientId: client.id }, 'presence record failed'),
    );
  }

  /** Cause for DEV-10 and RULE-08: keep-alive timeout, clean DISCONNECT, or otherwise a lost connection. */
  private endDeviceSession(client: GatewayClient, device: DeviceCredentials): Promise<void> {
    return this.presence.end(device, client, () =>
      client[KEEPALIVE_EXPIRED] ? 'keepalive' : client[GUARD]?.disconnectSent ? 'disconnect' : 'will',
    );
  }

  /** Resolves true when the publish was a device event, now logged (or rejected) and done with. */
  private async onPublish(
    client: GatewayClient,
    topic: string,
    payload: Buffer,
    retain: boolean,
  ): Promise<boolean> {
    const identity = client[IDENTITY];
    const acl = mayPublish(identity, topic, retain);
    if (!acl.ok || identity?.kind !== 'device') {
      const refused = acl.ok ? 'publish' : acl.refused;
      this.denied(refused);
      this.deps.log.info(
        { clientId: client.id, topic },
        refused === 'retain' ? 'retained publish refused by ACL' : 'publish refused by ACL',
      );
      throw new Error(refused === 'retain' ? 'retained publish not authorized' : 'publish not authorized');
    }
    const device = identity.device;
    const receivedAt = this.deps.clock.now();
    if (acl.channel === 'status') {
      if (client.closed) {
        // The will, published by aedes after an unclean end of the session.
        await this.endDeviceSession(client, device);
        return false;
      }
      const s = statusPayload.safeParse(payload.toString('utf8'));
      if (s.success) await this.presence.status(device, client, s.data, receivedAt);
      return false;
    }
    await this.ingest(device, identity.session, topic, payload, receivedAt);
    return true;
  }

  /** DEV-04..08: one event validated, its clock checked, durably logged (or rejected), and counted. */
  private async ingest(
    device: DeviceCredentials,
    session: string,
    topic: string,
    payload: Buffer,
    receivedAt: number,
  ): Promise<void> {
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
    const event = { ...ev, ts } as DeviceEvent;
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
    const outcome = await this.append(
      {
        parsed: event,
        deviceId: device.id,
        homeId: device.homeId,
        receivedAt,
        topic,
        status: 'accepted',
        ts,
        type: ev.type,
        deviceSeq: ev.seq ?? null,
        session,
        body: JSON.stringify(event),
        reason: null,
        flags,
      },
      // DEV-12: the device row's change goes with the event, in its transaction or not at all.
      this.presence.forRecord(update),
    );
    if (outcome.duplicate) this.m.duplicates++;
    else {
      this.m.accepted++;
      this.deps.telemetry?.record(
        { home: device.homeId, device: device.id, kind: device.kind, room: device.room, grid: device.gridId },
        event,
      );
    }
  }

  /** Appends through the group-commit log, with admission control when the log falls behind. */
  private append(record: ParsedRecord, update?: PresenceUpdate) {
    const result = this.eventLog.append(
      record,
      record.parsed !== undefined && isUrgent(record.parsed),
      update,
    );
    if (this.eventLog.depth > (this.deps.admission ?? ADMISSION).high && !this.admission.isClosed) {
      this.admission.close();
      this.m.admissionClosed++;
      this.deps.log.warn({ depth: this.eventLog.depth }, 'event log behind: not reading from sockets');
    }
    return result;
  }

  /** DEV-06: a rejected message is still acknowledged, recorded with its reason, counted and reported. */
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
    await this.append(
      {
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
      },
      // DEV-12: counted in the record's transaction, as for an accepted event (ingest): never without the
      // record that says why.
      this.presence.forRecord({
        deviceId: device.id,
        homeId: device.homeId,
        lastSeenAt: receivedAt,
        rejectedDelta: 1,
        rejectedByReason: { [key]: 1 },
      }),
    );
    const report = JSON.stringify({ reason, topic, at: new Date(receivedAt).toISOString() });
    this.publish(topics.errors(device.homeId, device.id), report, 0).catch(() => {});
  }

  /** Admission control (EDGE-03): read sockets again once the log has caught up. */
  private admit(): void {
    if (this.admission.isClosed && this.eventLog.depth < (this.deps.admission ?? ADMISSION).low) {
      this.admission.open();
      this.deps.log.info({ depth: this.eventLog.depth }, 'event log caught up: reading sockets again');
    }
  }

  private committed(records: EventRecord[], outcomes: AppendOutcome[]): void {
    if (!this.deps.onEvents) return;
    const events: LoggedEvent[] = [];
    const announced = new Set<number>();
    records.forEach((r, i) => {
      const seq = outcomes[i]?.seq;
      if (r.status !== 'accepted' || seq === null || seq === undefined) return;
      if (outcomes[i]!.duplicate === false && outcomes[i]!.announced) announced.add(seq);
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
    if (events.length) this.deps.onEvents(events, announced);
  }
}

/** The stable part of a rejection reason (`invalid state: …` → `invalid state`), for counting. */
export function reasonKey(reason: string): string {
  return reason.replace(/:.*$/, '');
}
