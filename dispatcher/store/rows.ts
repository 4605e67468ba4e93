/**
 * Rows to domain values, for both backends: SQLite keeps documents as JSON text and flags as 0/1,
 * PostgreSQL as JSONB and BOOLEAN (node-postgres hands them over parsed).
 */

import type { LoggedEvent } from '../../gateway/ports.ts';
import type { DeviceKind } from '../../gateway/protocol.ts';
import type { Alert, HistoryEntry } from '../alerts/model.ts';
import type { DeviceState, Grid, Household } from '../registry.ts';
import { isRoom, type Room } from '../rooms.ts';
import type { RosterOverride } from '../routing/roster.ts';
import type { AuditEntry, DeliveryRecord, StaffRecord, StoredHomeState } from './store.ts';

export type Row = Record<string, unknown>;

/** A document column: JSON text (SQLite) or already parsed (PostgreSQL JSONB). */
// biome-ignore lint/suspicious/noExplicitAny: a stored document is typed by the mapper that reads it
export const doc = (v: unknown): any => (typeof v === 'string' ? JSON.parse(v) : v);
/** A flag column: 0/1 (SQLite) or a boolean (PostgreSQL). */
export const flag = (v: unknown): boolean => v === true || Number(v) === 1;

/** DATA-08: a home_states row (both backends keep the two parts as JSON text). */
export function storedHomeState(r: Row): StoredHomeState {
  return {
    state: JSON.parse(String(r.state)),
    learned: r.learned == null ? null : JSON.parse(String(r.learned)),
  };
}

export function loggedEventFrom(r: Row): LoggedEvent {
  return {
    seq: Number(r.seq),
    deviceId: String(r.device_id),
    homeId: String(r.home_id),
    receivedAt: Number(r.received_at),
    ts: Number(r.ts),
    flags: doc(r.flags),
    event: doc(r.body),
  };
}

export function gridFrom(r: Row): Grid {
  return {
    id: String(r.id),
    name: String(r.name),
    community: String(r.community),
    leaderId: (r.leader_id as string | null) ?? null,
  };
}

export function householdFrom(r: Row): Household {
  return {
    id: String(r.id),
    gridId: String(r.grid_id),
    address: { building: String(r.building), unit: String(r.unit), room: String(r.room) },
    residents: doc(r.residents),
    contacts: doc(r.contacts),
    accessNotes: String(r.access_notes),
    routine: doc(r.routine),
    awayUntil: r.away_until === null ? null : Number(r.away_until),
    awayReason: (r.away_reason as string | null) ?? null,
  };
}

export function staffFrom(r: Row): StaffRecord {
  return {
    id: String(r.id),
    name: String(r.name),
    phone: String(r.phone),
    roles: doc(r.roles),
    gridIds: doc(r.grid_ids),
    username: String(r.username),
    passwordHash: String(r.password_hash),
    disabled: flag(r.disabled),
  };
}

export function deviceFrom(r: Row): DeviceState {
  return {
    id: String(r.id),
    homeId: String(r.home_id),
    kind: r.kind as DeviceKind,
    room: (isRoom(String(r.room)) ? String(r.room) : 'other') as Room,
    roomText: (r.room_text as string | null | undefined) ?? null,
    disabled: flag(r.disabled),
    online: flag(r.online),
    lastSeenAt: r.last_seen_at === null ? null : Number(r.last_seen_at),
    battery: r.battery === null ? null : Number(r.battery),
    rssi: r.rssi === null ? null : Number(r.rssi),
    fw: (r.fw as string | null) ?? null,
    rejectedCount: Number(r.rejected_count),
    createdAt: Number(r.created_at),
  };
}

export function alertFrom(r: Row): Alert {
  const a = doc(r.body) as Alert;
  a.changeSeq = Number(r.change_seq);
  return a;
}

export function overrideFrom(r: Row): RosterOverride {
  return {
    id: String(r.id),
    gridId: String(r.grid_id),
    date: String(r.date),
    shift: r.shift as RosterOverride['shift'],
    kind: r.kind as RosterOverride['kind'],
    staffId: (r.staff_id as string | null) ?? null,
    replacementId: (r.replacement_id as string | null) ?? null,
  };
}

export function deliveryFrom(r: Row): DeliveryRecord {
  return {
    alertId: String(r.alert_id),
    staffId: (r.staff_id as string | null) ?? null,
    channel: String(r.channel),
    at: Number(r.at),
    ok: flag(r.ok),
    error: (r.error as string | null) ?? null,
    ...(flag(r.delivered) ? { delivered: true } : {}),
  };
}

export function historyFrom(r: Row): HistoryEntry {
  return {
    alertId: String(r.alert_id),
    at: Number(r.at),
    action: String(r.action),
    fromState: (r.from_state as HistoryEntry['fromState']) ?? null,
    toState: (r.to_state as HistoryEntry['toState']) ?? null,
    actor: String(r.actor),
    channel: r.channel as HistoryEntry['channel'],
    data: doc(r.data) as HistoryEntry['data'],
  };
}

export function auditFrom(r: Row): AuditEntry {
  return {
    at: Number(r.at),
    actor: String(r.actor),
    action: String(r.action),
    target: String(r.target),
    detail: doc(r.detail) as AuditEntry['detail'],
  };
}
