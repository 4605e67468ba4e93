/**
 * The device protocol of SPEC §3: topics and payload schemas. This file is the contract between the
 * devices (and the simulators that play them), the gateway and the dispatcher; it imports nothing of ours
 * but the kernel.
 */
import { z } from 'zod';
import { ID_SOURCE } from '../kernel/id-pattern.ts';

export const TOPIC_PREFIX = 'g365/v1';
export const MAX_EVENT_BYTES = 2048;

export const DEVICE_KINDS = ['fall', 'door', 'motion', 'button'] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];

export const EVENT_TYPES = ['fall', 'door', 'motion', 'sos', 'heartbeat'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Which event types each registered device kind may send (SPEC §3: "an event type its kind cannot send is invalid"). */
export const TYPES_BY_KIND: Record<DeviceKind, readonly EventType[]> = {
  fall: ['fall', 'heartbeat'],
  door: ['door', 'heartbeat'],
  motion: ['motion', 'heartbeat'],
  button: ['sos', 'heartbeat'],
};

const idSegment = ID_SOURCE;
const deviceTopic = new RegExp(
  `^${TOPIC_PREFIX}/homes/(${idSegment})/devices/(${idSegment})/(events|status|errors)$`,
);
const staffTopic = new RegExp(`^${TOPIC_PREFIX}/staff/(${idSegment})/alerts$`);

export type DeviceChannel = 'events' | 'status' | 'errors';

export const topics = {
  events: (home: string, device: string) => `${TOPIC_PREFIX}/homes/${home}/devices/${device}/events`,
  status: (home: string, device: string) => `${TOPIC_PREFIX}/homes/${home}/devices/${device}/status`,
  errors: (home: string, device: string) => `${TOPIC_PREFIX}/homes/${home}/devices/${device}/errors`,
  staffAlerts: (staff: string) => `${TOPIC_PREFIX}/staff/${staff}/alerts`,
};

export function parseDeviceTopic(
  topic: string,
): { home: string; device: string; channel: DeviceChannel } | null {
  const m = deviceTopic.exec(topic);
  if (!m) return null;
  return { home: m[1]!, device: m[2]!, channel: m[3] as DeviceChannel };
}

export function parseStaffTopic(topic: string): { staff: string } | null {
  const m = staffTopic.exec(topic);
  return m ? { staff: m[1]! } : null;
}

/** `ts`: epoch milliseconds or an RFC 3339 date-time. */
const timestamp = z.union([
  z.number().int().nonnegative(),
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
]);

const common = {
  ts: timestamp,
  seq: z.number().int().nonnegative().optional(),
};

export const fallEvent = z.strictObject({
  type: z.literal('fall'),
  ...common,
  state: z.enum(['detected', 'cleared']),
  room: z.string().min(1).max(64).optional(),
  confidence: z.number().min(0).max(1).optional(),
});
export const doorEvent = z.strictObject({
  type: z.literal('door'),
  ...common,
  state: z.enum(['open', 'closed']),
  door: z.string().min(1).max(64).default('front'),
});
export const motionEvent = z.strictObject({
  type: z.literal('motion'),
  ...common,
  state: z.enum(['active', 'idle']),
  room: z.string().min(1).max(64),
});
export const sosEvent = z.strictObject({
  type: z.literal('sos'),
  ...common,
});
export const heartbeatEvent = z.strictObject({
  type: z.literal('heartbeat'),
  ...common,
  battery: z.number().min(0).max(100).optional(),
  rssi: z.number().min(-200).max(50).optional(),
  fw: z.string().max(64).optional(),
});

export const deviceEvent = z.discriminatedUnion('type', [
  fallEvent,
  doorEvent,
  motionEvent,
  sosEvent,
  heartbeatEvent,
]);
/** A device event as parsed: `ts` is always epoch milliseconds. */
export type DeviceEvent = z.output<typeof deviceEvent>;
/** A device event as a device may write it. */
export type DeviceEventInput = z.input<typeof deviceEvent>;

export const statusPayload = z.enum(['online', 'offline']);

/**
 * Presence transitions are written to the event log by the gateway itself (never accepted from a device),
 * so the rules consume them in log order and a replay of the log sees the same connects and disconnects.
 * `cause`: connect, disconnect (clean), will (will message or retained status), keepalive (timeout).
 */
export interface PresenceEvent {
  type: 'presence';
  ts: number;
  state: 'online' | 'offline';
  cause: 'connect' | 'disconnect' | 'will' | 'keepalive' | 'status';
  /**
   * DEV-11: when the session this transition belongs to began (the gateway's clock). The end of a session
   * older than one already seen online (a gateway the device has left) is stale. Absent in older records.
   */
  session?: number;
}

/** What the event log holds for the rules: a validated device event or a gateway presence record. */
export type LogEvent = DeviceEvent | PresenceEvent;

export interface ErrorReport {
  reason: string;
  topic: string;
  at: string;
}

export type Rejection = { ok: false; reason: string };
export type Validated = { ok: true; event: DeviceEvent };

/**
 * Validates one event payload for a device of `kind`. Returns the reason for a rejection as a short,
 * stable, human-readable string (it goes to the device's `errors` topic and to device health).
 */
/** Refuses invalid UTF-8 instead of replacing it (one decoder: it keeps no state between calls). */
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function validateEvent(payload: Buffer, kind: DeviceKind): Validated | Rejection {
  if (payload.length > MAX_EVENT_BYTES)
    return { ok: false, reason: `payload too large: ${payload.length} bytes > ${MAX_EVENT_BYTES}` };
  let text: string;
  try {
    text = utf8.decode(payload);
  } catch {
    return { ok: false, reason: 'payload is not valid UTF-8' };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'payload is not valid JSON' };
  }
  const parsed = deviceEvent.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.length ? issue.path.join('.') : 'payload';
    return { ok: false, reason: `invalid ${path}: ${issue.message}` };
  }
  if (!TYPES_BY_KIND[kind].includes(parsed.data.type)) {
    return { ok: false, reason: `a ${kind} device cannot send ${parsed.data.type} events` };
  }
  return { ok: true, event: parsed.data };
}

/** SPEC §3: a `ts` more than 5 minutes ahead or 24 hours behind the receive time is clock skew. */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;
export const MAX_PAST_SKEW_MS = 24 * 3_600_000;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event without its envelope (`ts`, `seq`), as a simulator composes it. */
export type EventBody = DistributiveOmit<DeviceEventInput, 'ts' | 'seq'>;

/**
 * RULE-16: the events that raise a critical alert at once (a fall detected, the help button). They take
 * the urgent lane to the rules besides their place in the log.
 */
export function isUrgent(e: LogEvent): boolean {
  return e.type === 'sos' || (e.type === 'fall' && e.state === 'detected');
}
