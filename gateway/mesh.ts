/**
 * Several gateways (CLU-05): the aedes brokers of every gateway process share one message bus on Redis,
 * the engine aedes itself offers for clustering (mqemitter-redis as aedes' `mq`). What one broker routes
 * (a notice for a staff app, aedes' own `$SYS/<broker id>/new/clients`) reaches every broker, so a staff
 * app is reached whichever gateway holds it and a device that reconnects to another gateway takes over its
 * session there (aedes closes the old connection, MQTT-3.1.4-2, across nodes).
 *
 * Device events never cross it: they are durable in the shared log before their PUBACK and are not routed
 * (aedes-seams.ts routeOnlyUnhandled). So Redis down degrades cross-node delivery only; ingestion goes on,
 * and ioredis reconnects and subscribes again by itself when Redis returns (CLU-06).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import MQEmitterRedis from 'mqemitter-redis';
import type { Logger } from '../kernel/log.ts';

export class RedisMesh {
  /** The broker id: unique per process start, so aedes tells a takeover on another node from its own. */
  readonly brokerId: string;
  readonly mq: MQEmitterRedis.MQEmitterRedis;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private wasUp = true;

  constructor(
    url: string,
    name: string,
    private readonly log: Logger,
  ) {
    this.brokerId = `${name}-${randomUUID().slice(0, 8)}`;
    // Operational reconnection (real time): quickly at first, then every 2 s at most. A command issued
    // while Redis is down waits in ioredis' queue for one retry at most, then fails (a staff notice that
    // did not get through is then recorded as not delivered by the dispatcher, NOTIFY-02).
    const retryStrategy = (times: number) => Math.min(100 * times, 2_000);
    this.pub = new Redis(url, { retryStrategy, maxRetriesPerRequest: 1, lazyConnect: true });
    this.sub = new Redis(url, { retryStrategy, maxRetriesPerRequest: null, lazyConnect: true });
    for (const c of [this.pub, this.sub]) {
      c.on('ready', () => this.note());
      c.on('end', () => this.note());
      c.on('close', () => this.note());
    }
    this.mq = MQEmitterRedis({ pubConn: this.pub, subConn: this.sub });
    // mqemitter-redis re-emits connection errors here; unheard, an EventEmitter 'error' would end the process.
    (this.mq as unknown as { state: NodeJS.EventEmitter }).state.on('error', () => this.note());
  }

  /** Connects; a Redis that is down at start is a degradation, not a reason not to start. */
  async start(): Promise<void> {
    await Promise.all([this.pub.connect(), this.sub.connect()]).catch((e: unknown) => {
      this.log.warn({ err: (e as Error).message }, 'gateway mesh: Redis unreachable at start');
    });
  }

  /** Whether messages cross gateways now. */
  get up(): boolean {
    return this.pub.status === 'ready' && this.sub.status === 'ready';
  }

  /** Closes both connections (aedes' close closes the `mq` it was given; this is for a start that failed). */
  stop(): void {
    this.pub.disconnect();
    this.sub.disconnect();
  }

  private note(): void {
    const up = this.up;
    if (up === this.wasUp) return;
    this.wasUp = up;
    if (up) this.log.info('gateway mesh: Redis connected; messages cross gateways again');
    else
      this.log.warn(
        'gateway mesh: Redis unreachable; devices are still ingested, cross-gateway delivery waits',
      );
  }
}
