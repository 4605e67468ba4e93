import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../kernel/clock.ts';
import { formatDuration, instant, minutes, ms } from '../../kernel/time.ts';

describe('ManualClock', () => {
  it('fires a timer at its exact millisecond and not one before', async () => {
    const clock = new ManualClock(instant(0));
    const fired: number[] = [];
    clock.at(instant(minutes(15)), () => fired.push(clock.now()));
    await clock.advance(ms(minutes(15) - 1));
    expect(fired).toEqual([]);
    await clock.advance(ms(1));
    expect(fired).toEqual([minutes(15)]);
  });

  it('fires due timers in deadline order with now() set to each deadline', async () => {
    const clock = new ManualClock(instant(1000));
    const seen: string[] = [];
    clock.at(instant(3000), () => seen.push(`b@${clock.now()}`));
    clock.at(instant(2000), () => seen.push(`a@${clock.now()}`));
    clock.at(instant(3000), () => seen.push(`c@${clock.now()}`));
    await clock.advanceTo(instant(5000));
    expect(seen).toEqual(['a@2000', 'b@3000', 'c@3000']);
    expect(clock.now()).toBe(5000);
  });

  it('runs timers scheduled by a firing timer when they fall inside the same advance', async () => {
    const clock = new ManualClock(instant(0));
    const seen: number[] = [];
    clock.after(ms(10), () => {
      seen.push(clock.now());
      clock.after(ms(10), () => seen.push(clock.now()));
    });
    await clock.advance(ms(25));
    expect(seen).toEqual([10, 20]);
  });

  it('never fires a cancelled timer', async () => {
    const clock = new ManualClock(instant(0));
    let fired = false;
    const t = clock.after(ms(5), () => {
      fired = true;
    });
    t.cancel();
    await clock.advance(ms(10));
    expect(fired).toBe(false);
    expect(clock.pendingCount).toBe(0);
  });
});

describe('ManualClock awaiting the work of each timer', () => {
  it('awaits each due callback before the next, each at its own instant', async () => {
    const clock = new ManualClock(instant(0));
    const seen: string[] = [];
    const work = (name: string) => async () => {
      seen.push(`${name} starts @${clock.now()}`);
      await new Promise<void>((r) => setImmediate(r));
      seen.push(`${name} done`);
    };
    clock.at(instant(20), work('b'), 'b');
    clock.at(instant(10), work('a'), 'a');
    await clock.advance(ms(30));
    expect(seen).toEqual(['a starts @10', 'a done', 'b starts @20', 'b done']);
    expect(clock.now()).toBe(30);
  });

  it('fires, at its own instant, a timer that a callback armed after awaiting its work', async () => {
    const clock = new ManualClock(instant(0));
    const seen: number[] = [];
    clock.at(
      instant(10),
      async () => {
        await new Promise<void>((r) => setImmediate(r));
        // Like an escalation step that arms the next one once its save returned.
        clock.at(instant(15), () => seen.push(clock.now()), 'next');
      },
      'first',
    );
    await clock.advance(ms(20));
    expect(seen).toEqual([15]);
  });

  it('names what is pending, earliest first, so a test can see that nothing else is due', async () => {
    const clock = new ManualClock(instant(0));
    clock.at(instant(180_000), () => {}, 'escalation al_1 step 1');
    const gone = clock.at(instant(60_000), () => {}, 'cancelled');
    clock.at(instant(90_000), () => {}, 'rules deadline');
    gone.cancel();
    expect(clock.pendingTimers()).toEqual([
      { name: 'rules deadline', at: 90_000 },
      { name: 'escalation al_1 step 1', at: 180_000 },
    ]);
    await clock.advance(ms(179_999));
    expect(clock.pendingTimers()).toEqual([{ name: 'escalation al_1 step 1', at: 180_000 }]);
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
