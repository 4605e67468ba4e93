/**
 * Device secrets at login (DEV-01, SEC-05) on a real gateway with real mqtt.js clients: a secret stored in
 * the fast format (salted HMAC, as the service issues them) is checked at once; a row still holding a
 * legacy scrypt hash logs in, is re-hashed to the fast format and logs in with it after; a rotation racing
 * that re-hash wins; a login whose device is disabled while its secret is checked is refused, whether the
 * revocation reaches the gateway or only a re-check of its devices does (CLU-02); a device disabled in the
 * database with no revocation is disconnected by the periodic re-check. Staff passwords stay scrypt.
 */
import { randomBytes, scryptSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../gateway/gateway.ts';
import { topics } from '../../gateway/protocol.ts';
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

async function legacyDevice(id: string, secretHash?: string): Promise<void> {
  await world.store.createDevice({
    id,
    homeId: 'h2',
    kind: 'motion',
    room: 'living',
    secretHash: secretHash ?? (await legacyDeviceHash(SECRET)),
    createdAt: 0,
  });
}

/**
 * A legacy hash of SECRET with twice the usual scrypt cost (as a row could hold, its cost in the string):
 * its check takes long enough for a test to change the device while the login waits for it.
 */
function slowLegacyHash(): string {
  const salt = randomBytes(16);
  const key = scryptSync(SECRET, salt, 32, { N: 32_768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
  return `scrypt$32768$8$1$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/** A login of `id` with SECRET, resolved with its CONNACK's refusal code (0: it was let in, then left). */
function loginOf(id: string): Promise<number> {
  return connectDevice(gw.port, id).then(
    (c) => c.endAsync().then(() => 0),
    (e: { code?: number }) => e.code ?? -1,
  );
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

  it('refuses a login whose device is disabled while its secret is checked: the revocation found no session yet', async () => {
    await legacyDevice('h2-disabling', slowLegacyHash());
    const [checks, revoked] = [gw.metrics.loginChecks, gw.metrics.loginRevokedUnderWay];
    const login = loginOf('h2-disabling');
    // The login has read the device's row (enabled) and checks the secret: the admin disables the device.
    await eventually(() => gw.metrics.loginChecks > checks, 10_000, 'the legacy check under way');
    await world.store.setDeviceDisabled('h2-disabling', true);
    expect(gw.revokeDevice('h2-disabling')).toBe(false);
    expect(await login).toBe(5);
    expect(gw.metrics.loginRevokedUnderWay - revoked).toBe(1);
    expect(gw.metrics.devicesOnline).toBe(0);
    await expect(connectDevice(gw.port, 'h2-disabling')).rejects.toMatchObject({ code: 5 });
  });

  it('refuses a login under way when a re-check of the devices finds its device disabled unseen (CLU-02)', async () => {
    await legacyDevice('h2-unseen', slowLegacyHash());
    const checks = gw.metrics.loginChecks;
    const login = loginOf('h2-unseen');
    await eventually(() => gw.metrics.loginChecks > checks, 10_000, 'the legacy check under way');
    // Disabled while this gateway heard nothing of it: only the re-check after its link is back can tell.
    await world.store.setDeviceDisabled('h2-unseen', true);
    await gw.recheckDevices();
    expect(await login).toBe(5);
  });

  it('lets a login under way in with its row as it is now when a revocation changed only its kind (DEV-04)', async () => {
    await legacyDevice('h2-kind', slowLegacyHash());
    const [checks, rechecked] = [gw.metrics.loginChecks, gw.metrics.loginRechecked];
    const c = connectDevice(gw.port, 'h2-kind');
    await eventually(() => gw.metrics.loginChecks > checks, 10_000, 'the legacy check under way');
    // Registered as motion when the login read its row; now a door contact, and the session must know it.
    expect(await world.store.setDeviceKind('h2-kind', 'door')).toBe(true);
    gw.revokeDevice('h2-kind');
    const client = await c;
    expect(gw.metrics.loginRechecked - rechecked).toBe(1);
    const [accepted, rejected] = [gw.metrics.accepted, sum(gw.metrics.rejectedByReason)];
    await client.publishAsync(
      topics.events('h2', 'h2-kind'),
      JSON.stringify({ type: 'door', ts: Date.now(), seq: 1, state: 'open' }),
      { qos: 1 },
    );
    expect(gw.metrics.accepted - accepted).toBe(1);
    expect(sum(gw.metrics.rejectedByReason)).toBe(rejected);
    await client.endAsync();
  });

  it('lets a login under way in when a re-check finds its device unchanged', async () => {
    await legacyDevice('h2-unchanged', slowLegacyHash());
    const [checks, rechecked] = [gw.metrics.loginChecks, gw.metrics.loginRechecked];
    const c = connectDevice(gw.port, 'h2-unchanged');
    await eventually(() => gw.metrics.loginChecks > checks, 10_000, 'the legacy check under way');
    await gw.recheckDevices();
    const client = await c;
    expect(client.connected).toBe(true);
    expect(gw.metrics.loginRechecked - rechecked).toBe(1);
    await client.endAsync();
  });

  it('disconnects, at its next periodic re-check, a device disabled in the database with no revocation sent', async () => {
    const checking = await world.start({ deviceRecheckMs: 150 });
    const [disabled, bystander] = await Promise.all([
      connectDevice(checking.port, 'h2-fall'),
      connectDevice(checking.port, 'h1-door'),
    ]);
    const closed = new Promise<void>((r) => disabled.once('close', () => r()));
    // Changed in the database only (by hand, say): no revocation reaches the gateway.
    await world.store.setDeviceDisabled('h2-fall', true);
    await closed;
    await expect(connectDevice(checking.port, 'h2-fall')).rejects.toMatchObject({ code: 5 });
    // The device next to it, unchanged, stays connected: a re-check now ends nobody.
    expect(bystander.connected).toBe(true);
    expect(await checking.recheckDevices()).toBe(0);
    expect(bystander.connected).toBe(true);
    await bystander.endAsync();
    disabled.end(true);
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
