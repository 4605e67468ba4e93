/**
 * Guardian 365 wired together, in the order data flows:
 *
 *   device → gateway (auth, ACL, validate, durable log) → rules → alerts → routing → escalation and SLA
 *   → notifications → API and live push → console
 *
 * Constructing does nothing; start() opens everything, stop() undoes it and finishes in-flight work.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync, statfsSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { storageUnavailable } from '../gateway/event-log.ts';
import { Gateway } from '../gateway/gateway.ts';
import { RedisMesh } from '../gateway/mesh.ts';
import type { LoggedEvent } from '../gateway/ports.ts';
import { isUrgent, topics } from '../gateway/protocol.ts';
import { hashPassword, newSecret } from '../gateway/secrets.ts';
import { InfluxTelemetry } from '../gateway/telemetry.ts';
import type { Clock, Timer } from '../kernel/clock.ts';
import type { Logger } from '../kernel/log.ts';
import { seconds } from '../kernel/time.ts';
import type { Alert } from './alerts/model.ts';
import { AlertService } from './alerts/service.ts';
import { countSlaMetrics, exportAlertMetrics } from './alerts/telemetry.ts';
import { buildApp, type RouteEntry } from './api/app.ts';
import { Auth } from './auth.ts';
import { Bus } from './bus.ts';
import { LeaseManager } from './cluster/leases.ts';
import { LiveRelay } from './cluster/live-relay.ts';
import { buildOpsApp } from './cluster/ops-app.ts';
import { CommunityShards, DUTY_LEASE } from './cluster/shards.ts';
import { CHANNELS, ClusterSignals, type GatewayMessage } from './cluster/signals.ts';
import { type Config, LOG_COMMIT_GATEWAY_MS } from './config.ts';
import { Directory } from './directory.ts';
import { LiveServer } from './live/live.ts';
import { createMetrics, type Metrics, readGauge } from './metrics.ts';
import { FamilyNotifier } from './notify/family.ts';
import {
  type Channel,
  mqttChannel,
  type NotificationPayload,
  Notifier,
  UNREACHABLE_APP,
  Unreachable,
  type WebhookExtras,
  webhookChannel,
  webhookPoster,
} from './notify/notifier.ts';
import { PushSubscriptions, vapidKeys, webPushChannel } from './notify/push.ts';
import { smsText } from './notify/texts.ts';
import { DutyWatch } from './routing/duty-watch.ts';
import { RulesPipeline } from './rules/pipeline.ts';
import { openStore } from './store/open.ts';
import type { PostgresStore } from './store/postgres.ts';
import type { Store } from './store/store.ts';
import { SystemHealth } from './system-health.ts';

export interface ServiceOptions {
  config: Config;
  clock: Clock;
  log: Logger;
  /** Use this store instead of opening the configured one (tests, the demo). It is not closed by stop(). */
  store?: Store;
  /** The built console to serve; omitted = API only. */
  consoleDir?: string;
  /**
   * Runs on the migrated store before anything reads it: before the rules pick up their cursor and the
   * escalation timers are re-armed (the demo's seed and its past week, DEMO-01).
   */
  seed?: (store: Store) => Promise<void>;
}

export class GuardianService {
  store!: Store;
  gateway!: Gateway;
  pipeline!: RulesPipeline;
  alerts!: AlertService;
  directory!: Directory;
  auth!: Auth;
  metrics!: Metrics;
  bus!: Bus;
  dutyWatch!: DutyWatch;
  notifier!: Notifier;
  pushSubscriptions!: PushSubscriptions;
  private family: FamilyNotifier | undefined;
  /** The HTTP API's routes as registered (the authorization matrix test walks them). */
  routeTable: RouteEntry[] = [];
  /** Set when the first start generated the admin password (printed once by the entry file). */
  generatedAdminPassword: string | null = null;
  /**
   * What happened to the admin account at this start: `created` (first start), `exists` (left as it is),
   * `passwordIgnored` (it exists and ADMIN_PASSWORD was given: ADMIN_PASSWORD only chooses the first
   * password, so that a password changed in the console is not reverted by a restart; the entry file says
   * so and names the reset command).
   */
  adminAccount: 'created' | 'exists' | 'passwordIgnored' | null = null;
  private http: HttpServer | undefined;
  private live: LiveServer | undefined;
  private ownsStore = false;
  private sessionCheck: Timer | undefined;
  private started = false;
  private health: SystemHealth | undefined;
  /** Separate roles (CLU-02): what crosses processes, over PostgreSQL LISTEN/NOTIFY. */
  signals: ClusterSignals | undefined;
  private poll: NodeJS.Timeout | undefined;
  /** Separate dispatchers (CLU-03): community leases, and the work of the communities held here. */
  leases: LeaseManager | undefined;
  shards: CommunityShards | undefined;
  /** Live events across dispatcher instances through Redis (CLU-04), when REDIS_URL is set. */
  relay: LiveRelay | undefined;
  /** Several gateways on one Redis bus (CLU-05), on a gateway process when REDIS_URL is set. */
  mesh: RedisMesh | undefined;

  constructor(private readonly opts: ServiceOptions) {}

  get mqttPort(): number {
    return this.gateway?.port ?? 0;
  }

  get httpPort(): number {
    return (this.http?.address() as AddressInfo | null)?.port ?? 0;
  }

  async start(): Promise<void> {
    const { config, clock, log } = this.opts;
    this.ownsStore = !this.opts.store;
    const dataDir = config.DATABASE_URL?.startsWith('sqlite:')
      ? dirname(resolve(config.DATABASE_URL.slice('sqlite:'.length)))
      : config.DATA_DIR;
    this.store =
      this.opts.store ??
      (await openStore({
        ...config,
        onConnectionError: (e) => log.warn({ err: e.message }, 'database connection lost'),
        onWarning: (message) => log.warn(message),
        lockFolder: true,
      }).catch((e) => Promise.reject(diskFull(e, dataDir))));
    const store = this.store;
    try {
      await store.migrate();
      await this.opts.seed?.(store);

      this.bus = new Bus(log.child({ module: 'bus' }));
      this.directory = new Directory({
        store,
        zone: config.TZ_COMMUNITY,
        shifts: { dayStart: config.DAY_SHIFT_START, nightStart: config.NIGHT_SHIFT_START },
        // CLU-11: the other dispatcher instances read a change made here again.
        announce: (change) => this.signals?.registryChanged(change) ?? Promise.resolve(),
      });
      this.auth = new Auth({ store, clock, sessionHours: config.SESSION_HOURS });

      const telemetry =
        config.INFLUX_URL && config.INFLUX_TOKEN && config.INFLUX_ORG && config.INFLUX_BUCKET
          ? new InfluxTelemetry({
              url: config.INFLUX_URL,
              token: config.INFLUX_TOKEN,
              org: config.INFLUX_ORG,
              bucket: config.INFLUX_BUCKET,
              log: log.child({ module: 'telemetry' }),
            })
          : undefined;
      // Alert metrics beside the sensor telemetry (SPEC §9).
      if (telemetry && config.ROLE !== 'gateway') exportAlertMetrics(this.bus, telemetry);

      // CLU-01, CLU-02: separate roles share PostgreSQL (config refuses them on SQLite) and signal each
      // other through it.
      if (config.ROLE !== 'all')
        this.signals = new ClusterSignals({
          url: config.DATABASE_URL!,
          pool: (store as PostgresStore).pool,
          log: log.child({ module: 'signals' }),
          listen:
            config.ROLE === 'gateway'
              ? ['g365_gateway']
              : ['g365_events', 'g365_urgent', 'g365_replies', 'g365_leases', 'g365_registry'],
          onEvents: () => this.rulesWork?.wake(),
          onUrgent: (events) => void this.rulesWork?.urgent(events),
          onLeases: () => this.leases?.wake(),
          onRegistry: (change) => {
            this.directory.changedElsewhere(change);
            if ('access' in change) this.recheckOwnLive();
          },
          onGateway: (m) => this.fromDispatcher(m),
          eventsPaceMs: config.EVENTS_WAKE_MS,
          onReconnect: () => {
            // Wake-ups may have been missed while the connection was down; so may a revocation, and so may
            // an admin's change made through another dispatcher (CLU-11).
            if (config.ROLE === 'dispatcher') {
              this.directory.changedElsewhere('all');
              this.recheckOwnLive();
            }
            this.rulesWork?.wake();
            void this.gateway?.recheckStaff();
            // CLU-02: a revocation sent while the link was down never arrives: the devices are checked.
            void this.gateway
              ?.recheckDevices()
              .catch((e: unknown) => this.opts.log.error({ err: e }, 'device re-check failed'));
          },
        });

      // CLU-05: gateway processes share aedes' message bus on Redis (cross-node takeover, staff notices).
      if (config.ROLE === 'gateway' && config.REDIS_URL)
        this.mesh = new RedisMesh(
          config.REDIS_URL,
          config.INSTANCE_ID ?? hostname(),
          log.child({ module: 'mesh' }),
        );
      // RULE-16: a gateway process's urgent appends tell the dispatchers in their own commit.
      if (config.ROLE === 'gateway') (store as PostgresStore).announceUrgent = CHANNELS.urgent;
      // device → gateway: accepted events are durable before their PUBACK, then wake the rules.
      if (config.ROLE !== 'dispatcher')
        this.gateway = new Gateway({
          store,
          clock,
          log: log.child({ module: 'gateway' }),
          port: config.MQTT_PORT,
          host: config.MQTT_HOST,
          tls:
            config.MQTT_TLS_PORT !== undefined && config.MQTT_TLS_CERT && config.MQTT_TLS_KEY
              ? { port: config.MQTT_TLS_PORT, certFile: config.MQTT_TLS_CERT, keyFile: config.MQTT_TLS_KEY }
              : undefined,
          ws: config.MQTT_WS_PORT !== undefined ? { port: config.MQTT_WS_PORT } : undefined,
          mesh: this.mesh,
          limits: { publishRate: { perSecond: config.MQTT_DEVICE_RATE, burst: 4 * config.MQTT_DEVICE_RATE } },
          telemetry,
          onLogWrite: (ms) => this.metrics?.eventLogWrite.observe(ms / 1000),
          logPaceMs: config.LOG_COMMIT_MS ?? (config.ROLE === 'gateway' ? LOG_COMMIT_GATEWAY_MS : 0),
          deviceRecheckMs: config.DEVICE_RECHECK_MS,
          onEvents: (events, announced) => {
            // RULE-16: a fall detected or a help button also takes the urgent lane, with its content (unless
            // the store announced it in its commit already).
            const urgent = events.filter((e) => isUrgent(e.event) && !announced.has(e.seq));
            if (this.signals) {
              if (urgent.length > 0) this.signals.urgentWritten(urgent);
              this.signals.eventsWritten();
            } else {
              if (urgent.length > 0) void this.rulesWork.urgent(urgent);
              this.rulesWork.wake();
            }
          },
          authenticateStaff: async (staffId, token) => {
            const session = await this.auth.session(token);
            return session?.staff.id === staffId ? { expiresAt: session.expiresAt } : null;
          },
        });
      if (config.ROLE === 'gateway') {
        await this.startEdge(dataDir);
        return;
      }

      // → notifications (channels first: the alert service needs them)
      this.http = createServer();
      if (config.REDIS_URL) {
        this.relay = new LiveRelay(config.REDIS_URL, log.child({ module: 'relay' }));
        await this.relay.start();
      }
      this.live = new LiveServer({
        adapter: this.relay?.adapter(),
        httpServer: this.http,
        auth: this.auth,
        store,
        bus: this.bus,
        log: log.child({ module: 'live' }),
        onReceipt: (alertId, staffId, channel) => {
          void this.notifier
            .recordReceipt(alertId, staffId, channel)
            .catch((e: unknown) => log.error({ err: e, alertId }, 'cannot record a receipt'));
        },
        clock,
        origin: { publicOrigins: config.PUBLIC_ORIGIN },
        onCrossOrigin: () => this.metrics.httpCrossOrigin.inc(),
      });
      // Web Push (NOTIFY-03): the deployment's VAPID keys live with its data; a push notice is worth
      // holding until the alert's next escalation step (at least a minute; 15 min when no step is left).
      const vapid = await vapidKeys(store);
      this.pushSubscriptions = new PushSubscriptions(store);
      const channels: Channel[] = [
        this.live.channel(),
        this.gateway
          ? mqttChannel(
              (t, p) => this.gateway.publish(t, p),
              topics.staffAlerts,
              (staffId) => this.gateway.staffListening(staffId),
            )
          : // CLU-02: the staff app is connected to a gateway process; the one that holds it confirms.
            mqttChannel(async (t, p) => {
              const staffId = t.split('/').at(-2) ?? '';
              if (!(await this.signals!.staffNotice(staffId, t, p))) throw new Unreachable(UNREACHABLE_APP);
            }, topics.staffAlerts),
        webPushChannel({
          keys: vapid,
          subject: config.PUSH_SUBJECT,
          subscriptions: this.pushSubscriptions,
          log: log.child({ module: 'push' }),
          ttlFor: (p) => (p.nextStepAt === null ? 900 : Math.max(60, (p.nextStepAt - clock.now()) / 1000)),
          ca: config.PUSH_CA_FILE ? readFileSync(config.PUSH_CA_FILE, 'utf8') : undefined,
        }),
      ];
      const origin = config.PUBLIC_ORIGIN[0] ?? `http://localhost:${config.HTTP_PORT}`;
      if (config.WEBHOOK_URL && config.WEBHOOK_SECRET) {
        const webhook = { url: config.WEBHOOK_URL, secret: config.WEBHOOK_SECRET, clock, log };
        // NOTIFY-05: what an SMS or voice bridge needs, so it never has to look anything up.
        const describe = async (staffId: string | null, p: NotificationPayload): Promise<WebhookExtras> => {
          const person = staffId ? await store.getStaff(staffId) : null;
          const subs = staffId ? await this.pushSubscriptions.list(staffId) : [];
          const lang = subs.at(-1)?.lang ?? config.NOTICE_LANG;
          return {
            recipient: person ? { staffId: person.id, name: person.name, phone: person.phone } : null,
            lang,
            text: smsText(lang, p),
            link: `${origin}/#/respond/${encodeURIComponent(p.alertId)}`,
            idempotencyKey: createHash('sha256')
              .update(`${p.alertId}/${staffId ?? '-'}/${p.noticeId}`)
              .digest('hex')
              .slice(0, 32),
          };
        };
        channels.push(webhookChannel({ ...webhook, describe }));
        // NOTIFY-04: the families that opted in hear of safety alerts through the same bridge.
        this.family = new FamilyNotifier({
          bus: this.bus,
          store,
          directory: this.directory,
          clock,
          log: log.child({ module: 'family' }),
          post: webhookPoster(webhook),
          lang: config.NOTICE_LANG,
        });
      }
      const notifier = new Notifier({
        store,
        bus: this.bus,
        clock,
        log: log.child({ module: 'notify' }),
        channels,
      });
      this.notifier = notifier;

      // CLU-03: separate dispatchers split the background work by community, with fenced leases.
      if (config.ROLE === 'dispatcher')
        this.leases = new LeaseManager({
          pool: (store as PostgresStore).pool,
          holder: `${config.INSTANCE_ID ?? hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
          ttlMs: config.LEASE_TTL_MS,
          renewMs: config.LEASE_RENEW_MS,
          log: log.child({ module: 'leases' }),
          names: () => this.shards!.leaseNames(),
          // CLU-08: the communities are spread evenly over the live instances; the duty watch is not.
          spread: (name) => name !== DUTY_LEASE,
          announce: () => this.signals?.leasesChanged() ?? Promise.resolve(),
          onAcquired: (fence) => this.shards!.acquired(fence),
          onLost: (name) => this.shards!.lost(name),
        });
      const leases = this.leases;

      // → alerts, routing, escalation and SLA
      this.alerts = new AlertService({
        leaseOf: leases ? (community) => leases.fence(community) : undefined,
        store,
        clock,
        log: log.child({ module: 'alerts' }),
        bus: this.bus,
        notifier,
        directory: this.directory,
        // SLA-breach notices go to the active supervisors of the alert's community (those covering one of its
        // grids), or who cover no grid at all (the whole street).
        supervisorsFor: async (alert) => {
          const grids = new Set(
            (await store.listGrids()).filter((g) => g.community === alert.community).map((g) => g.id),
          );
          return (await store.listStaff())
            .filter((s) => s.roles.includes('supervisor') && !s.disabled)
            .filter((s) => s.gridIds.length === 0 || s.gridIds.some((g) => grids.has(g)))
            .map((s) => s.id);
        },
      });
      // A door opening after en route suggests arrival (SPEC §6).
      this.bus.on('deviceEvents', ({ events }) => this.alerts.onDeviceEvents(events));
      // Shift edges: unstaffed grids before each shift, the handover list at its start (SPEC §4, §6).
      this.dutyWatch = new DutyWatch({
        store,
        directory: this.directory,
        clock,
        log: log.child({ module: 'duty' }),
        bus: this.bus,
        warnBefore: config.DUTY_WARN_MINUTES * 60_000,
      });

      // → rules: consume the log from the stored cursor
      const onCommitted = (raised: Alert[], updated: Alert[], actions: Map<string, string>) => {
        for (const a of raised) this.metrics.alertsRaised.inc({ rule: a.rule });
        this.alerts.onCommitted(raised, updated, actions);
      };
      const onEvents = (events: LoggedEvent[]) => this.bus.emit('deviceEvents', { events });
      if (leases)
        this.shards = new CommunityShards({
          store,
          directory: this.directory,
          clock,
          log: log.child({ module: 'rules' }),
          rules: config.RULES,
          alerts: this.alerts,
          dutyWatch: this.dutyWatch,
          leaseOf: (community) => leases.fence(community),
          onCommitted,
          onEvents,
          batchMs: config.RULES_BATCH_MS,
        });
      else
        this.pipeline = new RulesPipeline({
          store,
          directory: this.directory,
          clock,
          log: log.child({ module: 'rules' }),
          rules: config.RULES,
          onCommitted,
          onEvents,
          stepsAtRaise: (a) => this.alerts.stepsAtRaise(a),
        });
      this.directory.onHomeChanged((homeId) => {
        void this.rulesWork
          .homeChanged(homeId)
          .catch((e: unknown) => log.error({ err: e, homeId }, 'rules refresh failed'));
      });

      // → API and live push
      const pipelinePosition = () => this.rulesWork.position;
      const pipelineTrouble = () => this.rulesWork.skipped + this.rulesWork.evaluationErrors;
      this.metrics = createMetrics(
        () => this.gateway?.metrics ?? null,
        async () => {
          const counts = new Map<string, number>();
          for (const c of await store.countOpenAlerts())
            counts.set(c.state, (counts.get(c.state) ?? 0) + c.count);
          return counts;
        },
      );
      this.bus.on('delivery', (d) => {
        if (!d.ok) this.metrics.notificationFailures.inc({ channel: d.channel });
      });
      // The SLA figures of /metrics, per community (METRICS-01).
      countSlaMetrics(this.bus, this.metrics.sla);
      // The rules must keep up with the log: their position, and anything they had to set aside.
      const registry = this.metrics.registry;
      readGauge(
        registry,
        'g365_rules_cursor',
        'event log position the rules have committed',
        pipelinePosition,
      );
      readGauge(
        registry,
        'g365_rules_set_aside_total',
        'log items the rules could not commit even alone, plus evaluation errors (should stay 0)',
        pipelineTrouble,
      );
      readGauge(
        registry,
        'g365_rules_homes_unwatched_total',
        'times a household event or deadline could not be processed and HOME_UNWATCHED told the dispatch room (should stay 0)',
        () => this.rulesWork.unwatched,
      );
      readGauge(
        registry,
        'g365_rules_stalls_total',
        'times the rules could commit nothing, not even HOME_UNWATCHED, and held their position to retry',
        () => this.rulesWork.stalls,
      );
      readGauge(
        registry,
        'g365_rules_fenced_total',
        "rules commits refused because this instance's community lease was not current (CLU-03): a handover, nothing passed over",
        () => this.rulesWork.fenced,
      );
      readGauge(
        registry,
        'g365_rules_urgent_raised_total',
        'falls and help buttons whose alert the urgent lane raised ahead of the log order (RULE-16)',
        () => this.rulesWork.urgentRaised,
      );
      readGauge(
        registry,
        'g365_rules_pages_evaluated_again_total',
        'pages of the log whose rules commit was refused as stale (an alert changed meanwhile, or raised by the urgent lane: RULE-16) and were evaluated again',
        () => this.rulesWork.evaluatedAgain,
      );
      readGauge(
        registry,
        'g365_rules_homes_held',
        'homes whose rules state this instance holds in memory: the homes of the communities it works for (CLU-03) that have one',
        () => this.rulesWork.homesHeld,
      );
      // The household index that the timelines read (SQLite: its own thread), kept apart from the log.
      const indexHealth = store.homeIndexHealth?.bind(store);
      if (indexHealth) {
        readGauge(
          registry,
          'g365_home_index_lag_events',
          'durable log events the household index has not reached (timelines read them from the log)',
          () => indexHealth().lag,
        );
        readGauge(
          registry,
          'g365_home_index_failures_total',
          'household index slices that failed and indexer threads that ended unasked (retried)',
          () => indexHealth().failures,
        );
      }
      // The edge's faults (disk, event log, telemetry, logins) for readiness, /metrics and the dispatch screen.
      this.health = new SystemHealth({
        dataDir,
        lowBytes: config.DISK_LOW_MB * 1024 * 1024,
        intervalMs: config.HEALTH_CHECK_MS,
        clock,
        log: log.child({ module: 'health' }),
        bus: this.bus,
        gateway: () => this.gateway ?? null,
        liveRelay: this.relay ? (now) => this.relay!.health(now) : undefined,
        cluster: leases ? () => leases.view : undefined,
      });
      const health = this.health;
      if (this.relay) {
        const relay = this.relay;
        readGauge(
          registry,
          'g365_live_relay_up',
          '1 while live events cross dispatcher instances (Redis)',
          () => (relay.up ? 1 : 0),
        );
        readGauge(
          registry,
          'g365_live_relay_skipped_total',
          'live events kept on this instance because Redis was unreachable',
          () => relay.skipped,
        );
      }
      readGauge(
        registry,
        'g365_disk_free_bytes',
        "free space on the data folder's filesystem",
        () => health.freeBytes,
      );
      readGauge(registry, 'g365_disk_low', '1 while free space is below DISK_LOW_MB', () =>
        health.diskLow ? 1 : 0,
      );
      const app = await buildApp({
        store,
        clock,
        log,
        auth: this.auth,
        alerts: this.alerts,
        directory: this.directory,
        metrics: this.metrics,
        consoleDir: this.opts.consoleDir,
        notifier,
        dutyWatch: this.dutyWatch,
        revokeDevice: (id) => this.revokeDevice(id),
        staffChanged: (ids) => this.recheckLive(ids),
        security: { publicOrigins: config.PUBLIC_ORIGIN, trustProxy: config.TRUST_PROXY },
        ready: () => this.started,
        mqttPort: () => this.gateway?.port ?? 0,
        systemHealth: health,
        rules: config.RULES,
        push: { publicKey: vapid.publicKey, subscriptions: this.pushSubscriptions },
      });
      await app.ready();
      this.routeTable = app.routeTable;
      this.http.on('request', (req, res) => app.routing(req, res));
      this.live.start();

      // Start order: state first (escalation timers, rules catch-up), then open the doors.
      await this.alerts.start();
      this.family?.start();
      await this.signals?.start();
      if (leases) {
        // CLU-03: the duty watch, the rules and the escalation timers of the communities this instance holds.
        readGauge(
          registry,
          'g365_leases_held',
          'community leases held by this instance',
          () => leases.names.length,
        );
        readGauge(
          registry,
          'g365_leases_taken_total',
          'leases taken by this instance',
          () => leases.acquired,
        );
        readGauge(
          registry,
          'g365_leases_lost_total',
          'leases lost by this instance (taken by another, or not renewed in time)',
          () => leases.lost,
        );
        // CLU-08: the even split over the live instances.
        readGauge(
          registry,
          'g365_leases_released_total',
          "leases this instance handed over on purpose (to another instance's share, or at a graceful stop)",
          () => leases.released,
        );
        readGauge(
          registry,
          'g365_dispatchers_live',
          'dispatcher instances live at the last lease renewal (this one included)',
          () => leases.live,
        );
        await this.shards!.start();
        await leases.start();
      } else {
        this.dutyWatch.start();
        await this.pipeline.start();
      }
      if (this.signals) {
        // CLU-02: NOTIFY wakes the rules at once; this poll is the floor for a wake-up that was lost.
        this.poll = setInterval(() => this.rulesWork.wake(), config.CLUSTER_POLL_MS);
        this.poll.unref();
      }
      if (this.gateway) await this.startGateway();
      await listen(this.http, config.HTTP_PORT, config.HTTP_HOST, 'HTTP_PORT');
      // SPEC §2: the admin account is created only once the service is listening, so a start that failed
      // (a port in use) never leaves behind an admin whose generated password nobody was shown.
      await this.ensureAdmin();
      this.armSessionCheck();
      await health.start();
      this.started = true;
      log.info({ mqtt: this.mqttPort, http: this.httpPort }, 'guardian 365 started');
    } catch (e) {
      await this.stop().catch(() => {});
      throw diskFull(e, dataDir);
    }
  }

  /** The rules: one pipeline (ROLE=all), or those of the communities held here (ROLE=dispatcher). */
  private get rulesWork(): Pick<
    RulesPipeline,
    | 'wake'
    | 'urgent'
    | 'urgentRaised'
    | 'evaluatedAgain'
    | 'homeChanged'
    | 'position'
    | 'skipped'
    | 'evaluationErrors'
    | 'unwatched'
    | 'stalls'
    | 'fenced'
    | 'homesHeld'
  > {
    return this.shards ?? this.pipeline;
  }

  private async startGateway(): Promise<void> {
    const { config } = this.opts;
    await this.gateway.start().catch((e: NodeJS.ErrnoException & { listener?: string }) => {
      if (e.code !== 'EADDRINUSE') throw e;
      if (e.listener === 'tls') throw new PortInUseError('MQTT_TLS_PORT', config.MQTT_TLS_PORT ?? 0);
      if (e.listener === 'ws') throw new PortInUseError('MQTT_WS_PORT', config.MQTT_WS_PORT ?? 0);
      throw new PortInUseError('MQTT_PORT', config.MQTT_PORT);
    });
  }

  /**
   * ROLE=gateway (CLU-01): the MQTT edge alone, writing the shared event log and waking the dispatchers,
   * with a small HTTP port of its own for /healthz, /readyz and /metrics.
   */
  private async startEdge(dataDir: string): Promise<void> {
    const { config, clock, log } = this.opts;
    const store = this.store;
    this.metrics = createMetrics(
      () => this.gateway.metrics,
      async () => new Map(),
    );
    this.health = new SystemHealth({
      dataDir,
      lowBytes: config.DISK_LOW_MB * 1024 * 1024,
      intervalMs: config.HEALTH_CHECK_MS,
      clock,
      log: log.child({ module: 'health' }),
      bus: this.bus,
      gateway: () => this.gateway ?? null,
    });
    const health = this.health;
    const signals = this.signals!;
    readGauge(
      this.metrics.registry,
      'g365_cluster_signals_up',
      '1 while the LISTEN connection to the shared database is up (credential changes, staff notices)',
      () => (signals.listening ? 1 : 0),
    );
    const mesh = this.mesh;
    if (mesh) {
      // Not a readiness reason (CLU-06): a gateway without Redis still ingests, and a load balancer that
      // dropped every gateway for it would stop all devices; the degradation shows here and in the log.
      readGauge(
        this.metrics.registry,
        'g365_gateway_mesh_up',
        '1 while the Redis bus between gateways is up (cross-gateway takeover and staff notices)',
        () => (mesh.up ? 1 : 0),
      );
      readGauge(
        this.metrics.registry,
        'g365_gateway_mesh_local_only_total',
        'messages delivered on this gateway only, Redis being unreachable (CLU-09: its own clients still get them)',
        () => mesh.localOnly,
      );
    }
    const app = await buildOpsApp({
      started: () => this.started,
      registry: this.metrics.registry,
      reasons: async () => {
        const db = await store.health?.();
        const h = health.report();
        return [
          ...(db && !db.ok ? [db.reason] : []),
          ...(h.ready ? [] : h.reasons),
          // Credential changes would not reach this gateway: devices revoked elsewhere could stay on.
          ...(signals.listening ? [] : ['cluster signals: not listening to the shared database']),
        ];
      },
    });
    this.http = createServer((req, res) => app.routing(req, res));
    await signals.start();
    await this.mesh?.start();
    await this.startGateway();
    await listen(this.http, config.HTTP_PORT, config.HTTP_HOST, 'HTTP_PORT');
    this.armSessionCheck();
    await health.start();
    this.started = true;
    log.info({ role: 'gateway', mqtt: this.mqttPort, http: this.httpPort }, 'guardian 365 gateway started');
  }

  /** CLU-02: on a gateway process, what a dispatcher asks of the gateway that holds the connection. */
  private fromDispatcher(m: GatewayMessage): void {
    const gateway = this.gateway;
    if (!gateway) return;
    const log = this.opts.log;
    switch (m.type) {
      case 'revokeDevice':
        gateway.revokeDevice(m.deviceId);
        return;
      case 'recheckStaff':
        void gateway.recheckStaff().catch((e: unknown) => log.error({ err: e }, 'staff re-check failed'));
        return;
      case 'staffNotice':
        void (async () => {
          if (!(await gateway.staffListening(m.staffId))) return;
          await gateway.publish(m.topic, m.payload);
          await this.signals?.reply({ type: 'staffNoticeSent', id: m.id });
        })().catch((e: unknown) => log.error({ err: e }, 'staff notice from a dispatcher failed'));
        return;
    }
  }

  /** DEV-01, CLU-02: a device's credentials changed: end its connection here and on every gateway process. */
  private revokeDevice(deviceId: string): void {
    this.gateway?.revokeDevice(deviceId);
    void this.signals
      ?.toGateways({ type: 'revokeDevice', deviceId })
      .catch((e: unknown) =>
        this.opts.log.error({ err: e, deviceId }, 'cannot tell the gateways of a revoked device'),
      );
  }

  /** CLU-11: who may see what changed through another dispatcher instance: this one's live pages again. */
  private recheckOwnLive(): void {
    void this.live
      ?.recheck()
      .then((r) =>
        this.opts.log.info({ closed: r.closed }, 'live connections re-checked for another instance'),
      )
      .catch((e: unknown) => this.opts.log.error({ err: e }, 'live connections re-check failed'));
  }

  /**
   * Every 10 s, open live pages and staff app connections are checked against their login sessions, so a
   * session ended outside this process (npm run staff:reset-password on the same data folder) or expired
   * ends them too.
   */
  private armSessionCheck(): void {
    this.sessionCheck = this.opts.clock.after(
      seconds(10),
      () => {
        // Not returned: a test clock that jumps an hour must not wait for 360 checks, one at a time.
        void Promise.all([this.live?.endStaleSessions(), this.gateway?.endStaleStaffSessions()])
          .catch((e: unknown) => this.opts.log.error({ err: e }, 'session check failed'))
          .finally(() => {
            if (this.sessionCheck) this.armSessionCheck();
          });
      },
      'session check',
    );
  }

  async stop(): Promise<void> {
    this.sessionCheck?.cancel();
    this.sessionCheck = undefined;
    this.started = false;
    this.health?.stop();
    clearInterval(this.poll);
    // Close the doors first, then let in-flight work finish, then the store.
    await this.live?.stop();
    if (this.http?.listening) {
      const closed = new Promise<void>((r) => this.http!.close(() => r()));
      this.http.closeAllConnections();
      await closed;
    }
    await this.gateway?.stop().catch(() => {});
    await this.leases?.stop();
    await this.shards?.stop();
    await this.pipeline?.stop();
    this.dutyWatch?.stop();
    await this.alerts?.stop();
    await this.family?.stop();
    await this.signals?.stop();
    await this.relay?.stop();
    this.mesh?.stop();
    if (this.ownsStore) await this.store?.close();
  }

  /**
   * SPEC §8, SEC-03: a change of anyone's rights or sessions reaches every live connection at once: socket.io pages
   * and staff MQTT apps whose session ended are closed, the rest re-scoped to the rights in force.
   */
  async recheckLive(staffIds: readonly string[]): Promise<void> {
    const live = await this.live?.recheck();
    const mqtt = await this.gateway?.recheckStaff();
    // CLU-02: staff apps connected to gateway processes are re-checked there.
    await this.signals
      ?.toGateways({ type: 'recheckStaff' })
      .catch((e: unknown) => this.opts.log.error({ err: e }, 'cannot tell the gateways to re-check staff'));
    // CLU-11: and live pages connected to the other dispatcher instances there.
    await this.signals?.registryChanged({ access: true });
    this.opts.log.info(
      { staffIds, closed: (live?.closed ?? 0) + (mqtt ?? 0) },
      'live connections re-checked',
    );
  }

  private async ensureAdmin(): Promise<void> {
    if (await this.store.getStaffByUsername('admin')) {
      this.adminAccount = this.opts.config.ADMIN_PASSWORD ? 'passwordIgnored' : 'exists';
      return;
    }
    const password = this.opts.config.ADMIN_PASSWORD ?? newSecret().slice(0, 16);
    const created = await this.store
      .createStaff({
        id: 'admin',
        name: 'Administrator',
        phone: '',
        roles: ['admin'],
        gridIds: [],
        username: 'admin',
        passwordHash: await hashPassword(password),
      })
      .then(
        () => true,
        async (e: unknown) => {
          // CLU-01: two dispatcher processes starting together on one database: the other one created it.
          if (await this.store.getStaffByUsername('admin')) return false;
          throw e;
        },
      );
    if (!created) {
      this.adminAccount = this.opts.config.ADMIN_PASSWORD ? 'passwordIgnored' : 'exists';
      return;
    }
    if (!this.opts.config.ADMIN_PASSWORD) this.generatedAdminPassword = password;
    this.adminAccount = 'created';
    await this.store.audit({
      at: this.opts.clock.now(),
      actor: 'system',
      action: 'staff.create',
      target: 'admin',
      detail: { firstStart: true },
    });
  }
}

export class PortInUseError extends Error {
  constructor(
    readonly variable: string,
    readonly port: number,
  ) {
    super(`port ${port} is already in use; set ${variable} to a free port`);
  }
}

async function listen(server: HttpServer, port: number, host: string, variable: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new PortInUseError(variable, port) : e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** The start failed because the data folder's filesystem is full (SQLite says SQLITE_FULL, IOERR_SHMSIZE…). */
export class DiskFullError extends Error {
  constructor(
    readonly folder: string,
    readonly freeBytes: number | null,
  ) {
    super(
      `disk full: the filesystem of the data folder ${folder} has ${freeBytes ?? 'no'} bytes free; free space there (or set DATA_DIR to a folder with room) and start again`,
    );
  }
}

/** `e` as a DiskFullError when the data folder's filesystem is (nearly) full and the error is a storage one. */
function diskFull(e: unknown, folder: string): unknown {
  if (e instanceof DiskFullError) return e;
  const code = String((e as { code?: unknown })?.code ?? '');
  const text = `${code} ${e instanceof Error ? e.message : String(e)}`;
  if (!storageUnavailable(e) && !/ENOSPC|SQLITE_FULL|SQLITE_IOERR|disk is full/i.test(text)) return e;
  let free: number | null = null;
  try {
    const s = statfsSync(folder);
    free = s.bavail * s.bsize;
  } catch {}
  // An I/O error with room on the disk is something else: reported as it is.
  if (/ENOSPC|SQLITE_FULL|disk is full/i.test(text) || (free !== null && free < 1024 * 1024))
    return new DiskFullError(folder, free);
  return e;
}
