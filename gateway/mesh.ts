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
 *
 * Local first (CLU-09). mqemitter-redis alone routes every message through Redis, a local delivery too (its
 * `emit` only PUBLISHes; subscribers here get the message when Redis hands it back), so with Redis down a
 * notice would not reach a staff app on the very gateway that publishes it. `localFirst` delivers on this
 * node at once and relays to Redis for the others, with mqemitter-redis' own duplicate check keeping the
 * copy that comes back from being delivered twice.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { Redis } from 'ioredis';
import MQEmitterRedis from 'mqemitter-redis';
import type { Logger } from '../kernel/log.ts';

type Message = MQEmitterRedis.Message;
type Listener = (message: Message, done: () => void) => void;

/**
 * What `localFirst` relies on inside mqemitter-redis 7 (mqemitter-redis.js):
 * - `emit` PUBLISHes `msgpack.encode({ id, msg })` on `pubConn`, to the channel named by the topic;
 * - what `subConn` receives is decoded and handed to `_emit` (mqemitter's own local `emit`) unless its `id`
 *   is in `_cache` (an LRU of ids already delivered), then the id is put in `_cache`;
 * - `on` / `removeListener` change the local listeners at once and call `done` once Redis (un)subscribed.
 */
interface MQEmitterRedisInternals {
  closed: boolean;
  pubConn: Redis;
  subConn: Redis;
  _cache: { set(id: string, seen: boolean): void };
  emit(message: Message, done?: (err?: Error) => void): void;
  _emit(message: Message, done?: (err?: Error) => void): void;
  on(topic: string, listener: Listener, done?: () => void): unknown;
  removeListener(topic: string, listener: Listener, done?: () => void): unknown;
}

/** msgpack-lite as mqemitter-redis itself resolves it: the encoding its subscriber decodes. */
const msgpack = createRequire(createRequire(import.meta.url).resolve('mqemitter-redis'))('msgpack-lite') as {
  encode(value: unknown): Buffer;
};

/**
 * Makes `mq` deliver locally first (CLU-09): `emit` hands the message to this node's subscribers at once,
 * then PUBLISHes it for the other nodes in mqemitter-redis' own format under an id already in its
 * `_cache`, so the copy Redis hands back is dropped as seen (never delivered twice here). While Redis is
 * down nothing is queued for later (a stale `$SYS/<id>/new/clients` replayed after the outage could close a
 * newer session elsewhere): `onLocalOnly` counts what did not cross. A (un)subscription made while Redis is
 * down is in force here at once and confirmed at once; ioredis subscribes it in Redis when it is back.
 */
export function localFirst(
  emitter: MQEmitterRedis.MQEmitterRedis,
  nodeId: string,
  onLocalOnly: (e: Error | null) => void,
): void {
  const mq = emitter as unknown as MQEmitterRedisInternals;
  const on = mq.on.bind(mq);
  const removeListener = mq.removeListener.bind(mq);
  const ready = (c: Redis) => c.status === 'ready';
  let n = 0;
  mq.emit = (message, done) => {
    if (mq.closed) {
      done?.(new Error('mqemitter-redis is closed'));
      return;
    }
    // Unique across nodes: the node id is unique per process start (RedisMesh.brokerId).
    const id = `${nodeId}/${++n}`;
    mq._cache.set(id, true);
    mq._emit(message, done);
    if (!ready(mq.pubConn)) {
      onLocalOnly(null);
      return;
    }
    mq.pubConn
      .publish(message.topic, msgpack.encode({ id, msg: message }))
      .catch((e: Error) => onLocalOnly(e));
  };
  mq.on = (topic, listener, done) => {
    if (!done || ready(mq.subConn)) return on(topic, listener, done);
    on(topic, listener);
    setImmediate(done);
    return mq;
  };
  mq.removeListener = (topic, listener, done) => {
    if (!done || ready(mq.subConn)) return removeListener(topic, listener, done);
    removeListener(topic, listener);
    // After mqemitter's own local removal (a setImmediate too, queued first).
    setImmediate(done);
    return mq;
  };
}

export class RedisMesh {
  /** The broker id: unique per process start, so aedes tells a takeover on another node from its own. */
  readonly brokerId: string;
  readonly mq: MQEmitterRedis.MQEmitterRedis;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private wasUp = true;
  /** Messages delivered on this gateway only, Redis being unreachable (CLU-09). */
  localOnly = 0;

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
    localFirst(this.mq, this.brokerId, () => this.localOnly++);
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
