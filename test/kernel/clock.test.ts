import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../kernel/clock.ts';
import { formatDuration, instant, minutes, ms } from '../../kernel/time.ts';

describe('ManualClock', () => {
  it('fires a timer at its exact millisecond and not one before', () => {
    const clock = new ManualClock(instant(0));
    const fired: number[] = [];
    clock.at(instant(minutes(15)), () => fired.push(clock.now()));
    clock.advance(ms(minutes(15) - 1));
    expect(fired).toEqual([]);
    clock.advance(ms(1));
    expect(fired).toEqual([minutes(15)]);
  });

  it('fires due timers in deadline order with now() set to each deadline', () => {
    const clock = new ManualClock(instant(1000));
    const seen: string[] = [];
    clock.at(instant(3000), () => seen.push(`b@${clock.now()}`));
    clock.at(instant(2000), () => seen.push(`a@${clock.now()}`));
    clock.at(instant(3000), () => seen.push(`c@${clock.now()}`));
    clock.advanceTo(instant(5000));
    expect(seen).toEqual(['a@2000', 'b@3000', 'c@3000']);
    expect(clock.now()).toBe(5000);
  });

  it('runs timers scheduled by a firing timer when they fall inside the same advance', () => {
    const clock = new ManualClock(instant(0));
    const seen: number[] = [];
    clock.after(ms(10), () => {
      seen.push(clock.now());
      clock.after(ms(10), () => seen.push(clock.now()));
    });
    clock.advance(ms(25));
    expect(seen).toEqual([10, 20]);
  });

  it('never fires a cancelled timer', () => {
    const clock = new ManualClock(instant(0));
    let fired = false;
    const t = clock.after(ms(5), () => {
      fired = true;
    });
    t.cancel();
    clock.advance(ms(10));
    expect(fired).toBe(false);
    expect(clock.pendingCount).toBe(0);
  });
});

describe('formatDuration', () => {
  it('states durations the way explanations do', () => {
    expect(formatDuration(ms(40_000))).toBe('40 s');
    expect(formatDuration(minutes(12))).toBe('12 min');
    expect(formatDuration(minutes(245))).toBe('4 h 05 min');
    expect(formatDuration(minutes(240))).toBe('4 h');
  });
});

describe('ManualClock with deadlines already reached', () => {
  it('fires a timer set for now on the next turn, without advancing time', async () => {
    const clock = new ManualClock(instant(500));
    const seen: number[] = [];
    clock.at(instant(500), () => seen.push(clock.now()));
    clock.at(instant(100), () => seen.push(clock.now()));
    expect(seen).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([500, 500]);
  });
});
