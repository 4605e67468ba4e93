/**
 * A simulated home: its devices connect with their own credentials and the resident follows a daily
 * routine with variation (sleep, getting up, bathroom, kitchen, going out and coming back), in the
 * community's time zone and on the injected clock, deterministic for a seed.
 */
import { DateTime } from 'luxon';
import type { Clock, Timer } from '../kernel/clock.ts';
import { type Duration, minutes, seconds } from '../kernel/time.ts';
import { type DeviceIdentity, SimDevice } from './device.ts';
import { Rng } from './random.ts';

export interface HomeOptions {
  homeId: string;
  devices: DeviceIdentity[];
  broker: { host: string; port: number };
  clock: Clock;
  zone: string;
  seed: number;
  /** Heartbeat period (SPEC §3 default 5 min). */
  heartbeatEvery?: Duration;
  onError?: (e: unknown) => void;
}

type Activity = 'sleeping' | 'home' | 'out';

export class SimHome {
  readonly devices = new Map<string, SimDevice>();
  private readonly rng: Rng;
  private timers: Timer[] = [];
  private activity: Activity = 'home';
  private room = 'living';
  private running = false;

  constructor(private readonly o: HomeOptions) {
    this.rng = new Rng(o.seed);
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
    this.scheduleNext(seconds(this.rng.between(1, 20)));
    const every = this.o.heartbeatEvery ?? minutes(5);
    for (const d of this.devices.values()) {
      const beat = () => {
        if (!this.running) return;
        this.safe(
          d.send({
            type: 'heartbeat',
            battery: 80 + this.rng.int(0, 20),
            rssi: -50 - this.rng.int(0, 30),
            fw: '1.4.2',
          }),
        );
        this.timers.push(this.o.clock.after(every, beat));
      };
      this.timers.push(this.o.clock.after(seconds(this.rng.between(1, 30)), beat));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const t of this.timers.splice(0)) t.cancel();
    await Promise.all([...this.devices.values()].map((d) => d.disconnect()));
  }

  /** Scenario: the resident falls (in the bathroom by default). */
  async fall(room = 'bathroom'): Promise<void> {
    await this.device('fall')?.send({
      type: 'fall',
      state: 'detected',
      room,
      confidence: Number(this.rng.between(0.8, 0.99).toFixed(2)),
    });
  }

  private scheduleNext(after: Duration): void {
    if (!this.running) return;
    this.timers.push(
      this.o.clock.after(after, () => {
        this.step().catch((e: unknown) => this.o.onError?.(e));
      }),
    );
  }

  private safe(p: Promise<void>): void {
    p.catch((e: unknown) => this.o.onError?.(e));
  }

  /** One step of the routine: decide what the resident does now and when the next step comes. */
  private async step(): Promise<void> {
    if (!this.running) return;
    const local = DateTime.fromMillis(this.o.clock.now(), { zone: this.o.zone });
    const hour = local.hour + local.minute / 60;
    const asleep = hour >= 22 || hour < 6.5;
    const motion = (room: string) =>
      this.device('motion', room)?.send({ type: 'motion', state: 'active', room });
    const door = async () => {
      const d = this.device('door');
      await d?.send({ type: 'door', state: 'open', door: 'front' });
      await d?.send({ type: 'door', state: 'closed', door: 'front' });
    };

    if (this.activity === 'out') {
      // Coming back home.
      await door();
      this.activity = 'home';
      this.room = 'living';
      await motion('living');
      return this.scheduleNext(minutes(this.rng.between(1, 5)));
    }
    if (asleep) {
      this.activity = 'sleeping';
      if (this.rng.chance(0.15)) {
        // A night-time bathroom trip.
        await motion('bedroom');
        await motion('bathroom');
        await motion('bedroom');
      }
      return this.scheduleNext(minutes(this.rng.between(20, 60)));
    }
    this.activity = 'home';
    if (hour >= 9 && hour < 17 && this.rng.chance(0.03)) {
      // Going out for a while (shopping, the park).
      await motion('living');
      await door();
      this.activity = 'out';
      return this.scheduleNext(minutes(this.rng.between(30, 120)));
    }
    const rooms = ['living', 'living', 'kitchen', 'bedroom', 'bathroom'];
    this.room = this.rng.pick(rooms);
    await motion(this.room);
    this.scheduleNext(minutes(this.rng.between(1, 8)));
  }
}
