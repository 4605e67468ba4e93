/**
 * The rules of SPEC §5 at their boundaries, on event time, through the pure engine (the pipeline and its
 * live timers are tested in pipeline.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { LearnDay } from '../../dispatcher/rules/baseline.ts';
import { copyHomeState, type HomeState, restoreStored, storedForm } from '../../dispatcher/rules/state.ts';
import { HOUR, HomeDriver, homeContext, household, local, MIN } from './rules-fixtures.ts';

/** A home where the resident got up normally at 07:00 (so the morning rule is satisfied). */
function morningHome(day = '2026-03-10', ctx = homeContext()): HomeDriver {
  const d = new HomeDriver(ctx);
  d.hello(local(`${day} 06:30`));
  d.motion('bedroom', local(`${day} 07:00`));
  return d;
}

describe('INACTIVITY', () => {
  it('raises exactly 4 h after the last motion in the daytime, not 1 ms before, with the numbers in zh and en', () => {
    const d = morningHome();
    const last = local('2026-03-10 09:12');
    d.motion('kitchen', last);
    d.runUntil(last + 4 * HOUR - 1);
    expect(d.rules()).toEqual([]);
    d.runUntil(last + 4 * HOUR + 1);
    expect(d.rules()).toEqual(['INACTIVITY']);
    const t = d.of('INACTIVITY')[0]!;
    expect(t.at).toBe(last + 4 * HOUR);
    expect(t.explanation.en).toBe('no motion since 09:12 (4 h); threshold 4 h');
    expect(t.explanation.zh).toBe('自 09:12 起无活动（4小时）；阈值 4小时');
    expect(t.evidence.summary).toContain('09:12');
  });

  it('honours a household threshold override and states it', () => {
    const d = morningHome(
      '2026-03-10',
      homeContext(household({ routine: { thresholds: { INACTIVITY: 150 } } })),
    );
    const last = local('2026-03-10 10:00');
    d.activeUntil(last);
    d.motion('living', last);
    d.runUntil(last + 150 * MIN - 1);
    expect(d.rules()).toEqual([]);
    d.runUntil(last + 150 * MIN);
    expect(d.of('INACTIVITY')[0]!.explanation.en).toBe(
      'no motion since 10:00 (2 h 30 min); threshold 2 h 30 min',
    );
  });

  it('does not count a quiet period that runs into the night window (that is sleep)', () => {
    const d = morningHome();
    d.activeUntil(local('2026-03-10 19:30'));
    d.motion('bedroom', local('2026-03-10 19:30'));
    d.runUntil(local('2026-03-11 05:00'));
    expect(d.rules()).toEqual([]);
  });

  it('fires once per quiet period, and again after the resident moved and went quiet again', () => {
    const d = morningHome();
    d.motion('living', local('2026-03-10 08:00'));
    d.runUntil(local('2026-03-10 13:00'));
    d.motion('living', local('2026-03-10 13:00'));
    d.runUntil(local('2026-03-10 17:30'));
    expect(d.of('INACTIVITY').map((t) => t.at)).toEqual([
      local('2026-03-10 12:00'),
      local('2026-03-10 17:00'),
    ]);
  });
});

describe('NO_MORNING_ACTIVITY', () => {
  it('raises at wake time + 90 min when nothing moved since the night ended, not 1 ms before', () => {
    const d = new HomeDriver();
    d.hello(local('2026-03-10 20:00'));
    d.motion('bedroom', local('2026-03-10 21:40'));
    d.runUntil(local('2026-03-11 09:00') - 1);
    expect(d.rules()).toEqual([]);
    d.runUntil(local('2026-03-11 09:00') + 1);
    expect(d.rules()).toEqual(['NO_MORNING_ACTIVITY']);
    const t = d.of('NO_MORNING_ACTIVITY')[0]!;
    expect(t.at).toBe(local('2026-03-11 09:00'));
    expect(t.explanation.en).toBe(
      'no motion by 09:00 (wake time 07:30 + 1 h 30 min); last motion at 21:40 (11 h 20 min ago)',
    );
    expect(t.explanation.zh).toContain('09:00');
  });

  it('stays quiet when the resident moved after the night window ended', () => {
    const d = new HomeDriver();
    d.hello(local('2026-03-10 20:00'));
    d.motion('bedroom', local('2026-03-11 06:00'));
    d.runUntil(local('2026-03-11 09:30'));
    expect(d.rules()).toEqual([]);
  });

  it('follows the household wake time', () => {
    const d = new HomeDriver(homeContext(household({ routine: { wakeTime: '06:00' } })));
    d.hello(local('2026-03-10 20:00'));
    d.runUntil(local('2026-03-11 07:30') + 1);
    expect(d.of('NO_MORNING_ACTIVITY').map((t) => t.at)).toEqual([local('2026-03-11 07:30')]);
  });
});

describe('night window edges', () => {
  it('raises NIGHT_EXIT when the door opens and closes at 22:00 and nothing moves inside for 10 min', () => {
    const d = morningHome();
    d.activeUntil(local('2026-03-10 21:59'));
    d.motion('living', local('2026-03-10 21:59'));
    d.door('open', local('2026-03-10 21:59:50'));
    d.door('closed', local('2026-03-10 22:00'));
    d.runUntil(local('2026-03-10 22:10') - 1);
    expect(d.rules()).toEqual([]);
    d.runUntil(local('2026-03-10 22:10') + 1);
    expect(d.rules()).toEqual(['NIGHT_EXIT']);
    expect(d.of('NIGHT_EXIT')[0]!.explanation.en).toContain(
      'closed at 22:00 in the night window (22:00–06:00)',
    );
    expect(d.state.presence).toBe('away');
  });

  it('treats a door closed at 21:59:59 as an ordinary daytime outing (away, no alert)', () => {
    const d = morningHome();
    d.activeUntil(local('2026-03-10 21:59'));
    d.door('open', local('2026-03-10 21:59:30'));
    d.door('closed', local('2026-03-10 21:59:59'));
    d.runUntil(local('2026-03-10 23:00'));
    expect(d.rules()).toEqual([]);
    expect(d.state.presence).toBe('away');
  });

  it('raises NIGHT_EXIT after midnight and at 05:59, not at 06:00', () => {
    for (const [at, expected] of [
      ['2026-03-11 00:30', ['NIGHT_EXIT']],
      ['2026-03-11 05:59', ['NIGHT_EXIT']],
      ['2026-03-11 06:00', []],
    ] as const) {
      const d = morningHome();
      d.activeUntil(local('2026-03-10 21:00'));
      d.motion('living', local('2026-03-10 21:00'));
      d.door('open', local(at) - 20_000);
      d.door('closed', local(at));
      d.runUntil(local(at) + 11 * MIN);
      expect([at, d.rules()]).toEqual([at, expected]);
    }
  });

  it('follows a household night window that starts after midnight', () => {
    const d = morningHome(
      '2026-03-10',
      homeContext(household({ routine: { nightStart: '00:30', nightEnd: '05:00' } })),
    );
    d.activeUntil(local('2026-03-10 23:45'));
    d.door('open', local('2026-03-10 23:50'));
    d.door('closed', local('2026-03-10 23:51'));
    d.runUntil(local('2026-03-11 00:20'));
    expect(d.rules()).toEqual([]);
    d.motion('living', local('2026-03-11 00:25'));
    d.door('open', local('2026-03-11 00:40'));
    d.door('closed', local('2026-03-11 00:41'));
    d.runUntil(local('2026-03-11 01:00'));
    expect(d.rules()).toEqual(['NIGHT_EXIT']);
  });

  it('raises nothing when the resident moves inside after the door closed at night', () => {
    const d = morningHome();
    d.activeUntil(local('2026-03-10 21:30'));
    d.door('open', local('2026-03-10 23:00'));
    d.door('closed', local('2026-03-10 23:01'));
    d.motion('living', local('2026-03-10 23:10'));
    d.runUntil(local('2026-03-11 01:00'));
    expect(d.rules()).toEqual([]);
  });
});

describe('BATHROOM_DWELL and DOOR_LEFT_OPEN', () => {
  it('raises BATHROOM_DWELL 40 min after the last motion in the bathroom, not 1 ms before', () => {
    const d = morningHome();
    d.activeUntil(local('2026-03-10 21:30'));
    const last = local('2026-03-10 23:20');
    d.motion('bathroom', last);
    d.runUntil(last + 40 * MIN - 1);
    expect(d.rules()).toEqual([]);
    d.runUntil(last + 40 * MIN + 1);
    expect(d.rules()).toEqual(['BATHROOM_DWELL']);
    expect(d.of('BATHROOM_DWELL')[0]!.explanation.en).toBe(
      'last motion in the bathroom at 23:20, nothing moved anywhere for 40 min; threshold 40 min',
    );
  });

  it('does not raise BATHROOM_DWELL when the resident moved on to another room', () => {
    const d = morningHome();
    d.motion('bathroom', local('2026-03-10 10:00'));
    d.motion('kitchen', local('2026-03-10 10:39'));
    d.runUntil(local('2026-03-10 11:30'));
    expect(d.rules()).toEqual([]);
  });

  it('raises DOOR_LEFT_OPEN 30 min after the door opened, not 1 ms before', () => {
    const d = morningHome();
    const opened = local('2026-03-10 10:00');
    d.motion('living', opened);
    d.door('open', opened);
    d.runUntil(opened + 30 * MIN - 1);
    expect(d.rules()).toEqual([]);
    d.runUntil(opened + 30 * MIN + 1);
    expect(d.rules()).toEqual(['DOOR_LEFT_OPEN']);
    expect(d.of('DOOR_LEFT_OPEN')[0]!.explanation.en).toBe(
      'entrance door open since 10:00 (30 min); threshold 30 min',
    );
  });

  it('raises nothing for a door flapping open/closed ten times a minute while the resident is about', () => {
    const d = morningHome();
    const t0 = local('2026-03-10 10:00');
    d.motion('living', t0);
    for (let i = 0; i < 20; i++) d.door(i % 2 === 0 ? 'open' : 'closed', t0 + i * 3000);
    d.motion('living', t0 + 2 * MIN);
    d.runUntil(t0 + 2 * HOUR);
    d.motion('living', t0 + 2 * HOUR);
    d.runUntil(t0 + 3 * HOUR);
    expect(d.rules()).toEqual([]);
  });

  it('raises one NIGHT_EXIT, not ten, for a door flapping at night with no motion after', () => {
    const d = morningHome();
    d.activeUntil(local('2026-03-10 21:30'));
    const t0 = local('2026-03-10 23:00');
    for (let i = 0; i < 20; i++) d.door(i % 2 === 0 ? 'open' : 'closed', t0 + i * 3000);
    d.runUntil(t0 + HOUR);
    expect(d.rules()).toEqual(['NIGHT_EXIT']);
    expect(d.of('NIGHT_EXIT')[0]!.at).toBe(t0 + 19 * 3000 + 10 * MIN);
  });
});

describe('presence and the household away status', () => {
  it('pauses INACTIVITY while the resident is out (door closed, nothing moved for 10 min)', () => {
    const d = morningHome();
    d.motion('living', local('2026-03-10 09:00'));
    d.door('open', local('2026-03-10 09:01'));
    d.door('closed', local('2026-03-10 09:01:20'));
    d.runUntil(local('2026-03-10 09:11:20'));
    expect(d.state.presence).toBe('away');
    d.runUntil(local('2026-03-10 15:00'));
    expect(d.rules()).toEqual([]);
    d.door('open', local('2026-03-10 15:00'));
    d.door('closed', local('2026-03-10 15:00:10'));
    d.motion('living', local('2026-03-10 15:00:30'));
    expect(d.state.presence).toBe('home');
    d.runUntil(local('2026-03-10 19:00:30'));
    expect(d.rules()).toEqual(['INACTIVITY']);
  });

  it('raises no morning alert for a resident who went out this morning, but does for one out since yesterday', () => {
    const outThisMorning = morningHome();
    outThisMorning.door('open', local('2026-03-10 07:10'));
    outThisMorning.door('closed', local('2026-03-10 07:10:20'));
    outThisMorning.runUntil(local('2026-03-10 09:30'));
    expect(outThisMorning.rules()).toEqual([]);

    const outSinceYesterday = morningHome();
    outSinceYesterday.activeUntil(local('2026-03-10 16:00'));
    outSinceYesterday.door('open', local('2026-03-10 16:00'));
    outSinceYesterday.door('closed', local('2026-03-10 16:00:20'));
    outSinceYesterday.runUntil(local('2026-03-11 09:30'));
    expect(outSinceYesterday.of('NO_MORNING_ACTIVITY').map((t) => t.at)).toEqual([local('2026-03-11 09:00')]);
    expect(outSinceYesterday.rules()).toEqual(['NO_MORNING_ACTIVITY']);
  });

  it('suspends the activity rules until the away status ends, then counts silence from its end', () => {
    const until = local('2026-03-12 12:00');
    const d = new HomeDriver(homeContext(household({ awayUntil: until, awayReason: 'hospital' })));
    d.hello(local('2026-03-10 08:00'));
    d.motion('bedroom', local('2026-03-10 08:00'));
    d.runUntil(until + 4 * HOUR - 1);
    expect(d.rules()).toEqual([]);
    d.runUntil(until + 4 * HOUR);
    expect(d.rules()).toEqual(['INACTIVITY']);
  });
});

describe('silent sensors and DEVICE_OFFLINE', () => {
  it('raises DEVICE_OFFLINE when a motion sensor goes offline and holds INACTIVITY back as its evidence', () => {
    const d = morningHome();
    d.motion('living', local('2026-03-10 09:00'));
    d.send('m-kitchen', { type: 'presence', ts: local('2026-03-10 09:30'), state: 'offline', cause: 'will' });
    d.beating.delete('m-kitchen');
    expect(d.rules()).toEqual(['DEVICE_OFFLINE']);
    expect(d.of('DEVICE_OFFLINE')[0]!.explanation.en).toBe(
      'motion sensor m-kitchen (kitchen) offline since 09:30 (will message)',
    );
    d.runUntil(local('2026-03-10 13:30'));
    // Instead of (not in addition to) INACTIVITY: a second DEVICE_OFFLINE trigger that names the held rule.
    expect(d.rules()).toEqual(['DEVICE_OFFLINE', 'DEVICE_OFFLINE']);
    expect(d.triggers[1]!.explanation.en).toContain('INACTIVITY not raised: no motion since 09:00 (4 h)');
    expect(d.triggers[1]!.at).toBe(local('2026-03-10 13:00'));
  });

  it('raises nothing for the late end of a session the device has left for another gateway (DEV-11)', () => {
    const d = morningHome();
    d.motion('living', local('2026-03-10 09:00'));
    const at = local('2026-03-10 09:30');
    const first = at - 3_600_000;
    // Online on gateway A since an hour ago; reconnected on gateway B; then A's will for its old session.
    d.send('m-kitchen', { type: 'presence', ts: at, state: 'online', cause: 'connect', session: first });
    d.send('m-kitchen', { type: 'presence', ts: at + 1_000, state: 'online', cause: 'connect', session: at });
    d.send('m-kitchen', {
      type: 'presence',
      ts: at + 2_000,
      state: 'offline',
      cause: 'will',
      session: first,
    });
    expect(d.rules()).toEqual([]);
    // The newer session's own end is a disconnection like any other.
    d.send('m-kitchen', {
      type: 'presence',
      ts: at + 3_000,
      state: 'offline',
      cause: 'keepalive',
      session: at,
    });
    d.beating.delete('m-kitchen');
    expect(d.rules()).toEqual(['DEVICE_OFFLINE']);
  });

  it('clears DEVICE_OFFLINE when the device is back and counts silence again from then', () => {
    const d = morningHome();
    d.motion('living', local('2026-03-10 09:00'));
    d.send('m-kitchen', {
      type: 'presence',
      ts: local('2026-03-10 09:30'),
      state: 'offline',
      cause: 'keepalive',
    });
    d.beating.delete('m-kitchen');
    d.send('m-kitchen', {
      type: 'presence',
      ts: local('2026-03-10 10:00'),
      state: 'online',
      cause: 'connect',
    });
    d.beating.add('m-kitchen');
    expect(d.clearances.map((c) => c.rule)).toEqual(['DEVICE_OFFLINE']);
    d.runUntil(local('2026-03-10 14:00') - 1);
    expect(d.rules()).toEqual(['DEVICE_OFFLINE']);
    d.runUntil(local('2026-03-10 14:00'));
    expect(d.rules()).toEqual(['DEVICE_OFFLINE', 'INACTIVITY']);
  });

  it('raises nothing for a clean DISCONNECT, and DEVICE_OFFLINE once the device stays silent 3 heartbeat periods', () => {
    const d = morningHome();
    const last = local('2026-03-10 09:00');
    d.send('m-bathroom', { type: 'heartbeat', ts: last, battery: 80 });
    d.motion('living', last);
    // A one-shot publisher (mosquitto_pub) or a battery device ends its own session: not a fault by itself.
    d.send('m-bathroom', { type: 'presence', ts: last + 1000, state: 'offline', cause: 'disconnect' });
    d.beating.delete('m-bathroom');
    expect(d.rules()).toEqual([]);
    d.runUntil(last + 15 * MIN - 1);
    expect(d.rules()).toEqual([]);
    d.runUntil(last + 15 * MIN);
    expect(d.rules()).toEqual(['DEVICE_OFFLINE']);
    expect(d.of('DEVICE_OFFLINE')[0]!.deviceId).toBe('m-bathroom');
  });

  it('raises DEVICE_OFFLINE for a device silent for 3 heartbeat periods, not 1 ms before', () => {
    const d = morningHome();
    const last = local('2026-03-10 09:00');
    d.send('m-bathroom', { type: 'heartbeat', ts: last, battery: 80 });
    d.beating.delete('m-bathroom');
    d.motion('living', last);
    d.runUntil(last + 15 * MIN - 1);
    expect(d.rules()).toEqual([]);
    d.runUntil(last + 15 * MIN);
    expect(d.rules()).toEqual(['DEVICE_OFFLINE']);
    expect(d.of('DEVICE_OFFLINE')[0]!.deviceId).toBe('m-bathroom');
    expect(d.of('DEVICE_OFFLINE')[0]!.explanation.en).toContain(
      'silent since 09:00 (15 min; threshold 15 min',
    );
  });

  it('holds the morning rule back when a motion sensor battery is dead', () => {
    const d = new HomeDriver();
    d.hello(local('2026-03-10 20:00'));
    d.send('m-bedroom', { type: 'heartbeat', ts: local('2026-03-10 20:01'), battery: 3 });
    d.runUntil(local('2026-03-11 09:01'));
    expect(d.rules()).toEqual(['LOW_BATTERY', 'DEVICE_OFFLINE']);
    expect(d.triggers[1]!.explanation.en).toContain('NO_MORNING_ACTIVITY not raised');
    expect(d.triggers[1]!.explanation.en).toContain('battery dead (3%)');
  });

  it('clears LOW_BATTERY only when no device of the home is low any more', () => {
    const d = morningHome();
    const t = local('2026-03-10 10:00');
    d.send('m-living', { type: 'heartbeat', ts: t, battery: 12 });
    d.send('m-kitchen', { type: 'heartbeat', ts: t + 1, battery: 10 });
    d.send('m-living', { type: 'heartbeat', ts: t + 2, battery: 100 });
    expect(d.clearances).toEqual([]);
    d.send('m-kitchen', { type: 'heartbeat', ts: t + 3, battery: 100 });
    expect(d.clearances.map((c) => c.rule)).toEqual(['LOW_BATTERY']);
    expect(d.rules()).toEqual(['LOW_BATTERY', 'LOW_BATTERY']);
  });
});

describe('falls, duplicates and out-of-order events', () => {
  it('records a fall cleared and the motion after it on the FALL alert, without closing it', () => {
    const d = morningHome();
    const t = local('2026-03-10 10:00');
    d.send('fall', { type: 'fall', ts: t, state: 'detected', room: 'bathroom' });
    d.send('fall', { type: 'fall', ts: t + MIN, state: 'cleared' });
    d.motion('bathroom', t + 2 * MIN);
    expect(d.triggers.map((x) => [x.rule, x.attachOnly ?? false])).toEqual([
      ['FALL', false],
      ['FALL', true],
      ['FALL', true],
    ]);
    expect(d.triggers[2]!.evidence.summary).toBe('resident moved after the fall (bathroom, 2 min later)');
  });

  it('ignores a door transition older than the last one, and a late motion does not move the last room', () => {
    const d = morningHome();
    d.activeUntil(local('2026-03-10 21:00'));
    d.door('open', local('2026-03-10 23:00'));
    d.door('closed', local('2026-03-10 22:59')); // older than the open: out of order
    d.motion('kitchen', local('2026-03-10 21:00'));
    d.motion('bathroom', local('2026-03-10 20:59')); // late
    expect(d.state.lastMotionRoom).toBe('kitchen');
    expect(d.state.exit).toBeNull();
    d.runUntil(local('2026-03-10 23:29'));
    expect(d.rules()).toEqual([]);
    d.runUntil(local('2026-03-10 23:30'));
    expect(d.rules()).toEqual(['DOOR_LEFT_OPEN']);
  });

  it('treats a repeated door `open` as the same opening (no restart, no second alert)', () => {
    const d = morningHome();
    const t = local('2026-03-10 10:00');
    d.motion('living', t);
    d.door('open', t);
    d.door('open', t + 10 * MIN);
    d.runUntil(t + 30 * MIN);
    d.door('open', t + 31 * MIN);
    d.runUntil(t + 2 * HOUR);
    expect(d.of('DOOR_LEFT_OPEN').map((x) => x.at)).toEqual([t + 30 * MIN]);
  });

  it('fires the same triggers at the same instants whether deadlines are reached by events or by timer ticks', () => {
    const script = (d: HomeDriver, ticks: boolean) => {
      d.hello(local('2026-03-10 06:00'));
      d.motion('bedroom', local('2026-03-10 07:00'));
      d.motion('bathroom', local('2026-03-10 07:10'));
      if (ticks)
        for (let t = local('2026-03-10 07:10'); t < local('2026-03-10 08:00'); t += 7 * MIN + 13)
          d.runUntil(t);
      d.runUntil(local('2026-03-10 08:00'));
      d.door('open', local('2026-03-10 08:05'));
      d.runUntil(local('2026-03-10 23:00'));
    };
    const a = new HomeDriver();
    script(a, false);
    const b = new HomeDriver();
    script(b, true);
    expect(a.triggers.map((t) => [t.rule, t.at])).toEqual(b.triggers.map((t) => [t.rule, t.at]));
    expect(a.rules()).toEqual(['BATHROOM_DWELL', 'DOOR_LEFT_OPEN', 'INACTIVITY']);
  });
});

describe('late events (SPEC §3: a device that lost its link delivers what it buffered)', () => {
  it('judges a deadline that passed before a late motion was heard, whether or not the timer ticked', () => {
    const script = (ticked: boolean) => {
      const d = morningHome();
      const bath = local('2026-03-10 10:00');
      d.motion('bathroom', bath);
      // Live, the timer fired BATHROOM_DWELL at 10:40 while the living-room motion was on its way.
      if (ticked) d.runUntil(bath + 40 * MIN + 70_000);
      d.send(
        'm-living',
        { type: 'motion', ts: bath + 39 * MIN, state: 'active', room: 'living' },
        bath + 40 * MIN + 70_000,
      );
      return d;
    };
    const live = script(true);
    const replay = script(false);
    expect(replay.triggers.map((t) => [t.rule, t.at])).toEqual(live.triggers.map((t) => [t.rule, t.at]));
    expect(live.of('BATHROOM_DWELL').map((t) => t.at)).toEqual([local('2026-03-10 10:40')]);
    // The late motion still takes its place: the resident was last seen in the living room, and the alert
    // raised on time learns that the resident moved before it.
    expect(replay.state.lastMotionRoom).toBe('living');
    const moved = live.triggers.filter((t) => t.attachOnly && t.rule === 'BATHROOM_DWELL');
    expect(moved.map((t) => t.evidence.summary)).toEqual([
      'motion in living at 10:39, reported 2 min late: the resident moved before this alert',
    ]);
  });

  it('raises no NIGHT_EXIT for a door close heard late, after the motion inside that followed it', () => {
    const d = morningHome();
    d.activeUntil(local('2026-03-10 22:50'));
    d.door('open', local('2026-03-10 23:00'));
    d.motion('living', local('2026-03-10 23:02'));
    d.send(
      'door',
      { type: 'door', ts: local('2026-03-10 23:01'), state: 'closed', door: 'front' },
      local('2026-03-10 23:03'),
    );
    d.runUntil(local('2026-03-10 23:40'));
    expect(d.rules()).toEqual([]);
    expect(d.state.door).toMatchObject({ open: false });
  });

  it('keeps a newer battery reading over a late, older one', () => {
    const d = morningHome();
    const t = local('2026-03-10 10:00');
    d.send('fall', { type: 'heartbeat', ts: t, battery: 80 });
    d.send('fall', { type: 'heartbeat', ts: t - 30 * MIN, battery: 12 }, t + MIN);
    expect(d.rules()).toEqual([]);
    expect(d.state.devices.fall?.battery).toBe(80);
  });

  it('counts a device that delivers buffered messages as heard when they arrive, not when they were made', () => {
    const d = morningHome();
    const t = local('2026-03-10 10:00');
    d.runUntil(t);
    d.beating.delete('m-kitchen');
    // Its link is down from 10:00; at 10:14 it delivers a message it made at 10:05.
    d.send('m-kitchen', { type: 'heartbeat', ts: t + 5 * MIN, battery: 80 }, t + 14 * MIN);
    d.runUntil(t + 29 * MIN - 1);
    expect(d.rules()).toEqual([]);
    d.runUntil(t + 29 * MIN);
    expect(d.of('DEVICE_OFFLINE').map((x) => [x.deviceId, x.at])).toEqual([['m-kitchen', t + 29 * MIN]]);
  });
});

const HOME_STATE_KEYS = {
  v: true,
  now: true,
  presence: true,
  presenceAt: true,
  lastMotionAt: true,
  lastMotionRoom: true,
  lastMotionSeq: true,
  lastFallAt: true,
  door: true,
  lastDoorAt: true,
  exit: true,
  quietFrom: true,
  morningDueAt: true,
  morningMinute: true,
  fired: true,
  devices: true,
  liveSince: true,
  learn: true,
} satisfies Record<keyof HomeState, true>;
const FIRED_KEYS = { inactivity: true, bathroom: true, door: true } satisfies Record<
  keyof HomeState['fired'],
  true
>;

describe('the copy of a home state each evaluation works on', () => {
  it('keeps every fact of a lived-in home, and changing the copy leaves the original as it was', () => {
    // Two days of a routine, then the front door left open: every field of the state holds something.
    const d = morningHome('2026-03-09');
    d.motion('kitchen', local('2026-03-09 12:00'));
    d.runUntil(local('2026-03-10 06:30'));
    d.motion('bedroom', local('2026-03-10 07:05'));
    d.door('open', local('2026-03-10 08:00'));
    d.door('closed', local('2026-03-10 08:01'));
    d.door('open', local('2026-03-10 08:30'));
    const s = d.state;
    const before = structuredClone(s);
    const copy = copyHomeState(s);
    // A field added to the state and not to the copy would be dropped from every home at its next event:
    // the copy writes every key (an unset optional one as undefined), and this list must name every key of
    // the type (the compiler says so, optional ones included).
    expect(Object.keys(copy).sort()).toEqual(Object.keys(HOME_STATE_KEYS).sort());
    expect(Object.keys(copy.fired).sort()).toEqual(Object.keys(FIRED_KEYS).sort());
    expect(copy).toEqual(s);
    copy.fired.inactivity = 1;
    copy.devices['m-kitchen'] = { ...copy.devices['m-kitchen']!, seenAt: 1 };
    expect(s).toEqual(before);
  });
});

describe('a home state as stored, in two parts (DATA-08)', () => {
  /** Two days of routine: one learned day, and today's begun. */
  const lived = () => {
    const d = morningHome('2026-03-09');
    d.runUntil(local('2026-03-10 07:30'));
    d.motion('bedroom', local('2026-03-10 07:31'));
    return d.state;
  };

  it('reads back what it wrote: the same state, its days known as written', () => {
    const s = lived();
    expect(s.learn.days.length).toBeGreaterThan(0);
    const first = storedForm(s, new WeakSet());
    expect(first.learned).toBe(s.learn.days);
    expect(first.state.learn).not.toHaveProperty('days');
    const written = new WeakSet<LearnDay[]>();
    // Through JSON, as the stores keep it.
    const back = restoreStored(
      { state: JSON.parse(JSON.stringify(first.state)), learned: JSON.parse(JSON.stringify(first.learned)) },
      written,
    );
    expect(back).toEqual(JSON.parse(JSON.stringify(s)));
    expect(storedForm(back, written).learned).toBeUndefined();
  });

  it('takes days found inside the state over the part apart, and writes them apart next', () => {
    const s = lived();
    const older = [{ d: 1, first: 1, quiet: new Array(24).fill(0) }];
    const written = new WeakSet<LearnDay[]>();
    // A whole state (as stored before DATA-08, or by a caller storing whole states) is the newer.
    const back = restoreStored({ state: JSON.parse(JSON.stringify(s)), learned: older }, written);
    expect(back.learn.days).toEqual(JSON.parse(JSON.stringify(s.learn.days)));
    expect(storedForm(back, written).learned).toEqual(back.learn.days);
    // A state with no days anywhere has none.
    const { days: _days, ...learn } = s.learn;
    expect(restoreStored({ state: { ...s, learn }, learned: null }).learn.days).toEqual([]);
  });
});
