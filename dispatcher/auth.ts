/**
 * Staff login and sessions. Passwords are scrypt hashes; a session token is random and stored only as its
 * SHA-256, with an expiry read from the injected clock.
 */
import { createHash } from 'node:crypto';
import { hashSecret, verifySecret } from '../gateway/secrets.ts';
import type { Clock } from '../kernel/clock.ts';
import { newToken } from '../kernel/ids.ts';
import type { Staff } from './registry.ts';
import type { Store } from './store/store.ts';

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('base64url');

export interface AuthDeps {
  store: Store;
  clock: Clock;
  sessionHours: number;
}

export class Auth {
  /** A fixed hash to compare against when the user does not exist, so timing does not reveal usernames. */
  private dummyHash: Promise<string> | null = null;

  constructor(private readonly deps: AuthDeps) {}

  async login(
    username: string,
    password: string,
  ): Promise<{ token: string; staff: Staff; expiresAt: number } | null> {
    const rec = await this.deps.store.getStaffByUsername(username);
    if (!rec || rec.disabled) {
      this.dummyHash ??= hashSecret('not-a-real-password');
      await verifySecret(password, await this.dummyHash);
      return null;
    }
    if (!(await verifySecret(password, rec.passwordHash))) return null;
    const token = newToken();
    const now = this.deps.clock.now();
    const expiresAt = now + this.deps.sessionHours * 3_600_000;
    await this.deps.store.createSession({
      tokenHash: hashToken(token),
      staffId: rec.id,
      createdAt: now,
      expiresAt,
    });
    const { passwordHash: _omit, ...staff } = rec;
    return { token, staff, expiresAt };
  }

  async authenticate(token: string | undefined): Promise<Staff | null> {
    if (!token) return null;
    const session = await this.deps.store.getSession(hashToken(token));
    if (!session || session.expiresAt <= this.deps.clock.now()) return null;
    const rec = await this.deps.store.getStaff(session.staffId);
    if (!rec || rec.disabled) return null;
    const { passwordHash: _omit, ...staff } = rec;
    return staff;
  }

  async logout(token: string): Promise<void> {
    await this.deps.store.deleteSession(hashToken(token));
  }
}
