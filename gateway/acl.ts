/**
 * The topic ACL (DEV-03 on the topics of DEV-02): where each identity may publish, retain, subscribe and
 * set its will. Pure: an identity and a topic in, a decision out; the gateway counts and logs refusals.
 *
 *   device  publishes `events` and `status` under its own `homes/{home}/devices/{device}/` prefix, for the
 *           home it is registered to; retains only `status`; subscribes only to its own `errors`; its will
 *           may only be its own `status` (the retained `offline`).
 *   staff   publishes nothing, subscribes only to its own `staff/{staff}/alerts`, sets no will.
 */
import { parseDeviceTopic, parseStaffTopic, topics } from './protocol.ts';

/** Who is asking, as far as the ACL cares. */
export type AclIdentity =
  | { kind: 'device'; device: { id: string; homeId: string } }
  | { kind: 'staff'; staffId: string };

/** What a refusal refused, for the counters (`aclDeniedByKind`). */
export type AclRefusal = 'publish' | 'retain' | 'subscribe' | 'will';

export type PublishDecision =
  | { ok: true; channel: 'events' | 'status' }
  | { ok: false; refused: 'publish' | 'retain' };

/** A publish by `who` (undefined: not logged in) on `topic`. */
export function mayPublish(who: AclIdentity | undefined, topic: string, retain: boolean): PublishDecision {
  const parsed = parseDeviceTopic(topic);
  if (
    who?.kind !== 'device' ||
    !parsed ||
    parsed.device !== who.device.id ||
    parsed.home !== who.device.homeId ||
    parsed.channel === 'errors'
  )
    return { ok: false, refused: 'publish' };
  // DEV-02: only the status topic is retained; a retained event would replay to every subscriber.
  if (retain && parsed.channel !== 'status') return { ok: false, refused: 'retain' };
  return { ok: true, channel: parsed.channel };
}

/**
 * A subscription by `who` to `topic`. Wildcards match nothing here: a filter is allowed only when it is
 * exactly the one topic the identity may read (device events in particular are never routed to anyone,
 * which the gateway relies on: see aedes-seams.ts).
 */
export function maySubscribe(who: AclIdentity | undefined, topic: string): boolean {
  if (!who) return false;
  if (who.kind === 'staff') return parseStaffTopic(topic)?.staff === who.staffId;
  return topic === topics.errors(who.device.homeId, who.device.id);
}

/** A will set in the CONNECT of `who`: a device's own status topic only; staff apps set none. */
export function mayWill(who: AclIdentity, willTopic: string): boolean {
  return who.kind === 'device' && willTopic === topics.status(who.device.homeId, who.device.id);
}
