/**
 * Bad input gets a clear error, never a 500 (SPEC §11): every query parameter of every GET route, as the
 * HTTP app registered them (GuardianService.routeTable), is tried with values that are no date, no number
 * or out of any range, by an admin (who passes every permission check and so reaches the handlers).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../kernel/clock.ts';
import { instant } from '../../kernel/time.ts';
import { apiCall, type Harness, login, startHarness } from '../helpers.ts';

const NASTY = [
  '9e15',
  '9007199254740993',
  '1e400',
  '-1',
  '-9e15',
  '1.5',
  'NaN',
  'Infinity',
  '',
  'abc',
  '2026-13-45',
  '+275760-09-13',
  '-271821-04-19T00:00:00Z',
  '9'.repeat(400),
  '%00',
  '[]',
];

describe('query parameters', () => {
  let h: Harness;
  let admin: string;
  beforeAll(async () => {
    h = await startHarness({
      clock: new ManualClock(instant(Date.parse('2026-03-10T10:00:00+08:00'))),
      grids: 1,
      perGrid: 1,
    });
    admin = await login(h.baseUrl, 'admin', 'admin-password-365');
  }, 60_000);
  afterAll(async () => {
    await h?.close();
  });

  it('answers 400 for an instant past any date: GET /api/households/{id}/coverage?at=9e15', async () => {
    const r = await apiCall(h.baseUrl, admin, 'GET', '/api/households/home-1-01/coverage?at=9e15');
    expect(r.status).toBe(400);
    expect(r.body.message).toMatch(/querystring\.at/);
  });

  it('never answers 500 to any value of any query parameter of any GET route', async () => {
    const routes = h.service.routeTable.filter((r) => r.method === 'GET' && r.query.length > 0);
    // The route table must name the parameters (a schema without them would make this test vacuous).
    expect(routes.map((r) => r.url)).toEqual(
      expect.arrayContaining([
        '/api/households/:id/coverage',
        '/api/households/:id/timeline',
        '/api/reports/sla',
      ]),
    );
    const failures: string[] = [];
    let tried = 0;
    for (const r of routes) {
      const path = r.url
        .replace('/api/registry/export/:kind', '/api/registry/export/staff.csv')
        .replace(':id', 'home-1-01');
      for (const q of r.query)
        for (const v of NASTY) {
          const url = `${path}?${q}=${encodeURIComponent(v)}`;
          const res = await apiCall(h.baseUrl, admin, 'GET', url);
          tried++;
          if (res.status >= 500) failures.push(`${url}: ${res.status}`);
        }
    }
    expect(failures).toEqual([]);
    expect(tried).toBeGreaterThan(100);
  }, 120_000);
});
