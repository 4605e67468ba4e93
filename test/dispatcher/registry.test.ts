/**
 * The household file, staff and roster through the API (SPEC §4): validation with the field named, the
 * away status, staff roles and grids, and CSV/JSON import and export (all-or-nothing, audited).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Household, ImportProblem, Staff } from '../../dispatcher/api/types.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { hours, instant } from '../../kernel/time.ts';
import { apiCall, type Harness, login, startHarness } from '../helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function admin(): Promise<string> {
  h = await startHarness({ clock: new ManualClock(DAY) });
  return login(h.baseUrl, 'admin', 'admin-password-365');
}

async function csv(token: string, method: string, path: string, body?: string) {
  const res = await fetch(`${h!.baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'text/csv' } : {}) },
    body,
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, text: bytes.toString('utf8'), bytes };
}

describe('the household file through the API', () => {
  it('validates a household and names the bad field; an unknown grid is refused', async () => {
    const t = await admin();
    const base = {
      id: 'home-9-01',
      gridId: 'grid-1',
      address: { building: '9号楼', unit: '1单元', room: '101' },
      residents: [{ name: '王秀英', age: 84, phone: '13800000000', healthNotes: '高血压' }],
      contacts: [{ name: '王强', relation: '儿子', phone: '13900000000' }],
      accessNotes: '钥匙在邻居 102',
    };
    expect((await apiCall(h!.baseUrl, t, 'POST', '/api/households', base)).status).toBe(201);
    const bad = await apiCall<{ message: string }>(h!.baseUrl, t, 'POST', '/api/households', {
      ...base,
      residents: [{ name: '王秀英', age: 200 }],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/residents\.0\.age/);
    const noGrid = await apiCall(h!.baseUrl, t, 'POST', '/api/households', { ...base, gridId: 'grid-9' });
    expect(noGrid.status).toBe(400);
    const got = await apiCall<{ household: Household }>(h!.baseUrl, t, 'GET', '/api/households/home-9-01');
    expect(got.body.household.contacts[0]).toMatchObject({ relation: '儿子' });
  });

  it('sets and clears the away status with an end date in the future', async () => {
    const t = await admin();
    const past = await apiCall(h!.baseUrl, t, 'POST', '/api/households/home-1-01/away', {
      until: DAY - 1,
      reason: 'hospital',
    });
    expect(past.status).toBe(400);
    const until = DAY + hours(24 * 7);
    const away = await apiCall(h!.baseUrl, t, 'POST', '/api/households/home-1-01/away', {
      until: new Date(until).toISOString(),
      reason: 'hospital',
    });
    expect(away.status).toBe(200);
    expect(await h!.store.getHousehold('home-1-01')).toMatchObject({
      awayUntil: until,
      awayReason: 'hospital',
    });
    await apiCall(h!.baseUrl, t, 'DELETE', '/api/households/home-1-01/away');
    expect(await h!.store.getHousehold('home-1-01')).toMatchObject({ awayUntil: null, awayReason: null });
    const audit = await h!.store.queryAudit({ target: 'home-1-01', limit: 10 });
    expect(audit.map((e) => e.action)).toEqual(['household.back', 'household.away']);
  });

  it('changes a staff member’s roles and grids, refusing a grid that does not exist', async () => {
    const t = await admin();
    const ok = await apiCall<{ staff: Staff }>(h!.baseUrl, t, 'PATCH', '/api/staff/grid-1-buddy', {
      roles: ['volunteer', 'building_leader'],
      gridIds: ['grid-1', 'grid-2'],
    });
    expect(ok.body.staff).toMatchObject({
      roles: ['volunteer', 'building_leader'],
      gridIds: ['grid-1', 'grid-2'],
    });
    expect(JSON.stringify(ok.body)).not.toMatch(/passwordHash/);
    const bad = await apiCall<{ message: string }>(h!.baseUrl, t, 'PATCH', '/api/staff/grid-1-buddy', {
      gridIds: ['grid-7'],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/grid-7/);
    const dispatcher = await login(h!.baseUrl, 'dispatcher');
    expect(
      (await apiCall(h!.baseUrl, dispatcher, 'PATCH', '/api/staff/grid-1-buddy', { name: 'x' })).status,
    ).toBe(403);
  });
});

describe('import and export', () => {
  it('exports households as CSV and imports the same file back unchanged; the export is audited', async () => {
    const t = await admin();
    const before = await h!.store.listHouseholds();
    const out = await csv(t, 'GET', '/api/registry/export/households.csv');
    expect(out.status).toBe(200);
    // A UTF-8 byte-order mark first, so spreadsheet programs read the Chinese text correctly.
    expect([...out.bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(out.text.split('\n')[0]).toMatch(/^\uFEFFid,gridId,building/);
    expect(out.text).toContain(before[0]!.accessNotes);
    const back = await csv(t, 'POST', '/api/registry/import/households.csv', out.text);
    expect(back.status).toBe(200);
    expect(JSON.parse(back.text).imported.households).toBe(before.length);
    expect(await h!.store.listHouseholds()).toEqual(before);
    const audit = await h!.store.queryAudit({ action: 'registry.', limit: 10 });
    expect(audit.map((e) => [e.action, e.target])).toEqual([
      ['registry.import', 'households'],
      ['registry.export', 'households'],
    ]);
  });

  it('imports staff and a roster from CSV, and rejects a file with a bad row without writing anything', async () => {
    const t = await admin();
    const staff = [
      'id,name,phone,roles,gridIds,username,password',
      'grid-1-night2,赵六,13700000000,property_duty,grid-1,g1-night2,night-duty-pass',
    ].join('\n');
    expect((await csv(t, 'POST', '/api/registry/import/staff.csv', staff)).status).toBe(200);
    const roster = ['gridId,shift,weekdays,staffIds', 'grid-1,night,,grid-1-social;grid-1-night2'].join('\n');
    expect((await csv(t, 'POST', '/api/registry/import/roster.csv', roster)).status).toBe(200);
    expect(await h!.store.listRoster('grid-1')).toEqual([
      { gridId: 'grid-1', shift: 'night', weekdays: [], staffIds: ['grid-1-social', 'grid-1-night2'] },
    ]);
    expect(await login(h!.baseUrl, 'g1-night2', 'night-duty-pass')).toBeTruthy();

    const bad = [
      'id,name,phone,roles,gridIds,username,password',
      'ok-1,A,1,volunteer,grid-1,ok-1,password-one',
      'bad-1,B,1,astronaut,grid-1,bad-1,password-two',
      'bad-2,C,1,volunteer,grid-8,bad-2,',
    ].join('\n');
    const r = await csv(t, 'POST', '/api/registry/import/staff.csv', bad);
    expect(r.status).toBe(400);
    const problems = JSON.parse(r.text).errors as ImportProblem[];
    expect(problems.map((p) => [p.row, p.field])).toEqual([
      ['3', 'roles.0'],
      ['4', 'gridIds'],
      ['4', 'password'],
    ]);
    expect(await h!.store.getStaff('ok-1')).toBeNull();
    const unknownColumn = await csv(t, 'POST', '/api/registry/import/grids.csv', 'id,name,colour\ng,n,red');
    expect(unknownColumn.status).toBe(400);
  });

  it('round-trips the whole registry as JSON without passwords', async () => {
    const t = await admin();
    const out = await apiCall<Record<string, unknown[]>>(h!.baseUrl, t, 'GET', '/api/registry/export');
    expect(Object.keys(out.body).sort()).toEqual([
      'devices',
      'grids',
      'households',
      'overrides',
      'roster',
      'staff',
    ]);
    expect(out.body.devices).toContainEqual({
      id: 'home-1-01-door',
      homeId: 'home-1-01',
      kind: 'door',
      room: 'entrance',
    });
    expect(JSON.stringify(out.body)).not.toMatch(/password/i);
    // Existing staff need no password on re-import.
    const back = await apiCall<{ imported: Record<string, number> }>(
      h!.baseUrl,
      t,
      'POST',
      '/api/registry/import',
      out.body,
    );
    expect(back.status).toBe(200);
    expect(back.body.imported).toMatchObject({
      grids: 2,
      households: 4,
      roster: 4,
      devices: out.body.devices!.length,
    });
    const bad = await apiCall<{ errors: ImportProblem[] }>(h!.baseUrl, t, 'POST', '/api/registry/import', {
      households: [{ id: 'x', gridId: 'nope', address: { building: '1', room: '1' } }],
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual([
      {
        row: 'households[0]',
        field: 'gridId',
        message: 'no grid nope',
        text: { zh: '没有网格 nope', en: 'no grid nope' },
      },
    ]);
    const responder = await login(h!.baseUrl, 'g1-worker');
    expect((await apiCall(h!.baseUrl, responder, 'GET', '/api/registry/export')).status).toBe(403);
  });

  it('reports every problem of a file in one round: a row’s schema errors beside its unknown grid', async () => {
    const t = await admin();
    const r = await apiCall<{ errors: ImportProblem[] }>(h!.baseUrl, t, 'POST', '/api/registry/import', {
      households: [{ id: 'x', gridId: 'grid-9', address: { building: '1', room: '1' }, residents: [{}] }],
      staff: [{ id: 's-1', name: '', roles: ['astronaut'], gridIds: ['grid-8'], username: 's-1' }],
      overrides: [{ gridId: 'grid-7', date: '2026-03-11', shift: 'day', kind: 'cover' }],
    });
    expect(r.status).toBe(400);
    expect(r.body.errors.map((p) => [p.row, p.field])).toEqual([
      ['households[0]', 'residents.0.name'],
      ['staff[0]', 'name'],
      ['staff[0]', 'roles.0'],
      ['overrides[0]', 'replacementId'],
      ['households[0]', 'gridId'],
      ['staff[0]', 'gridIds'],
      ['overrides[0]', 'gridId'],
    ]);
    // Each in both languages, the field named.
    expect(r.body.errors[0]!.text).toEqual({
      zh: '「居民 1 · 姓名」必填',
      en: 'residents 1 · name: required',
    });
    expect(r.body.errors[3]!.text.zh).toBe('「顶班人员」代班须填写顶班的人员');
    expect(r.body.errors[4]!.text).toEqual({ zh: '没有网格 grid-9', en: 'no grid grid-9' });
  });

  it('exports devices without secrets and the roster overrides, and imports them back once', async () => {
    const t = await admin();
    const leave = await apiCall(h!.baseUrl, t, 'POST', '/api/roster/overrides', {
      gridId: 'grid-1',
      date: '2026-03-11',
      shift: 'day',
      kind: 'leave',
      staffId: 'grid-1-worker',
    });
    expect(leave.status).toBe(201);
    const out = await apiCall<{ overrides: unknown[]; devices: Record<string, unknown>[] }>(
      h!.baseUrl,
      t,
      'GET',
      '/api/registry/export',
    );
    expect(out.body.overrides).toEqual([
      expect.objectContaining({
        gridId: 'grid-1',
        kind: 'leave',
        staffId: 'grid-1-worker',
        replacementId: null,
      }),
    ]);
    for (const d of out.body.devices) expect(Object.keys(d).sort()).toEqual(['homeId', 'id', 'kind', 'room']);
    const back = await apiCall<{ imported: Record<string, number> }>(
      h!.baseUrl,
      t,
      'POST',
      '/api/registry/import',
      {
        overrides: out.body.overrides,
      },
    );
    expect(back.body.imported.overrides).toBe(1);
    expect(await h!.store.listOverrides('grid-1')).toHaveLength(1);
    const file = await csv(t, 'GET', '/api/registry/export/overrides.csv');
    expect(file.text).toMatch(/^\uFEFFid,gridId,date,shift,kind,staffId,replacementId\n/);
    expect(file.text).toContain(',grid-1,2026-03-11,day,leave,grid-1-worker,');
    const devices = await csv(t, 'GET', '/api/registry/export/devices.csv');
    expect(devices.text).not.toMatch(/secret/i);
    expect((await csv(t, 'POST', '/api/registry/import/overrides.csv', file.text)).status).toBe(200);
    expect(await h!.store.listOverrides('grid-1')).toHaveLength(1);
  });

  it('refuses a file in which two new staff claim one username, before writing anything', async () => {
    const t = await admin();
    const person = (id: string) => ({
      id,
      name: 'Li',
      roles: ['volunteer'],
      gridIds: ['grid-1'],
      username: 'same-name',
      password: 'long-enough-password',
    });
    const r = await apiCall<{ errors: ImportProblem[] }>(h!.baseUrl, t, 'POST', '/api/registry/import', {
      grids: [{ id: 'grid-new', name: 'New', community: 'c' }],
      staff: [person('vol-a'), person('vol-b')],
    });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual([
      {
        row: 'staff[1]',
        field: 'username',
        message: 'username same-name is taken',
        text: { zh: '用户名 same-name 已被使用', en: 'username same-name is taken' },
      },
    ]);
    expect(await h!.store.getGrid('grid-new')).toBeNull();
  });
});

describe('the roster through the API', () => {
  it('refuses roster lines and overrides that name unknown staff or miss who is off or who covers', async () => {
    const t = await admin();
    const post = (path: string, body: unknown) =>
      apiCall<{ message: string }>(h!.baseUrl, t, 'POST', path, body);
    const unknown = await post('/api/roster', {
      gridId: 'grid-1',
      entries: [{ shift: 'day', staffIds: ['ghost'] }],
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toMatch(/ghost/);
    const o = { gridId: 'grid-1', date: '2026-03-10', shift: 'day' };
    expect((await post('/api/roster/overrides', { ...o, kind: 'leave' })).body.message).toMatch(/staffId/);
    expect((await post('/api/roster/overrides', { ...o, kind: 'cover' })).body.message).toMatch(
      /replacementId/,
    );
    expect(
      (await post('/api/roster/overrides', { ...o, kind: 'cover', replacementId: 'ghost' })).status,
    ).toBe(400);
    const swap = await post('/api/roster/overrides', {
      ...o,
      kind: 'swap',
      staffId: 'grid-1-worker',
      replacementId: 'grid-2-worker',
    });
    expect(swap.status).toBe(201);
    const cover = await apiCall<{ staff: { id: string }[] }>(
      h!.baseUrl,
      t,
      'GET',
      '/api/households/home-1-01/coverage',
    );
    expect(cover.body.staff.map((s) => s.id)).toEqual(['grid-2-worker', 'grid-1-leader', 'grid-1-buddy']);
  });
});
