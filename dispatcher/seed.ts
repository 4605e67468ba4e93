/**
 * Writes a community plan into the store (the demo's and the tests' seed) and provisions every device with
 * a fresh secret, returned so the simulated devices can log in.
 */

import type { Store } from '../dispatcher/store/store.ts';
import { hashSecret, newSecret } from '../gateway/secrets.ts';
import type { CommunityPlan } from './community.ts';
import type { DeviceIdentity } from './device.ts';

export async function seedCommunity(
  store: Store,
  plan: CommunityPlan,
  now: number,
): Promise<DeviceIdentity[]> {
  for (const g of plan.grids) await store.upsertGrid(g);
  for (const h of plan.households) await store.upsertHousehold(h);
  const passwordHashes = new Map<string, string>();
  for (const s of plan.staff) {
    if (await store.getStaff(s.id)) continue;
    let hash = passwordHashes.get(s.password);
    if (!hash) {
      hash = await hashSecret(s.password);
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
  const identities: DeviceIdentity[] = [];
  const todo = [];
  for (const d of plan.devices) if (!(await store.getDeviceState(d.id))) todo.push(d);
  // scrypt runs on libuv's thread pool: hash a few at a time.
  for (let i = 0; i < todo.length; i += 8) {
    const batch = await Promise.all(
      todo.slice(i, i + 8).map(async (d) => {
        const secret = newSecret();
        return { d, secret, secretHash: await hashSecret(secret) };
      }),
    );
    for (const { d, secret, secretHash } of batch) {
      await store.createDevice({ ...d, secretHash, createdAt: now });
      identities.push({ ...d, secret });
    }
  }
  return identities;
}
