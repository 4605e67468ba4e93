import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import {
  onDuty,
  type RosterOverride,
  rosterWeek,
  unstaffedGrids,
  whoCovers,
} from '../../dispatcher/routing/roster.ts';
import { DEFAULT_SHIFTS, shiftAt } from '../../dispatcher/routing/shifts.ts';

const SH = 'Asia/Shanghai';
const at = (iso: string, zone = SH) => DateTime.fromISO(iso, { zone }).toMillis();

describe('shift lookup in the community time zone', () => {
  it('is still the night shift at 07:59:59.999 and the day shift at 08:00:00.000', () => {
    expect(shiftAt(at('2026-03-10T07:59:59.999'), SH).shift).toBe('night');
    expect(shiftAt(at('2026-03-10T08:00:00.000'), SH).shift).toBe('day');
  });

  it('switches to the night shift at exactly 20:00', () => {
    expect(shiftAt(at('2026-03-10T19:59:59.999'), SH).shift).toBe('day');
    expect(shiftAt(at('2026-03-10T20:00:00.000'), SH).shift).toBe('night');
  });

  it('dates a night shift by the evening it started, across midnight', () => {
    const before = shiftAt(at('2026-03-10T23:30'), SH);
    const after = shiftAt(at('2026-03-11T02:00'), SH);
    expect(before).toMatchObject({ shift: 'night', date: '2026-03-10', weekday: 2 });
    expect(after).toEqual(before);
    expect(after.startsAt).toBe(at('2026-03-10T20:00'));
    expect(after.endsAt).toBe(at('2026-03-11T08:00'));
  });

  it('uses the given zone, not the host zone: 00:30 UTC is 08:30 in Shanghai', () => {
    const instant = Date.UTC(2026, 2, 10, 0, 30);
    expect(shiftAt(instant, SH).shift).toBe('day');
    expect(shiftAt(instant, 'UTC').shift).toBe('night');
  });

  it('keeps local boundaries on a day with a DST change (Europe/Berlin, 29 March 2026)', () => {
    const z = 'Europe/Berlin';
    // Clocks jump from 02:00 to 03:00; the night shift that started at 20:00 on the 28th is 11 hours long.
    const night = shiftAt(at('2026-03-29T07:59:59.999', z), z);
    expect(night).toMatchObject({ shift: 'night', date: '2026-03-28' });
    expect(night.endsAt - night.startsAt).toBe(11 * 3_600_000);
    expect(shiftAt(at('2026-03-29T08:00', z), z).shift).toBe('day');
  });

  it('honours configured boundaries', () => {
    const b = { dayStart: '07:30', nightStart: '19:00' };
    expect(shiftAt(at('2026-03-10T07:29'), SH, b).shift).toBe('night');
    expect(shiftAt(at('2026-03-10T07:30'), SH, b).shift).toBe('day');
  });
});

describe('who is on duty', () => {
  const roster = [
    { gridId: 'g1', shift: 'day' as const, weekdays: [], staffIds: ['worker', 'leader', 'buddy'] },
    { gridId: 'g1', shift: 'night' as const, weekdays: [], staffIds: ['social', 'property'] },
    { gridId: 'g1', shift: 'day' as const, weekdays: [7], staffIds: ['weekend-worker'] },
  ];

  it('orders the roster of the shift in force, primary first', () => {
    expect(onDuty('g1', at('2026-03-10T10:00'), SH, DEFAULT_SHIFTS, roster, []).staffIds).toEqual([
      'worker',
      'leader',
      'buddy',
    ]);
    expect(onDuty('g1', at('2026-03-11T03:00'), SH, DEFAULT_SHIFTS, roster, []).staffIds).toEqual([
      'social',
      'property',
    ]);
  });

  it('prefers a weekday-specific rotation line (Sunday)', () => {
    expect(onDuty('g1', at('2026-03-15T10:00'), SH, DEFAULT_SHIFTS, roster, []).staffIds).toEqual([
      'weekend-worker',
    ]);
  });

  it('applies leave, swap and cover overrides to that dated shift only', () => {
    const overrides = [
      {
        id: 'o1',
        gridId: 'g1',
        date: '2026-03-10',
        shift: 'day' as const,
        kind: 'leave' as const,
        staffId: 'worker',
        replacementId: null,
      },
      {
        id: 'o2',
        gridId: 'g1',
        date: '2026-03-10',
        shift: 'day' as const,
        kind: 'swap' as const,
        staffId: 'leader',
        replacementId: 'other',
      },
      {
        id: 'o3',
        gridId: 'g1',
        date: '2026-03-10',
        shift: 'day' as const,
        kind: 'cover' as const,
        staffId: null,
        replacementId: 'extra',
      },
    ];
    expect(onDuty('g1', at('2026-03-10T10:00'), SH, DEFAULT_SHIFTS, roster, overrides).staffIds).toEqual([
      'other',
      'buddy',
      'extra',
    ]);
    expect(onDuty('g1', at('2026-03-11T10:00'), SH, DEFAULT_SHIFTS, roster, overrides).staffIds).toEqual([
      'worker',
      'leader',
      'buddy',
    ]);
  });

  it('returns nobody for a grid without a roster', () => {
    expect(onDuty('g2', at('2026-03-10T10:00'), SH, DEFAULT_SHIFTS, roster, []).staffIds).toEqual([]);
  });
});

describe('who covers a household, and grids with nobody on duty', () => {
  const roster = [
    { gridId: 'g1', shift: 'day' as const, weekdays: [], staffIds: ['worker', 'leader'] },
    { gridId: 'g1', shift: 'night' as const, weekdays: [], staffIds: ['social'] },
    { gridId: 'g2', shift: 'day' as const, weekdays: [], staffIds: ['w2'] },
  ];

  it('answers for the household’s grid and the shift in force, switching at 20:00 exactly', () => {
    const home = { id: 'h1', gridId: 'g1' };
    expect(whoCovers(home, at('2026-03-10T19:59:59.999'), SH, DEFAULT_SHIFTS, roster, []).staffIds).toEqual([
      'worker',
      'leader',
    ]);
    const night = whoCovers(home, at('2026-03-10T20:00:00.000'), SH, DEFAULT_SHIFTS, roster, []);
    expect(night).toMatchObject({ householdId: 'h1', gridId: 'g1', staffIds: ['social'] });
    expect(night.shift).toMatchObject({ shift: 'night', date: '2026-03-10' });
  });

  it('lists the grids whose coming shift has nobody, counting leave', () => {
    const night = shiftAt(at('2026-03-10T21:00'), SH);
    expect(unstaffedGrids(['g1', 'g2'], night, roster, [])).toEqual(['g2']);
    const leave = {
      id: 'o',
      gridId: 'g1',
      date: '2026-03-10',
      shift: 'night' as const,
      kind: 'leave' as const,
      staffId: 'social',
      replacementId: null,
    };
    expect(unstaffedGrids(['g1', 'g2'], night, roster, [leave])).toEqual(['g1', 'g2']);
    expect(unstaffedGrids(['g1', 'g2'], shiftAt(at('2026-03-10T09:00'), SH), roster, [leave])).toEqual([]);
  });
});

describe('leave, cover and swap change who is on duty, at both shift edges and across midnight', () => {
  // Wednesday 2026-03-11 in Shanghai. 赵夜班 (zhao) and 孙物业 (sun) cover the nights, 李网格 (li) and
  // 周楼长 (zhou) the days; 王网格 (wang) stands in.
  const roster = [
    { gridId: 'g1', shift: 'day' as const, weekdays: [], staffIds: ['li', 'zhou'] },
    { gridId: 'g1', shift: 'night' as const, weekdays: [], staffIds: ['zhao', 'sun'] },
  ];
  const ov = (o: Partial<RosterOverride>): RosterOverride => ({
    id: 'o',
    gridId: 'g1',
    date: '2026-03-11',
    shift: 'night',
    kind: 'leave',
    staffId: 'zhao',
    replacementId: null,
    ...o,
  });
  const home = { id: 'h1', gridId: 'g1' };
  const who = (iso: string, overrides: RosterOverride[]) =>
    whoCovers(home, at(iso), SH, DEFAULT_SHIFTS, roster, overrides).staffIds;
  /** The week grid's cell for the shift in force at `iso`: must say what routing says. */
  const cell = (iso: string, overrides: RosterOverride[]) => {
    const week = rosterWeek('g1', at(iso), SH, DEFAULT_SHIFTS, roster, overrides);
    const day = week.days.find((d) => d.date === week.running.date)!;
    return day[week.running.shift].staffIds;
  };

  const kinds: { name: string; o: Partial<RosterOverride>; night: string[]; day: string[] }[] = [
    {
      name: 'a leave with a substitute',
      o: { kind: 'leave', staffId: 'zhao', replacementId: 'wang' },
      night: ['wang', 'sun'],
      day: ['wang', 'zhou'],
    },
    { name: 'a leave without one', o: { kind: 'leave', staffId: 'zhao' }, night: ['sun'], day: ['zhou'] },
    {
      name: 'a swap',
      o: { kind: 'swap', staffId: 'zhao', replacementId: 'wang' },
      night: ['wang', 'sun'],
      day: ['wang', 'zhou'],
    },
    {
      name: 'a cover',
      o: { kind: 'cover', staffId: null, replacementId: 'wang' },
      night: ['zhao', 'sun', 'wang'],
      day: ['li', 'zhou', 'wang'],
    },
  ];

  for (const k of kinds) {
    it(`applies ${k.name} to the night shift from 20:00 to 07:59:59.999 the next morning, and only to it`, () => {
      const o = [ov(k.o)];
      // The day shift before it and the one after are untouched.
      expect(who('2026-03-11T19:59:59.999', o)).toEqual(['li', 'zhou']);
      for (const t of [
        '2026-03-11T20:00:00.000',
        '2026-03-11T23:59:59.999',
        '2026-03-12T00:00:00.000',
        '2026-03-12T01:20',
        '2026-03-12T07:59:59.999',
      ]) {
        expect(who(t, o), t).toEqual(k.night);
        expect(cell(t, o), t).toEqual(k.night);
      }
      expect(who('2026-03-12T08:00:00.000', o)).toEqual(['li', 'zhou']);
      // The next night is the rotation again.
      expect(who('2026-03-12T20:00', o)).toEqual(['zhao', 'sun']);
      expect(cell('2026-03-12T20:00', o)).toEqual(['zhao', 'sun']);
    });

    it(`applies ${k.name} to the day shift from 08:00 to 19:59:59.999, and only to it`, () => {
      const o = [ov({ ...k.o, shift: 'day', staffId: k.o.staffId === 'zhao' ? 'li' : k.o.staffId })];
      expect(who('2026-03-11T07:59:59.999', o)).toEqual(['zhao', 'sun']);
      for (const t of ['2026-03-11T08:00:00.000', '2026-03-11T13:00', '2026-03-11T19:59:59.999']) {
        expect(who(t, o), t).toEqual(k.day);
        expect(cell(t, o), t).toEqual(k.day);
      }
      expect(who('2026-03-11T20:00:00.000', o)).toEqual(['zhao', 'sun']);
    });
  }

  it('does not touch the night running at 01:20 when the override names the calendar day (the next evening)', () => {
    const o = [ov({ date: '2026-03-12', replacementId: 'wang' })];
    expect(who('2026-03-12T01:20', o)).toEqual(['zhao', 'sun']);
    expect(who('2026-03-12T20:00', o)).toEqual(['wang', 'sun']);
  });

  it('keeps the one standing in on duty when the person on leave is no longer on that shift', () => {
    expect(who('2026-03-11T21:00', [ov({ staffId: 'li', replacementId: 'wang' })])).toEqual([
      'zhao',
      'sun',
      'wang',
    ]);
    expect(who('2026-03-11T21:00', [ov({ kind: 'swap', staffId: 'li', replacementId: 'wang' })])).toEqual([
      'zhao',
      'sun',
      'wang',
    ]);
  });

  it('lays the week out Monday first around the shift in force, with the running shift dated by its evening', () => {
    // Monday 01:20 is still Sunday's night shift: the week shown is the one that Sunday ends.
    const week = rosterWeek('g1', at('2026-03-16T01:20'), SH, DEFAULT_SHIFTS, roster, []);
    expect(week.running).toMatchObject({ shift: 'night', date: '2026-03-15', weekday: 7 });
    expect(week.days.map((d) => d.date)).toEqual([
      '2026-03-09',
      '2026-03-10',
      '2026-03-11',
      '2026-03-12',
      '2026-03-13',
      '2026-03-14',
      '2026-03-15',
    ]);
    expect(week.days[6]!.night.shift.startsAt).toBe(at('2026-03-15T20:00'));
    expect(week.days[6]!.night.shift.endsAt).toBe(at('2026-03-16T08:00'));
  });
});
