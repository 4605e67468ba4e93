/**
 * Device secrets at login (DEV-01, SEC-05) on a real gateway with real mqtt.js clients: a secret stored in
 * the fast format (salted HMAC, as the service issues them) is checked at once; a row still holding a
 * legacy scrypt hash logs in, is re-hashed to the fast format and logs in with it after; a rotation racing
 * that re-hash wins. Staff passwords stay scrypt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/gateway.ts';
import {
  hashDeviceSecret,
  hashPassword,
  verifyDeviceSecret,
  verifyFastDeviceSecret,
  verifyPassword,
} from '../../gateway/secrets.ts';
import { eventually } from '../helpers.ts';
import { connectDevice, type GatewayWorld, gatewayWorld, legacyDeviceHash, SECRET } from './fixtures.ts';

let world: GatewayWorld;
let gw: Gateway;

beforeAll(async () => {
  world = await gatewayWorld();
  gw = await world.start();
});

afterAll(async () => {
  await world.close();
});

async function legacyDevice(id: string): Promise<void> {
  await world.store.createDevice({
    id,
    homeId: 'h2',
    kind: 'motion',
    room: 'living',
    secretHash: await legacyDeviceHash(SECRET),
    createdAt: 0,
  });
}

const storedHash = async (id: string) => (await world.store.findDevice(id))?.secretHash;

describe('device secrets at login', () => {
  it('lets a device in with its secret checked against the fast hash at once, and refuses a wrong one', async () => {
    expect(await storedHash('h1-fall')).toMatch(/^hmac-sha256\$/);
    const before = gw.metrics;
    const [fast, scrypt] = [before.loginFastChecks, before.loginChecks];
    const c = await connectDevice(gw.port, 'h1-fall');
    await c.endAsync();
    await expect(connectDevice(gw.port, 'h1-fall', 'not-the-secret')).rejects.toMatchObject({ code: 4 });
    // A secret of the right length that differs in its last character only.
    await expect(connectDevice(gw.port, 'h1-fall', `${SECRET.slice(0, -1)}X`)).rejects.toMatchObject({
      code: 4,
    });
    expect(gw.metrics.loginFastChecks - fast).toBe(3);
    expect(gw.metrics.loginChecks - scrypt).toBe(0);
  });

  it('re-hashes a legacy scrypt device hash at its first good login; the device logs in with the fast hash after', async () => {
    await legacyDevice('h2-legacy');
    const legacy = await storedHash('h2-legacy');
    expect(legacy).toMatch(/^scrypt\$/);
    // A wrong secret changes nothing.
    await expect(connectDevice(gw.port, 'h2-legacy', 'not-the-secret')).rejects.toMatchObject({ code: 4 });
    expect(await storedHash('h2-legacy')).toBe(legacy);
    const rehashed = gw.metrics.loginRehashed;
    const first = await connectDevice(gw.port, 'h2-legacy');
    await first.endAsync();
    // Written before the CONNACK: the row holds the fast format now, for the same secret.
    const upgraded = (await storedHash('h2-legacy'))!;
    expect(upgraded).toMatch(/^hmac-sha256\$/);
    expect(verifyFastDeviceSecret(SECRET, upgraded)).toBe(true);
    expect(gw.metrics.loginRehashed).toBe(rehashed + 1);
    // The next logins cost no scrypt check; a wrong secret is still refused.
    const scrypt = gw.metrics.loginChecks;
    const again = await connectDevice(gw.port, 'h2-legacy');
    await again.endAsync();
    await expect(connectDevice(gw.port, 'h2-legacy', 'not-the-secret')).rejects.toMatchObject({ code: 4 });
    expect(gw.metrics.loginChecks).toBe(scrypt);
    expect(await storedHash('h2-legacy')).toBe(upgraded);
  });

  it('refuses a legacy login whose secret was rotated while it was checked, and never brings the old secret back', async () => {
    await legacyDevice('h2-racing');
    const checks = gw.metrics.loginChecks;
    const login = connectDevice(gw.port, 'h2-racing').then(
      (c) => c.endAsync().then(() => 0),
      (e: { code?: number }) => e.code ?? -1,
    );
    // The scrypt check has started (the re-hash would follow it): the admin rotates the secret now.
    await eventually(() => gw.metrics.loginChecks > checks, 10_000, 'the legacy check under way');
    const rotated = hashDeviceSecret('the-rotated-secret');
    expect(await world.store.rotateDeviceSecret('h2-racing', rotated)).toBe(true);
    gw.revokeDevice('h2-racing');
    expect(await login).toBe(4);
    expect(await storedHash('h2-racing')).toBe(rotated);
    await expect(connectDevice(gw.port, 'h2-racing')).rejects.toMatchObject({ code: 4 });
    const c = await connectDevice(gw.port, 'h2-racing', 'the-rotated-secret');
    await c.endAsync();
  });

  it('keeps staff passwords on scrypt: a password never verifies against a device-format hash', async () => {
    const password = await hashPassword('a-staff-password');
    expect(password).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(await verifyPassword('a-staff-password', password)).toBe(true);
    expect(await verifyPassword('a-staff-password', hashDeviceSecret('a-staff-password'))).toBe(false);
    // A device secret verifies in either format (legacy rows), and only with the right secret.
    expect(await verifyDeviceSecret('a-staff-password', password)).toBe(true);
    expect(await verifyDeviceSecret('another', hashDeviceSecret('a-staff-password'))).toBe(false);
    expect(verifyFastDeviceSecret('x', password)).toBeNull();
  });
});
