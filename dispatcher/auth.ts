/**
 * Staff login and sessions. Passwords are scrypt hashes; a session token is random and stored only as its
 * SHA-256, with an expiry read from the injected clock.
 *
 * Login abuse (SPEC §8 Access): failed logins are bounded per address across every username (password
 * spraying) and in all (a distributed attempt), and refused before any password work once a bound is
 * reached. Password checks run at most CHECKS_AT_ONCE at a time: scrypt shares libuv's 4-thread pool with
 * the event log's fsync (FACTS.md), so a login flood must never take the whole pool. An unknown username
 * costs the same single dummy check as a known one, so timing does not reveal usernames.
 */
import { createHash } from 'node:crypto';
import { hashPassword, verifyPassword } from '../gateway/secrets.ts';
import type { Clock } from '../kernel/clock.ts';
import { newToken } from '../kernel/ids.ts';
import type { Staff } from './registry.ts';
import type { Store } from './store/store.ts';

export const hashToken = (token: string): string => createHash('sha256').update(token).digest('base64url');

export interface LoginLimits {
  /** Failed logins one address may make within `windowMs`, whatever the usernames. */
  perAddress: number;
  /** Failed logins from all addresses together within `windowMs`. */
  global: number;
  windowMs: number;
  /** Password checks (scrypt) running at once; more wait in line. */
  checksAtOnce: number;
  /** Logins waiting for a check; more are refused as busy. */
  queue: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perAddress: 20,
  global: 500,
  windowMs: 15 * 60_000,
  checksAtOnce: 2,
  queue: 64,
};

export interface AuthDeps {
  store: Store;
  clock: Clock;
  sessionHours: number;
  limits?: Partial<LoginLimits>;
}

export type LoginOutcome =
  | { ok: true; token: string; staff: Staff; expiresAt: number }
  | { ok: false; reason: 'bad_credentials' }
  | { ok: false; reason: 'throttled'; bound: 'address' | 'global' | 'busy'; retryAfterMs: number };

export interface LiveSession {
  staff: Staff;
  expiresAt: number;
}

export class Auth {
  /** A fixed hash to compare against when the user does not exist, so timing does not reveal usernames. */
  private dummyHash: Promise<string> | null = null;
  private readonly limits: LoginLimits;
  /** Failed logins per address in the current window (fixed windows on the injected clock). */
  private failures = new Map<string, number>();
  private failuresAll = 0;
  private window = -1;
  private running = 0;
  /** Logins being handled now (checking or waiting for a check). */
  private inFlight = 0;
  private waiting: (() => void)[] = [];

  constructor(private readonly deps: AuthDeps) {
    this.limits = { ...DEFAULT_LOGIN_LIMITS, ...deps.limits };
  }

  async login(username: string, password: string, address = ''): Promise<LoginOutcome> {
    const now = this.deps.clock.now();
    this.roll(now);
    const retryAfterMs = this.limits.windowMs - (now % this.limits.windowMs);
    if ((this.failures.get(address) ?? 0) >= this.limits.perAddress)
      return { ok: false, reason: 'throttled', bound: 'address', retryAfterMs };
    if (this.failuresAll >= this.limits.global)
      return { ok: false, reason: 'throttled', bound: 'global', retryAfterMs };
    // Counted from arrival (before the account lookup), so a burst cannot slip past the line's length.
    if (this.inFlight >= this.limits.checksAtOnce + this.limits.queue)
      return { ok: false, reason: 'throttled', bound: 'busy', retryAfterMs: 1000 };
    this.inFlight++;
    try {
      return await this.attempt(username, password, address);
    } finally {
      this.inFlight--;
    }
  }

  private async attempt(username: string, password: string, address: string): Promise<LoginOutcome> {
    const rec = await this.deps.store.getStaffByUsername(username);
    const known = rec !== null && !rec.disabled;
    this.dummyHash ??= hashPassword('not-a-real-password');
    // One scrypt check whoever asks: the dummy hash for an unknown or disabled user.
    const hash = known ? rec.passwordHash : await this.dummyHash;
    const good = (await this.checked(() => verifyPassword(password, hash))) && known;
    if (!good) {
      this.roll(this.deps.clock.now());
      this.failures.set(address, (this.failures.get(address) ?? 0) + 1);
      this.failuresAll++;
      return { ok: false, reason: 'bad_credentials' };
    }
    const token = newToken();
    const at = this.deps.clock.now();
    const expiresAt = at + this.deps.sessionHours * 3_600_000;
    await this.deps.store.createSession({
      tokenHash: hashToken(token),
      staffId: rec.id,
      createdAt: at,
      expiresAt,
    });
    const { passwordHash: _omit, ...staff } = rec;
    return { ok: true, token, staff, expiresAt };
  }

  /** The staff member a token stands for now and when its session ends; null if it ended (or never was). */
  async session(token: string | undefined): Promise<LiveSession | null> {
    if (!token) return null;
    const session = await this.deps.store.getSession(hashToken(token));
    if (!session || session.expiresAt <= this.deps.clock.now()) return null;
    const rec = await this.deps.store.getStaff(session.staffId);
    if (!rec || rec.disabled) return null;
    const { passwordHash: _omit, ...staff } = rec;
    return { staff, expiresAt: session.expiresAt };
  }

  async authenticate(token: string | undefined): Promise<Staff | null> {
    return (await this.session(token))?.staff ?? null;
  }

  async logout(token: string): Promise<void> {
    await this.deps.store.deleteSession(hashToken(token));
  }

  /** Ends every session of one staff member (disabled, password changed): their tokens stop working now. */
  async endSessions(staffId: string): Promise<number> {
    return this.deps.store.deleteStaffSessions(staffId);
  }

  private roll(now: number): void {
    const w = Math.floor(now / this.limits.windowMs);
    if (w === this.window) return;
    this.window = w;
    this.failures = new Map();
    this.failuresAll = 0;
  }

  /** Runs one password check when a slot is free (at most `checksAtOnce` at a time, in arrival order). */
  private async checked<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.limits.checksAtOnce) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }
}
