/**
 * The authorization matrix (SPEC §8 Access, §11): every route the HTTP app registered (fastify's onRoute,
 * GuardianService.routeTable) × every kind of identity, against a resource of community B (东风社区).
 * A route missing from the expectation table fails the test, so a new route cannot be forgotten.
 *
 * Community walls: a community's staff see and act on their community only; a street-level desk (covers
 * no grid) sees all; an alert of a community no desk follows stays visible to every desk, may be acted on,
 * and every such cross-community action is audited. Real service, real SQLite, real MQTT radar.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, Grid } from '../../dispatcher/api/types.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant } from '../../kernel/time.ts';
import { apiCall, eventually, type Harness, login, startHarness, TEST_PASSWORD } from '../helpers.ts';
import { communityDesks, raiseFall } from './dispatch-helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const ADMIN_PASSWORD = 'admin-password-365';

/** Who asks: the username (null: nobody logged in). */
const IDS = {
  anon: null,
  admin: 'admin',
  central: 'dispatcher', // dispatcher of no grid: street level
  centralSup: 'supervisor', // supervisor of no grid: street level
  deskA: 'desk-a', // dispatcher of grid-1 (阳光社区)
  supA: 'sup-a', // supervisor of grid-1
  deskB: 'desk-b', // dispatcher of grid-2 (东风社区)
  w1: 'g1-worker', // grid worker of grid-1
  w2: 'g2-worker', // grid worker of grid-2
  v2: 'g2-buddy', // volunteer of grid-2
} as const;
type Who = keyof typeof IDS;
const WHO = Object.keys(IDS) as Who[];

/** Statuses per identity, in the order of IDS. */
type Row = Record<Who, number>;
const row = (...s: number[]): Row => Object.fromEntries(WHO.map((w, i) => [w, s[i]!])) as Row;
const ALL_OK = row(200, 200, 200, 200, 200, 200, 200, 200, 200, 200);
const LOGGED_IN = row(401, 200, 200, 200, 200, 200, 200, 200, 200, 200);
/** Something of community B, read: its own staff and street-level desks, 404 to the rest. */
const B_ITEM = row(401, 200, 200, 200, 404, 404, 200, 404, 200, 200);
const ADMIN_ONLY = (ok: number) => row(401, ok, 403, 403, 403, 403, 403, 403, 403, 403);
const DESKS = row(401, 200, 200, 200, 200, 200, 200, 403, 403, 403);
const REGISTRY_READ = DESKS;
const REPORTS = row(401, 200, 403, 200, 403, 200, 403, 403, 403, 403);

/** A phone's push subscription as a browser makes one (the push service is never called here). */
const PUSH_SUBSCRIPTION = {
  endpoint: 'https://push.example.org/send/matrix',
  keys: { p256dh: `B${'A'.repeat(86)}`, auth: 'A'.repeat(22) },
};

/** Whether a list answer contains community B's item, per identity (a wall shows in lists too). */
const SEES_B: Record<Who, boolean> = {
  anon: false,
  admin: true,
  central: true,
  centralSup: true,
  deskA: false,
  supA: false,
  deskB: true,
  w1: false,
  w2: true,
  v2: true,
};

interface Case {
  path: string;
  body?: unknown;
  /** Sent as text/csv instead of JSON. */
  csv?: string;
  expect: Row;
  /** For lists: does the answer show community B's item? */
  showsB?: (body: unknown) => boolean;
  /** Runs with a fresh login of the identity (the route ends the session). */
  freshToken?: boolean;
}

describe('authorization matrix', () => {
  let h: Harness;
  let alertB: Alert;
  const tokens = new Map<Who, string | null>();
  const closers: { close(): unknown }[] = [];
  const clock = new ManualClock(DAY);

  beforeAll(async () => {
    h = await startHarness({ clock, grids: 2, perGrid: 1, consoleDir: 'console/public' });
    const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    await communityDesks(h, admin);
    expect(
      (
        await apiCall(h.baseUrl, admin, 'POST', '/api/staff', {
          id: 'sup-a',
          name: 'sup-a',
          roles: ['supervisor'],
          gridIds: ['grid-1'],
          username: 'sup-a',
          password: TEST_PASSWORD,
        })
      ).status,
    ).toBe(201);
    for (const w of WHO)
      tokens.set(
        w,
        IDS[w] === null ? null : await login(h.baseUrl, IDS[w]!, w === 'admin' ? ADMIN_PASSWORD : undefined),
      );
    alertB = await raiseFall(h, clock, 'home-2-01', closers);
    await h.store.addOverride({
      id: 'ov-matrix',
      gridId: 'grid-2',
      date: '2026-03-11',
      shift: 'day',
      kind: 'leave',
      staffId: 'grid-2-worker',
      replacementId: null,
    });
  }, 60_000);

  afterAll(async () => {
    for (const c of closers) await c.close();
    await h?.close();
  });

  const cases = (): Record<string, Case[]> => {
    const B = 'home-2-01';
    const hasId = (list: string, id: string) => (b: unknown) =>
      ((b as Record<string, { id?: string; gridId?: string }[]>)[list] ?? []).some(
        (x) => x.id === id || x.gridId === id,
      );
    return {
      'GET /healthz': [{ path: '/healthz', expect: ALL_OK }],
      'GET /readyz': [{ path: '/readyz', expect: ALL_OK }],
      // Public by decision (README, Security): counters only, no personal data.
      'GET /metrics': [{ path: '/metrics', expect: ALL_OK }],
      // The API description is public (README, Security): the project is open source.
      'GET /docs': [{ path: '/docs', expect: ALL_OK }],
      'GET /docs/json': [{ path: '/docs/json', expect: ALL_OK }],
      'GET /docs/yaml': [{ path: '/docs/yaml', expect: ALL_OK }],
      'GET /docs/static/index.html': [{ path: '/docs/static/index.html', expect: ALL_OK }],
      'GET /docs/static/swagger-initializer.js': [
        { path: '/docs/static/swagger-initializer.js', expect: ALL_OK },
      ],
      'GET /docs/static/*': [{ path: '/docs/static/swagger-ui.css', expect: ALL_OK }],
      'GET /*': [{ path: '/', expect: ALL_OK }],
      'POST /api/auth/login': [
        {
          path: '/api/auth/login',
          body: { username: 'nobody', password: 'wrong-password' },
          expect: row(...WHO.map(() => 401)),
        },
      ],
      'GET /api/session': [{ path: '/api/session', expect: LOGGED_IN }],
      'POST /api/auth/logout': [{ path: '/api/auth/logout', expect: ALL_OK, freshToken: true }],
      'GET /api/alerts': [
        { path: '/api/alerts?state=open', expect: LOGGED_IN, showsB: hasId('alerts', alertB.id) },
      ],
      'GET /api/alerts/:id': [{ path: `/api/alerts/${alertB.id}`, expect: B_ITEM }],
      'POST /api/alerts/:id/:action': [
        // Out of scope answers like a missing alert (404) before the role is asked (403).
        {
          path: `/api/alerts/${alertB.id}/note`,
          body: { text: 'matrix' },
          expect: row(401, 200, 200, 403, 404, 404, 200, 404, 200, 200),
        },
        {
          path: `/api/alerts/${alertB.id}/call`,
          body: { to: 'resident', result: 'no answer' },
          expect: row(401, 200, 200, 403, 404, 404, 200, 404, 200, 200),
        },
      ],
      'GET /api/me': [{ path: '/api/me', expect: LOGGED_IN }],
      'GET /api/grids': [{ path: '/api/grids', expect: LOGGED_IN, showsB: hasId('grids', 'grid-2') }],
      'POST /api/grids': [
        {
          path: '/api/grids',
          body: { id: 'grid-2', name: '第二网格', community: '东风社区', leaderId: null },
          expect: ADMIN_ONLY(201),
        },
      ],
      'GET /api/staff': [
        { path: '/api/staff', expect: REGISTRY_READ, showsB: hasId('staff', 'grid-2-worker') },
      ],
      'POST /api/staff': [
        {
          path: '/api/staff',
          body: {
            id: 'matrix-new',
            name: 'n',
            roles: ['volunteer'],
            gridIds: ['grid-2'],
            username: 'matrix-new',
            password: TEST_PASSWORD,
          },
          expect: ADMIN_ONLY(201),
        },
      ],
      'GET /api/escalation-policies': [
        {
          path: '/api/escalation-policies',
          expect: REGISTRY_READ,
          showsB: (b) =>
            ((b as { communities?: { community: string }[] }).communities ?? []).some(
              (c) => c.community === '东风社区',
            ),
        },
      ],
      'PUT /api/escalation-policies/:community': [
        {
          path: `/api/escalation-policies/${encodeURIComponent('东风社区')}`,
          body: {
            acceptWithinMin: 3,
            onSiteWithinMin: 15,
            steps: [
              { kind: 'notify_primary', afterMin: 0 },
              { kind: 'sla_breach', afterMin: 15 },
            ],
          },
          expect: ADMIN_ONLY(200),
        },
      ],
      'GET /api/roster': [{ path: '/api/roster', expect: REGISTRY_READ, showsB: hasId('entries', 'grid-2') }],
      // Community B's week: its desks and the street level; another community's desk is walled off.
      'GET /api/roster/week': [
        {
          path: '/api/roster/week?grid=grid-2',
          expect: row(401, 200, 200, 200, 404, 404, 200, 403, 403, 403),
        },
      ],
      'POST /api/roster': [
        {
          path: '/api/roster',
          body: {
            gridId: 'grid-2',
            entries: [
              { shift: 'day', staffIds: ['grid-2-worker', 'grid-2-leader', 'grid-2-buddy'] },
              { shift: 'night', staffIds: ['grid-2-social', 'grid-2-property'] },
            ],
          },
          expect: ADMIN_ONLY(200),
        },
      ],
      'POST /api/roster/overrides': [
        {
          path: '/api/roster/overrides',
          body: {
            gridId: 'grid-2',
            date: '2026-03-12',
            shift: 'night',
            kind: 'cover',
            replacementId: 'grid-2-worker',
          },
          expect: ADMIN_ONLY(201),
        },
      ],
      'DELETE /api/roster/overrides/:id': [
        { path: '/api/roster/overrides/ov-matrix', expect: ADMIN_ONLY(200) },
      ],
      'GET /api/duty': [{ path: '/api/duty', expect: LOGGED_IN, showsB: hasId('duty', 'grid-2') }],
      'GET /api/households': [{ path: '/api/households', expect: LOGGED_IN, showsB: hasId('households', B) }],
      'POST /api/households': [
        {
          path: '/api/households',
          body: { id: 'home-matrix', gridId: 'grid-2', address: { building: '9', unit: '1', room: '101' } },
          expect: ADMIN_ONLY(201),
        },
      ],
      'GET /api/households/:id': [
        { path: `/api/households/${B}`, expect: B_ITEM },
        // Access notes: the roles that may read them (supervisors and volunteers may not).
        {
          path: `/api/households/${B}?include=accessNotes`,
          expect: row(401, 200, 200, 403, 404, 404, 200, 404, 200, 403),
        },
      ],
      'GET /api/audit': [{ path: '/api/audit', expect: ADMIN_ONLY(200) }],
      'PATCH /api/staff/:id': [
        { path: '/api/staff/grid-2-leader', body: { phone: '13800000000' }, expect: ADMIN_ONLY(200) },
      ],
      'POST /api/households/:id/away': [
        {
          path: `/api/households/${B}/away`,
          body: { until: DAY + 86_400_000, reason: 'hospital' },
          expect: ADMIN_ONLY(200),
        },
      ],
      'DELETE /api/households/:id/away': [{ path: `/api/households/${B}/away`, expect: ADMIN_ONLY(200) }],
      'POST /api/devices': [
        {
          path: '/api/devices',
          body: { id: 'matrix-dev', homeId: B, kind: 'motion', room: 'kitchen' },
          expect: ADMIN_ONLY(201),
        },
      ],
      // Every device of the households one may see, across households (registry readers).
      'GET /api/devices': [
        { path: '/api/devices', expect: REGISTRY_READ, showsB: hasId('devices', `${B}-door`) },
      ],
      'PATCH /api/devices/:id': [
        { path: `/api/devices/${B}-door`, body: { room: 'entrance' }, expect: ADMIN_ONLY(200) },
      ],
      'GET /api/devices/:id': [{ path: `/api/devices/${B}-door`, expect: B_ITEM }],
      'POST /api/devices/:id/disable': [{ path: `/api/devices/${B}-door/disable`, expect: ADMIN_ONLY(200) }],
      'POST /api/devices/:id/enable': [{ path: `/api/devices/${B}-door/enable`, expect: ADMIN_ONLY(200) }],
      'POST /api/devices/:id/rotate-secret': [
        { path: `/api/devices/${B}-door/rotate-secret`, expect: ADMIN_ONLY(200) },
      ],
      // DATA-04: retiring is the admin's; a grid with households is kept (409), the rest go once.
      'POST /api/grids/:id/retire': [{ path: '/api/grids/grid-2/retire', expect: ADMIN_ONLY(409) }],
      'POST /api/households/:id/retire': [
        { path: '/api/households/home-matrix/retire', expect: ADMIN_ONLY(200) },
      ],
      'POST /api/staff/:id/retire': [{ path: '/api/staff/matrix-new/retire', expect: ADMIN_ONLY(200) }],
      'POST /api/devices/:id/retire': [{ path: '/api/devices/matrix-dev/retire', expect: ADMIN_ONLY(200) }],
      'GET /api/households/:id/baseline': [{ path: `/api/households/${B}/baseline`, expect: B_ITEM }],
      'GET /api/notify/health': [{ path: '/api/notify/health', expect: DESKS }],
      'GET /api/system/health': [{ path: '/api/system/health', expect: DESKS }],
      'POST /api/devices/:id/room': [
        { path: `/api/devices/${B}-door/room`, body: { room: 'entrance' }, expect: ADMIN_ONLY(200) },
      ],
      'GET /api/duty/gaps': [{ path: '/api/duty/gaps?phase=now', expect: DESKS }],
      'GET /api/duty/handover': [{ path: '/api/duty/handover', expect: LOGGED_IN }],
      'GET /api/maintenance': [{ path: '/api/maintenance', expect: LOGGED_IN }],
      'GET /api/households/:id/coverage': [{ path: `/api/households/${B}/coverage`, expect: B_ITEM }],
      'GET /api/households/:id/timeline': [{ path: `/api/households/${B}/timeline`, expect: B_ITEM }],
      'GET /api/registry/export': [{ path: '/api/registry/export', expect: ADMIN_ONLY(200) }],
      'GET /api/registry/export/:kind': [{ path: '/api/registry/export/staff.csv', expect: ADMIN_ONLY(200) }],
      'POST /api/registry/import': [{ path: '/api/registry/import', body: {}, expect: ADMIN_ONLY(200) }],
      'POST /api/registry/import/:kind': [
        {
          path: '/api/registry/import/grids.csv',
          csv: 'id,name,community,leaderId\n',
          expect: ADMIN_ONLY(200),
        },
      ],
      'GET /api/push/key': [{ path: '/api/push/key', expect: LOGGED_IN }],
      // Each person subscribes and unsubscribes their own phone only.
      'POST /api/push/subscriptions': [
        {
          path: '/api/push/subscriptions',
          body: PUSH_SUBSCRIPTION,
          expect: row(401, 201, 201, 201, 201, 201, 201, 201, 201, 201),
        },
      ],
      'DELETE /api/push/subscriptions': [
        {
          path: '/api/push/subscriptions',
          body: { endpoint: PUSH_SUBSCRIPTION.endpoint },
          expect: row(401, 204, 204, 204, 204, 204, 204, 204, 204, 204),
        },
      ],
      // A receipt only from a phone the alert's notice went to (its responders, its assignee).
      // grid-2's day roster (worker, leader, buddy) is named on the alert.
      'POST /api/push/receipts': [
        {
          path: '/api/push/receipts',
          body: { alertId: alertB.id },
          expect: row(401, 404, 404, 404, 404, 404, 404, 404, 204, 204),
        },
      ],
      'POST /api/alerts/:id/resend': [
        {
          path: `/api/alerts/${alertB.id}/resend`,
          body: {},
          expect: row(401, 202, 202, 403, 404, 403, 202, 403, 403, 403),
        },
      ],
      'GET /api/reports/sla': [{ path: '/api/reports/sla', expect: REPORTS }],
      'GET /api/reports/today': [{ path: '/api/reports/today', expect: DESKS }],
      'GET /api/reports/devices': [{ path: '/api/reports/devices', expect: DESKS }],
      // ALERT-03: a desk opens an incident from a call for a household of its walls; the first call raises
      // it (201), the next ones add to it (200). Supervisors and responders do not take calls.
      'POST /api/incidents': [
        {
          path: '/api/incidents',
          body: { householdId: B, category: 'unwell', note: 'matrix' },
          expect: row(401, 201, 200, 403, 404, 403, 200, 403, 403, 403),
        },
      ],
      // CONSOLE-04: everyone who reads household files searches them, within their walls.
      'GET /api/search/households': [
        {
          path: `/api/search/households?q=${B}`,
          expect: LOGGED_IN,
          showsB: hasId('households', B),
        },
      ],
    };
  };

  it('has an expectation for every registered route', () => {
    const table = cases();
    const registered = h.service.routeTable.map((r) => `${r.method} ${r.url}`);
    expect(registered.filter((r) => !(r in table))).toEqual([]);
    expect(Object.keys(table).filter((k) => !registered.includes(k))).toEqual([]);
  });

  it('answers every route as the table says for every role, and lists show community B only within its walls', async () => {
    const table = cases();
    const got: string[] = [];
    const want: string[] = [];
    for (const r of h.service.routeTable) {
      const key = `${r.method} ${r.url}`;
      for (const c of table[key] ?? []) {
        for (const who of WHO) {
          let token = tokens.get(who) ?? null;
          if (c.freshToken && IDS[who])
            token = await login(h.baseUrl, IDS[who]!, who === 'admin' ? ADMIN_PASSWORD : undefined);
          const res = await send(h.baseUrl, token, r.method, c);
          const shows = c.showsB && res.status === 200 ? c.showsB(res.body) : undefined;
          got.push(`${key} ${c.path} ${who}: ${res.status}${shows === undefined ? '' : ` sees B ${shows}`}`);
          const wantShows = c.showsB && c.expect[who] === 200 ? SEES_B[who] : undefined;
          want.push(
            `${key} ${c.path} ${who}: ${c.expect[who]}${wantShows === undefined ? '' : ` sees B ${wantShows}`}`,
          );
        }
      }
    }
    expect(got).toEqual(want);
  }, 120_000);
});

async function send(
  baseUrl: string,
  token: string | null,
  method: string,
  c: Case,
): Promise<{ status: number; body: unknown }> {
  if (c.csv !== undefined) {
    const res = await fetch(`${baseUrl}${c.path}`, {
      method,
      headers: { 'content-type': 'text/csv', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: c.csv,
    });
    return { status: res.status, body: await res.json().catch(() => ({})) };
  }
  return apiCall(baseUrl, token, method, c.path, c.body);
}

describe('a community nobody follows', () => {
  it('stays visible to every desk, may be acted on, and each cross-community action is audited', async () => {
    const clock = new ManualClock(DAY);
    const h = await startHarness({ clock, grids: 2, perGrid: 1 });
    const closers: { close(): unknown }[] = [];
    try {
      const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
      // Two communities, one desk (desk-a, 阳光社区); the street-level desks are off duty (disabled), so
      // nobody follows 东风社区.
      const grids = await apiCall<{ grids: Grid[] }>(h.baseUrl, admin, 'GET', '/api/grids');
      const grid2 = grids.body.grids.find((g) => g.id === 'grid-2')!;
      await apiCall(h.baseUrl, admin, 'POST', '/api/grids', { ...grid2, community: '东风社区' });
      await apiCall(h.baseUrl, admin, 'POST', '/api/staff', {
        id: 'desk-a',
        name: 'desk-a',
        roles: ['dispatcher'],
        gridIds: ['grid-1'],
        username: 'desk-a',
        password: TEST_PASSWORD,
      });
      for (const id of ['dispatcher-1', 'supervisor-1'])
        expect(
          (await apiCall(h.baseUrl, admin, 'PATCH', `/api/staff/${id}`, { disabled: true })).status,
        ).toBe(200);
      const desk = await login(h.baseUrl, 'desk-a');
      const alert = await raiseFall(h, clock, 'home-2-01', closers);

      expect((await apiCall(h.baseUrl, desk, 'GET', `/api/alerts/${alert.id}`)).status).toBe(200);
      expect((await apiCall(h.baseUrl, desk, 'GET', '/api/households/home-2-01')).status).toBe(200);
      const noted = await apiCall(h.baseUrl, desk, 'POST', `/api/alerts/${alert.id}/note`, {
        text: 'called',
      });
      expect(noted.status).toBe(200);
      // Within its own community nothing is flagged.
      expect((await apiCall(h.baseUrl, desk, 'GET', '/api/households/home-1-01')).status).toBe(200);

      const audit = await apiCall<{
        entries: { actor: string; action: string; target: string; detail: Record<string, unknown> }[];
      }>(h.baseUrl, admin, 'GET', '/api/audit?action=cross_community.');
      const crossings = audit.body.entries
        .filter((e) => e.actor === 'desk-a')
        .map((e) => ({ action: e.action, target: e.target, community: e.detail.community }))
        .sort((a, b) => a.action.localeCompare(b.action));
      expect(crossings).toEqual([
        { action: 'cross_community.alert.note', target: alert.id, community: '东风社区' },
        { action: 'cross_community.household.read', target: 'home-2-01', community: '东风社区' },
      ]);

      // Once a desk follows 东风社区 again, the wall is back for desk-a.
      await apiCall(h.baseUrl, admin, 'POST', '/api/staff', {
        id: 'desk-b',
        name: 'desk-b',
        roles: ['dispatcher'],
        gridIds: ['grid-2'],
        username: 'desk-b',
        password: TEST_PASSWORD,
      });
      await eventually(
        async () => (await apiCall(h.baseUrl, desk, 'GET', `/api/alerts/${alert.id}`)).status === 404,
      );
      expect(
        (await apiCall(h.baseUrl, desk, 'POST', `/api/alerts/${alert.id}/note`, { text: 'x' })).status,
      ).toBe(404);
      expect((await apiCall(h.baseUrl, desk, 'GET', '/api/households/home-2-01')).status).toBe(404);
    } finally {
      for (const c of closers) await c.close();
      await h.close();
    }
  }, 60_000);
});
