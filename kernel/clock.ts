import { addTo, type Duration, type Instant, instant } from './time.ts';

/**
 * The one source of time. Every time read and every timer in the service goes through a Clock, so that
 * tests can drive SLA clocks to the exact millisecond and the simulators can run a day in minutes.
 */
export interface Clock {
  now(): Instant;
  /** How many times faster than wall time it runs (SIM-03); 1 when absent. Pages scale their clock by it. */
  readonly rate?: number;
  /** Calls `fn` once when the clock reaches `at` (at once if `at` is already past). */
  at(at: Instant, fn: () => void): Timer;
  after(d: Duration, fn: () => void): Timer;
}

export interface Timer {
  cancel(): void;
}

/** Longest single setTimeout Node accepts; longer waits are chained. */
const MAX_TIMEOUT = 2_147_483_647;

/**
 * Arms a real timer for a deadline on a clock whose time runs `speed` times faster than real time. Waits
 * longer than Node's setTimeout limit are chained; a deadline already reached fires on the next turn.
 */
function armRealTimer(now: () => number, speed: number, at: Instant, fn: () => void): Timer {
  let handle: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = () => {
    if (cancelled) return;
    const wait = (at - now()) / speed;
    if (wait <= 0) {
      fn();
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

  at(at: Instant, fn: () => void): Timer {
    return armRealTimer(Date.now, 1, at, fn);
  }

  after(d: Duration, fn: () => void): Timer {
    return this.at(addTo(this.now(), d), fn);
  }
}

interface PendingTimer {
  at: Instant;
  order: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told. `advance` fires every due timer in deadline order, with `now()` set
 * to that timer's own deadline while it runs, so "15 min − 1 ms: nothing; + 1 ms: escalated" is testable.
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

  at(at: Instant, fn: () => void): Timer {
    const t: PendingTimer = { at, order: this.counter++, fn, cancelled: false };
    this.pending.push(t);
    // A deadline already reached fires on the next turn (never re-entrantly), as with the system clock.
    if (at <= this.current && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.advanceTo(this.current);
      });
    }
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  after(d: Duration, fn: () => void): Timer {
    return this.at(addTo(this.current, d), fn);
  }

  /** Moves time forward by `d`, firing due timers in order. */
  advance(d: Duration): void {
    this.advanceTo(addTo(this.current, d));
  }

  advanceTo(target: Instant): void {
    if (target < this.current) throw new Error('ManualClock cannot go backwards');
    for (;;) {
      const next = this.nextDue(target);
      if (!next) break;
      this.pending = this.pending.filter((t) => t !== next);
      this.current = instant(Math.max(next.at, this.current));
      next.fn();
    }
    this.current = target;
  }

  /** Number of live timers, for tests that check a stop() cleaned up. */
  get pendingCount(): number {
    return this.pending.filter((t) => !t.cancelled).length;
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
  private readonly realStart = Date.now();

  constructor(
    private readonly simStart: Instant,
    private readonly speed: number,
  ) {}

  get rate(): number {
    return this.speed;
  }

  now(): Instant {
    return instant(this.simStart + (Date.now() - this.realStart) * this.speed);
  }

  at(at: Instant, fn: () => void): Timer {
    return armRealTimer(() => this.now(), this.speed, at, fn);
  }

  after(d: Duration, fn: () => void): Timer {
    return this.at(addTo(this.now(), d), fn);
  }
}
