import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { onDuty, unstaffedGrids, whoCovers } from '../../dispatcher/routing/roster.ts';
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
