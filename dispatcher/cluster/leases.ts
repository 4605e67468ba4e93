/**
 * CLU-03: dispatcher instances split the work by community with leases in PostgreSQL. A lease row names its
 * holder, an expiry (the database's clock, so instances whose clocks differ agree) and an epoch that grows
 * at every change of holder. Each instance renews what it holds and takes what has expired; the epoch it
 * got is the fencing token every write of its rules and escalation checks in its own transaction
 * (PostgresStore.checkFence), so an instance that lost its lease — paused, cut off, presumed dead — cannot
 * write for that community even before it notices.
 *
 * Timing: a lease is about processes being alive, not about the service's (possibly simulated) time, so the
 * TTL and the renewal interval are real time (like SystemHealth's sampling); SLA deadlines stay on the
 * injected clock and in the database. Takeover after a crash: within TTL + one renewal interval.
 */
import type pg from 'pg';
import type { Logger } from '../../kernel/log.ts';
import type { Fence } from '../store/store.ts';

export interface LeaseDeps {
  pool: pg.Pool;
  /** This instance's identity in the lease rows (unique per process start). */
  holder: string;
  ttlMs: number;
  renewMs: number;
  log: Logger;
  /** The names to hold leases on (communities, and the duty watch's). */
  names: () => Promise<string[]>;
  /** A lease was taken (or taken again after it lapsed): start the work. */
  onAcquired: (fence: Fence) => Promise<void>;
  /** A lease was lost (taken by another, or not renewed in time): stop the work. */
  onLost: (name: string) => Promise<void>;
}

const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

export class LeaseManager {
  private held = new Map<string, { fence: Fence; until: number }>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | null = null;
  private chains = new Map<string, Promise<void>>();
  private stopped = true;
  /** Takeovers and losses, for /metrics. */
  acquired = 0;
  lost = 0;

  constructor(private readonly deps: LeaseDeps) {}

  get holder(): string {
    return this.deps.holder;
  }

  /** The fence of a lease held now, or undefined. */
  fence(name: string): Fence | undefined {
    return this.held.get(name)?.fence;
  }

  /** The names held now. */
  get names(): string[] {
    return [...this.held.keys()];
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.deps.renewMs);
    this.timer.unref();
  }

  /** Graceful stop: the work stops first, then the leases are released so another instance takes them now. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
    const names = [...this.held.keys()];
    for (const name of names) this.drop(name);
    await Promise.all([...this.chains.values()]);
    if (names.length)
      await this.deps.pool
        .query('UPDATE community_leases SET expires_at = 0 WHERE holder = $1', [this.deps.holder])
        .catch(() => {});
  }

  private tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.renew()
      .catch((e: unknown) => this.deps.log.warn({ err: (e as Error).message }, 'leases: renewal failed'))
      .finally(() => {
        this.ticking = null;
      });
    return this.ticking;
  }

  private async renew(): Promise<void> {
    const startedAt = Date.now();
    let names: string[];
    try {
      names = await this.deps.names();
    } catch (e) {
      this.expireLocally(startedAt);
      throw e;
    }
    for (const name of names) {
      if (this.stopped) return;
      let epoch: number | null = null;
      try {
        const r = await this.deps.pool.query(
          `INSERT INTO community_leases AS l (community, holder, epoch, expires_at)
             VALUES ($1, $2, 1, ${NOW_MS} + $3)
           ON CONFLICT (community) DO UPDATE SET
             holder = excluded.holder,
             epoch = CASE WHEN l.holder = excluded.holder THEN l.epoch ELSE l.epoch + 1 END,
             expires_at = excluded.expires_at
           WHERE l.holder = excluded.holder OR l.expires_at <= ${NOW_MS}
           RETURNING epoch`,
          [name, this.deps.holder, this.deps.ttlMs],
        );
        epoch = r.rows[0] ? Number(r.rows[0].epoch) : null;
      } catch (e) {
        this.expireLocally(startedAt);
        throw e;
      }
      const had = this.held.get(name);
      if (epoch === null) {
        if (had) {
          this.deps.log.warn({ community: name }, 'leases: lost to another instance');
          this.drop(name);
        }
        continue;
      }
      // Counted from before the renewal was sent: the database's expiry is at least this late.
      const until = startedAt + this.deps.ttlMs;
      if (had && had.fence.epoch === epoch) {
        had.until = until;
        continue;
      }
      if (had) this.drop(name);
      const fence = { community: name, holder: this.deps.holder, epoch };
      this.held.set(name, { fence, until });
      this.acquired++;
      this.deps.log.info({ community: name, epoch }, 'leases: taken');
      this.serial(name, () => this.deps.onAcquired(fence));
    }
  }

  /** The database cannot be reached: a lease not renewed in time is no longer ours (writes are fenced anyway). */
  private expireLocally(now: number): void {
    for (const [name, h] of this.held) if (h.until <= now) this.drop(name);
  }

  private drop(name: string): void {
    if (!this.held.delete(name)) return;
    this.lost++;
    this.serial(name, () => this.deps.onLost(name));
  }

  private serial(name: string, work: () => Promise<void>): void {
    const next = (this.chains.get(name) ?? Promise.resolve())
      .then(work)
      .catch((e: unknown) => this.deps.log.error({ err: e, community: name }, 'leases: handover failed'));
    this.chains.set(name, next);
    void next.finally(() => {
      if (this.chains.get(name) === next) this.chains.delete(name);
    });
  }
}
