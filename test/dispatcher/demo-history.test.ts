/**
 * DEMO-01: `npm run demo` on a fresh data folder (the real entry file as its own process, a real SQLite
 * folder) seeds a week of history: every household file's 7-day chart has activity on each of the past 7
 * days, the SLA report over the past week counts resolved alerts, and the rules raise nothing for the
 * seeded events when the service starts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert, HistoryEntry } from '../../dispatcher/alerts/model.ts';
import type { Timeline } from '../../dispatcher/api/types.ts';
import type { SlaReport } from '../../dispatcher/reports/sla.ts';
import { apiCall, eventually, login, tempDir } from '../helpers.ts';

const root = join(import.meta.dirname, '..', '..');
const DAY = 86_400_000;
let proc: ChildProcess | undefined;
let dir: { remove: () => void } | undefined;
afterEach(() => {
  proc?.kill('SIGKILL');
  proc = undefined;
  dir?.remove();
  dir = undefined;
});

describe('npm run demo on a fresh data folder', () => {
  it('seeds a week of history that the charts and the SLA report show, and raises no alert for it', async () => {
    const d = tempDir();
    dir = d;
    const spawnedAt = Date.now();
    const p = spawn(process.execPath, ['--import', 'tsx', join(root, 'dispatcher/main.ts'), '--demo'], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        LOG_LEVEL: 'warn',
        DATA_DIR: d.path,
        HTTP_PORT: '0',
        MQTT_PORT: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc = p;
    let out = '';
    p.stdout!.on('data', (c) => {
      out += c;
    });
    p.stderr!.on('data', (c) => {
      out += c;
    });
    await eventually(() => out.includes('Press Ctrl-C to stop.') || p.exitCode !== null, 90_000, 'banner');
    expect(out).toContain('Press Ctrl-C to stop.');
    const port = /console\s+http:\/\/localhost:(\d+)\//.exec(out)?.[1];
    const base = `http://127.0.0.1:${port}`;
    const token = await login(base, 'supervisor', 'guardian365');

    // The household file's 7-day chart: activity on each of the past 7 days, in every home we look at.
    const now = Date.now();
    for (const home of ['home-1-01', 'home-2-05', 'home-3-10']) {
      const t = await apiCall<Timeline>(base, token, 'GET', `/api/households/${home}/timeline?to=${now}`);
      expect(t.status).toBe(200);
      for (let i = 0; i < 7; i++) {
        const from = now - (7 - i) * DAY;
        const day = t.body.events.filter((e) => e.ts >= from && e.ts < from + DAY);
        expect(day.length, `${home}, day ${i + 1} of 7`).toBeGreaterThan(10);
        expect(day.some((e) => e.type === 'motion')).toBe(true);
      }
    }

    // The SLA report over the past week: safety alerts accepted and on site, resolved with outcomes.
    const sla = await apiCall<SlaReport>(
      base,
      token,
      'GET',
      `/api/reports/sla?from=${now - 7 * DAY}&to=${now}`,
    );
    expect(sla.status).toBe(200);
    expect(sla.body.total.alerts).toBeGreaterThanOrEqual(5);
    expect(sla.body.total.acceptedWithin3).toBe(sla.body.total.alerts);
    expect(sla.body.total.onSiteWithin15).toBe(sla.body.total.alerts);

    // The seeded alerts are there once each, all closed; the rules raised nothing for the seeded events
    // (replayed, they would raise the falls again, open, and silences and offline devices besides).
    const list = await apiCall<{ alerts: Alert[] }>(base, token, 'GET', '/api/alerts?limit=2000');
    const past = list.body.alerts.filter((a) => a.raisedAt < spawnedAt - 60 * 60_000);
    const rules = past.map((a) => a.rule);
    expect(rules).toContain('FALL');
    expect(rules).toContain('SOS');
    expect(rules.filter((r) => r === 'LOW_BATTERY')).toHaveLength(2);
    expect(new Set(rules)).toEqual(new Set(['FALL', 'SOS', 'LOW_BATTERY']));
    expect(past.filter((a) => a.state !== 'resolved')).toEqual([]);
    const keys = past.map((a) => `${a.householdId}/${a.rule}/${a.raisedAt}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(past.filter((a) => a.rule === 'LOW_BATTERY').map((a) => a.outcome)).toEqual([
      'auto_cleared',
      'auto_cleared',
    ]);
    for (const a of past.filter((x) => x.rule !== 'LOW_BATTERY')) {
      expect(a.acceptedAt! - a.raisedAt).toBeLessThan(3 * 60_000);
      expect(a.onSiteAt! - a.raisedAt).toBeLessThan(15 * 60_000);
      expect(['assisted', 'false_alarm']).toContain(a.outcome);
    }
    const fall = past.find((a) => a.rule === 'FALL')!;
    expect(fall.explanation.en).toContain('bathroom');
    const full = await apiCall<{ history: HistoryEntry[] }>(base, token, 'GET', `/api/alerts/${fall.id}`);
    expect(full.body.history.map((h) => h.action)).toEqual(
      expect.arrayContaining(['raised', 'accept', 'en-route', 'on-site', 'resolve']),
    );
  }, 150_000);
});
