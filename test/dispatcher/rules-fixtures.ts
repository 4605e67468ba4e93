/**
 * Fixtures for the rules tests: a home with the devices of the demo community, a driver that feeds the
 * pure engine events and lets time pass (with the heartbeats a real home sends every 5 min), and a
 * household seeded straight into a real store.
 */

import { DateTime } from 'luxon';
import type { Household } from '../../dispatcher/registry.ts';
import type { Room } from '../../dispatcher/rooms.ts';
import {
  advance,
  type Clearance,
  emptyHomeState,
  evaluate,
  type HomeContext,
  type HomeState,
  type Trigger,
} from '../../dispatcher/rules/engine.ts';
import { resolveSettings } from '../../dispatcher/rules/settings.ts';
import type { Store } from '../../dispatcher/store/store.ts';
import type { LoggedEvent } from '../../gateway/ports.ts';
import type { DeviceKind, LogEvent } from '../../gateway/protocol.ts';

export const ZONE = 'Asia/Shanghai';
export const MIN = 60_000;
export const HOUR = 3_600_000;

/** An instant given as local wall time in the community zone: local('2026-03-10 09:12'). */
export function local(text: string, zone = ZONE): number {
  const dt = DateTime.fromFormat(text, text.length > 16 ? 'yyyy-MM-dd HH:mm:ss' : 'yyyy-MM-dd HH:mm', {
    zone,
  });
  if (!dt.isValid) throw new Error(`bad local time ${text}`);
  return dt.toMillis();
}

export const DEVICES: [string, { kind: DeviceKind; room: Room }][] = [
  ['fall', { kind: 'fall', room: 'bathroom' }],
  ['door', { kind: 'door', room: 'entrance' }],
  ['m-living', { kind: 'motion', room: 'living' }],
  ['m-bedroom', { kind: 'motion', room: 'bedroom' }],
  ['m-bathroom', { kind: 'motion', room: 'bathroom' }],
  ['m-kitchen', { kind: 'motion', room: 'kitchen' }],
  ['btn', { kind: 'button', room: 'bedroom' }],
];

export function household(
  over: Omit<Partial<Household>, 'routine'> & { routine?: Partial<Household['routine']> } = {},
): Household {
  return {
    id: 'h1',
    gridId: 'g1',
    address: { building: '1', unit: '1', room: '101' },
    residents: [],
    contacts: [],
    accessNotes: '',
    awayUntil: null,
    awayReason: null,
    ...over,
    routine: { nightStart: '22:00', nightEnd: '06:00', wakeTime: '07:30', thresholds: {}, ...over.routine },
  };
}

export function homeContext(h: Household = household()): HomeContext {
  return {
    householdId: h.id,
    zone: ZONE,
    devices: new Map(DEVICES),
    settings: resolveSettings(h),
  };
}

/** Drives one home through the pure engine, collecting triggers and clearances. */
export class HomeDriver {
  state: HomeState = emptyHomeState();
  triggers: Trigger[] = [];
  clearances: Clearance[] = [];
  private seq = 0;
  /** Devices that send heartbeats while time passes (a device taken out stops). */
  beating = new Set(DEVICES.map(([id]) => id));
  private lastBeat = new Map<string, number>();

  constructor(public ctx: HomeContext = homeContext()) {}

  send(deviceId: string, event: LogEvent, receivedAt = event.ts): this {
    // The other devices' heartbeats keep coming in the meantime.
    if (!this.beating_) this.beat(event.ts - 1);
    const logged: LoggedEvent = {
      seq: ++this.seq,
      deviceId,
      homeId: this.ctx.householdId,
      receivedAt,
      ts: event.ts,
      flags: [],
      event,
    };
    const r = evaluate(this.state, logged, this.ctx);
    this.state = r.state;
    this.triggers.push(...r.triggers);
    this.clearances.push(...r.clearances);
    if (event.type !== 'presence')
      this.lastBeat.set(deviceId, Math.max(this.lastBeat.get(deviceId) ?? 0, event.ts));
    return this;
  }

  motion(room: string, ts: number): this {
    return this.send(`m-${room}`, { type: 'motion', ts, state: 'active', room });
  }

  door(state: 'open' | 'closed', ts: number): this {
    return this.send('door', { type: 'door', ts, state, door: 'front' });
  }

  /** Time passes until `to`: heartbeats every 5 min from the beating devices, then the clock's deadlines. */
  runUntil(to: number): this {
    this.beat(to);
    const r = advance(this.state, to, this.ctx);
    this.state = r.state;
    this.triggers.push(...r.triggers);
    this.clearances.push(...r.clearances);
    return this;
  }

  /** Heartbeats every 5 min from the beating devices, up to and including `to`. */
  private beating_ = false;
  private beat(to: number, heartbeat = 5 * MIN): void {
    this.beating_ = true;
    try {
      this.beatLoop(to, heartbeat);
    } finally {
      this.beating_ = false;
    }
  }

  private beatLoop(to: number, heartbeat: number): void {
    for (;;) {
      let next: { id: string; at: number } | null = null;
      for (const id of this.beating) {
        const last = this.lastBeat.get(id);
        if (last === undefined) continue; // not switched on yet (see hello)
        const at = last + heartbeat;
        if (at <= to && (!next || at < next.at)) next = { id, at };
      }
      if (!next) break;
      this.send(next.id, {
        type: 'heartbeat',
        ts: next.at,
        battery: this.state.devices[next.id]?.battery ?? 80,
      });
    }
  }

  /** The resident moves about in `room` every 20 min from the last motion until `to` (exclusive). */
  activeUntil(to: number, room = 'living'): this {
    for (let t = (this.state.lastMotionAt ?? to) + 20 * MIN; t < to; t += 20 * MIN) this.motion(room, t);
    return this;
  }

  /** Every device says hello at `ts` (starts the heartbeat phase). */
  hello(ts: number): this {
    for (const id of this.beating) this.send(id, { type: 'heartbeat', ts, battery: 80 });
    return this;
  }

  rules(): string[] {
    return this.triggers.filter((t) => !t.attachOnly).map((t) => t.rule);
  }

  of(rule: string): Trigger[] {
    return this.triggers.filter((t) => t.rule === rule && !t.attachOnly);
  }
}

/** A grid, a household and its devices, written straight into a real store (no secrets needed here). */
export async function seedHome(
  store: Store,
  h: Household,
  deviceIds = DEVICES,
  createdAt = 0,
): Promise<void> {
  if (!(await store.getGrid(h.gridId)))
    await store.upsertGrid({ id: h.gridId, name: h.gridId, community: 'c1', leaderId: null });
  await store.upsertHousehold(h);
  for (const [id, d] of deviceIds)
    await store.createDevice({
      id: `${h.id}-${id}`,
      homeId: h.id,
      kind: d.kind,
      room: d.room,
      secretHash: 'x',
      createdAt,
    });
}
