import { addTo, type Duration, type Instant, instant } from './time.ts';

/**
 * The one source of time. Every time read and every timer in the service goes through a Clock, so that
 * tests can drive SLA clocks to the exact millisecond and the simulators can run a day in minutes.
 */
export interface Clock {
  now(): Instant;
  /** How many times faster than wall time it runs (SIM-03); 1 when absent. Pages scale their clock by it. */
  readonly rate?: number;
  /**
   * Calls `fn` once when the clock reaches `at` (at once if `at` is already past). `fn` may return the
   * promise of the work it started: the manual clock awaits it before the next due timer. `name` says what
   * the timer is for ("escalation al_…"), so a test can see what is pending instead of sleeping.
   */
  at(at: Instant, fn: TimerCallback, name?: string): Timer;
  after(d: Duration, fn: TimerCallback, name?: string): Timer;
}

/** A timer's work; a promise it returns is awaited by `ManualClock.advance`. */
export type TimerCallback = () => unknown;

export interface Timer {
  cancel(): void;
}

/** Longest single setTimeout Node accepts; longer waits are chained. */
const MAX_TIMEOUT = 2_147_483_647;

/**
 * Arms a real timer for a deadline on a clock whose time runs `speed` times faster than real time. Waits
 * longer than Node's setTimeout limit are chained; a deadline already reached fires on the next turn.
 */
function armRealTimer(now: () => number, speed: number, at: Instant, fn: TimerCallback): Timer {
  let handle: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = () => {
    if (cancelled) return;
    const wait = (at - now()) / speed;
    if (wait <= 0) {
      // A real clock awaits nobody: the callback handles its own failures.
      void fn();
      return;
    }
    handle = setTimeout(arm, Math.min(Math.ceil(wait), MAX_TIMEOUT));
    handle.unref?.();
  };
  // Fire on the next turn even when already due, so callers never re-enter themselves.
  handle = setTimeout(arm, 0);
  handle.unref?.();
  return {
    cancel: () => {
      cancelled = true;
      if (handle) clearTimeout(handle);
    },
  };
}

export class SystemClock implements Clock {
  now(): Instant {
    return instant(Date.now());
  }

  at(at: Instant, fn: TimerCallback): Timer {
    return armRealTimer(Date.now, 1, at, fn);
  }

  after(d: Duration, fn: TimerCallback): Timer {
    return this.at(addTo(this.now(), d), fn);
  }
}

interface PendingTimer {
  at: Instant;
  order: number;
  fn: TimerCallback;
  name: string;
  cancelled: boolean;
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof (v as PromiseLike<unknown> | null)?.then === 'function';

/**
 * A clock that moves only when told (as matter.js' mock time). `advance` fires every due timer in deadline
 * order, with `now()` set to that timer's own deadline while it runs, and awaits the work each one returns
 * before the next: once `await clock.advance(…)` returns, whatever the due timers started is done, so
 * "15 min − 1 ms: nothing; + 1 ms: escalated" is testable without sleeping on wall time. Timers whose
 * callbacks return nothing fire synchronously, as before, for callers that do not await.
 */
export class ManualClock implements Clock {
  private current: Instant;
  private pending: PendingTimer[] = [];
  private counter = 0;
  private flushScheduled = false;

  constructor(start: Instant | Date | string = instant(Date.UTC(2026, 0, 1))) {
    this.current =
      typeof start === 'number'
        ? start
        : instant(typeof start === 'string' ? Date.parse(start) : start.getTime());
  }

  now(): Instant {
    return this.current;
  }

  at(at: Instant, fn: TimerCallback, name = 'timer'): Timer {
    const t: PendingTimer = { at, order: this.counter++, fn, name, cancelled: false };
    this.pending.push(t);
    // A deadline already reached fires on the next turn (never re-entrantly), as with the system clock.
    if (at <= this.current && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        void this.advanceTo(this.current);
      });
    }
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  after(d: Duration, fn: TimerCallback, name?: string): Timer {
    return this.at(addTo(this.current, d), fn, name);
  }

  /** Moves time forward by `d`, firing due timers in order and awaiting the work of each. */
  advance(d: Duration): Promise<void> {
    return this.advanceTo(addTo(this.current, d));
  }

  async advanceTo(target: Instant): Promise<void> {
    if (target < this.current) throw new Error('ManualClock cannot go backwards');
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.pending = this.pending.filter((t) => t !== next);
      this.current = instant(Math.max(next.at, this.current));
      const work = next.fn();
      if (isThenable(work)) await work;
    }
    // Another advance may have gone further while this one awaited a timer's work: time never goes back.
    this.current = instant(Math.max(target, this.current));
  }

  /** Number of live timers, for tests that check a stop() cleaned up. */
  get pendingCount(): number {
    return this.pending.filter((t) => !t.cancelled).length;
  }

  /** The live timers, earliest first, by name: what will happen next, for tests that prove an absence. */
  pendingTimers(): { name: string; at: Instant }[] {
    return this.pending
      .filter((t) => !t.cancelled)
      .sort((a, b) => a.at - b.at || a.order - b.order)
      .map((t) => ({ name: t.name, at: t.at }));
  }

  private nextDue(target: Instant): PendingTimer | undefined {
    this.pending = this.pending.filter((t) => !t.cancelled);
    let best: PendingTimer | undefined;
    for (const t of this.pending) {
      if (t.at > target) continue;
      if (!best || t.at < best.at || (t.at === best.at && t.order < best.order)) best = t;
    }
    return best;
  }
}

/**
 * A clock that runs `speed` times faster than real time from a chosen start, for simulations that run a
 * day in minutes. The service and the simulators share one instance (or the same start and speed).
 */
export class ScaledClock implements Clock {
  constructor(
    private readonly simStart: Instant,
    private readonly speed: number,
    /** The real instant at which the clock reads `simStart` (default: now). */
    private readonly realStart: number = Date.now(),
  ) {}

  get rate(): number {
    return this.speed;
  }

  now(): Instant {
    return instant(this.simStart + (Date.now() - this.realStart) * this.speed);
  }

  at(at: Instant, fn: TimerCallback): Timer {
    return armRealTimer(() => this.now(), this.speed, at, fn);
  }

  after(d: Duration, fn: TimerCallback): Timer {
    return this.at(addTo(this.now(), d), fn);
  }
}
