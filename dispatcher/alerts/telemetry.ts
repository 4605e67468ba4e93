/**
 * Alert metrics for dashboards (SPEC §9): each alert's raise, acceptance, arrival on site and SLA breach as
 * a point in the telemetry export, with the seconds since the raise, and the SLA figures of /metrics.
 * Listens on the bus; decides nothing.
 */
import type { AlertTags, InfluxTelemetry } from '../../gateway/telemetry.ts';
import type { Bus } from '../bus.ts';
import type { SlaMetrics } from '../metrics.ts';
import type { Alert } from './model.ts';

const MAX_REMEMBERED = 10_000;

/** Alerts whose breach was counted: a breach is reported once (the alert changes again afterwards). */
function breachMemory(): (alert: Alert, action: string) => boolean {
  const breached = new Set<string>();
  return (alert, action) => {
    if (!alert.slaBreached || action !== 'escalation' || breached.has(alert.id)) return false;
    if (breached.size >= MAX_REMEMBERED) breached.delete(breached.values().next().value!);
    breached.add(alert.id);
    return true;
  };
}

/**
 * Counts the SLA figures of safety alerts for /metrics (SLA-01, METRICS-01): raised, seconds to acceptance
 * and to on site, breaches, by community. Returns the function that stops it.
 */
export function countSlaMetrics(bus: Bus, sla: SlaMetrics): () => void {
  const newBreach = breachMemory();
  return bus.on('alertChanged', ({ alert, action }) => {
    if (alert.acceptDueAt === null) return; // technical: no SLA
    const labels = { community: alert.community };
    const since = (at: number) => Math.max(0, at - alert.raisedAt) / 1000;
    if (action === 'raised') sla.safetyAlerts.inc(labels);
    else if (action === 'accept' && alert.acceptedAt !== null)
      sla.acceptSeconds.observe(labels, since(alert.acceptedAt));
    else if (action === 'on-site' && alert.onSiteAt !== null)
      sla.onSiteSeconds.observe(labels, since(alert.onSiteAt));
    if (newBreach(alert, action)) sla.breaches.inc(labels);
  });
}

/** Starts writing alert transitions to `telemetry`; returns the function that stops it. */
export function exportAlertMetrics(bus: Bus, telemetry: InfluxTelemetry): () => void {
  const newBreach = breachMemory();
  return bus.on('alertChanged', ({ alert, action }) => {
    const tags: AlertTags = {
      community: alert.community,
      grid: alert.gridId,
      rule: alert.rule,
      severity: alert.severity,
    };
    const since = (at: number) => (at - alert.raisedAt) / 1000;
    if (action === 'raised') telemetry.recordAlert(tags, 'raised', alert.raisedAt);
    else if (action === 'accept' && alert.acceptedAt !== null)
      telemetry.recordAlert(tags, 'accepted', alert.acceptedAt, since(alert.acceptedAt));
    else if (action === 'on-site' && alert.onSiteAt !== null)
      telemetry.recordAlert(tags, 'on_site', alert.onSiteAt, since(alert.onSiteAt));
    if (newBreach(alert, action)) {
      const at = breachedAt(alert);
      telemetry.recordAlert(tags, 'breached', at, since(at));
    }
  });
}

/** The breach is the on-site deadline passing (SPEC §6); the change's time if no deadline is stored. */
function breachedAt(alert: Alert): number {
  return alert.onSiteDueAt ?? alert.updatedAt;
}
