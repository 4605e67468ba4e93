/**
 * The API behind the console (SPEC §8, §11): sessions, roles and grid-scoped access, the household
 * timeline from the event log, and the SLA report. The whole service on loopback with a manual clock.
 */
import { parse as parseCsv } from 'csv-parse/sync';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes } from '../../kernel/time.ts';
import { SimDevice } from '../../simulators/device.ts';
import { apiCall, eventually, type Harness, login, startHarness } from '../helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
let h: Harness | undefined;
const devices: SimDevice[] = [];

afterEach(async () => {
  for (const d of devices.splice(0)) await d.disconnect();
  await h?.close();
  h = undefined;
});

async function device(h: Harness, clock: ManualClock, homeId: string, kind: string, room?: string) {
  const id = h.devices.find((d) => d.homeId === homeId && d.kind === kind && (!room || d.room === room))!;
  const dev = new SimDevice(id, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
  await dev.connect();
  devices.push(dev);
  return dev;
}

describe('sessions', () => {
  it('expires a session after SESSION_HOURS and ends it at logout', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock, env: { SESSION_HOURS: '2' } });
    const a = await login(h.baseUrl, 'dispatcher');
    const b = await login(h.baseUrl, 'dispatcher');
    expect((await apiCall(h.baseUrl, a, 'GET', '/api/session')).status).toBe(200);
    expect((await apiCall(h.baseUrl, b, 'POST', '/api/auth/logout', {})).status).toBe(200);
    expect((await apiCall(h.baseUrl, b, 'GET', '/api/session')).status).toBe(401);
    clock.advance(minutes(119));
    expect((await apiCall(h.baseUrl, a, 'GET', '/api/session')).status).toBe(200);
    clock.advance(minutes(1));
    expect((await apiCall(h.baseUrl, a, 'GET', '/api/session')).status).toBe(401);
  });

  it('refuses the eleventh login attempt in a minute with 429', async () => {
    h = await startHarness({ clock: new ManualClock(DAY) });
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) {
      statuses.push(
        (
          await apiCall(h.baseUrl, null, 'POST', '/api/auth/login', {
            username: 'g1-worker',
            password: 'wrong-one',
          })
        ).status,
      );
    }
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(statuses[10]).toBe(429);
  });

  it("tells the console who is logged in, what they may do and the community's time zone", async () => {
    h = await startHarness({ clock: new ManualClock(DAY), env: { TZ_COMMUNITY: 'Asia/Urumqi' } });
    const s = await apiCall<{ permissions: string[]; zone: string; staff: { id: string } }>(
      h.baseUrl,
      await login(h.baseUrl, 'g1-worker'),
      'GET',
      '/api/session',
    );
    expect(s.body.zone).toBe('Asia/Urumqi');
    expect(s.body.staff.id).toBe('grid-1-worker');
    expect(s.body.permissions).toContain('alerts.respond');
    expect(s.body.permissions).not.toContain('alerts.read.all');
    expect(s.body.permissions).not.toContain('reports.read');
    const sup = await apiCall<{ permissions: string[] }>(
      h.baseUrl,
      await login(h.baseUrl, 'supervisor'),
      'GET',
      '/api/session',
    );
    expect(sup.body.permissions).toEqual(expect.arrayContaining(['reports.read', 'alerts.read.all']));
    expect(sup.body.permissions).not.toContain('alerts.act.all');
    expect(sup.body.permissions).not.toContain('registry.write');
    expect((await apiCall(h.baseUrl, null, 'GET', '/api/session')).status).toBe(401);
  });
});

describe('grid-scoped access', () => {
  it("does not let a responder open another grid's household, its timeline or the dispatch figures", async () => {
    h = await startHarness({ clock: new ManualClock(DAY) });
    const worker = await login(h.baseUrl, 'g1-worker');
    expect((await apiCall(h.baseUrl, worker, 'GET', '/api/households/home-1-01')).status).toBe(200);
    expect((await apiCall(h.baseUrl, worker, 'GET', '/api/households/home-1-01/timeline')).status).toBe(200);
    expect((await apiCall(h.baseUrl, worker, 'GET', '/api/households/home-2-01')).status).toBe(404);
    expect((await apiCall(h.baseUrl, worker, 'GET', '/api/households/home-2-01/timeline')).status).toBe(404);
    expect((await apiCall(h.baseUrl, worker, 'GET', '/api/reports/sla')).status).toBe(403);
    expect((await apiCall(h.baseUrl, worker, 'GET', '/api/reports/today')).status).toBe(403);
    expect((await apiCall(h.baseUrl, worker, 'GET', '/api/reports/devices')).status).toBe(403);
    const dispatcher = await login(h.baseUrl, 'dispatcher');
    expect((await apiCall(h.baseUrl, dispatcher, 'GET', '/api/households/home-2-01/timeline')).status).toBe(
      200,
    );
    expect((await apiCall(h.baseUrl, dispatcher, 'GET', '/api/reports/sla')).status).toBe(403);
    expect((await apiCall(h.baseUrl, dispatcher, 'GET', '/api/reports/today')).status).toBe(200);
  });
});

describe('household timeline', () => {
  it("returns the home's motion, door and fall events from the log in time order, without heartbeats", async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const kitchen = await device(h, clock, 'home-1-01', 'motion', 'kitchen');
    const door = await device(h, clock, 'home-1-01', 'door');
    await kitchen.send({ type: 'motion', state: 'active', room: 'kitchen' });
    await kitchen.send({ type: 'heartbeat', battery: 80 });
    clock.advance(minutes(5));
    await door.send({ type: 'door', state: 'open' });
    clock.advance(minutes(1));
    const token = await login(h.baseUrl, 'g1-worker');
    const r = await eventually(async () => {
      const res = await apiCall<{
        events: { ts: number; type: string; room: string | null; state: string }[];
      }>(h!.baseUrl, token, 'GET', '/api/households/home-1-01/timeline');
      return res.body.events.length >= 2 ? res.body : undefined;
    });
    expect(r.events.map((e) => [e.type, e.state, e.room])).toEqual([
      ['motion', 'active', 'kitchen'],
      ['door', 'open', null],
    ]);
    expect(r.events[1]!.ts - r.events[0]!.ts).toBe(5 * 60_000);
    const bad = await apiCall(
      h.baseUrl,
      token,
      'GET',
      `/api/households/home-1-01/timeline?from=${DAY}&to=${DAY - 1}`,
    );
    expect(bad.status).toBe(400);
  });
  it("shows each event's own device seq beside its log position, and heartbeats when asked for", async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const kitchen = await device(h, clock, 'home-1-01', 'motion', 'kitchen');
    // A device that counts its messages 41, 42, 43 (its own seq, not the log's position).
    await kitchen.send({ type: 'motion', state: 'active', room: 'kitchen' }, { seq: 41 });
    clock.advance(minutes(1));
    await kitchen.send({ type: 'heartbeat', battery: 77, fw: '1.2.3' }, { seq: 42 });
    clock.advance(minutes(1));
    await kitchen.send({ type: 'motion', state: 'idle', room: 'kitchen' }, { seq: 43 });
    clock.advance(minutes(1));
    const token = await login(h.baseUrl, 'g1-worker');
    type Ev = { seq: number; deviceSeq: number | null; type: string; battery?: number; fw?: string };
    const read = async (query: string) =>
      eventually(async () => {
        const res = await apiCall<{ events: Ev[] }>(
          h!.baseUrl,
          token,
          'GET',
          `/api/households/home-1-01/timeline${query}`,
        );
        return res.body.events.length >= 2 ? res.body.events : undefined;
      });
    const plain = await read('');
    expect(plain.map((e) => [e.type, e.deviceSeq])).toEqual([
      ['motion', 41],
      ['motion', 43],
    ]);
    expect(plain[1]!.seq).toBeGreaterThan(plain[0]!.seq);
    const all = await read('?heartbeats=true');
    expect(all.map((e) => [e.type, e.deviceSeq])).toEqual([
      ['motion', 41],
      ['heartbeat', 42],
      ['motion', 43],
    ]);
    expect(all[1]).toMatchObject({ battery: 77, fw: '1.2.3' });
    expect(all[1]!.seq).toBeGreaterThan(all[0]!.seq);
    const bad = await apiCall(h.baseUrl, token, 'GET', '/api/households/home-1-01/timeline?heartbeats=maybe');
    expect(bad.status).toBe(400);
  });
});

describe('SLA report', () => {
  it('counts accepted-within-3 and on-site-within-15 per grid and responder, breaches, and exports CSV', async () => {
    const clock = new ManualClock(DAY);
    h = await startHarness({ clock });
    const radar1 = await device(h, clock, 'home-1-01', 'fall');
    const radar2 = await device(h, clock, 'home-2-01', 'fall');
    await radar1.send({ type: 'fall', state: 'detected' });
    await radar2.send({ type: 'fall', state: 'detected' });
    const dispatcher = await login(h.baseUrl, 'dispatcher');
    const open = async () =>
      (
        await apiCall<{ alerts: { id: string; gridId: string }[] }>(
          h!.baseUrl,
          dispatcher,
          'GET',
          '/api/alerts?state=open',
        )
      ).body.alerts;
    const alerts = await eventually(async () => ((await open()).length === 2 ? open() : undefined));
    const a1 = alerts.find((a) => a.gridId === 'grid-1')!;
    const worker = await login(h.baseUrl, 'g1-worker');
    clock.advance(minutes(2));
    expect((await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${a1.id}/accept`, {})).status).toBe(200);
    clock.advance(minutes(8));
    expect((await apiCall(h.baseUrl, worker, 'POST', `/api/alerts/${a1.id}/on-site`, {})).status).toBe(200);
    // Grid 2's fall is never accepted: at 15 minutes it is a breach.
    clock.advance(minutes(6));
    await eventually(async () =>
      (await open()).some(
        (a) => a.gridId === 'grid-2' && (a as unknown as { slaBreached: boolean }).slaBreached,
      ),
    );

    const supervisor = await login(h.baseUrl, 'supervisor');
    type Row = {
      key: string;
      alerts: number;
      acceptedWithin3: number;
      acceptedShare: number;
      onSiteWithin15: number;
      acceptMedianMs: number;
      breaches: number;
    };
    const r = await apiCall<{ total: Row; byGrid: Row[]; byResponder: Row[]; byShift: Row[] }>(
      h.baseUrl,
      supervisor,
      'GET',
      `/api/reports/sla?from=${DAY - 60_000}&to=${DAY + 3_600_000}`,
    );
    expect(r.status).toBe(200);
    expect(r.body.total).toMatchObject({
      alerts: 2,
      acceptedWithin3: 1,
      acceptedShare: 0.5,
      onSiteWithin15: 1,
      breaches: 1,
    });
    expect(r.body.byGrid.map((g) => [g.key, g.acceptedWithin3, g.breaches])).toEqual([
      ['grid-1', 1, 0],
      ['grid-2', 0, 1],
    ]);
    expect(r.body.byResponder.find((x) => x.key === 'grid-1-worker')?.acceptMedianMs).toBe(2 * 60_000);
    expect(r.body.byShift.map((s) => s.key)).toEqual(['day']);

    const csv = await fetch(
      `${h.baseUrl}/api/reports/sla?from=${DAY - 60_000}&to=${DAY + 3_600_000}&format=csv`,
      {
        headers: { authorization: `Bearer ${supervisor}` },
      },
    );
    expect(csv.headers.get('content-type')).toContain('text/csv');
    const text = (await csv.text()).replace(/^\uFEFF/, '').trim();
    const lines = text.split('\r\n');
    // Every row as wide as the header, read as CSV (a quoted cell may hold a comma).
    const rows = parseCsv(text) as string[][];
    expect(rows.every((r) => r.length === rows[0]!.length)).toBe(true);
    expect(lines.find((l) => l.startsWith('grid,grid-2,'))).toMatch(/^grid,grid-2,[^,]+,1,0,0,/);
    expect(lines.some((l) => l.startsWith('device_uptime,grid-1,'))).toBe(true);
  });

  it('refuses a report range that ends before it starts', async () => {
    h = await startHarness({ clock: new ManualClock(DAY) });
    const r = await apiCall(
      h.baseUrl,
      await login(h.baseUrl, 'supervisor'),
      'GET',
      '/api/reports/sla?from=2026-03-10&to=2026-03-01',
    );
    expect(r.status).toBe(400);
    expect((r.body as { message: string }).message).toContain('from');
  });
});
