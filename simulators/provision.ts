/**
 * Provisions a planned community through the admin API, as an admin would (SPEC §11: POST /api/grids,
 * /api/households, /api/staff, /api/roster, /api/devices). Device secrets are shown once by the API, so
 * they are kept in an identities file (mode 0600) and reused on the next run; a device that exists but
 * whose secret is unknown gets a new one through rotate-secret.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { CommunityPlan } from './community.ts';
import type { DeviceIdentity } from './device.ts';

export interface ProvisionOptions {
  baseUrl: string;
  /** An admin bearer token (POST /api/auth/login). */
  token: string;
  plan: CommunityPlan;
  /** Where device secrets are kept between runs (created with mode 0600). */
  identitiesFile?: string;
  /** Parallel API calls (default 8). */
  concurrency?: number;
  onProgress?: (done: number, total: number, what: string) => void;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function adminLogin(baseUrl: string, username: string, password: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new ApiError(res.status, `login as ${username} failed: HTTP ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}

async function call(
  o: ProvisionOptions,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${o.baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${o.token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  return { status: res.status, body: json };
}

function must(r: { status: number; body: Record<string, unknown> }, what: string, ok: number[] = [200, 201]) {
  if (!ok.includes(r.status))
    throw new ApiError(r.status, `${what}: HTTP ${r.status} ${String(r.body.message ?? '')}`.trim());
}

async function pool<T>(items: readonly T[], n: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export function readIdentities(file: string | undefined): DeviceIdentity[] {
  if (!file || !existsSync(file)) return [];
  return JSON.parse(readFileSync(file, 'utf8')) as DeviceIdentity[];
}

export function writeIdentities(file: string, ids: readonly DeviceIdentity[]): void {
  writeFileSync(file, JSON.stringify(ids));
  chmodSync(file, 0o600);
}

/** Creates (or updates) the plan's grids, households, staff and roster, and returns every device's identity. */
export async function provisionViaApi(o: ProvisionOptions): Promise<DeviceIdentity[]> {
  const { plan } = o;
  const n = o.concurrency ?? 8;
  const total = plan.grids.length + plan.households.length + plan.staff.length + plan.devices.length;
  let done = 0;
  const tick = (what: string) => o.onProgress?.(++done, total, what);

  // A grid's leader must be a known staff member, and staff belong to grids: the grids first without
  // their leaders, the leaders once the staff exist.
  for (const g of plan.grids) {
    must(await call(o, 'POST', '/api/grids', { ...g, leaderId: null }), `grid ${g.id}`);
    tick('grids');
  }
  await pool(plan.households, n, async (h) => {
    must(await call(o, 'POST', '/api/households', h), `household ${h.id}`);
    tick('households');
  });
  await pool(plan.staff, n, async (s) => {
    // 409: the person exists already (a second run); their password is the plan's.
    must(await call(o, 'POST', '/api/staff', s), `staff ${s.id}`, [200, 201, 409]);
    tick('staff');
  });
  for (const g of plan.grids)
    if (g.leaderId) must(await call(o, 'POST', '/api/grids', g), `grid ${g.id} leader`);
  for (const g of plan.grids) {
    const entries = plan.roster
      .filter((r) => r.gridId === g.id)
      .map(({ shift, weekdays, staffIds }) => ({ shift, weekdays, staffIds }));
    must(await call(o, 'POST', '/api/roster', { gridId: g.id, entries }), `roster ${g.id}`);
  }

  const known = new Map(readIdentities(o.identitiesFile).map((d) => [d.id, d]));
  const out: DeviceIdentity[] = [];
  await pool(plan.devices, n, async (d) => {
    const have = known.get(d.id);
    if (have && have.homeId === d.homeId) {
      out.push(have);
    } else {
      let r = await call(o, 'POST', '/api/devices', d);
      if (r.status === 409) {
        r = await call(o, 'POST', `/api/devices/${d.id}/rotate-secret`, {});
      }
      must(r, `device ${d.id}`);
      out.push({ ...d, secret: String(r.body.secret) });
    }
    tick('devices');
  });
  const byId = new Map(out.map((d) => [d.id, d]));
  const ordered = plan.devices.map((d) => byId.get(d.id)!);
  if (o.identitiesFile) {
    const others = [...known.values()].filter((k) => !byId.has(k.id));
    writeIdentities(o.identitiesFile, [...others, ...ordered]);
  }
  return ordered;
}
