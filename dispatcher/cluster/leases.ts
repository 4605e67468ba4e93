/**
 * CLU-03: dispatcher instances split the work by community with leases in PostgreSQL. A lease row names its
 * holder, an expiry (the database's clock, so instances whose clocks differ agree) and an epoch that grows
 * at every change of holder. Each instance renews what it holds and takes what has expired; the epoch it
 * got is the fencing token every write of its rules and escalation checks in its own transaction
 * (PostgresStore.checkFence), so an instance that lost its lease — paused, cut off, presumed dead — cannot
 * write for that community even before it notices.
 *
 * CLU-08: the instances spread the communities evenly. Each keeps a row in `dispatcher_instances` alive
 * like a lease (same TTL, same database clock), so every instance knows which are live; at each renewal it
 * works out its fair share (balance.ts), gives up what it holds beyond it — the community's work stops
 * first (rules, escalation timers), then the lease is released, not left to expire — and takes free
 * communities while below it. The instance that takes a released community goes through the same takeover
 * as after a crash (`onAcquired`: the stored deadlines are re-armed, a step due fires at once). A release,
 * an instance joining and one leaving are announced (`announce`, a NOTIFY) so the others renew at once
 * rather than at their next period.
 *
 * Timing: a lease is about processes being alive, not about the service's (possibly simulated) time, so the
 * TTL and the renewal interval are real time (like SystemHealth's sampling); SLA deadlines stay on the
 * injected clock and in the database. Takeover after a crash: within TTL + one renewal interval; after a
 * graceful release: at the announcement (one renewal interval without it).
 */
import type pg from 'pg';
import type { Logger } from '../../kernel/log.ts';
import type { ClusterView } from '../bus.ts';
import type { Fence } from '../store/store.ts';
import { balance } from './balance.ts';

export interface LeaseDeps {
  pool: pg.Pool;
  /** This instance's identity in the lease rows (unique per process start). */
  holder: string;
  ttlMs: number;
  renewMs: number;
  log: Logger;
  /** The names to hold leases on (communities, and the duty watch's). */
  names: () => Promise<string[]>;
  /**
   * CLU-08: whether a name is spread evenly over the live instances (communities); the others (the duty
   * watch) go to whichever instance finds them free. Default: every name is spread.
   */
  spread?: (name: string) => boolean;
  /** Wakes the other instances: leases were released, or an instance joined or left (a NOTIFY). */
  announce?: () => Promise<void>;
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
  private again = false;
  private chains = new Map<string, Promise<void>>();
  private stopped = true;
  private joined = false;
  /** Takeovers and losses, for /metrics. */
  acquired = 0;
  lost = 0;
  /** CLU-08: leases given up on purpose, to another instance's share or at a graceful stop. */
  released = 0;
  /** CLU-08: the live instances at the last renewal (this one included). */
  live = 0;
  /** Who holds what, as this instance last read it (the ops view of /readyz and the dispatch screen). */
  view: ClusterView;

  constructor(private readonly deps: LeaseDeps) {
    this.view = { self: deps.holder, instances: [], free: [] };
  }

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

  /**
   * Graceful stop: the work stops first, then the leases are released and this instance leaves the live
   * ones, and the others are told, so they take its communities now rather than at expiry.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
    const names = [...this.held.keys()];
    for (const name of names) this.drop(name, 'released');
    await Promise.all([...this.chains.values()]);
    if (!this.joined && names.length === 0) return;
    try {
      await this.deps.pool.query('DELETE FROM dispatcher_instances WHERE holder = $1', [this.deps.holder]);
      if (names.length)
        await this.deps.pool.query('UPDATE community_leases SET expires_at = 0 WHERE holder = $1', [
          this.deps.holder,
        ]);
      await this.deps.announce?.();
    } catch {
      // The database is away: the leases and the instance row expire by themselves.
    }
  }

  /** Renew now (another instance released leases, joined or left); coalesced with a renewal under way. */
  wake(): void {
    if (this.stopped) return;
    if (this.ticking) this.again = true;
    else void this.tick();
  }

  private tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.renew()
      .catch((e: unknown) => this.deps.log.warn({ err: (e as Error).message }, 'leases: renewal failed'))
      .finally(() => {
        this.ticking = null;
        if (this.again && !this.stopped) {
          this.again = false;
          void this.tick();
        }
      });
    return this.ticking;
  }

  private async renew(): Promise<void> {
    const startedAt = Date.now();
    const { pool, holder, ttlMs } = this.deps;
    const spread = this.deps.spread ?? (() => true);
    let names: string[];
    let joined: boolean;
    let members: string[];
    let holders: Map<string, string>;
    try {
      names = await this.deps.names();
      // CLU-08: this instance is live while it renews, on the same TTL and clock as its leases.
      const me = await pool.query(
        `INSERT INTO dispatcher_instances AS i (holder, expires_at) VALUES ($1, ${NOW_MS} + $2)
         ON CONFLICT (holder) DO UPDATE SET expires_at = excluded.expires_at
         RETURNING (xmax = 0) AS inserted`,
        [holder, ttlMs],
      );
      joined = me.rows[0]?.inserted === true;
      this.joined = true;
      // What is held is renewed first: the share is worked out on the state after it.
      for (const name of [...this.held.keys()]) {
        if (this.stopped) return;
        if (names.includes(name)) await this.claim(name, startedAt);
      }
      const [m, l] = await Promise.all([
        pool.query(`SELECT holder FROM dispatcher_instances WHERE expires_at > ${NOW_MS} ORDER BY holder`),
        pool.query(`SELECT community, holder FROM community_leases WHERE expires_at > ${NOW_MS}`),
      ]);
      members = m.rows.map((r) => String(r.holder));
      holders = new Map(l.rows.map((r) => [String(r.community), String(r.holder)]));
    } catch (e) {
      this.expireLocally(startedAt);
      throw e;
    }
    if (this.stopped) return;
    // Held but no longer a name to hold (a community without grids now): given up like a surplus.
    const gone = [...this.held.keys()].filter((n) => !names.includes(n));
    const plan = balance({ me: holder, members, names: names.filter(spread), holders });
    const released: string[] = [];
    for (const name of [...gone, ...plan.release]) {
      if (this.stopped) return;
      if (await this.release(name)) {
        released.push(name);
        holders.delete(name);
      }
    }
    // Below the share: free communities; and the names not spread (the duty watch) whenever they are free.
    const unspread = names.filter((n) => !spread(n) && !holders.has(n));
    for (const name of [...plan.take, ...unspread]) {
      if (this.stopped) return;
      if (await this.claim(name, startedAt)) holders.set(name, holder);
    }
    this.live = new Set([...members, holder]).size;
    this.view = {
      self: holder,
      instances: [...new Set([...members, holder])].map((id) => ({
        id,
        leases: names.filter((n) => holders.get(n) === id),
      })),
      free: names.filter((n) => !holders.has(n)),
    };
    if (released.length || joined) await this.deps.announce?.().catch(() => {});
  }

  /**
   * Takes or renews one lease; true when it is held here after. The epoch changes only with the holder, so
   * a renewal keeps the fence and a takeover gets a greater one.
   */
  private async claim(name: string, startedAt: number): Promise<boolean> {
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
    const epoch = r.rows[0] ? Number(r.rows[0].epoch) : null;
    const had = this.held.get(name);
    if (epoch === null) {
      if (had) {
        this.deps.log.warn({ community: name }, 'leases: lost to another instance');
        this.drop(name, 'lost');
      }
      return false;
    }
    // Counted from before the renewal was sent: the database's expiry is at least this late.
    const until = startedAt + this.deps.ttlMs;
    if (had && had.fence.epoch === epoch) {
      had.until = until;
      return true;
    }
    if (had) this.drop(name, 'lost');
    const fence = { community: name, holder: this.deps.holder, epoch };
    this.held.set(name, { fence, until });
    this.acquired++;
    this.deps.log.info({ community: name, epoch }, 'leases: taken');
    this.serial(name, () => this.deps.onAcquired(fence));
    return true;
  }

  /**
   * CLU-08: gives a held lease up for another instance's share. The community's work stops first (its
   * rules pipeline, its escalation timers: `onLost`), and from the moment it is dropped here no write of
   * this instance carries its fence; then the lease is released, waiting for any write still in its
   * transaction (which holds the lease row FOR SHARE), so the next holder reads everything it committed.
   */
  private async release(name: string): Promise<boolean> {
    const fence = this.held.get(name)?.fence;
    if (!fence) return false;
    this.drop(name, 'released');
    await this.chains.get(name);
    await this.deps.pool.query(
      'UPDATE community_leases SET expires_at = 0 WHERE community = $1 AND holder = $2 AND epoch = $3',
      [name, fence.holder, fence.epoch],
    );
    this.deps.log.info({ community: name, epoch: fence.epoch }, 'leases: released to another instance');
    return true;
  }

  /** The database cannot be reached: a lease not renewed in time is no longer ours (writes are fenced anyway). */
  private expireLocally(now: number): void {
    for (const [name, h] of this.held) if (h.until <= now) this.drop(name, 'lost');
  }

  private drop(name: string, why: 'lost' | 'released'): void {
    if (!this.held.delete(name)) return;
    if (why === 'lost') this.lost++;
    else this.released++;
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
