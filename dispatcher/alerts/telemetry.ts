/**
 * Alert metrics for dashboards (SPEC §9): each alert's raise, acceptance, arrival on site and SLA breach as
 * a point in the telemetry export, with the seconds since the raise. Listens on the bus; decides nothing.
 */
import type { AlertTags, InfluxTelemetry } from '../../gateway/telemetry.ts';
import type { Bus } from '../bus.ts';
import type { Alert } from './model.ts';

const MAX_REMEMBERED = 10_000;

/** Starts writing alert transitions to `telemetry`; returns the function that stops it. */
export function exportAlertMetrics(bus: Bus, telemetry: InfluxTelemetry): () => void {
  // A breach is reported once (the alert changes again afterwards: notes, resolution).
  const breached = new Set<string>();
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
    if (alert.slaBreached && action === 'escalation' && !breached.has(alert.id)) {
      if (breached.size >= MAX_REMEMBERED) breached.delete(breached.values().next().value!);
      breached.add(alert.id);
      const at = breachedAt(alert);
      telemetry.recordAlert(tags, 'breached', at, since(at));
    }
  });
}

/** The breach is the on-site deadline passing (SPEC §6); the change's time if no deadline is stored. */
function breachedAt(alert: Alert): number {
  return alert.onSiteDueAt ?? alert.updatedAt;
}
