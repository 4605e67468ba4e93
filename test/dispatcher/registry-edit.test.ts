/**
 * Admins correct what they entered (DATA-04, SPEC §4): the device list across households and its filters,
 * a device's kind and room, and retiring grids, households, staff and devices with their history kept.
 * Real service, real MQTT devices, on SQLite and on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert, DeviceListView, Grid, HouseholdFile, Staff } from '../../dispatcher/api/types.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { instant } from '../../kernel/time.ts';
import { apiCall, eventually, type Harness, login, startHarness } from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { device, raiseFall } from './dispatch-helpers.ts';

const DAY = instant(Date.parse('2026-03-10T10:00:00+08:00'));
const ADMIN_PASSWORD = 'admin-password-365';

for (const { backend, name, skip } of BACKENDS) {
  describe.skipIf(skip)(`editing and retiring the registry (${name})`, () => {
    const clock = new ManualClock(DAY);
    const closers: { close(): unknown }[] = [];
    let h: Harness;
    let admin: string;
    const call = <T = Record<string, unknown>>(method: string, path: string, body?: unknown) =>
      apiCall<T>(h.baseUrl, admin, method, path, body);
    const deviceIds = async (query = '') =>
      (await call<DeviceListView>('GET', `/api/devices${query}`)).body.devices.map((d) => d.id);

    beforeAll(async () => {
      h = await startHarness({ clock, grids: 2, perGrid: 2, backend });
      admin = await login(h.baseUrl, 'admin', ADMIN_PASSWORD);
    }, 60_000);
    afterAll(async () => {
      for (const c of closers) await c.close();
      await h?.close();
    });

    it('lists devices across households and narrows them to never seen, low battery, offline and disabled', async () => {
      const all = await deviceIds();
      expect(all.sort()).toEqual(h.devices.map((d) => d.id).sort());
      // Nothing has connected yet: every device is never seen, none offline.
      expect((await deviceIds('?filter=never_seen')).sort()).toEqual(all.sort());
      expect(await deviceIds('?filter=offline')).toEqual([]);
      // One household's devices; a page shorter than the list says there are more.
      const home = h.devices.filter((d) => d.homeId === 'home-1-02').map((d) => d.id);
      expect((await deviceIds('?household=home-1-02')).sort()).toEqual(home.sort());
      const page = (await call<DeviceListView>('GET', '/api/devices?limit=2')).body;
      expect([page.devices.length, page.more]).toEqual([2, true]);
      expect((await call<DeviceListView>('GET', `/api/devices?limit=${all.length}`)).body.more).toBe(false);

      const radar = await device(h, clock, 'home-1-01', 'fall');
      await radar.send({ type: 'heartbeat', battery: 9 });
      const radarId = h.devices.find((d) => d.homeId === 'home-1-01' && d.kind === 'fall')!.id;
      await eventually(async () => (await deviceIds('?filter=low_battery')).includes(radarId), 10_000, 'low');
      expect(await deviceIds('?filter=never_seen')).not.toContain(radarId);
      const row = (await call<DeviceListView>('GET', '/api/devices?filter=low_battery')).body.devices[0]!;
      expect(row).toMatchObject({ id: radarId, gridId: 'grid-1', battery: 9, lowBattery: true });

      await radar.disconnect();
      await eventually(async () => (await deviceIds('?filter=offline')).includes(radarId), 10_000, 'offline');
      expect(await deviceIds('?grid=grid-2')).not.toContain(radarId);

      const door = h.devices.find((d) => d.homeId === 'home-1-02' && d.kind === 'door')!.id;
      expect((await call('POST', `/api/devices/${door}/disable`)).status).toBe(200);
      expect(await deviceIds('?filter=disabled')).toEqual([door]);
      expect((await call('POST', `/api/devices/${door}/enable`)).status).toBe(200);
    });

    it('corrects a device: its room from the vocabulary and its kind, audited; free text is refused', async () => {
      const motion = h.devices.find(
        (d) => d.homeId === 'home-1-02' && d.kind === 'motion' && d.room !== 'bathroom',
      )!;
      const id = motion.id;
      const changed = await call<{ device: { room: string; kind: string } }>('PATCH', `/api/devices/${id}`, {
        room: 'bathroom',
        kind: 'fall',
      });
      expect(changed.status).toBe(200);
      expect(changed.body.device).toMatchObject({ room: 'bathroom', kind: 'fall' });
      expect((await call('PATCH', `/api/devices/${id}`, { room: '卫生间' })).status).toBe(400);
      expect((await call('PATCH', `/api/devices/${id}`, { kind: 'camera' })).status).toBe(400);
      const audit = await h.store.queryAudit({ action: 'device.update', target: id, limit: 10 });
      expect(audit.map((e) => e.detail)).toEqual([
        {
          fields: ['room', 'kind'],
          room: { from: motion.room, to: 'bathroom' },
          kind: { from: 'motion', to: 'fall' },
        },
      ]);
    });

    it('retires a device: gone from the list, refused at connect, still readable, its id never reused', async () => {
      const identity = h.devices.find((d) => d.homeId === 'home-2-02' && d.kind === 'door')!;
      expect((await call('POST', `/api/devices/${identity.id}/retire`)).status).toBe(200);
      expect(await deviceIds()).not.toContain(identity.id);
      expect((await call('GET', `/api/devices/${identity.id}`)).status).toBe(200);
      await expect(device(h, clock, 'home-2-02', 'door')).rejects.toThrow();
      const again = await call('POST', '/api/devices', {
        id: identity.id,
        homeId: 'home-2-02',
        kind: 'door',
        room: 'entrance',
      });
      expect(again.status).toBe(409);
      expect((await call('POST', `/api/devices/${identity.id}/retire`)).status).toBe(404);
    });

    it('keeps a grid while it has households and a household while it has open alerts; then retires both, history kept', async () => {
      expect((await call('POST', '/api/grids/grid-2/retire')).status).toBe(409);
      const alert = await raiseFall(h, clock, 'home-2-01', closers);
      expect((await call('POST', '/api/households/home-2-01/retire')).status).toBe(409);
      expect((await call('POST', `/api/alerts/${alert.id}/cancel`, { reason: 'test' })).status).toBe(200);

      for (const home of ['home-2-01', 'home-2-02'])
        expect((await call('POST', `/api/households/${home}/retire`)).status).toBe(200);
      const homes = (await call<{ households: HouseholdFile[] }>('GET', '/api/households')).body.households;
      expect(homes.map((x) => x.id)).not.toContain('home-2-01');
      // Its file and its alerts stay readable for the history that names them.
      const file = await call<{ alerts: Alert[] }>('GET', '/api/households/home-2-01');
      expect(file.status).toBe(200);
      expect(file.body.alerts.map((a) => a.id)).toContain(alert.id);
      expect((await call('GET', `/api/alerts/${alert.id}`)).status).toBe(200);
      // Its devices went with it.
      expect((await deviceIds()).filter((d) => d.startsWith('home-2-'))).toEqual([]);

      expect((await call('POST', '/api/grids/grid-2/retire')).status).toBe(200);
      const grids = (await call<{ grids: Grid[] }>('GET', '/api/grids')).body.grids;
      expect(grids.map((g) => g.id)).toEqual(['grid-1']);
      const back = await call('POST', '/api/grids', {
        id: 'grid-2',
        name: 'x',
        community: 'y',
        leaderId: null,
      });
      expect(back.status).toBe(409);
      // An import may not revive or reuse a retired id either: the row is refused, nothing applied.
      const imported = await call<{ errors: { row: string; field: string; message: string }[] }>(
        'POST',
        '/api/registry/import',
        { grids: [{ id: 'grid-2', name: 'x', community: 'y', leaderId: null }] },
      );
      expect(imported.status).toBe(400);
      expect(imported.body.errors).toEqual([
        expect.objectContaining({
          row: 'grids[0]',
          field: 'id',
          message: 'grid-2 was retired; its id is not reused',
        }),
      ]);
      expect((await call<{ grids: Grid[] }>('GET', '/api/grids')).body.grids.map((g) => g.id)).toEqual([
        'grid-1',
      ]);
      const me = (await call<{ staff: Staff }>('GET', '/api/me')).body.staff;
      const audit = await h.store.queryAudit({ action: 'grid.retire', limit: 10 });
      expect(audit.map((e) => [e.actor, e.target])).toEqual([[me.id, 'grid-2']]);
    });

    it('retires a person: no login, off the staff list and the roster picker; nobody retires themselves', async () => {
      const token = await login(h.baseUrl, 'g1-buddy');
      expect((await call('POST', '/api/staff/grid-1-buddy/retire')).status).toBe(200);
      expect((await apiCall(h.baseUrl, token, 'GET', '/api/session')).status).toBe(401);
      await expect(login(h.baseUrl, 'g1-buddy')).rejects.toThrow();
      const staff = (await call<{ staff: Staff[] }>('GET', '/api/staff')).body.staff;
      expect(staff.map((s) => s.id)).not.toContain('grid-1-buddy');
      expect((await call('PATCH', '/api/staff/grid-1-buddy', { phone: '1' })).status).toBe(404);
      const me = (await call<{ staff: Staff }>('GET', '/api/me')).body.staff;
      expect((await call('POST', `/api/staff/${me.id}/retire`)).status).toBe(409);
    });
  });
}
