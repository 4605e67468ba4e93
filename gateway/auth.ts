/**
 * Device and staff-app logins (DEV-01, EDGE-02, SEC-05), apart from aedes: who a CONNECT is, or why it is
 * refused with which CONNACK code. Device secrets go through the login gate (login-gate.ts): a secret
 * stored in the fast format is checked at once, a legacy scrypt one within the gate's bounds and re-hashed
 * after it matched (rehash.ts). Refused logins are counted, their refusal held back when their device or
 * address failed too often, and summarised in the log once per period rather than once per attempt.
 * Staff apps log in with an API session token, checked by the dispatcher (`StaffCheck`).
 */
import { randomUUID } from 'node:crypto';
import type { AuthenticateError } from 'aedes';
import type { Timer } from '../kernel/clock.ts';
import type { Logger } from '../kernel/log.ts';
import { mayWill } from './acl.ts';
import type { LoginGate } from './login-gate.ts';
import type { DeviceCredentials, GatewayStore } from './ports.ts';
import type { SecretRehash } from './rehash.ts';
import { hashDeviceSecret, needsRehash, verifyFastDeviceSecret } from './secrets.ts';

/** `session`: this connection's id in the event log, so a restarted seq count shows (duplicates.ts). */
export type Identity =
  | { kind: 'device'; device: DeviceCredentials; session: string }
  | { kind: 'staff'; staffId: string; token: string; expiry: Timer | null };

/** A refused login and its CONNACK return code (3 server unavailable, 4 bad credentials, 5 not authorized). */
export class AuthError extends Error implements AuthenticateError {
  /** How long the refusal is held back before it is sent (EDGE-02: the device or its address failed often). */
  holdMs = 0;

  constructor(
    readonly returnCode: 3 | 4 | 5,
    message: string,
  ) {
    super(message);
  }
}

/** A login whose connection closed before its secret was checked: nothing to answer, nothing to count. */
export class LoginGone extends Error {}

/** A login that succeeded; for a staff app, when its login session ends (it is asked again then). */
export interface LoggedIn {
  identity: Identity;
  sessionEndsAt?: number;
}

/** Staff apps log in with username `staff:{id}` (the client id too) and an API token as password. */
export type StaffCheck = (staffId: string, token: string) => Promise<{ expiresAt: number } | null>;

export interface LoginAttempt {
  clientId: string;
  username: string;
  password: string;
  address: string;
  /** The will topic of the CONNECT, if it set one. */
  willTopic: string | null;
  /** Whether the connection is still open (a closed one costs no secret check). */
  alive: () => boolean;
}

export interface AuthenticatorDeps {
  store: Pick<GatewayStore, 'findDevice'>;
  log: Logger;
  gate: LoginGate;
  /** Legacy (scrypt) device hashes are re-hashed through it after a good login (SEC-05). */
  rehash: SecretRehash;
  authenticateStaff?: StaffCheck;
  /** A login refused by the ACL (a will outside the device's status topic, a staff app's will). */
  onWillDenied: () => void;
}

/** Session ids unique across gateway processes sharing one database: this process's tag and a count. */
const SESSION_TAG = randomUUID().slice(0, 8);
let sessionCount = 0;

export class Authenticator {
  /** Refused logins, and refusals held back before they were sent. */
  readonly stats = { failures: 0, throttled: 0 };
  /** Refused logins since the last summary, by reason, and from how many addresses. */
  private refusals = { n: 0, byReason: new Map<string, number>(), addresses: new Map<string, number>() };

  constructor(private readonly deps: AuthenticatorDeps) {}

  /** The identity of a login, or an `AuthError` (refused) or `LoginGone` (the connection went first). */
  async login(a: LoginAttempt): Promise<LoggedIn> {
    try {
      const loggedIn = await this.verify(a);
      this.deps.gate.succeeded(a.username);
      return loggedIn;
    } catch (e) {
      if (!(e instanceof AuthError)) throw e;
      this.stats.failures++;
      this.noteRefusal(e.message, a.address, a.clientId);
      // Held back by the transport (the connection's guard, hygiene.ts) once aedes has let it go.
      e.holdMs = this.deps.gate.failed(a.username, a.address);
      if (e.holdMs > 0) this.stats.throttled++;
      throw e;
    }
  }

  /** Whether a staff app's token still stands for its staff member (null: its session ended). */
  async staffSession(identity: Extract<Identity, { kind: 'staff' }>): Promise<{ expiresAt: number } | null> {
    try {
      return (await this.deps.authenticateStaff?.(identity.staffId, identity.token)) ?? null;
    } catch (e) {
      this.deps.log.error({ err: e, staffId: identity.staffId }, 'staff session check failed; closing');
      return null;
    }
  }

  /** Logs the refusals since the last summary (the first of a period was logged at once). */
  reportRefusals(): void {
    const r = this.refusals;
    if (r.n <= 1) {
      if (r.n === 1) this.refusals = { n: 0, byReason: new Map(), addresses: new Map() };
      return;
    }
    const top = [...r.addresses].sort((a, b) => b[1] - a[1]).slice(0, 3);
    this.deps.log.warn(
      {
        refused: r.n,
        byReason: Object.fromEntries(r.byReason),
        addresses: r.addresses.size,
        top: top.map(([address, n]) => ({ address, n })),
        checks: this.deps.gate.stats.checks,
        busy: this.deps.gate.stats.busy,
      },
      'mqtt logins refused since the last report',
    );
    this.refusals = { n: 0, byReason: new Map(), addresses: new Map() };
  }

  private async verify(a: LoginAttempt): Promise<LoggedIn> {
    const staff = parseStaffUser(a.username);
    if (staff) {
      const session =
        this.deps.authenticateStaff && a.clientId === a.username
          ? await this.deps.authenticateStaff(staff, a.password)
          : null;
      if (!session) throw new AuthError(4, 'bad staff credentials');
      const identity: Identity = { kind: 'staff', staffId: staff, token: a.password, expiry: null };
      if (a.willTopic !== null && !mayWill(identity, a.willTopic)) {
        this.deps.onWillDenied();
        throw new AuthError(5, 'staff clients may not set a will');
      }
      return { identity, sessionEndsAt: session.expiresAt };
    }
    const found = await this.deps.store.findDevice(a.username);
    if (!found) throw new AuthError(4, 'unknown device');
    // DEV-01: client id = username = device id; a secret used under another client id is refused.
    if (a.clientId !== found.id) throw new AuthError(4, 'client id does not match the device');
    const checked = await this.deps.gate.check(found.id, a.address, a.password, found.secretHash, a.alive);
    if (checked === 'gone') throw new LoginGone('connection closed before its secret was checked');
    // Not checked: the device or its address failed too often and the budget for such checks is used up.
    if (checked === 'busy') throw new AuthError(3, 'too many failed logins: try again later');
    if (checked === 'wrong') throw new AuthError(4, 'wrong secret');
    const device = needsRehash(found.secretHash) ? await this.rehashed(found, a.password) : found;
    if (device.disabled) throw new AuthError(5, 'device disabled');
    const identity: Identity = { kind: 'device', device, session: `${SESSION_TAG}-${++sessionCount}` };
    // DEV-03: a device's will may only be its own status topic (the retained `offline`).
    if (a.willTopic !== null && !mayWill(identity, a.willTopic)) {
      this.deps.onWillDenied();
      throw new AuthError(5, 'will topic outside the device status topic');
    }
    return { identity };
  }

  /**
   * SEC-05: a legacy (scrypt) hash that the secret just matched is replaced by the fast format, only if the
   * row still holds it. When it no longer does, the row changed while the secret was checked: a rotation
   * (the secret just checked is out: refused) or another connection of this device upgraded it first (the
   * secret matches what the row holds now).
   */
  private async rehashed(device: DeviceCredentials, secret: string): Promise<DeviceCredentials> {
    const to = hashDeviceSecret(secret);
    let changed: boolean;
    try {
      changed = await this.deps.rehash.upgrade({ deviceId: device.id, from: device.secretHash, to });
    } catch (e) {
      // The storage failed: the login stands (the secret matched), the next login tries again.
      this.deps.log.warn({ err: e, deviceId: device.id }, 'device secret re-hash failed');
      return device;
    }
    if (changed) return { ...device, secretHash: to };
    const now = await this.deps.store.findDevice(device.id);
    if (now && verifyFastDeviceSecret(secret, now.secretHash) === true) return now;
    throw new AuthError(4, 'wrong secret');
  }

  /** The first refusal of a period is logged at once, the rest in the period's summary (reportRefusals). */
  private noteRefusal(reason: string, address: string, clientId: string): void {
    const r = this.refusals;
    if (r.n === 0) this.deps.log.info({ clientId, reason, address }, 'mqtt login refused');
    r.n++;
    bump(r.byReason, reason);
    if (r.addresses.size < 10_000 || r.addresses.has(address)) bump(r.addresses, address);
  }
}

export function bump(m: Map<string, number>, key: string, n = 1): void {
  m.set(key, (m.get(key) ?? 0) + n);
}

/** The username prefix of a staff app's MQTT login (`staff:{id}`). */
export const STAFF_USER = 'staff:';

function parseStaffUser(username: string): string | null {
  return username.startsWith(STAFF_USER) ? username.slice(STAFF_USER.length) : null;
}
