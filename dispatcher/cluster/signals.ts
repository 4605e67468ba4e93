/**
 * What crosses processes when the gateway and the dispatcher run apart (CLU-02), over PostgreSQL
 * LISTEN/NOTIFY on the database they already share: no extra engine to run for it.
 *
 *   g365_events    gateway → dispatchers   new records are durable in the event log: wake the rules
 *   g365_gateway   dispatcher → gateways   a device's credentials changed (end its connection), staff rights
 *                                          changed (re-check staff apps), a notice for a staff app
 *   g365_replies   gateway → dispatcher    a gateway that holds the staff app published the notice
 *   g365_leases    dispatcher → dispatchers  leases were released, an instance joined or left: renew now (CLU-08)
 *   g365_registry  dispatcher → dispatchers  an admin changed the roster, staff or a household: read it again;
 *                                          who may see what changed: check live pages again (CLU-11; after a
 *                                          lost connection everything is read and checked again)
 *
 * A notification is a wake-up, never the only copy of a fact: the rules also poll the log (CLU-02), a
 * revoked device's credentials are checked again against the database at its next login, and a notice no
 * gateway confirmed is recorded as not delivered (NOTIFY-02).
 *
 * node-postgres delivers a NOTIFY as a `notification` event on the client that ran LISTEN; that client is
 * one dedicated connection (a pooled one would be handed to other queries and lose its LISTEN). When it
 * ends, it is connected again with back-off and LISTENs again; `onReconnect` lets the owner catch up on what
 * it may have missed meanwhile.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { LoggedEvent } from '../../gateway/ports.ts';
import type { Logger } from '../../kernel/log.ts';
import type { RegistryChange } from '../directory.ts';

export const CHANNELS = {
  events: 'g365_events',
  gateway: 'g365_gateway',
  replies: 'g365_replies',
  leases: 'g365_leases',
  /** RULE-16: urgent events a gateway committed, with their content (the rules' urgent lane). */
  urgent: 'g365_urgent',
  /** CLU-11: an admin changed the registry through one dispatcher instance. */
  registry: 'g365_registry',
} as const;
type ChannelName = (typeof CHANNELS)[keyof typeof CHANNELS];

/** Messages to the gateways. */
export type GatewayMessage =
  | { type: 'revokeDevice'; deviceId: string }
  | { type: 'recheckStaff' }
  | { type: 'staffNotice'; id: string; staffId: string; topic: string; payload: string };

/** Replies from a gateway. */
export type ReplyMessage = { type: 'staffNoticeSent'; id: string };

export interface SignalsDeps {
  /** The shared database (a dedicated connection is opened for LISTEN). */
  url: string;
  /** A pool for NOTIFY (the store's). */
  pool: pg.Pool;
  log: Logger;
  /** The channels this process listens on. */
  listen: readonly ChannelName[];
  onEvents?: () => void;
  /** RULE-16: urgent events a gateway committed (a wake-up for the log comes besides). */
  onUrgent?: (events: LoggedEvent[]) => void;
  onGateway?: (m: GatewayMessage) => void;
  /** CLU-08: another dispatcher instance released leases, joined or left. */
  onLeases?: () => void;
  /** CLU-11: another dispatcher instance changed the registry (its own announcements are not handed back). */
  onRegistry?: (change: RegistryChange) => void;
  /** Called after the LISTEN connection was re-established (notifications may have been missed). */
  onReconnect?: () => void;
  /** How long a dispatcher waits for a gateway to confirm a staff notice. */
  replyTimeoutMs?: number;
  /**
   * CLU-02: a gateway wakes the rules for what it wrote at most this often (ms, real time; 0: after every
   * commit). A wake-up costs a NOTIFY transaction here and a wake-up of every dispatcher; the rules read
   * the log in batches anyway (RULES_BATCH_MS), and falls and help buttons go at once (urgentWritten).
   */
  eventsPaceMs?: number;
}

/** The urgent events of a notification, as the gateway wrote them (anything else in it is dropped). */
function urgentEvents(v: unknown): LoggedEvent[] {
  if (!Array.isArray(v)) throw new Error('urgent events: not a list');
  return v.filter(
    (e): e is LoggedEvent =>
      typeof e === 'object' &&
      e !== null &&
      Number.isSafeInteger(e.seq) &&
      typeof e.homeId === 'string' &&
      typeof e.deviceId === 'string' &&
      Number.isFinite(e.ts) &&
      Number.isFinite(e.receivedAt) &&
      Array.isArray(e.flags) &&
      typeof e.event === 'object' &&
      e.event !== null &&
      typeof e.event.type === 'string',
  );
}

/** A registry change as another instance announced it, or null when the notification is not one. */
function registryChange(v: unknown): { origin: string; change: RegistryChange } | null {
  if (typeof v !== 'object' || v === null) return null;
  const m = v as { origin?: unknown; roster?: unknown; access?: unknown; homeId?: unknown; policy?: unknown };
  if (typeof m.origin !== 'string') return null;
  if (m.roster === true) return { origin: m.origin, change: { roster: true } };
  if (typeof m.policy === 'string' && m.policy.length > 0)
    return { origin: m.origin, change: { policy: m.policy } };
  if (m.access === true) return { origin: m.origin, change: { access: true } };
  if (m.homeId === null || (typeof m.homeId === 'string' && m.homeId.length > 0))
    return { origin: m.origin, change: { homeId: m.homeId } };
  return null;
}

/** The notification of a registry change, as `registryChange` reads it back. */
const registryPayload = (origin: string, change: RegistryChange) => JSON.stringify({ origin, ...change });

/**
 * CLU-11 from a process that is no dispatcher (a command-line import into the shared database): every
 * dispatcher instance reads the change again.
 */
export async function announceRegistryChange(
  pool: pg.Pool,
  change: RegistryChange,
  origin: string,
): Promise<void> {
  await sendNotify(pool, CHANNELS.registry, registryPayload(origin, change));
}

/**
 * One NOTIFY. A notification is a wake-up, never the only copy of a fact (above), so its transaction does
 * not wait for its own flush. That matters: PostgreSQL holds one lock from a NOTIFY's commit until its end,
 * so with the flush every NOTIFY of every process (a fall's to the rules among them) waited in line behind
 * the others' disk writes.
 */
async function sendNotify(pool: pg.Pool, channel: ChannelName, payload: string): Promise<void> {
  await pool.query("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)", [
    channel,
    payload,
  ]);
}

/** NOTIFY payloads are limited to 8000 bytes by PostgreSQL. */
const MAX_PAYLOAD = 7_900;

export class ClusterSignals {
  private client: pg.Client | null = null;
  private stopped = true;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoff = 100;
  private eventsPending = false;
  private eventsSending: Promise<void> | null = null;
  private eventsTimer: NodeJS.Timeout | undefined;
  private lastEventsSent = Number.NEGATIVE_INFINITY;
  private waiting = new Map<string, (sent: boolean) => void>();
  /** Whether the LISTEN connection is up (readiness). */
  listening = false;
  /** NOTIFYs that could not be sent (the database was down); counted for /metrics. */
  sendFailures = 0;
  /** This instance in its own announcements, which LISTEN hands back to it too. */
  private readonly origin = randomUUID();

  constructor(private readonly deps: SignalsDeps) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.eventsTimer);
    this.eventsTimer = undefined;
    await this.eventsSending;
    const c = this.client;
    this.client = null;
    this.listening = false;
    await c?.end().catch(() => {});
    for (const done of this.waiting.values()) done(false);
    this.waiting.clear();
  }

  private async connect(): Promise<void> {
    const c = new pg.Client({
      connectionString: this.deps.url,
      keepAlive: true,
      application_name: 'g365-signals',
    });
    c.on('notification', (n) => this.received(n.channel, n.payload ?? ''));
    // An error without a query in flight, or the end of the connection: reconnect (pg emits both).
    c.on('error', (e) => this.lost(c, e));
    c.on('end', () => this.lost(c, null));
    try {
      await c.connect();
      for (const ch of this.deps.listen) await c.query(`LISTEN ${ch}`);
    } catch (e) {
      await c.end().catch(() => {});
      if (this.stopped) return;
      this.lost(c, e);
      return;
    }
    if (this.stopped) {
      await c.end().catch(() => {});
      return;
    }
    const again = this.client === null && this.backoff > 100;
    this.client = c;
    this.listening = true;
    this.backoff = 100;
    if (again) this.deps.onReconnect?.();
  }

  private lost(c: pg.Client, e: unknown): void {
    if (this.stopped || (this.client !== null && this.client !== c)) return;
    if (this.client === c) {
      this.client = null;
      this.listening = false;
      this.deps.log.warn({ err: e instanceof Error ? e.message : null }, 'cluster signals: connection lost');
      void c.end().catch(() => {});
    }
    if (this.reconnectTimer) return;
    // Operational back-off against a database that is down (real time, not the service clock).
    this.backoff = Math.min(this.backoff * 2, 5_000);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, this.backoff);
    this.reconnectTimer.unref();
  }

  private received(channel: string, payload: string): void {
    try {
      if (channel === CHANNELS.events) this.deps.onEvents?.();
      else if (channel === CHANNELS.urgent) this.deps.onUrgent?.(urgentEvents(JSON.parse(payload)));
      else if (channel === CHANNELS.leases) this.deps.onLeases?.();
      else if (channel === CHANNELS.registry) {
        const m = registryChange(JSON.parse(payload));
        if (!m) throw new Error('registry change: not one');
        if (m.origin !== this.origin) this.deps.onRegistry?.(m.change);
      } else if (channel === CHANNELS.gateway) this.deps.onGateway?.(JSON.parse(payload) as GatewayMessage);
      else if (channel === CHANNELS.replies) {
        const m = JSON.parse(payload) as ReplyMessage;
        if (m.type === 'staffNoticeSent') this.waiting.get(m.id)?.(true);
      }
    } catch (e) {
      this.deps.log.error({ err: e, channel }, 'cluster signals: bad notification');
    }
  }

  private async notify(channel: ChannelName, payload: string): Promise<void> {
    if (Buffer.byteLength(payload) > MAX_PAYLOAD) throw new Error(`notification too large for ${channel}`);
    try {
      await sendNotify(this.deps.pool, channel, payload);
    } catch (e) {
      this.sendFailures++;
      throw e;
    }
  }

  /**
   * The gateway wrote records to the log. Coalesced: one NOTIFY in flight at a time, at most one every
   * `eventsPaceMs`, and one more after it however many batches were written meanwhile (a wake-up carries
   * no data; the rules also poll).
   */
  eventsWritten(): void {
    if (this.stopped) return;
    if (this.eventsSending || this.eventsTimer) {
      this.eventsPending = true;
      return;
    }
    const wait = this.lastEventsSent + (this.deps.eventsPaceMs ?? 0) - performance.now();
    if (wait > 0) {
      this.eventsTimer = setTimeout(() => {
        this.eventsTimer = undefined;
        this.sendEvents();
      }, wait);
      return;
    }
    this.sendEvents();
  }

  private sendEvents(): void {
    if (this.stopped) return;
    this.eventsPending = false;
    this.lastEventsSent = performance.now();
    this.eventsSending = this.notify(CHANNELS.events, '')
      .catch((e: unknown) =>
        this.deps.log.warn(
          { err: (e as Error).message },
          'cluster signals: cannot wake the rules (they poll)',
        ),
      )
      .finally(() => {
        this.eventsSending = null;
        if (this.eventsPending) {
          this.eventsPending = false;
          this.eventsWritten();
        }
      });
  }

  /**
   * RULE-16: urgent events just committed, to every dispatcher instance, with their content (the one that
   * holds the home's community raises the alert without reading the log first). Not coalesced: each is
   * rare and each is a person on the floor. An event too large for a notification is left to the log.
   */
  urgentWritten(events: LoggedEvent[]): void {
    if (this.stopped) return;
    let page: string[] = [];
    let size = 2;
    const send = () => {
      if (page.length === 0) return;
      this.notify(CHANNELS.urgent, `[${page.join(',')}]`).catch((e: unknown) =>
        this.deps.log.warn(
          { err: (e as Error).message },
          'cluster signals: urgent events left to the log (the rules read them there)',
        ),
      );
      page = [];
      size = 2;
    };
    for (const e of events) {
      const one = JSON.stringify(e);
      const n = Buffer.byteLength(one) + 1;
      if (n + 2 > MAX_PAYLOAD) continue;
      if (size + n > MAX_PAYLOAD) send();
      page.push(one);
      size += n;
    }
    send();
  }

  /** CLU-08: to every dispatcher instance: the leases changed hands, renew now (a wake-up; they also poll). */
  leasesChanged(): Promise<void> {
    return this.notify(CHANNELS.leases, '');
  }

  /**
   * CLU-11: an admin changed the registry here (committed): every other dispatcher instance reads it again.
   * A lost announcement is logged and counted (sendFailures); a receiver that lost its connection reads
   * everything again when it is back (onReconnect).
   */
  registryChanged(change: RegistryChange): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return this.notify(CHANNELS.registry, registryPayload(this.origin, change)).catch((e: unknown) =>
      this.deps.log.error(
        { err: (e as Error).message },
        'cluster signals: cannot tell the other dispatchers of a registry change',
      ),
    );
  }

  /** To every gateway. */
  toGateways(m: Exclude<GatewayMessage, { type: 'staffNotice' }>): Promise<void> {
    return this.notify(CHANNELS.gateway, JSON.stringify(m));
  }

  /** A gateway confirms it published a staff notice. */
  reply(m: ReplyMessage): Promise<void> {
    return this.notify(CHANNELS.replies, JSON.stringify(m));
  }

  /**
   * A notice for a staff app, to whichever gateway holds its connection or persistent session: true when a
   * gateway confirmed it published it within the timeout.
   */
  async staffNotice(staffId: string, topic: string, payload: string): Promise<boolean> {
    const id = randomUUID();
    let done!: (sent: boolean) => void;
    const confirmed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), this.deps.replyTimeoutMs ?? 3_000);
      done = (sent) => {
        clearTimeout(timer);
        resolve(sent);
      };
    });
    this.waiting.set(id, done);
    try {
      await this.notify(
        CHANNELS.gateway,
        JSON.stringify({ type: 'staffNotice', id, staffId, topic, payload }),
      );
      return await confirmed;
    } finally {
      this.waiting.delete(id);
    }
  }
}
