/**
 * Stored credentials: only salted hashes (SPEC §3, SEC-04), of two kinds (SEC-05).
 *
 * - **Staff passwords** are chosen by people, so they may be guessable: a slow KDF, scrypt, with its
 *   parameters in the stored string (`scrypt$N$r$p$salt$hash`, base64url) so they can be raised later.
 * - **Device secrets** are never chosen by a person: the service generates every one (`newSecret`, 192
 *   random bits). Nobody can search a space of 2^192 whatever one guess costs, so a slow KDF adds no
 *   protection (the reasoning behind API tokens stored as SHA-256) and only makes each login cost ~50 ms of
 *   a core: a login flood or a fleet's reconnect then competes with ingestion. They are stored as
 *   `hmac-sha256$salt$hash` (HMAC-SHA256 of the secret keyed with 16 random bytes) and checked
 *   synchronously in microseconds. Device rows hashed before that are `scrypt$…`: still verified (through
 *   the login gate, login-gate.ts) and re-hashed to the fast format on their first successful login.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;
const SALT_BYTES = 16;
const FAST = 'hmac-sha256';

function derive(secret: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, KEYLEN, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (e, key) =>
      e ? reject(e) : resolve(key),
    ),
  );
}

const sameBytes = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);

/** A staff password's stored hash: scrypt (SEC-05: people choose passwords). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

async function verifyScrypt(secret: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  const key = await derive(secret, Buffer.from(salt, 'base64url'), Number(n), Number(r), Number(p));
  return sameBytes(key, Buffer.from(hash, 'base64url'));
}

/** Whether `password` matches a stored scrypt hash (scrypt only: a password is never held to less). */
export const verifyPassword = (password: string, stored: string): Promise<boolean> =>
  verifyScrypt(password, stored);

/** A new device secret: 24 random bytes (192 bits), URL-safe, shown once at provisioning. */
export const newSecret = (): string => randomBytes(24).toString('base64url');

/** A device secret's stored hash (SEC-05): salted HMAC-SHA256, for secrets from `newSecret` only. */
export function hashDeviceSecret(secret: string): string {
  const salt = randomBytes(SALT_BYTES);
  const mac = createHmac('sha256', salt).update(secret).digest();
  return `${FAST}$${salt.toString('base64url')}$${mac.toString('base64url')}`;
}

/** Whether a stored device hash is in the fast format (else it is a legacy scrypt hash: `needsRehash`). */
export const isFastDeviceHash = (stored: string): boolean => stored.startsWith(`${FAST}$`);

/**
 * Checks a device secret against a fast-format hash, synchronously; `null` when the stored hash is not in
 * that format (a legacy scrypt hash: `verifyDeviceSecret`, through the login gate).
 */
export function verifyFastDeviceSecret(secret: string, stored: string): boolean | null {
  const parts = stored.split('$');
  if (parts.length !== 3 || parts[0] !== FAST) return null;
  const mac = createHmac('sha256', Buffer.from(parts[1]!, 'base64url')).update(secret).digest();
  return sameBytes(mac, Buffer.from(parts[2]!, 'base64url'));
}

/** Checks a device secret against its stored hash, whichever format it is in. */
export async function verifyDeviceSecret(secret: string, stored: string): Promise<boolean> {
  return verifyFastDeviceSecret(secret, stored) ?? verifyScrypt(secret, stored);
}

/** A device hash from before SEC-05 (scrypt): re-hash it with `hashDeviceSecret` at its next good login. */
export const needsRehash = (stored: string): boolean => !isFastDeviceHash(stored);
