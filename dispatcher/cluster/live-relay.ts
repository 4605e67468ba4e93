/**
 * CLU-04: live events reach a page whichever dispatcher instance it is connected to, through socket.io's
 * Redis adapter (@socket.io/redis-adapter over ioredis): every emit to a room is published on Redis and
 * delivered by each instance to its own sockets; `fetchSockets` asks the other instances too.
 *
 * Redis down degrades, never stops: the adapter's calls on the publishing client (PUBLISH, PUBSUB NUMSUB)
 * go through a thin guard that, while the client is not connected, publishes nothing and reports this
 * instance as the only one, so every emit and every fetch works locally at once instead of queueing or
 * waiting for a timeout (the adapter does not handle those failures itself). The dispatch screen and
 * /readyz show the degradation (SystemHealth `live_relay_down`); ioredis reconnects by itself and
 * re-subscribes, and cross-instance delivery resumes without a restart.
 */
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import type { Logger } from '../../kernel/log.ts';

export class LiveRelay {
  private readonly pub: Redis;
  private readonly sub: Redis;
  private downSince: number | null = null;
  /** Publishes skipped while Redis was unreachable (for /metrics). */
  skipped = 0;

  constructor(
    url: string,
    private readonly log: Logger,
  ) {
    // Operational reconnection (real time): quickly at first, then every 2 s at most.
    const retryStrategy = (times: number) => Math.min(100 * times, 2_000);
    // No offline queue on the publishing side: a stale burst of live events after an outage is worse than
    // none (the pages catch up from the API when they notice a gap).
    this.pub = new Redis(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      retryStrategy,
      maxRetriesPerRequest: 1,
    });
    this.sub = new Redis(url, { lazyConnect: true, retryStrategy, maxRetriesPerRequest: null });
    for (const [name, c] of [
      ['publish', this.pub],
      ['subscribe', this.sub],
    ] as const) {
      c.on('error', (e: Error) => this.note(false, `${name}: ${e.message}`));
      c.on('ready', () => this.note(true, name));
      c.on('end', () => this.note(false, `${name}: closed`));
    }
  }

  async start(): Promise<void> {
    // A Redis that is down at start is a degradation, not a reason not to start.
    await Promise.all([this.pub.connect(), this.sub.connect()]).catch((e: unknown) =>
      this.note(false, (e as Error).message),
    );
  }

  async stop(): Promise<void> {
    this.pub.disconnect();
    this.sub.disconnect();
  }

  /** Whether events cross instances now. */
  get up(): boolean {
    return this.pub.status === 'ready' && this.sub.status === 'ready';
  }

  /** The degradation for the dispatch screen and /readyz, or null while Redis is reachable. */
  health(now: number): { since: number; reason: string } | null {
    if (this.up) {
      this.downSince = null;
      return null;
    }
    this.downSince ??= now;
    return { since: this.downSince, reason: `Redis unreachable (${this.pub.status}/${this.sub.status})` };
  }

  private note(up: boolean, what: string): void {
    if (up && this.up) this.log.info('live relay: Redis connected; live events cross instances');
    else if (!up) this.log.warn({ what }, 'live relay: Redis unreachable; live events stay on this instance');
  }

  /** The socket.io adapter factory (Server option `adapter`). */
  adapter(): ReturnType<typeof createAdapter> {
    const pub = this.pub;
    const guarded = new Proxy(pub, {
      get: (target, prop) => {
        if (prop === 'publish')
          return (channel: string, msg: Buffer | string) => {
            if (target.status !== 'ready') {
              this.skipped++;
              return Promise.resolve(0);
            }
            return target.publish(channel, msg).catch(() => {
              this.skipped++;
              return 0;
            });
          };
        if (prop === 'send_command')
          return (cmd: string, args: string[], cb: (e: Error | null, r?: unknown) => void) => {
            // PUBSUB NUMSUB: while Redis is down this instance is the only one it can reach.
            if (target.status !== 'ready') return cb(null, [args[1], 1]);
            target.call(cmd, ...args).then(
              (r) => cb(null, r),
              () => cb(null, [args[1], 1]),
            );
          };
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    return createAdapter(guarded, this.sub, { requestsTimeout: 2_000 });
  }
}
