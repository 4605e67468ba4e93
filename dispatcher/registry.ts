/**
 * The household file (一户一档, SPEC §4): grids, households, staff and devices as the dispatcher keeps them.
 * The zod schemas here validate API bodies and imports; the types are what the store returns.
 */
import { z } from 'zod';
import { DEVICE_KINDS, type DeviceKind } from '../gateway/protocol.ts';
import { ROOMS, type Room } from './rooms.ts';
import { ID_PATTERN, ID_RULE, STAFF_ROLES, type StaffRole } from './terms.ts';

export const id = z.string().regex(ID_PATTERN, ID_RULE);
const hhmm = z.string().regex(/^([01]\d|2[0-3]):([0-5]\d)$/, 'must be a time of day HH:MM');

export { RESPONDER_ROLES, STAFF_ROLES, type StaffRole } from './terms.ts';

export const gridInput = z.strictObject({
  id,
  name: z.string().min(1).max(100),
  community: z.string().min(1).max(100),
  leaderId: id.nullable().default(null),
});
export type Grid = z.output<typeof gridInput>;

export const resident = z.strictObject({
  name: z.string().min(1).max(100),
  age: z.number().int().min(0).max(130).optional(),
  phone: z.string().max(40).optional(),
  healthNotes: z.string().max(2000).optional(),
});
export const contact = z.strictObject({
  name: z.string().min(1).max(100),
  relation: z.string().max(50).optional(),
  phone: z.string().min(1).max(40),
  /** Opted in to be told of safety alerts: raised, someone on the way, resolved (NOTIFY-04). */
  updates: z.boolean().optional(),
});
export const routineProfile = z.strictObject({
  nightStart: hhmm.default('22:00'),
  nightEnd: hhmm.default('06:00'),
  wakeTime: hhmm.default('07:30'),
  /** Per-household threshold overrides in minutes, by rule. */
  thresholds: z.record(z.string(), z.number().positive()).default({}),
  /** Opt in to learned routine baselines that sharpen NO_MORNING_ACTIVITY and INACTIVITY (dispatcher/rules/baseline.ts). */
  learnBaseline: z.boolean().optional(),
});
export type RoutineProfile = z.output<typeof routineProfile>;

export const householdInput = z.strictObject({
  id,
  gridId: id,
  address: z.strictObject({
    building: z.string().min(1).max(50),
    unit: z.string().max(50).default(''),
    room: z.string().min(1).max(50),
  }),
  residents: z.array(resident).max(10).default([]),
  contacts: z.array(contact).max(10).default([]),
  accessNotes: z.string().max(2000).default(''),
  routine: routineProfile.default({
    nightStart: '22:00',
    nightEnd: '06:00',
    wakeTime: '07:30',
    thresholds: {},
  }),
  awayUntil: z.number().int().nullable().default(null),
  awayReason: z.string().max(200).nullable().default(null),
});
export type Household = z.output<typeof householdInput>;

export const staffInput = z.strictObject({
  id,
  name: z.string().min(1).max(100),
  phone: z.string().max(40).default(''),
  roles: z.array(z.enum(STAFF_ROLES)).min(1),
  gridIds: z.array(id).default([]),
  username: z.string().min(1).max(64),
  password: z.string().min(8).max(200),
});
export type StaffInput = z.output<typeof staffInput>;
export interface Staff {
  id: string;
  name: string;
  phone: string;
  roles: StaffRole[];
  gridIds: string[];
  username: string;
  disabled: boolean;
}

/** A room of the SPEC §3 vocabulary, by its id; the error lists them (an import maps typed names first). */
export const roomInput = z.enum(ROOMS, { error: () => `must be one of ${ROOMS.join(', ')}` });

export const deviceInput = z.strictObject({
  id,
  homeId: id,
  kind: z.enum(DEVICE_KINDS),
  room: roomInput,
});
export type DeviceInput = z.output<typeof deviceInput>;

export interface DeviceState {
  id: string;
  homeId: string;
  kind: DeviceKind;
  room: Room;
  /**
   * The room as it was typed before the vocabulary, when the upgrade could not map it (the device counts as
   * `other` until a person chooses its room; device health lists it). Absent once mapped.
   */
  roomText?: string | null;
  disabled: boolean;
  online: boolean;
  lastSeenAt: number | null;
  battery: number | null;
  rssi: number | null;
  fw: string | null;
  rejectedCount: number;
  createdAt: number;
}
