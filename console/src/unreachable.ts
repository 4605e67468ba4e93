/**
 * Responders whom no channel reached (NOTIFY-02): nobody else knows that this person will not hear of the
 * alert, so the dispatch screen says so at once on the alert's row (phone them, or reassign).
 */
import type { ServerToClientEvents } from '../../dispatcher/api/types.ts';

export type Unreachable = Parameters<ServerToClientEvents['responderUnreachable']>[0];

/** The newest few dozen; one entry per (alert, person). */
export function keepUnreachable(list: Unreachable[], u: Unreachable): Unreachable[] {
  return [u, ...list.filter((x) => !(x.alertId === u.alertId && x.staffId === u.staffId))].slice(0, 50);
}

/** The staff ids no channel reached for one alert. */
export function unreachableOn(list: Unreachable[], alertId: string): string[] {
  return list.filter((u) => u.alertId === alertId).map((u) => u.staffId);
}
