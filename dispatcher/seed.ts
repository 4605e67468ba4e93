/**
 * Writes a community plan into the store (the demo's, the tests' and the benchmarks' seed) and provisions
 * every device with a fresh secret, returned so the simulated devices can log in. The simulators never
 * touch the store (SIM-01): they get their devices and secrets from what this returns, or from the
 * provisioning file the demo's seed writes.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hashDeviceSecret, hashPassword, newSecret } from '../gateway/secrets.ts';
import type { DeviceInput } from './registry.ts';
import type { ShiftBoundaries } from './routing/shifts.ts';
import { type HistoryPlan, type PastEvent, seedHistory } from './seed-history.ts';
import type { Store } from './store/store.ts';

/**
 * A community to seed (simulators/community.ts plans one): grids, households, devices, staff (passwords in
 * clear) and the roster.
 */
export type SeedPlan = HistoryPlan;

/** A device as provisioned: its secret in clear, shown once (what a device, or a simulator, logs in with). */
export type ProvisionedDevice = DeviceInput & { secret: string };

export async function seedCommunity(store: Store, plan: SeedPlan, now: number): Promise<ProvisionedDevice[]> {
  for (const g of plan.grids) await store.upsertGrid(g);
  for (const h of plan.households) await store.upsertHousehold(h);
  const passwordHashes = new Map<string, string>();
  for (const s of plan.staff) {
    if (await store.getStaff(s.id)) continue;
    let hash = passwordHashes.get(s.password);
    if (!hash) {
      hash = await hashPassword(s.password);
      passwordHashes.set(s.password, hash);
    }
    const { password: _p, ...rest } = s;
    await store.createStaff({ ...rest, passwordHash: hash });
  }
  for (const g of plan.grids) {
    await store.setRoster(
      g.id,
      plan.roster.filter((r) => r.gridId === g.id),
    );
  }
  const identities: ProvisionedDevice[] = [];
  const todo = [];
  for (const d of plan.devices) if (!(await store.getDeviceState(d.id))) todo.push(d);
  for (const d of todo) {
    const secret = newSecret();
    await store.createDevice({ ...d, secretHash: hashDeviceSecret(secret), createdAt: now });
    identities.push({ ...d, secret });
  }
  return identities;
}

export interface DemoSeedOptions {
  /** The demo admin's password, set on every start so the printed login always works. */
  adminPassword: string;
  /**
   * The provisioning file the demo's simulated devices read (mode 0600): every device's id, home, kind,
   * room and secret. Secrets are shown once, so it keeps the ones of earlier starts.
   */
  devicesFile: string;
  now: number;
  /**
   * DEMO-01: the past week as the devices reported it (simulators/history.ts), written with the alerts it
   * raised when the demo seeds a fresh store (an empty event log); a later start keeps what is there.
   */
  history?: { events: readonly PastEvent[]; zone: string; shifts: ShiftBoundaries };
}

/**
 * `npm run demo`: seeds the demo community into the store once and writes its devices' provisioning file.
 * Refuses a store that holds a real community.
 */
export async function seedDemo(store: Store, plan: SeedPlan, o: DemoSeedOptions): Promise<void> {
  // Never seed demo staff (with well-known passwords), homes and injected falls into a real deployment's
  // store: only an empty store (just the admin) or one the demo seeded before.
  const marked = (await store.getSetting('demo')) === 'yes';
  const fresh = !marked && (await store.countEvents()) === 0;
  const others = (await store.listStaff()).filter((s) => s.id !== 'admin');
  if (!marked && others.length > 0) {
    throw new Error(
      'the demo refuses to seed a store that already holds a real community; point DATA_DIR at an empty folder',
    );
  }
  await store.setSetting('demo', 'yes');
  // The demo's admin login is printed on every start, so it must be true on every start: a demo data
  // folder whose admin was created by an earlier start (or with another password) gets the printed one.
  await store.updateStaff('admin', { passwordHash: await hashPassword(o.adminPassword) });
  const known: ProvisionedDevice[] = existsSync(o.devicesFile)
    ? JSON.parse(readFileSync(o.devicesFile, 'utf8'))
    : [];
  const provisioned = await seedCommunity(store, plan, o.now);
  const identities = [...known.filter((k) => !provisioned.some((f) => f.id === k.id)), ...provisioned];
  writeFileSync(o.devicesFile, JSON.stringify(identities));
  chmodSync(o.devicesFile, 0o600);
  if (fresh && o.history) await seedHistory(store, plan, o.history.events, o.history);
}
