import { randomBytes, randomUUID } from 'node:crypto';

/** Ids that sort by creation time: a millisecond prefix and a random tail (ULID-like, Crockford base32). */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function newId(prefix: string, atMs: number): string {
  let time = '';
  let t = Math.max(0, Math.floor(atMs));
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(10);
  let tail = '';
  for (const b of bytes) tail += ALPHABET[b % 32];
  return `${prefix}_${time}${tail}`;
}

export const newToken = (): string => randomBytes(32).toString('base64url');
export const newUuid = (): string => randomUUID();

export { ID_PATTERN } from './id-pattern.ts';
