/**
 * HOME_UNWATCHED (RULE-15): a home's events are never skipped silently. What the rules could not commit,
 * even alone and after retries, becomes HOME_UNWATCHED for the household, raised (or attached to the open
 * one) at the time the service learned of it. Raised by the pipeline, not by an event: no handler.
 */
import type { LoggedEvent } from '../../../gateway/ports.ts';
import { unwatched } from '../explain.ts';
import { hhmmAt } from '../localtime.ts';
import type { Trigger } from '../trigger.ts';

/** What of a home the rules could not process: one logged event, or the home's due silence deadlines. */
export type Unprocessed =
  | { kind: 'event'; logged: LoggedEvent }
  | { kind: 'due'; homeId: string; until: number };

/** `reason` is an error code, never data of the household (SEC-04). */
export function unwatchedTrigger(
  householdId: string,
  item: Unprocessed,
  reason: string,
  zone: string,
): Trigger {
  const at = item.kind === 'event' ? item.logged.receivedAt : item.until;
  const ev = item.kind === 'event' ? item.logged : null;
  const said = unwatched(ev && { deviceId: ev.deviceId, type: ev.event.type }, reason, hhmmAt(at, zone));
  return {
    rule: 'HOME_UNWATCHED',
    householdId,
    deviceId: ev?.deviceId ?? null,
    at,
    evidence: {
      seq: ev?.seq ?? null,
      deviceId: ev?.deviceId ?? null,
      type: ev?.event.type ?? 'deadline',
      at,
      summary: said.summary,
    },
    explanation: said.explanation,
  };
}
