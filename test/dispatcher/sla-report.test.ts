/**
 * The SLA report's arithmetic (SPEC §6, §8) on hand-made alerts: shares over decided alerts only,
 * nearest-rank percentiles, false-alarm rates from people's judgements, uptime from DEVICE_OFFLINE spans.
 */
import { describe, expect, it } from 'vitest';
import { mayReadHousehold, permissionsOf } from '../../dispatcher/access.ts';
import { raise } from '../../dispatcher/alerts/lifecycle.ts';
import type { Alert, RuleId } from '../../dispatcher/alerts/model.ts';
import { percentile, slaReport, slaReportCsv } from '../../dispatcher/reports/sla.ts';

const T = Date.parse('2026-03-10T10:00:00+08:00');
const MIN = 60_000;

function make(id: string, over: Partial<Alert> & { rule?: RuleId } = {}): Alert {
  const a = raise(
    {
      rule: over.rule ?? 'FALL',
      householdId: 'h1',
      deviceId: over.deviceId ?? 'h1-fall',
      at: over.raisedAt ?? T,
      evidence: { seq: 1, deviceId: 'h1-fall', type: 'fall', at: T, summary: 'fall' },
      explanation: { zh: '跌倒', en: 'fall' },
    },
    { id, gridId: over.gridId ?? 'g1', community: 'c', responders: ['p1'] },
  ).alert;
  return { ...a, ...over };
}

const base = {
  from: T - 60 * MIN,
  to: T + 24 * 60 * MIN,
  zone: 'Asia/Shanghai',
  shifts: { dayStart: '08:00', nightStart: '20:00' },
  gridNames: new Map([['g1', '第一网格']]),
  staffNames: new Map([['p1', '李']]),
  devices: [] as { id: string; gridId: string; createdAt: number }[],
};

describe('SLA report', () => {
  it('takes nearest-rank percentiles', () => {
    expect(percentile([], 50)).toBeNull();
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)).toBe(9);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50)).toBe(5);
    expect(percentile([7], 90)).toBe(7);
  });

  it('counts the 3-minute mark exactly and leaves alerts still inside their window out of the share', () => {
    const alerts = [
      make('a', { state: 'on_site', acceptedAt: T + 3 * MIN, onSiteAt: T + 15 * MIN, assigneeId: 'p1' }),
      make('b', { state: 'accepted', acceptedAt: T + 3 * MIN + 1, assigneeId: 'p1' }),
      // Raised one minute before "now": not yet a success or a failure.
      make('c', { raisedAt: T + 59 * MIN }),
      make('d', { state: 'cancelled' }),
    ];
    const r = slaReport({ ...base, now: T + 60 * MIN, alerts });
    expect(r.total).toMatchObject({ alerts: 3, acceptedWithin3: 1, onSiteWithin15: 1 });
    expect(r.total.acceptedShare).toBe(0.5);
    expect(r.total.onSiteShare).toBe(0.5);
    expect(r.total.acceptMedianMs).toBe(3 * MIN);
    expect(r.byResponder.find((x) => x.key === 'p1')?.label).toBe('李');
    expect(r.byWeek.map((w) => w.key)).toEqual(['2026-W11']);
  });

  it('rates false alarms from resolutions by people, not from auto-cleared technical alerts', () => {
    const alerts = [
      make('a', { state: 'resolved', outcome: 'false_alarm' }),
      make('b', { state: 'resolved', outcome: 'assisted', deviceId: 'h1-fall-2' }),
      make('c', { rule: 'LOW_BATTERY', severity: 'technical', state: 'resolved', outcome: 'auto_cleared' }),
    ];
    const r = slaReport({ ...base, now: T + 60 * MIN, alerts });
    expect(r.falseAlarmsByRule).toEqual([{ key: 'FALL', resolved: 2, falseAlarms: 1, rate: 0.5 }]);
    expect(r.falseAlarmsByDevice.find((d) => d.key === 'h1-fall')?.rate).toBe(1);
  });

  it('measures device uptime as the time not covered by DEVICE_OFFLINE alerts, clipped to the period', () => {
    const offline = make('o', {
      rule: 'DEVICE_OFFLINE',
      severity: 'technical',
      deviceId: 'd1',
      raisedAt: T - 2 * 60 * MIN,
      closedAt: T,
      state: 'resolved',
      outcome: 'auto_cleared',
      acceptDueAt: null,
      onSiteDueAt: null,
    });
    const r = slaReport({
      ...base,
      from: T - 60 * MIN,
      to: T + 60 * MIN,
      now: T + 60 * MIN,
      alerts: [offline],
      devices: [
        { id: 'd1', gridId: 'g1', createdAt: 0 },
        { id: 'd2', gridId: 'g1', createdAt: 0 },
      ],
    });
    // d1 was offline 1 h of its 2 h, d2 never: 3 of 4 device-hours up.
    expect(r.deviceUptime).toEqual([{ gridId: 'g1', label: '第一网格', devices: 2, uptime: 0.75 }]);
    expect(r.total.alerts).toBe(0);
  });

  it('writes one CSV table with a fixed width and neutralises cells a spreadsheet would run', () => {
    const r = slaReport({
      ...base,
      now: T + 60 * MIN,
      alerts: [make('a', { state: 'resolved', outcome: 'false_alarm', assigneeId: 'p1' })],
      staffNames: new Map([['p1', '=HYPERLINK("x")']]),
      devices: [{ id: 'h1-fall', gridId: 'g1', createdAt: 0 }],
    });
    const lines = slaReportCsv(r).trim().split('\r\n');
    const width = lines[0]!.split(',').length;
    expect(width).toBe(18);
    for (const l of lines) expect(l.replace(/"[^"]*"/g, 'x').split(',')).toHaveLength(width);
    expect(lines.find((l) => l.startsWith('responder,'))).toContain(`"'=HYPERLINK(""x"")"`);
  });
});

describe('access', () => {
  it('lets a responder read only the households of the grids they cover; dispatch roles read all', () => {
    const worker = { roles: ['grid_worker' as const], gridIds: ['g1'] };
    expect(mayReadHousehold(worker, 'g1')).toBe(true);
    expect(mayReadHousehold(worker, 'g2')).toBe(false);
    expect(mayReadHousehold({ roles: ['dispatcher'], gridIds: [] }, 'g2')).toBe(true);
    expect(permissionsOf({ roles: ['supervisor'] })).toEqual([
      'alerts.read.all',
      'households.read.all',
      'registry.read',
      'reports.read',
    ]);
    expect(permissionsOf({ roles: ['volunteer'] })).not.toContain('households.sensitive');
  });
});
