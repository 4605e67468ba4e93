/**
 * A simulated home: its devices connect with their own credentials and replay the resident's generated
 * routine (routine.ts: sleep, getting up, bathroom, kitchen, going out and coming back, visitors, naps,
 * heartbeats) on the injected clock, one local day after another, deterministic for a seed. Scenarios
 * (scenarios.ts) are injected at a chosen simulated time: they add events, take routine events away and
 * make devices misbehave.
 */
import { DateTime } from 'luxon';
import type { Clock, Timer } from '../kernel/clock.ts';
import { type Duration, instant } from '../kernel/time.ts';
import { type DeviceIdentity, SimDevice, tryLogin } from './device.ts';
import { dailyRoutine, localDate, type RoutineStep } from './routine.ts';
import type { DeviceAction, Scenario, ScenarioPlan, Suppression } from './scenarios.ts';
import { suppressed } from './scenarios.ts';

export interface HomeOptions {
  homeId: string;
  devices: DeviceIdentity[];
  broker: { host: string; port: number };
  clock: Clock;
  zone: string;
  seed: number;
  /** The household's usual wake time (SPEC §4 default 07:30). */
  wakeTime?: string;
  /** Heartbeat period (SPEC §3 default 5 min). */
  heartbeatEvery?: Duration;
  /** Replay the daily routine (default true); false: the devices only send what scenarios ask. */
  routine?: boolean;
  onError?: (e: unknown) => void;
}

type Item =
  | { at: number; kind: 'step'; step: RoutineStep; fromScenario: boolean }
  | { at: number; kind: 'action'; action: DeviceAction };

export class SimHome {
  readonly devices = new Map<string, SimDevice>();
  /** Events acknowledged by the gateway, and those that could not be sent. */
  sent = 0;
  failed = 0;
  /** Publishes (and device actions) still waiting for the gateway. */
  private inFlight = 0;
  /** CONNACK return codes of refused logins (impersonation scenarios). */
  readonly refusals: number[] = [];
  private queue: Item[] = [];
  private suppressions: Suppression[] = [];
  private loadedUntil = 0;
  private nextDate = '';
  private timer: Timer | undefined;
  private armedAt = Number.POSITIVE_INFINITY;
  private running = false;
  private offline = new Set<string>();

  constructor(private readonly o: HomeOptions) {
    for (const d of o.devices) this.devices.set(d.id, new SimDevice(d, o.broker, o.clock));
  }

  get homeId(): string {
    return this.o.homeId;
  }

  device(kind: DeviceIdentity['kind'], room?: string): SimDevice | undefined {
    return [...this.devices.values()].find(
      (d) => d.identity.kind === kind && (room === undefined || d.identity.room === room),
    );
  }

  async start(): Promise<void> {
    await Promise.all([...this.devices.values()].map((d) => d.connect()));
    this.running = true;
    const now = this.o.clock.now();
    if (this.o.routine !== false) {
      // Start mid-day: only what is still to come today.
      this.loadDay(localDate(now, this.o.zone), now);
    }
    this.arm();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    this.queue = [];
    await Promise.all([...this.devices.values()].map((d) => d.disconnect()));
  }

  /**
   * Injects a scenario at `at` (a simulated instant; default now). Returns its plan, e.g. for a test that
   * wants to know which device misbehaves.
   */
  inject(s: Scenario, at: number = this.o.clock.now()): ScenarioPlan {
    const plan = s.plan({ homeId: this.o.homeId, devices: this.o.devices, at });
    this.suppressions.push(...plan.suppress);
    for (const step of plan.steps) this.queue.push({ at: step.at, kind: 'step', step, fromScenario: true });
    for (const action of plan.actions) this.queue.push({ at: action.at, kind: 'action', action });
    this.sortQueue();
    this.arm();
    return plan;
  }

  /**
   * The resident falls now, where the fall radar watches: a radar reports falls in the room it is installed
   * in (DEV-09), unless a test names another. Used by the demo.
   */
  async fall(room?: string): Promise<void> {
    const radar = this.device('fall');
    await radar?.send({
      type: 'fall',
      state: 'detected',
      room: room ?? radar.identity.room,
      confidence: 0.9,
    });
  }

  private loadDay(date: string, from: number): void {
    const devices = this.o.devices.map(({ id, kind, room }) => ({ id, kind, room }));
    const steps = dailyRoutine({
      homeId: this.o.homeId,
      devices,
      seed: this.o.seed,
      date,
      zone: this.o.zone,
      wakeTime: this.o.wakeTime,
      heartbeatEvery: this.o.heartbeatEvery,
    });
    for (const step of steps)
      if (step.at >= from) this.queue.push({ at: step.at, kind: 'step', step, fromScenario: false });
    this.sortQueue();
    // The next local day starts where this one ends (a DST day is 23 or 25 h long).
    const next = DateTime.fromISO(date, { zone: this.o.zone }).startOf('day').plus({ days: 1 });
    this.loadedUntil = next.toMillis();
    this.nextDate = next.toISODate() ?? date;
  }

  private sortQueue(): void {
    // Stable: items at the same instant keep their order (a door opens before it closes).
    this.queue.sort((a, b) => a.at - b.at);
  }

  /** One timer for the whole home, set for its next item. */
  private arm(): void {
    if (!this.running) return;
    if (this.o.routine !== false && (this.queue.length === 0 || this.queue[0]!.at >= this.loadedUntil))
      this.loadDay(this.nextDate, this.loadedUntil);
    const next = this.queue[0];
    if (!next) return;
    if (this.timer && this.armedAt <= next.at) return;
    this.timer?.cancel();
    this.armedAt = next.at;
    this.timer = this.o.clock.at(instant(next.at), () => {
      this.timer = undefined;
      this.armedAt = Number.POSITIVE_INFINITY;
      this.pump();
    });
  }

  private pump(): void {
    if (!this.running) return;
    const now = this.o.clock.now();
    while (this.queue.length > 0 && this.queue[0]!.at <= now) {
      const item = this.queue.shift()!;
      if (item.kind === 'action') this.act(item.action);
      else if (item.fromScenario || !suppressed(item.step, this.suppressions)) this.send(item.step);
    }
    this.arm();
  }

  private send(step: RoutineStep): void {
    const d = this.devices.get(step.deviceId);
    if (!d || this.offline.has(step.deviceId) || !d.connected) {
      this.failed++;
      return;
    }
    this.track(
      d.send(step.event, { ts: step.at }).then(
        () => {
          this.sent++;
        },
        (e: unknown) => {
          this.failed++;
          this.o.onError?.(e);
        },
      ),
    );
  }

  /** Resolves when everything sent so far has been acknowledged (or failed): tests step time after it. */
  async settled(): Promise<void> {
    while (this.inFlight > 0) await new Promise((r) => setTimeout(r, 5));
  }

  private track(p: Promise<unknown>): void {
    this.inFlight++;
    p.finally(() => {
      this.inFlight--;
    });
  }

  private act(a: DeviceAction): void {
    const d = this.devices.get(a.deviceId);
    if (!d) return;
    const fail = (e: unknown) => this.o.onError?.(e);
    switch (a.kind) {
      case 'drop':
        this.offline.add(a.deviceId);
        this.track(d.drop().catch(fail));
        break;
      case 'reconnect':
        this.track(d.connect().then(() => this.offline.delete(a.deviceId), fail));
        break;
      case 'raw':
        this.track(d.sendRaw(a.payload).catch(fail));
        break;
      case 'impersonate': {
        const victim = a.as;
        const login = { clientId: victim, username: victim, password: d.identity.secret };
        this.track(
          tryLogin(this.o.broker, login).then((code) => {
            if (code !== 0) this.refusals.push(code);
          }, fail),
        );
        break;
      }
    }
  }
}
