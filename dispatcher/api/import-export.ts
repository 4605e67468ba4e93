/**
 * Registry import and export (SPEC §4: admins import and export the household file, its devices, staff and
 * roster as CSV or JSON). An import is validated in full first — every problem is reported with its row and
 * field — and nothing is written unless all rows are good. Exports contain access notes, so each export is
 * audited. A device's room is a room of the SPEC §3 vocabulary: the import maps the names people type
 * (卫生间 → bathroom, see rooms.ts) and refuses the rest; a new device gets a secret, shown in the result
 * once; an existing one may change room.
 */

import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DEVICE_KINDS } from '../../gateway/protocol.ts';
import { hashDeviceSecret, hashPassword, newSecret } from '../../gateway/secrets.ts';
import { newId } from '../../kernel/ids.ts';
import { familyOptInChanges } from '../notify/family.ts';
import { passwordProblem } from '../passwords.ts';
import { gridInput, householdInput, id, STAFF_ROLES } from '../registry.ts';
import { type Room, roomFromText } from '../rooms.ts';
import type { RetiredKind, Store } from '../store/store.ts';
import {
  type IssueFacts,
  issueTexts,
  overrideNeedsTexts,
  passwordTexts,
  rowProblemTexts,
  type Texts,
  unknownRoomTexts,
} from '../words.ts';
import { type ApiDeps, HttpError, requireStaff } from './http.ts';
import type { ImportProblem, ImportResult } from './types.ts';

const staffImport = z.strictObject({
  id,
  name: z.string().min(1).max(100),
  phone: z.string().max(40).default(''),
  roles: z.array(z.enum(STAFF_ROLES)).min(1),
  gridIds: z.array(id).default([]),
  username: z.string().min(1).max(64),
  /** Required for new staff; when given for existing staff it replaces the password. */
  password: z.string().min(8).max(200).optional(),
  disabled: z.boolean().optional(),
});

/** A device row: the room as typed, mapped to the vocabulary (or refused with the row). */
const deviceImport = z
  .strictObject({
    id,
    homeId: id,
    kind: z.enum(DEVICE_KINDS),
    room: z.string().max(64),
  })
  .transform((d, ctx) => {
    const room = roomFromText(d.room);
    if (room === null) {
      const texts = unknownRoomTexts(d.room);
      ctx.addIssue({ code: 'custom', path: ['room'], message: texts.en, params: { texts } });
      return z.NEVER;
    }
    return { ...d, room: room as Room };
  });

const rosterLine = z.strictObject({
  gridId: id,
  shift: z.enum(['day', 'night']),
  weekdays: z.array(z.number().int().min(1).max(7)).default([]),
  staffIds: z.array(id).min(1),
});

/**
 * A roster override (leave, cover, swap: SPEC §4). Its id is kept from an export, so a file imported twice
 * replaces the override rather than adding it again.
 */
const overrideLine = z
  .strictObject({
    id: id.optional(),
    gridId: id,
    date: z.iso.date(),
    shift: z.enum(['day', 'night']),
    kind: z.enum(['leave', 'cover', 'swap']),
    staffId: id.nullable().default(null),
    replacementId: id.nullable().default(null),
  })
  .superRefine((o, ctx) => {
    // Leave names who is off, cover who stands in, a swap both (as POST /api/roster/overrides).
    if ((o.kind === 'leave' || o.kind === 'swap') && !o.staffId)
      ctx.addIssue({
        code: 'custom',
        path: ['staffId'],
        message: `required for ${o.kind}`,
        params: { texts: overrideNeedsTexts(o.kind, 'staffId') },
      });
    if ((o.kind === 'cover' || o.kind === 'swap') && !o.replacementId)
      ctx.addIssue({
        code: 'custom',
        path: ['replacementId'],
        message: `required for ${o.kind}`,
        params: { texts: overrideNeedsTexts(o.kind, 'replacementId') },
      });
  });

export const registryFile = z.strictObject({
  grids: z.array(z.unknown()).max(10_000).default([]),
  households: z.array(z.unknown()).max(100_000).default([]),
  staff: z.array(z.unknown()).max(10_000).default([]),
  roster: z.array(z.unknown()).max(10_000).default([]),
  devices: z.array(z.unknown()).max(200_000).default([]),
  overrides: z.array(z.unknown()).max(100_000).default([]),
});

type Kind = 'grids' | 'households' | 'staff' | 'roster' | 'devices' | 'overrides';
const KINDS: Kind[] = ['grids', 'households', 'staff', 'roster', 'devices', 'overrides'];
const CSV_KINDS = [
  'grids.csv',
  'households.csv',
  'staff.csv',
  'roster.csv',
  'devices.csv',
  'overrides.csv',
] as const;

interface Parsed {
  grids: z.output<typeof gridInput>[];
  households: z.output<typeof householdInput>[];
  staff: z.output<typeof staffImport>[];
  roster: z.output<typeof rosterLine>[];
  devices: z.output<typeof deviceImport>[];
  overrides: z.output<typeof overrideLine>[];
}

const SCHEMA = {
  grids: gridInput,
  households: householdInput,
  staff: staffImport,
  roster: rosterLine,
  devices: deviceImport,
  overrides: overrideLine,
};
const emptyRaw = (): Record<Kind, unknown[]> => ({
  grids: [],
  households: [],
  staff: [],
  roster: [],
  devices: [],
  overrides: [],
});

const oneId = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
const someIds = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x !== '') : [];
const field = (row: unknown, name: string): unknown =>
  typeof row === 'object' && row !== null ? (row as Record<string, unknown>)[name] : undefined;

/**
 * Validates every row and the references between them; returns the rows or every problem found (DATA-05):
 * one round names them all. References are read from every row, a row its schema refused too, so an unknown
 * grid is reported beside the row's other problems instead of after they are fixed.
 */
async function validate(
  store: Store,
  raw: Record<Kind, unknown[]>,
  label: (kind: Kind, i: number) => string,
): Promise<{ ok: true; value: Parsed } | { ok: false; problems: ImportProblem[] }> {
  const problems: ImportProblem[] = [];
  const refuse = (row: string, at: string, text: Texts, message = text.en) =>
    problems.push({ row, field: at, message, text });
  const out: Parsed = {
    grids: [],
    households: [],
    staff: [],
    roster: [],
    devices: [],
    overrides: [],
  };
  // Where each valid row came from, so a problem found on the parsed rows names the right row.
  const from: Record<Kind, number[]> = {
    grids: [],
    households: [],
    staff: [],
    roster: [],
    devices: [],
    overrides: [],
  };
  for (const kind of KINDS) {
    raw[kind].forEach((row, i) => {
      const r = SCHEMA[kind].safeParse(row);
      if (r.success) {
        (out[kind] as unknown[]).push(r.data);
        from[kind].push(i);
      } else
        for (const issue of r.error.issues)
          refuse(
            label(kind, i),
            issue.path.join('.') || '(row)',
            issueTexts(issue as IssueFacts),
            issue.message,
          );
    });
  }
  const row = (kind: Kind, i: number) => label(kind, from[kind][i]!);
  const [grids, staff, households] = await Promise.all([
    store.listGrids(),
    store.listStaff(),
    raw.devices.length ? store.listHouseholds() : Promise.resolve([]),
  ]);
  // What the file itself brings counts as existing, a row of it with problems of its own too: its
  // problems are reported on it, not again on every row that names it.
  const ids = (kind: Kind) => raw[kind].map((r) => oneId(field(r, 'id'))).filter((x) => x !== null);
  const gridIds = new Set([...grids.map((g) => g.id), ...ids('grids')]);
  const staffIds = new Set([...staff.map((s) => s.id), ...ids('staff')]);
  const homeIds = new Set([...households.map((h) => h.id), ...ids('households')]);
  const refs: [Kind, string, Set<string>, 'no_grid' | 'no_staff' | 'no_household'][] = [
    ['households', 'gridId', gridIds, 'no_grid'],
    ['staff', 'gridIds', gridIds, 'no_grid'],
    ['roster', 'gridId', gridIds, 'no_grid'],
    ['roster', 'staffIds', staffIds, 'no_staff'],
    ['devices', 'homeId', homeIds, 'no_household'],
    ['overrides', 'gridId', gridIds, 'no_grid'],
    ['overrides', 'staffId', staffIds, 'no_staff'],
    ['overrides', 'replacementId', staffIds, 'no_staff'],
  ];
  for (const [kind, name, known, problem] of refs)
    raw[kind].forEach((r, i) => {
      const value = field(r, name);
      for (const id of Array.isArray(value) ? someIds(value) : [oneId(value)])
        if (id !== null && !known.has(id))
          refuse(label(kind, i), name, rowProblemTexts({ kind: problem, id }));
    });
  const byUsername = new Map(staff.map((s) => [s.username, s.id]));
  const existing = new Set(staff.map((s) => s.id));
  out.staff.forEach((s, i) => {
    const weak = s.password ? passwordProblem(s.password, s.roles) : null;
    if (weak) refuse(row('staff', i), 'password', passwordTexts(weak));
    if (!existing.has(s.id) && !s.password)
      refuse(row('staff', i), 'password', rowProblemTexts({ kind: 'password_required' }));
    const owner = byUsername.get(s.username);
    if (owner && owner !== s.id)
      refuse(row('staff', i), 'username', rowProblemTexts({ kind: 'username_taken', username: s.username }));
    // Within the file too: two rows may not claim one username (the write would fail half-way).
    byUsername.set(s.username, s.id);
  });
  for (const kind of KINDS) {
    if (kind === 'roster' || kind === 'overrides') continue;
    const seen = new Set<string>();
    raw[kind].forEach((r, i) => {
      const id = oneId(field(r, 'id'));
      if (id === null) return;
      if (seen.has(id)) refuse(label(kind, i), 'id', rowProblemTexts({ kind: 'twice_in_file', id }));
      seen.add(id);
    });
  }
  // DATA-04: a retired id names its history for good; an import may neither revive nor reuse it.
  const retirable: [Kind, RetiredKind][] = [
    ['grids', 'grid'],
    ['households', 'household'],
    ['staff', 'staff'],
    ['devices', 'device'],
  ];
  for (const [kind, retired] of retirable)
    await Promise.all(
      raw[kind].map(async (r, i) => {
        const id = oneId(field(r, 'id'));
        if (id !== null && (await store.retiredAt(retired, id)) !== null)
          refuse(label(kind, i), 'id', rowProblemTexts({ kind: 'retired', id }));
      }),
    );
  if (out.devices.length) {
    const known = new Map((await store.listDevices()).map((d) => [d.id, d]));
    out.devices.forEach((d, i) => {
      const was = known.get(d.id);
      // An existing device may change room; moving it to another home or kind is a new device.
      if (was && (was.homeId !== d.homeId || was.kind !== d.kind))
        refuse(row('devices', i), 'id', rowProblemTexts({ kind: 'device_moved', id: d.id, was }));
    });
  }
  return problems.length ? { ok: false, problems } : { ok: true, value: out };
}

async function apply(
  deps: ApiDeps,
  p: Parsed,
  actor: string,
): Promise<ImportResult & { sessionsEnded: number }> {
  const { store } = deps;
  for (const g of p.grids) await store.upsertGrid(g);
  for (const h of p.households) {
    const family = familyOptInChanges(await store.getHousehold(h.id), h);
    await store.upsertHousehold(h);
    if (family.length)
      await store.audit({
        at: deps.clock.now(),
        actor,
        action: 'household.family_updates',
        target: h.id,
        detail: { contacts: family },
      });
  }
  const changedStaff: string[] = [];
  for (const s of p.staff) {
    const passwordHash = s.password ? await hashPassword(s.password) : undefined;
    if (await store.getStaff(s.id)) {
      changedStaff.push(s.id);
      await store.updateStaff(s.id, {
        name: s.name,
        phone: s.phone,
        roles: s.roles,
        gridIds: s.gridIds,
        disabled: s.disabled,
        passwordHash,
      });
    } else {
      await store.createStaff({
        id: s.id,
        name: s.name,
        phone: s.phone,
        roles: s.roles,
        gridIds: s.gridIds,
        username: s.username,
        passwordHash: passwordHash!,
      });
      if (s.disabled) await store.updateStaff(s.id, { disabled: true });
    }
  }
  // A grid's roster in the import replaces that grid's weekly rotation (its overrides stay).
  const byGrid = new Map<string, typeof p.roster>();
  for (const r of p.roster) byGrid.set(r.gridId, [...(byGrid.get(r.gridId) ?? []), r]);
  for (const [gridId, lines] of byGrid) await store.setRoster(gridId, lines);
  // New devices get a secret, stored only as a salted hash and returned this once (SPEC §3).
  const secrets: { id: string; secret: string }[] = [];
  for (const d of p.devices) {
    const was = await store.getDeviceState(d.id);
    if (was) {
      if (was.room !== d.room || was.roomText) await store.setDeviceRoom(d.id, d.room);
      continue;
    }
    const secret = newSecret();
    await store.createDevice({ ...d, secretHash: hashDeviceSecret(secret), createdAt: deps.clock.now() });
    await store.audit({
      at: deps.clock.now(),
      actor,
      action: 'device.provision',
      target: d.id,
      detail: { import: true },
    });
    secrets.push({ id: d.id, secret });
  }
  // An override with the id of one already stored replaces it (a re-imported export adds nothing).
  for (const o of p.overrides) {
    if (o.id) await store.deleteOverride(o.id);
    await store.addOverride({ ...o, id: o.id ?? newId('ov', deps.clock.now()) });
  }
  await deps.directory.invalidateHome();
  await deps.directory.invalidateRoster();
  // SPEC §8: rights changed by an import end at once like through PATCH /api/staff: a new password or a
  // disabled account ends every session; every live connection is then checked (closed or re-scoped).
  let sessionsEnded = 0;
  for (const s of p.staff)
    if (changedStaff.includes(s.id) && (s.password || s.disabled))
      sessionsEnded += await deps.auth.endSessions(s.id);
  if (changedStaff.length) await deps.staffChanged?.(changedStaff);
  return {
    sessionsEnded,
    imported: {
      grids: p.grids.length,
      households: p.households.length,
      staff: p.staff.length,
      roster: p.roster.length,
      devices: p.devices.length,
      overrides: p.overrides.length,
    },
    secrets,
  };
}

// ---- CSV columns (nested lists are flattened to numbered columns; JSON carries any length)

const RESIDENTS = 2;
const CONTACTS = 3;
const list = (s: string | undefined) =>
  (s ?? '')
    .split(/[;|]/)
    .map((x) => x.trim())
    .filter(Boolean);
const opt = (s: string | undefined) => (s === undefined || s.trim() === '' ? undefined : s.trim());

const CSV_COLUMNS: Record<Kind, string[]> = {
  grids: ['id', 'name', 'community', 'leaderId'],
  households: [
    'id',
    'gridId',
    'building',
    'unit',
    'room',
    ...Array.from({ length: RESIDENTS }, (_, i) =>
      ['name', 'age', 'phone', 'healthNotes'].map((f) => `resident${i + 1}_${f}`),
    ).flat(),
    ...Array.from({ length: CONTACTS }, (_, i) =>
      ['name', 'relation', 'phone'].map((f) => `contact${i + 1}_${f}`),
    ).flat(),
    'accessNotes',
    'nightStart',
    'nightEnd',
    'wakeTime',
    'awayUntil',
    'awayReason',
  ],
  staff: ['id', 'name', 'phone', 'roles', 'gridIds', 'username', 'password', 'disabled'],
  roster: ['gridId', 'shift', 'weekdays', 'staffIds'],
  devices: ['id', 'homeId', 'kind', 'room'],
  overrides: ['id', 'gridId', 'date', 'shift', 'kind', 'staffId', 'replacementId'],
};

/**
 * A cell a spreadsheet would run as a formula (leading = + - @, or a tab or carriage return before one)
 * gets a leading apostrophe, as in the SLA CSV; the import takes it off again, so an export re-imports
 * unchanged (a phone number "+86 …" stays itself).
 */
const FORMULA = /^[=+\-@\t\r]/;
function neutralised(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[k] = typeof v === 'string' && FORMULA.test(v) ? `'${v}` : v;
  return out;
}
const unneutralised = (v: string): string => (v.startsWith("'") && FORMULA.test(v.slice(1)) ? v.slice(1) : v);

/** One CSV record to the JSON shape the validator reads (types are checked there, not here). */
function fromCsv(kind: Kind, raw: Record<string, string>): unknown {
  const r = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, unneutralised(v)]));
  switch (kind) {
    case 'grids':
      return { id: r.id, name: r.name, community: r.community, leaderId: opt(r.leaderId) ?? null };
    case 'staff':
      return {
        id: r.id,
        name: r.name,
        phone: r.phone ?? '',
        roles: list(r.roles),
        gridIds: list(r.gridIds),
        username: r.username,
        password: opt(r.password),
        disabled: opt(r.disabled) === undefined ? undefined : /^(1|true|yes)$/i.test(r.disabled!),
      };
    case 'devices':
      return { id: r.id, homeId: r.homeId, kind: r.kind, room: r.room ?? '' };
    case 'overrides':
      return {
        id: opt(r.id),
        gridId: r.gridId,
        date: r.date,
        shift: r.shift,
        kind: r.kind,
        staffId: opt(r.staffId) ?? null,
        replacementId: opt(r.replacementId) ?? null,
      };
    case 'roster':
      return {
        gridId: r.gridId,
        shift: r.shift,
        weekdays: list(r.weekdays).map(Number),
        staffIds: list(r.staffIds),
      };
    case 'households': {
      const residents = [];
      for (let i = 1; i <= RESIDENTS; i++) {
        const name = opt(r[`resident${i}_name`]);
        if (!name) continue;
        const age = opt(r[`resident${i}_age`]);
        residents.push({
          name,
          age: age === undefined ? undefined : Number(age),
          phone: r[`resident${i}_phone`],
          healthNotes: r[`resident${i}_healthNotes`],
        });
      }
      const contacts = [];
      for (let i = 1; i <= CONTACTS; i++) {
        const name = opt(r[`contact${i}_name`]);
        if (!name) continue;
        contacts.push({
          name,
          relation: r[`contact${i}_relation`],
          phone: r[`contact${i}_phone`] ?? '',
        });
      }
      const away = opt(r.awayUntil);
      return {
        id: r.id,
        gridId: r.gridId,
        address: { building: r.building, unit: r.unit ?? '', room: r.room },
        residents,
        contacts,
        accessNotes: r.accessNotes ?? '',
        routine: {
          nightStart: opt(r.nightStart) ?? '22:00',
          nightEnd: opt(r.nightEnd) ?? '06:00',
          wakeTime: opt(r.wakeTime) ?? '07:30',
        },
        awayUntil: away === undefined ? null : /^\d+$/.test(away) ? Number(away) : Date.parse(away),
        awayReason: opt(r.awayReason) ?? null,
      };
    }
  }
}

export const importExportRoutes =
  (deps: ApiDeps): FastifyPluginAsyncZod =>
  async (app) => {
    const { store } = deps;
    // CSV bodies arrive as text/csv, nothing else: text/plain is what a form of another origin can send
    // without a preflight (SPEC §8: requests from other origins are refused).
    app.addContentTypeParser('text/csv', { parseAs: 'string' }, (_req, body, done) => done(null, body));

    const snapshot = async () => {
      const [grids, households, staff, roster, devices, overrides] = await Promise.all([
        store.listGrids(),
        store.listHouseholds(),
        store.listStaff(),
        store.listRoster(),
        store.listDevices(),
        store.listOverrides(),
      ]);
      return {
        grids,
        households,
        staff: staff.map(({ disabled, ...s }) => ({ ...s, disabled })),
        roster,
        // No secrets: a device's secret is shown once, when it is issued.
        devices: devices.map((d) => ({ id: d.id, homeId: d.homeId, kind: d.kind, room: d.room })),
        // Leave, cover and swaps (SPEC §4): the roster is the rotation and its overrides.
        overrides,
      };
    };

    app.get('/api/registry/export', async (req, reply) => {
      const actor = requireStaff(req, 'registry.write');
      const data = await snapshot();
      await store.audit({
        at: deps.clock.now(),
        actor: actor.id,
        action: 'registry.export',
        target: 'registry',
        detail: { format: 'json', households: data.households.length, includesAccessNotes: true },
      });
      reply.header('content-disposition', 'attachment; filename="guardian365-registry.json"');
      return data;
    });

    app.get(
      '/api/registry/export/:kind',
      {
        schema: {
          params: z.object({
            kind: z.enum(CSV_KINDS),
          }),
        },
      },
      async (req, reply) => {
        const actor = requireStaff(req, 'registry.write');
        const kind = req.params.kind.replace('.csv', '') as Kind;
        const data = await snapshot();
        const rows: Record<string, unknown>[] = [];
        if (kind === 'devices') rows.push(...data.devices);
        if (kind === 'overrides')
          for (const o of data.overrides)
            rows.push({ ...o, staffId: o.staffId ?? '', replacementId: o.replacementId ?? '' });
        if (kind === 'grids') for (const g of data.grids) rows.push({ ...g, leaderId: g.leaderId ?? '' });
        if (kind === 'staff')
          for (const s of data.staff)
            rows.push({
              ...s,
              roles: s.roles.join(';'),
              gridIds: s.gridIds.join(';'),
              password: '',
              disabled: s.disabled,
            });
        if (kind === 'roster')
          for (const r of data.roster)
            rows.push({ ...r, weekdays: r.weekdays.join(';'), staffIds: r.staffIds.join(';') });
        if (kind === 'households')
          for (const h of data.households) {
            const row: Record<string, unknown> = {
              id: h.id,
              gridId: h.gridId,
              ...h.address,
              accessNotes: h.accessNotes,
              nightStart: h.routine.nightStart,
              nightEnd: h.routine.nightEnd,
              wakeTime: h.routine.wakeTime,
              awayUntil: h.awayUntil === null ? '' : new Date(h.awayUntil).toISOString(),
              awayReason: h.awayReason ?? '',
            };
            h.residents.slice(0, RESIDENTS).forEach((p, i) => {
              row[`resident${i + 1}_name`] = p.name;
              row[`resident${i + 1}_age`] = p.age ?? '';
              row[`resident${i + 1}_phone`] = p.phone ?? '';
              row[`resident${i + 1}_healthNotes`] = p.healthNotes ?? '';
            });
            h.contacts.slice(0, CONTACTS).forEach((c, i) => {
              row[`contact${i + 1}_name`] = c.name;
              row[`contact${i + 1}_relation`] = c.relation ?? '';
              row[`contact${i + 1}_phone`] = c.phone;
            });
            rows.push(row);
          }
        await store.audit({
          at: deps.clock.now(),
          actor: actor.id,
          action: 'registry.export',
          target: kind,
          detail: { format: 'csv', rows: rows.length, includesAccessNotes: kind === 'households' },
        });
        reply.header('content-type', 'text/csv; charset=utf-8');
        reply.header('content-disposition', `attachment; filename="guardian365-${kind}.csv"`);
        // A byte-order mark so spreadsheet programs read the Chinese text as UTF-8.
        return `\uFEFF${stringify(rows.map(neutralised), { header: true, columns: CSV_COLUMNS[kind] })}`;
      },
    );

    /** Writes a validated file (or answers 400 with every problem and writes nothing), then audits it. */
    const importValidated = async (
      reply: FastifyReply,
      v: Awaited<ReturnType<typeof validate>>,
      actor: string,
      target: string,
      format: 'json' | 'csv',
    ) => {
      if (!v.ok)
        return reply.code(400).send({
          error: 'bad_request',
          message: `${v.problems.length} problem(s); nothing was imported`,
          errors: v.problems,
        });
      const { sessionsEnded, ...result } = await apply(deps, v.value, actor);
      await store.audit({
        at: deps.clock.now(),
        actor,
        action: 'registry.import',
        target,
        detail: { format, ...result.imported, sessionsEnded },
      });
      return result;
    };

    app.post('/api/registry/import', { schema: { body: registryFile } }, async (req, reply) => {
      const actor = requireStaff(req, 'registry.write');
      const v = await validate(store, req.body, (kind, i) => `${kind}[${i}]`);
      return importValidated(reply, v, actor.id, 'registry', 'json');
    });

    app.post(
      '/api/registry/import/:kind',
      {
        schema: {
          params: z.object({
            kind: z.enum(CSV_KINDS),
          }),
          body: z.string().max(20_000_000),
        },
      },
      async (req, reply) => {
        const actor = requireStaff(req, 'registry.write');
        const kind = req.params.kind.replace('.csv', '') as Kind;
        let records: Record<string, string>[];
        try {
          records = parse(req.body, { columns: true, bom: true, skip_empty_lines: true, trim: true });
        } catch (e) {
          throw new HttpError(400, 'bad_request', `body: not valid CSV (${(e as Error).message})`, {
            field: 'body',
          });
        }
        const header = records[0] ? Object.keys(records[0]) : [];
        const unknown = header.filter((c) => !CSV_COLUMNS[kind].includes(c));
        if (unknown.length)
          throw new HttpError(400, 'bad_request', `body: unknown column(s) ${unknown.join(', ')}`, {
            field: 'body',
            expected: CSV_COLUMNS[kind],
          });
        const raw = emptyRaw();
        raw[kind] = records.map((r) => fromCsv(kind, r));
        // Row numbers as a spreadsheet shows them: the header is row 1.
        const v = await validate(store, raw, (_k, i) => String(i + 2));
        return importValidated(reply, v, actor.id, kind, 'csv');
      },
    );
  };
