/**
 * Prometheus metrics (SPEC §12) through prom-client, one registry per service instance (tests run several).
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { GatewayMetrics } from '../gateway/gateway.ts';

export interface Metrics {
  registry: Registry;
  httpBadRequests: Counter;
  alertsRaised: Counter<'rule'>;
  notificationFailures: Counter<'channel'>;
  alertsByState: Gauge<'state'>;
}

export function createMetrics(
  gateway: () => GatewayMetrics | null,
  openByState: () => Promise<Map<string, number>>,
): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const g = (name: string, help: string, read: (m: GatewayMetrics) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const m = gateway();
        if (m) this.set(read(m));
      },
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
    alertsByState,
    httpBadRequests: new Counter({
      name: 'g365_http_bad_requests_total',
      help: 'HTTP requests refused as invalid',
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
