/**
 * The password rule (SPEC §8 Access): every account at least 8 characters; an admin account, which can
 * create admins and read every access note, at least 12; and none of the commonest passwords, whatever
 * their length. The list is small and bundled (the most frequent entries of public breach corpora,
 * Chinese ones included, and this product's own words); it is checked case-insensitively and with the
 * digits or symbols people append stripped. Pure.
 */
import type { StaffRole } from './registry.ts';

export const MIN_LENGTH = 8;
export const MIN_ADMIN_LENGTH = 12;

const COMMON = new Set(
  [
    '123456',
    '123456789',
    '12345678',
    '1234567890',
    '12345',
    '1234567',
    '111111',
    '000000',
    '123123',
    '654321',
    '666666',
    '888888',
    '88888888',
    '11111111',
    '00000000',
    '987654321',
    '147258369',
    '5201314',
    '1314520',
    'woaini',
    'woaini1314',
    'iloveyou',
    'password',
    'passw0rd',
    'p@ssw0rd',
    'p@ssword',
    'qwerty',
    'qwertyuiop',
    'qwerty123',
    'asdfghjkl',
    'zxcvbnm',
    '1q2w3e4r',
    '1qaz2wsx',
    'qazwsx',
    'abc123',
    'abcd1234',
    'a123456',
    'aa123456',
    'admin',
    'administrator',
    'root',
    'letmein',
    'welcome',
    'monkey',
    'dragon',
    'football',
    'baseball',
    'sunshine',
    'princess',
    'master',
    'shadow',
    'superman',
    'trustno1',
    'changeme',
    'change-me',
    'change-me-please',
    'secret',
    'default',
    'guest',
    'test',
    'testtest',
    'login',
    'starwars',
    'whatever',
    'freedom',
    'hello',
    'hellohello',
    'computer',
    'internet',
    'zaq12wsx',
    'q1w2e3r4',
    'asdf1234',
    'asd123',
    'qwe123',
    'aaaaaa',
    'abcdef',
    'abcdefg',
    'abcdefgh',
    'guardian',
    'guardian365',
    'guardian-365',
    'yunshouhu',
    'shouhu365',
    'demo',
    'demodemo',
    'admin123',
    'administrator1',
    'adminadmin',
    'passwordpassword',
    'qwertyqwerty',
    'iloveyouiloveyou',
  ].map((p) => p.toLowerCase()),
);

/** The password without what people add to a common word to pass a rule (digits, symbols at the ends). */
const stem = (p: string) => p.toLowerCase().replace(/^[^a-z]+|[^a-z]+$/g, '');

export function isCommonPassword(password: string): boolean {
  const lower = password.toLowerCase();
  if (COMMON.has(lower)) return true;
  const s = stem(password);
  if (s.length > 0 && COMMON.has(s)) return true;
  // One character repeated, or a run of one short pattern ("abcabcabcabc", "12121212").
  return /^(.{1,3})\1+$/.test(lower);
}

/** Why this password is not good enough for an account with these roles; null when it is. */
export function passwordProblem(password: string, roles: readonly StaffRole[]): string | null {
  const min = roles.includes('admin') ? MIN_ADMIN_LENGTH : MIN_LENGTH;
  if ([...password].length < min)
    return `must be at least ${min} characters${min === MIN_ADMIN_LENGTH ? ' for an admin' : ''}`;
  if (isCommonPassword(password)) return 'is one of the commonest passwords; choose another';
  return null;
}
