/**
 * Device routes (SPEC §3, §11): provisioning with a secret shown once, and device state for health views.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DEVICE_KINDS } from '../../gateway/protocol.ts';
import { hashDeviceSecret, newSecret } from '../../gateway/secrets.ts';
import { deviceInput, roomInput } from '../registry.ts';
import { type ApiDeps, accessScope, HttpError, requireStaff } from './http.ts';
import { idParam } from './params.ts';
import { isLow, LOW_BATTERY } from './reports.ts';
import type { DeviceFilter, DeviceListView } from './types.ts';

/** The device list's filters (SPEC §3 device health): what an admin looks for across households. */
export const DEVICE_FILTERS = [
  'offline',
  'low_battery',
  'rejecting',
  'never_seen',
  'disabled',
] as const satisfies readonly DeviceFilter[];

export const deviceRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { store } = deps;
    const audit = (actor: string, action: string, target: string, detail: Record<string, unknown> = {}) =>
      store.audit({ at: deps.clock.now(), actor, action, target, detail });

    app.post('/api/devices', { schema: { body: deviceInput } }, async (req, reply) => {
      const actor = requireStaff(req, 'registry.write');
      if (!(await store.getHousehold(req.body.homeId))) {
        throw new HttpError(400, 'bad_request', `body.homeId: no household ${req.body.homeId}`, {
          field: 'body.homeId',
        });
      }
      if (await store.getDeviceState(req.body.id))
        throw new HttpError(409, 'conflict', `device ${req.body.id} exists`);
      const secret = newSecret();
      await store.createDevice({
        ...req.body,
        secretHash: hashDeviceSecret(secret),
        createdAt: deps.clock.now(),
      });
      await deps.directory.invalidateHome(req.body.homeId);
      await audit(actor.id, 'device.provision', req.body.id);
      // The secret is shown once, here, and stored only as a salted hash.
      return reply.code(201).send({ id: req.body.id, secret });
    });
    /**
     * Every live device of the households this person may see, across households, with its grid and
     * address, narrowed by one filter (offline, low battery, rejecting messages, never seen, disabled).
     */
    app.get(
      '/api/devices',
      {
        schema: {
          querystring: z.object({
            filter: z.enum(DEVICE_FILTERS).optional(),
            grid: z.string().max(64).optional(),
            household: z.string().max(64).optional(),
            limit: z.coerce.number().int().min(1).max(10_000).default(2_000),
          }),
        },
      },
      async (req): Promise<DeviceListView> => {
        const staff = requireStaff(req, 'registry.read');
        const gridIds = (await accessScope(deps, staff)).grids;
        const limit = req.query.limit;
        // One more than asked says whether there are more (the page says so rather than load them all).
        const rows = await store.queryDevices({
          gridIds,
          grid: req.query.grid,
          homeId: req.query.household,
          select: req.query.filter,
          lowBattery: LOW_BATTERY,
          limit: limit + 1,
        });
        return {
          devices: rows.slice(0, limit).map((d) => ({ ...d, lowBattery: isLow(d) })),
          more: rows.length > limit,
        };
      },
    );

    /** Corrects what an admin entered (SPEC §3): the device's room from the vocabulary and its kind. */
    app.patch(
      '/api/devices/:id',
      {
        schema: {
          params: idParam,
          body: z.strictObject({ room: roomInput.optional(), kind: z.enum(DEVICE_KINDS).optional() }),
        },
      },
      async (req) => {
        const actor = requireStaff(req, 'registry.write');
        const before = await store.getDeviceState(req.params.id);
        if (!before || (await store.retiredAt('device', before.id)) !== null)
          throw new HttpError(404, 'not_found', `no device ${req.params.id}`);
        const { room, kind } = req.body;
        if (room !== undefined) await store.setDeviceRoom(before.id, room);
        if (kind !== undefined && kind !== before.kind) {
          await store.setDeviceKind(before.id, kind);
          // The gateway checks event types against the kind read at connect (DEV-04): reconnect.
          deps.revokeDevice?.(before.id);
        }
        await deps.directory.invalidateHome(before.homeId);
        await audit(actor.id, 'device.update', before.id, {
          fields: Object.keys(req.body),
          ...(room !== undefined ? { room: { from: before.room, to: room } } : {}),
          ...(kind !== undefined ? { kind: { from: before.kind, to: kind } } : {}),
        });
        return { device: await store.getDeviceState(before.id) };
      },
    );

    app.get('/api/devices/:id', { schema: { params: idParam } }, async (req) => {
      const staff = requireStaff(req);
      const d = await store.getDeviceState(req.params.id);
      const h = d ? await store.getHousehold(d.homeId) : null;
      if (!d || !h || !(await accessScope(deps, staff)).has(h.gridId))
        throw new HttpError(404, 'not_found', `no device ${req.params.id}`);
      // SPEC §3: rejected messages counted per device, here by reason too.
      return { device: d, rejectedByReason: await store.deviceRejections(d.id) };
    });

    // A person chooses a device's room from the vocabulary (SPEC §3), e.g. one the upgrade could not map.
    app.post(
      '/api/devices/:id/room',
      { schema: { params: idParam, body: z.strictObject({ room: roomInput }) } },
      async (req) => {
        const actor = requireStaff(req, 'registry.write');
        const before = await store.getDeviceState(req.params.id);
        if (!before || !(await store.setDeviceRoom(req.params.id, req.body.room)))
          throw new HttpError(404, 'not_found', `no device ${req.params.id}`);
        await deps.directory.invalidateHome(before.homeId);
        await audit(actor.id, 'device.room', req.params.id, { from: before.room, to: req.body.room });
        return { device: await store.getDeviceState(req.params.id) };
      },
    );

    // Disable / enable: a disabled device gets CONNACK 5 and its live session ends now (SPEC §3).
    for (const [action, disabled] of [
      ['disable', true],
      ['enable', false],
    ] as const) {
      app.post(`/api/devices/:id/${action}`, { schema: { params: idParam } }, async (req) => {
        const actor = requireStaff(req, 'registry.write');
        if (!(await store.setDeviceDisabled(req.params.id, disabled)))
          throw new HttpError(404, 'not_found', `no device ${req.params.id}`);
        if (disabled) deps.revokeDevice?.(req.params.id);
        await audit(actor.id, `device.${action}`, req.params.id);
        return { device: await store.getDeviceState(req.params.id) };
      });
    }

    // Rotation: a new secret, shown once; the old one stops working at once, its session included.
    app.post('/api/devices/:id/rotate-secret', { schema: { params: idParam } }, async (req) => {
      const actor = requireStaff(req, 'registry.write');
      const secret = newSecret();
      if (!(await store.rotateDeviceSecret(req.params.id, hashDeviceSecret(secret))))
        throw new HttpError(404, 'not_found', `no device ${req.params.id}`);
      deps.revokeDevice?.(req.params.id);
      await audit(actor.id, 'device.rotate_secret', req.params.id);
      return { id: req.params.id, secret };
    });
  };
