/**
 * Prometheus metrics (SPEC §12) through prom-client, one registry per service instance (tests run several).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { GatewayMetrics } from '../gateway/gateway.ts';

export interface Metrics {
  registry: Registry;
  httpBadRequests: Counter;
  /** Cookie-authenticated writes and live connections refused as coming from another origin. */
  httpCrossOrigin: Counter;
  /** Login attempts refused before any password check: too many from one address, or in all. */
  loginThrottled: Counter<'bound'>;
  alertsRaised: Counter<'rule'>;
  notificationFailures: Counter<'channel'>;
  alertsByState: Gauge<'state'>;
  /** Durable event-log writes (one per group-commit batch), seconds. */
  eventLogWrite: Histogram;
  /** SLA figures (SLA-01, METRICS-01), by community: see `slaMetrics`. */
  sla: SlaMetrics;
}

/**
 * The 15-minute promise as Prometheus figures (SLA-01, METRICS-01), per community. Counted on safety alerts
 * only (technical alerts have no SLA). "Accepted within 3 min" is the accept histogram's `le="180"` bucket
 * over `g365_sla_safety_alerts_total`; "on site within 15 min" the on-site histogram's `le="900"` bucket.
 */
export interface SlaMetrics {
  safetyAlerts: Counter<'community'>;
  acceptSeconds: Histogram<'community'>;
  onSiteSeconds: Histogram<'community'>;
  breaches: Counter<'community'>;
}

function slaMetrics(registry: Registry): SlaMetrics {
  return {
    safetyAlerts: new Counter({
      name: 'g365_sla_safety_alerts_total',
      help: 'safety alerts raised (the SLA applies to each), by community',
      labelNames: ['community'],
      registers: [registry],
    }),
    acceptSeconds: new Histogram({
      name: 'g365_sla_accept_seconds',
      help: 'seconds from raise to acceptance of safety alerts, by community; le="180" = accepted within 3 min',
      labelNames: ['community'],
      buckets: [60, 120, 180, 360, 600, 900, 1800],
      registers: [registry],
    }),
    onSiteSeconds: new Histogram({
      name: 'g365_sla_on_site_seconds',
      help: 'seconds from raise to a responder on site for safety alerts, by community; le="900" = on site within 15 min',
      labelNames: ['community'],
      buckets: [300, 600, 720, 900, 1200, 1800, 3600],
      registers: [registry],
    }),
    breaches: new Counter({
      name: 'g365_sla_breaches_total',
      help: 'safety alerts with nobody on site 15 min after the raise (SLA breached), by community',
      labelNames: ['community'],
      registers: [registry],
    }),
  };
}

/** A gauge whose value is read when /metrics is scraped (none while `read` gives null). */
export function readGauge(registry: Registry, name: string, help: string, read: () => number | null): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const v = read();
      if (v !== null) this.set(v);
    },
  });
}

export function createMetrics(
  gateway: () => GatewayMetrics | null,
  openByState: () => Promise<Map<string, number>>,
): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const g = (name: string, help: string, read: (m: GatewayMetrics) => number) =>
    readGauge(registry, name, help, () => {
      const m = gateway();
      return m ? read(m) : null;
    });
  g('g365_devices_connected', 'MQTT clients connected now', (m) => m.connected);
  g('g365_events_accepted_total', 'device events accepted into the log', (m) => m.accepted);
  g(
    'g365_events_duplicate_total',
    'device events dropped as duplicates (same device and seq)',
    (m) => m.duplicates,
  );
  g('g365_mqtt_auth_failures_total', 'refused MQTT logins', (m) => m.authFailures);
  g('g365_mqtt_acl_denied_total', 'publishes and subscriptions refused by the topic ACL', (m) => m.aclDenied);
  // Gateway (OPS-02): devices, auth, ACL, hygiene, throttling, admission, telemetry.
  g('g365_devices_online', 'devices with a live MQTT session now', (m) => m.devicesOnline);
  g(
    'g365_mqtt_auth_throttled_total',
    'login refusals held back because the device or its address failed too often',
    (m) => m.authThrottled,
  );
  g(
    'g365_mqtt_login_fast_checks_total',
    'device secret checks of the fast format (salted HMAC, SEC-05), run at once',
    (m) => m.loginFastChecks,
  );
  g('g365_mqtt_login_checks_total', 'legacy device secret checks run (scrypt)', (m) => m.loginChecks);
  g(
    'g365_mqtt_login_rehashed_total',
    'legacy (scrypt) device secret hashes re-hashed to the fast format after a good login',
    (m) => m.loginRehashed,
  );
  g(
    'g365_mqtt_login_rechecked_total',
    'times an MQTT login asked again (device row, staff session) because a revocation or a re-check overtook it',
    (m) => m.loginRechecked,
  );
  g(
    'g365_mqtt_login_revoked_under_way_total',
    'MQTT logins refused because the device was disabled, removed or re-keyed, or the staff session ended, while they were checked',
    (m) => m.loginRevokedUnderWay,
  );
  g(
    'g365_mqtt_login_cached_total',
    'device logins answered from the known-good or refused caches',
    (m) => m.loginCached,
  );
  g(
    'g365_mqtt_login_skipped_total',
    'device secret checks skipped because the connection closed first',
    (m) => m.loginSkipped,
  );
  g(
    'g365_mqtt_login_busy_total',
    'suspect device logins refused unchecked (budget for failing logins used up)',
    (m) => m.loginBusy,
  );
  g('g365_mqtt_login_queue', 'suspect device secret checks waiting now', (m) => m.loginQueued);
  g('g365_mqtt_throttled_total', 'publishes held back by the per-device rate limit', (m) => m.throttled);
  g(
    'g365_mqtt_admission_closed_total',
    'times the gateway stopped reading sockets because the event log was behind',
    (m) => m.admissionClosed,
  );
  g('g365_event_log_queue', 'records waiting for the durable event log', (m) => m.logQueueDepth);
  g(
    'g365_event_log_failing',
    '1 while the event log cannot write (devices are held, not acknowledged)',
    (m) => (m.logFailing ? 1 : 0),
  );
  g(
    'g365_event_log_unavailable_total',
    'times the event log stopped being able to write (disk full, I/O errors)',
    (m) => m.logUnavailable,
  );
  g('g365_presence_records_total', 'presence transitions written to the event log', (m) => m.presenceRecords);
  g(
    'g365_telemetry_dropped_total',
    'telemetry points dropped (the outage buffer was full)',
    (m) => m.telemetryDropped,
  );
  g('g365_telemetry_written_total', 'telemetry points written to InfluxDB', (m) => m.telemetryWritten);
  g('g365_telemetry_buffered', 'telemetry points waiting for InfluxDB now', (m) => m.telemetryBuffered);
  g('g365_telemetry_failing', '1 while writes to InfluxDB fail (points are buffered)', (m) =>
    m.telemetryFailing ? 1 : 0,
  );
  const byLabel = (
    name: string,
    help: string,
    label: string,
    read: (m: GatewayMetrics) => Map<string, number>,
  ) =>
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        const m = gateway();
        if (!m) return;
        for (const [k, n] of read(m)) this.set({ [label]: k }, n);
      },
    });
  byLabel('g365_mqtt_acl_denied_by_kind_total', 'ACL refusals by kind', 'kind', (m) => m.aclDeniedByKind);
  byLabel(
    'g365_mqtt_protocol_violations_total',
    'connections closed by the protocol guard, by reason',
    'reason',
    (m) => m.violationsByReason,
  );
  const eventLogWrite = new Histogram({
    name: 'g365_event_log_write_seconds',
    help: 'durable event-log writes (one group-commit batch each)',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  new Gauge({
    name: 'g365_events_rejected_total',
    help: 'device messages rejected by validation, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const m = gateway();
      if (!m) return;
      for (const [reason, n] of m.rejectedByReason) this.set({ reason }, n);
    },
  });
  const alertsByState = new Gauge({
    name: 'g365_alerts_open',
    help: 'open alerts by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [state, n] of await openByState()) this.set({ state }, n);
    },
  });
  return {
    registry,
    sla: slaMetrics(registry),
    alertsByState,
    eventLogWrite,
    httpBadRequests: new Counter({
      name: 'g365_http_bad_requests_total',
      help: 'HTTP requests refused as invalid',
      registers: [registry],
    }),
    httpCrossOrigin: new Counter({
      name: 'g365_http_cross_origin_refused_total',
      help: 'cookie-authenticated writes and live connections refused as coming from another origin',
      registers: [registry],
    }),
    loginThrottled: new Counter({
      name: 'g365_login_throttled_total',
      help: 'login attempts refused before any password check, by the bound that refused them',
      labelNames: ['bound'],
      registers: [registry],
    }),
    alertsRaised: new Counter({
      name: 'g365_alerts_raised_total',
      help: 'alerts raised by rule',
      labelNames: ['rule'],
      registers: [registry],
    }),
    notificationFailures: new Counter({
      name: 'g365_notification_failures_total',
      help: 'failed notification attempts by channel',
      labelNames: ['channel'],
      registers: [registry],
    }),
  };
}
