/**
 * A resident's ordinary day as a list of device events: pure, seeded and deterministic. The demo, the
 * simulated homes, the tests and the benchmarks all replay the same routine, so "ordinary" means the same
 * thing everywhere.
 *
 * An ordinary day is ordinary for every rule of SPEC §5 with default thresholds (night window 22:00–06:00,
 * wake time 07:30): no fall and no SOS; first motion by wake + 60 min at the latest (the rule fires at
 * wake + 90 min); outside the night window, while at home, never more than ~2 h without motion (the rule
 * fires at 4 h); bathroom visits under 25 min with motion throughout (BATHROOM_DWELL fires at 40 min of
 * stillness); the entrance door closes within 40 s of opening (DOOR_LEFT_OPEN at 30 min); no door event in
 * the night window (NIGHT_EXIT); heartbeats every 5 min with batteries above 15 % (DEVICE_OFFLINE,
 * LOW_BATTERY). Motion sensors repeat `active` at most every 30 s while motion lasts (SPEC §3).
 */
import { DateTime } from 'luxon';
import type { DeviceKind, EventBody } from '../gateway/protocol.ts';
import { Rng } from './random.ts';

export interface RoutineDevice {
  id: string;
  kind: DeviceKind;
  room: string;
}

export interface RoutineOptions {
  homeId: string;
  devices: readonly RoutineDevice[];
  seed: number;
  /** The local calendar day, `YYYY-MM-DD`, in `zone`. */
  date: string;
  /** The community's IANA time zone (SPEC §4: default Asia/Shanghai). */
  zone: string;
  /** The household's usual wake time `HH:MM` (SPEC §4 default 07:30); the day varies around it. */
  wakeTime?: string;
  /** Heartbeat period in ms (SPEC §3 default 5 min). `0` leaves heartbeats out. */
  heartbeatEvery?: number;
}

export interface RoutineStep {
  deviceId: string;
  /** Epoch ms. */
  at: number;
  event: EventBody;
}

/** What the resident does at one moment, for scenario authors and explanations. */
export type Whereabouts = { at: number; kind: 'room'; room: string } | { at: number; kind: 'away' };

const SEC = 1000;
const MIN = 60 * SEC;
/** SPEC §3: a motion sensor repeats `active` at most every 30 s while motion lasts. */
export const MOTION_REPEAT_MS = 30 * SEC;
export const HEARTBEAT_MS = 5 * MIN;

/** FNV-1a: mixes the seed, the home and the day into one PRNG seed, so each day is its own stream. */
function mix(...parts: (string | number)[]): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join('|')) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function hhmmToMinutes(hhmm: string): number {
  const m = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (!m) throw new Error(`expected HH:MM, got ${JSON.stringify(hhmm)}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

/** A battery level that is steady for a device (the battery scenario runs it down). */
export function batteryLevel(seed: number, deviceId: string): number {
  return 45 + (mix(seed, deviceId, 'battery') % 55);
}

class DayBuilder {
  readonly steps: RoutineStep[] = [];
  /** Where the resident is, in order, for scenario authors. */
  readonly whereabouts: Whereabouts[] = [];
  t: number;
  private room: string | null;
  private lastActive = new Map<string, number>();
  private lastRoom: string | null = null;

  constructor(
    readonly rng: Rng,
    readonly dayStart: number,
    private readonly devices: readonly RoutineDevice[],
    startRoom: string,
  ) {
    this.t = dayStart;
    this.room = startRoom;
    this.lastRoom = startRoom;
    this.whereabouts.push({ at: dayStart, kind: 'room', room: startRoom });
  }

  local(minutesFromMidnight: number): number {
    return this.dayStart + minutesFromMidnight * MIN;
  }

  private motionSensor(room: string): RoutineDevice | undefined {
    return this.devices.find((d) => d.kind === 'motion' && d.room === room);
  }

  private door(): RoutineDevice | undefined {
    return this.devices.find((d) => d.kind === 'door');
  }

  private push(deviceId: string, at: number, event: EventBody): void {
    this.steps.push({ deviceId, at: Math.round(at), event });
  }

  private active(room: string, at: number): void {
    const sensor = this.motionSensor(room);
    if (!sensor) return;
    const last = this.lastActive.get(sensor.id);
    if (last !== undefined && at - last < MOTION_REPEAT_MS) return;
    this.lastActive.set(sensor.id, at);
    this.push(sensor.id, at, { type: 'motion', state: 'active', room });
  }

  /** The sensor of the room just left reports `idle` once its hold time runs out. */
  private leave(): void {
    const room = this.room;
    this.room = null;
    if (!room) return;
    const sensor = this.motionSensor(room);
    const last = sensor ? this.lastActive.get(sensor.id) : undefined;
    if (sensor && last !== undefined)
      this.push(sensor.id, Math.max(this.t, last) + this.rng.between(60, 120) * SEC, {
        type: 'motion',
        state: 'idle',
        room,
      });
  }

  /**
   * Spends `duration` in `room`. `maxGapS` is how still the resident is: busy (cooking) ≈ 60 s between
   * triggers, calm (television) up to a few minutes.
   */
  stay(room: string, duration: number, maxGapS: number): void {
    if (this.room !== room) {
      this.leave();
      this.room = room;
      this.lastRoom = room;
      this.whereabouts.push({ at: this.t, kind: 'room', room });
    }
    const end = this.t + duration;
    let at = this.t;
    while (at < end) {
      this.active(room, at);
      at += this.rng.between(MOTION_REPEAT_MS / SEC, Math.max(31, maxGapS)) * SEC;
    }
    this.t = end;
  }

  /** Lies still (a nap or the night): one trigger on lying down, then nothing until `until`. */
  still(room: string, until: number): void {
    this.stay(room, 30 * SEC, 30);
    this.sleep(until);
  }

  /** Nothing moves until `until`; the sensor of the room goes `idle` (the next movement triggers again). */
  sleep(until: number): void {
    const room = this.room ?? this.lastRoom;
    this.leave();
    this.lastRoom = room;
    this.t = Math.max(this.t, until);
  }

  /** The entrance door opens and closes a few seconds later (SPEC §3 door contact). */
  doorCycle(): void {
    const door = this.door();
    const closeAfter = this.rng.between(5, 40) * SEC;
    if (door) {
      this.push(door.id, this.t, { type: 'door', state: 'open', door: 'front' });
      this.push(door.id, this.t + closeAfter, { type: 'door', state: 'closed', door: 'front' });
    }
    this.t += closeAfter + SEC;
  }

  /** Goes out through the front door, comes back at `until`. Nothing moves inside meanwhile. */
  outing(until: number): void {
    this.stay('living', this.rng.between(1, 3) * MIN, 60);
    this.leave();
    this.doorCycle();
    this.whereabouts.push({ at: this.t, kind: 'away' });
    this.t = Math.max(this.t, until);
    this.doorCycle();
    this.stay('living', this.rng.between(2, 5) * MIN, 60);
  }

  get currentRoom(): string | null {
    return this.room ?? this.lastRoom;
  }
}

/**
 * One local calendar day of an ordinary routine, in time order. The day begins and ends asleep in the
 * bedroom, so consecutive days join up.
 */
export function dailyRoutine(o: RoutineOptions): RoutineStep[] {
  return dailyRoutineWithWhereabouts(o).steps;
}

export function dailyRoutineWithWhereabouts(o: RoutineOptions): {
  steps: RoutineStep[];
  whereabouts: Whereabouts[];
  wakeAt: number;
} {
  const start = DateTime.fromISO(o.date, { zone: o.zone }).startOf('day');
  if (!start.isValid) throw new Error(`expected a date YYYY-MM-DD, got ${JSON.stringify(o.date)}`);
  const dayStart = start.toMillis();
  const dayEnd = start.plus({ days: 1 }).toMillis();
  const rng = new Rng(mix(o.seed, o.homeId, o.date));
  const b = new DayBuilder(rng, dayStart, o.devices, 'bedroom');
  const at = (m: number) => b.local(m);
  const minute = () => (b.t - dayStart) / MIN;

  // Wake time varies around the usual one, never by more than 40 min (NO_MORNING_ACTIVITY at +90 min).
  const usualWake = hhmmToMinutes(o.wakeTime ?? '07:30');
  const wake = usualWake + Math.max(-40, Math.min(40, (rng.next() + rng.next() + rng.next() - 1.5) * 40));

  // Night: asleep, perhaps one or two trips to the bathroom (no door, so never a NIGHT_EXIT).
  const tripRoll = rng.next();
  const trips = tripRoll < 0.45 ? 0 : tripRoll < 0.85 ? 1 : 2;
  const lastTrip = Math.max(40, wake - 70);
  const tripTimes = Array.from({ length: trips }, () => rng.between(30, lastTrip)).sort((x, y) => x - y);
  for (const m of tripTimes) {
    if (at(m) < b.t + 20 * MIN) continue;
    b.sleep(at(m));
    b.stay('bedroom', rng.between(0.5, 1) * MIN, 40);
    b.stay('bathroom', rng.between(3, 8) * MIN, 60);
    b.stay('bedroom', rng.between(0.5, 1.5) * MIN, 40);
  }
  b.sleep(at(wake));

  // Morning: up, bathroom, breakfast, a while in the living room.
  b.stay('bedroom', rng.between(5, 15) * MIN, 90);
  b.stay('bathroom', rng.between(8, 20) * MIN, 60);
  b.stay('kitchen', rng.between(20, 40) * MIN, 60);

  const bedtime = rng.between(20 * 60 + 45, 21 * 60 + 40);
  let lastBathroom = b.t;
  let lunch = false;
  let dinner = false;
  let napped = false;
  let outings = 0;
  let visitor = false;

  // Whole minutes only: a sliver of time left would make a block of no length and never end the day.
  while (bedtime - 25 - minute() >= 1) {
    const m = minute();
    const left = (bedtime - 25 - m) * MIN;
    if (!lunch && m >= 11 * 60 + 15) {
      lunch = true;
      b.stay('kitchen', Math.min(left, rng.between(30, 50) * MIN), 60);
    } else if (!dinner && m >= 17 * 60 + 15) {
      dinner = true;
      b.stay('kitchen', Math.min(left, rng.between(30, 55) * MIN), 60);
    } else if (b.t - lastBathroom > rng.between(90, 180) * MIN) {
      b.stay('bathroom', Math.min(left, rng.between(3, 12) * MIN), 60);
      lastBathroom = b.t;
    } else if (
      outings < 2 &&
      ((m >= 8 * 60 + 30 && m < 10 * 60 + 30) || (m >= 14 * 60 + 30 && m < 16 * 60 + 30)) &&
      rng.chance(0.25)
    ) {
      // Market in the morning, the park in the afternoon: back well before dark.
      outings++;
      const back = Math.min(m + rng.between(40, 150), 18 * 60);
      b.outing(at(back));
      lastBathroom = Math.min(lastBathroom, b.t - 60 * MIN);
    } else if (!napped && m >= 12 * 60 + 30 && m < 15 * 60 && rng.chance(0.4)) {
      napped = true;
      b.still('bedroom', b.t + rng.between(30, 90) * MIN);
      b.stay('bedroom', rng.between(2, 5) * MIN, 60);
    } else if (!visitor && m >= 9 * 60 && m < 18 * 60 && rng.chance(0.06)) {
      // A neighbour or the grid worker drops in: the door opens twice, the resident stays home.
      visitor = true;
      b.stay('living', rng.between(1, 2) * MIN, 45);
      b.doorCycle();
      b.stay('living', Math.min(left, rng.between(20, 70) * MIN), 45);
      b.doorCycle();
    } else {
      const room = rng.pick(['living', 'living', 'living', 'kitchen', 'bedroom']);
      b.stay(room, Math.min(left, rng.between(15, 50) * MIN), room === 'living' ? 240 : 120);
    }
  }

  // Going to bed: bathroom, then the bedroom, then still until midnight (the next day carries on).
  b.stay('bathroom', rng.between(8, 18) * MIN, 60);
  b.stay('bedroom', rng.between(3, 8) * MIN, 60);
  b.still('bedroom', dayEnd);

  const steps = b.steps.filter((s) => s.at >= dayStart && s.at < dayEnd);
  const every = o.heartbeatEvery ?? HEARTBEAT_MS;
  if (every > 0) {
    for (const d of o.devices) {
      // Each device has its own phase (it was switched on at some moment) and a steady battery.
      const phase = mix(o.seed, d.id, 'phase') % every;
      const battery = batteryLevel(o.seed, d.id);
      const rssi = -45 - (mix(o.seed, d.id, 'rssi') % 35);
      const first = dayStart + ((((phase - dayStart) % every) + every) % every);
      for (let t = first; t < dayEnd; t += every)
        steps.push({ deviceId: d.id, at: t, event: { type: 'heartbeat', battery, rssi, fw: '1.4.2' } });
    }
  }
  steps.sort((x, y) => x.at - y.at);
  return { steps, whereabouts: b.whereabouts, wakeAt: at(wake) };
}

/** Consecutive ordinary days from `from` (`YYYY-MM-DD`), in time order. */
export function routineDays(o: Omit<RoutineOptions, 'date'> & { from: string; days: number }): RoutineStep[] {
  const first = DateTime.fromISO(o.from, { zone: o.zone });
  const out: RoutineStep[] = [];
  for (let i = 0; i < o.days; i++) {
    const date = first.plus({ days: i }).toISODate();
    if (!date) throw new Error(`expected a date YYYY-MM-DD, got ${JSON.stringify(o.from)}`);
    out.push(...dailyRoutine({ ...o, date }));
  }
  return out;
}

/** The local calendar date (`YYYY-MM-DD`) of an instant in a zone. */
export function localDate(at: number, zone: string): string {
  return DateTime.fromMillis(at, { zone }).toISODate() ?? '';
}
