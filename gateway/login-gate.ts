/**
 * Device secret checks (SPEC §3 "secrets are stored only as salted hashes", §9 "nothing slows or stops
 * ingestion"; EDGE-02, SEC-05).
 *
 * A secret stored in the fast format (secrets.ts: salted HMAC-SHA256, every secret the service issues) is
 * checked at once, synchronously, in microseconds: nothing to queue, nothing to bound. What follows is for
 * the device rows still holding a legacy scrypt hash (hashed before SEC-05, re-hashed at their first good
 * login: auth.ts), which a flood of wrong secrets for their ids can still aim at.
 *
 * A scrypt check is a derivation (~50 ms of a core) on libuv's thread pool, the pool the event log's WAL
 * fsync runs on too: wrong-secret floods with known device ids once filled all four threads and held every
 * PUBACK back for minutes. So those checks go through this gate:
 *   - answers it already knows cost nothing: a device's last verified secret (per device and stored hash),
 *     and recently refused secrets (per device and stored hash, so a rotation makes them unknown again);
 *   - at most `concurrency` checks run at once, always leaving pool threads to the log, and only one while
 *     checks fail faster than `failedPerSecond` (the global bound on what refused logins cost);
 *   - checks for devices that failed recently, or from an address where several device ids failed, are
 *     "suspect": one at a time, within a global budget per second (the bound on what refused logins may
 *     cost), after every clean check; when their queue is full they are refused unchecked ("busy");
 *   - a check whose connection is gone by its turn is skipped;
 *   - a valid secret from a clean device is never delayed; what is slowed is the *refusal* of a suspect
 *     login (250 ms doubling to `maxRefusalDelayMs`), so a flooding client reconnects less often;
 *   - a success clears its device's failures; an address is suspect only when several *different* device
 *     ids failed from it, so one misconfigured device behind a shared address (carrier NAT, building hub)
 *     slows nobody but itself.
 *
 * Transport concern, not domain time: real timers and `performance.now()`.
 */
import { createHash } from 'node:crypto';
import { verifyDeviceSecret, verifyFastDeviceSecret } from './secrets.ts';

/** The bounds below apply to legacy scrypt checks only; fast-format checks never wait. */
export interface LoginGateOptions {
  /** Secret checks running at once (thread-pool threads they may take; libuv has 4). */
  concurrency: number;
  /** Suspect checks per second, all devices and addresses together. */
  suspectPerSecond: number;
  /**
   * Failed checks per second (all lanes) beyond which clean checks too run one at a time: many addresses
   * each trying a few ids (none of them suspect yet) never take more than one thread and one core.
   */
  failedPerSecond: number;
  /** Suspect checks waiting at most; beyond, refused unchecked. Per address at most a quarter of it. */
  maxSuspectQueued: number;
  /** Failures of one device id before its refusals are slowed; distinct failing ids before an address is. */
  failuresAllowed: number;
  /** How long failures are remembered. */
  windowMs: number;
  maxRefusalDelayMs: number;
}

export const DEFAULT_LOGIN_GATE: LoginGateOptions = {
  concurrency: 2,
  suspectPerSecond: 5,
  failedPerSecond: 10,
  maxSuspectQueued: 256,
  failuresAllowed: 5,
  windowMs: 10 * 60_000,
  maxRefusalDelayMs: 4_000,
};

/** What the gate answers about one device login. */
export type CheckResult =
  /** The secret matches (checked now or known). */
  | 'ok'
  /** The secret does not match (checked now or refused recently). */
  | 'wrong'
  /** Suspect and no room to check it now: refuse without an answer about the secret (CONNACK 3). */
  | 'busy'
  /** The connection closed before its turn: nothing was checked. */
  | 'gone';

export interface LoginGateStats {
  /** Fast-format secret checks (SEC-05), run at once. */
  fast: number;
  /** Legacy secret checks run (scrypt). */
  checks: number;
  /** Answered from the known-good or recently-refused caches. */
  cached: number;
  /** Skipped because the connection was gone by their turn. */
  skipped: number;
  /** Suspect logins refused unchecked because the suspect budget was used up. */
  busy: number;
  /** Suspect checks waiting now. */
  queued: number;
  /** Checks running now. */
  running: number;
}

type Lane = 'clean' | 'address' | 'device';
/** A check's turn: the function that gives the slot back, or why it will not run. */
type Turn = (() => void) | 'gone' | 'busy';

interface Waiting {
  deviceId: string;
  address: string;
  alive: () => boolean;
  settle: (t: Turn) => void;
}

interface Failures {
  n: number;
  last: number;
}

/** A Map used as a bounded LRU: the oldest entry goes when it is full. */
function setBounded<K, V>(m: Map<K, V>, k: K, v: V, max: number): void {
  m.delete(k);
  if (m.size >= max) {
    const oldest = m.keys().next().value;
    if (oldest !== undefined) m.delete(oldest);
  }
  m.set(k, v);
}

const MAX_ENTRIES = 100_000;

export class LoginGate {
  readonly stats: LoginGateStats = {
    fast: 0,
    checks: 0,
    cached: 0,
    skipped: 0,
    busy: 0,
    queued: 0,
    running: 0,
  };
  private readonly o: LoginGateOptions;
  /** Device id → digest of (stored hash, secret) last verified. */
  private readonly verified = new Map<string, string>();
  /** Digests of (device, stored hash, secret) refused recently → when. */
  private readonly refused = new Map<string, number>();
  private readonly deviceFailures = new Map<string, Failures>();
  /** Address → the distinct device ids (or unknown names) that failed from it recently, with when. */
  private readonly addressFailures = new Map<string, Map<string, number>>();
  /** Clean checks per address, taken round-robin: one address's queue never holds up another's. */
  private readonly clean = new Map<string, Waiting[]>();
  /** Suspect checks of devices that did not fail themselves (only their address is suspect) go first. */
  private readonly suspectAddress: Waiting[] = [];
  private readonly suspectDevice: Waiting[] = [];
  private readonly queuedPerAddress = new Map<string, number>();
  private suspectRunning = false;
  private tokens: number;
  private refilledAt = performance.now();
  private failTokens: number;
  private failRefilledAt = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(options: Partial<LoginGateOptions> = {}) {
    this.o = { ...DEFAULT_LOGIN_GATE, ...options };
    this.tokens = this.o.suspectPerSecond;
    this.failTokens = this.o.failedPerSecond;
  }

  /**
   * Checks `secret` against the device's stored hash: at once in the fast format; a legacy scrypt hash
   * waits for its turn, when `alive` is asked (a closed connection costs no check).
   */
  async check(
    deviceId: string,
    address: string,
    secret: string,
    storedHash: string,
    alive: () => boolean,
  ): Promise<CheckResult> {
    const fast = verifyFastDeviceSecret(secret, storedHash);
    if (fast !== null) {
      this.stats.fast++;
      return fast ? 'ok' : 'wrong';
    }
    const digest = createHash('sha256').update(storedHash).update('\0').update(secret).digest('base64');
    if (this.verified.get(deviceId) === digest) {
      this.stats.cached++;
      return 'ok';
    }
    const refusedKey = `${deviceId}\0${digest}`;
    const refusedAt = this.refused.get(refusedKey);
    if (refusedAt !== undefined && performance.now() - refusedAt < this.o.windowMs) {
      this.stats.cached++;
      return 'wrong';
    }
    const turn = await this.turn({ deviceId, address, alive, settle: () => {} });
    if (turn === 'gone') {
      this.stats.skipped++;
      return 'gone';
    }
    if (turn === 'busy') {
      this.stats.busy++;
      return 'busy';
    }
    try {
      this.stats.checks++;
      const ok = await verifyDeviceSecret(secret, storedHash);
      if (ok) {
        setBounded(this.verified, deviceId, digest, MAX_ENTRIES);
        this.refused.delete(refusedKey);
        return 'ok';
      }
      setBounded(this.refused, refusedKey, performance.now(), MAX_ENTRIES);
      this.refillFailures();
      this.failTokens -= 1;
      return 'wrong';
    } finally {
      turn();
    }
  }

  /** A login of this device succeeded: its failures are forgotten. */
  succeeded(deviceId: string): void {
    this.deviceFailures.delete(deviceId);
  }

  /**
   * A login was refused (wrong secret, unknown device, busy): remembered per device id and per address.
   * Returns how long the refusal should wait before it is sent.
   */
  failed(deviceId: string, address: string): number {
    const now = performance.now();
    const f = this.deviceFailures.get(deviceId);
    const n = f && now - f.last < this.o.windowMs ? f.n + 1 : 1;
    setBounded(this.deviceFailures, deviceId, { n, last: now }, MAX_ENTRIES);
    let ids = this.addressFailures.get(address);
    if (!ids) {
      ids = new Map();
      setBounded(this.addressFailures, address, ids, MAX_ENTRIES);
    }
    // A few more ids than the threshold are enough to know the address is suspect.
    ids.delete(deviceId);
    if (ids.size > this.o.failuresAllowed * 2) ids.delete(ids.keys().next().value!);
    ids.set(deviceId, now);
    const over = Math.max(n - this.o.failuresAllowed, this.recentIds(address, now) - this.o.failuresAllowed);
    return over < 0 ? 0 : Math.min(250 * 2 ** over, this.o.maxRefusalDelayMs);
  }

  /** Forgets the device's verified secret (disabled, rotated). */
  forget(deviceId: string): void {
    this.verified.delete(deviceId);
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private lane(deviceId: string, address: string): Lane {
    const now = performance.now();
    const f = this.deviceFailures.get(deviceId);
    if (f && now - f.last < this.o.windowMs) return 'device';
    return this.recentIds(address, now) >= this.o.failuresAllowed ? 'address' : 'clean';
  }

  private get suspectQueued(): number {
    return this.suspectAddress.length + this.suspectDevice.length;
  }

  private recentIds(address: string, now: number): number {
    const ids = this.addressFailures.get(address);
    if (!ids) return 0;
    let n = 0;
    for (const at of ids.values()) if (now - at < this.o.windowMs) n++;
    return n;
  }

  /** Waits for a slot. */
  private turn(w: Waiting): Promise<Turn> {
    return new Promise((resolve) => {
      w.settle = resolve;
      const lane = this.lane(w.deviceId, w.address);
      if (lane === 'clean') {
        const q = this.clean.get(w.address);
        if (q) q.push(w);
        else this.clean.set(w.address, [w]);
      } else this.enqueueSuspect(w, lane);
      this.next();
    });
  }

  /** Into the suspect queue, or refused unchecked when it (or this address's share of it) is full. */
  private enqueueSuspect(w: Waiting, lane: Lane): void {
    const mine = this.queuedPerAddress.get(w.address) ?? 0;
    if (
      this.suspectQueued >= this.o.maxSuspectQueued ||
      mine >= Math.max(1, Math.floor(this.o.maxSuspectQueued / 4))
    ) {
      w.settle('busy');
      return;
    }
    (lane === 'address' ? this.suspectAddress : this.suspectDevice).push(w);
    this.queuedPerAddress.set(w.address, mine + 1);
    this.stats.queued = this.suspectQueued;
  }

  private start(w: Waiting, suspect: boolean): void {
    this.stats.running++;
    if (suspect) this.suspectRunning = true;
    let done = false;
    w.settle(() => {
      if (done) return;
      done = true;
      this.stats.running--;
      if (suspect) this.suspectRunning = false;
      this.next();
    });
  }

  /**
   * The next clean check, one address after another. A check whose connection went is dropped; one that
   * became suspect while it waited (its device or address failed meanwhile) moves to the suspect queue.
   */
  private takeClean(): Waiting | undefined {
    for (const [address, q] of this.clean) {
      const w = q.shift()!;
      this.clean.delete(address);
      if (q.length > 0) this.clean.set(address, q); // to the end of the round
      if (!w.alive()) {
        w.settle('gone');
        continue;
      }
      const lane = this.lane(w.deviceId, w.address);
      if (lane === 'clean') return w;
      this.enqueueSuspect(w, lane);
    }
    return undefined;
  }

  /** The next live suspect check (those whose connection went are dropped on the way, at no cost). */
  private takeSuspect(): Waiting | undefined {
    for (;;) {
      const w = this.suspectAddress.shift() ?? this.suspectDevice.shift();
      if (!w) return undefined;
      const mine = (this.queuedPerAddress.get(w.address) ?? 1) - 1;
      if (mine > 0) this.queuedPerAddress.set(w.address, mine);
      else this.queuedPerAddress.delete(w.address);
      this.stats.queued = this.suspectQueued;
      if (w.alive()) return w;
      w.settle('gone');
    }
  }

  private refillFailures(): void {
    const now = performance.now();
    this.failTokens = Math.min(
      this.o.failedPerSecond,
      this.failTokens + ((now - this.failRefilledAt) * this.o.failedPerSecond) / 1000,
    );
    this.failRefilledAt = now;
  }

  /** Starts what may start: clean checks first; one suspect check at a time, within its budget. */
  private next(): void {
    this.refillFailures();
    const slots = this.failTokens >= 1 ? this.o.concurrency : 1;
    while (this.stats.running < slots) {
      const w = this.takeClean();
      if (!w) break;
      this.start(w, false);
    }
    if (this.stats.running >= slots || this.suspectRunning || this.suspectQueued === 0) return;
    const now = performance.now();
    this.tokens = Math.min(
      this.o.suspectPerSecond,
      this.tokens + ((now - this.refilledAt) * this.o.suspectPerSecond) / 1000,
    );
    this.refilledAt = now;
    if (this.tokens < 1) {
      if (!this.timer) {
        const wait = Math.ceil(((1 - this.tokens) * 1000) / this.o.suspectPerSecond);
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.next();
        }, wait);
        this.timer.unref();
      }
      return;
    }
    const w = this.takeSuspect();
    if (!w) return;
    this.tokens -= 1;
    this.start(w, true);
  }
}
