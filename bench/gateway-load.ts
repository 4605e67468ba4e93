/**
 * A fast raw-socket MQTT 3.1.1 load generator for bench/gateway.bench.ts. mqtt.js costs several times
 * more CPU per message than the broker under test (FACTS.md), so this writes pre-framed packets and reads
 * only fixed headers. The same generator drives the gateway, bare aedes and mosquitto.
 */
import { connect, type Socket } from 'node:net';
import { encodeLength } from '../simulators/mqtt-frame.ts';

/** The secret of every bench device (stored in the service's device-hash format by gateway-broker.ts). */
export const BENCH_SECRET = 'bench-secret';
/** The secret of login-flood.bench.ts's valid devices (stored with production parameters; the flood never sends it). */
export const FLOOD_SECRET = 'flood-bench-secret';

const MAX_INFLIGHT = 4096; // packet ids cycle through 1..4096 per connection

function str(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

function frame(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), encodeLength(body.length), body]);
}

export function connectPacket(id: string, password: string, keepalive = 300): Buffer {
  return frame(
    0x10,
    Buffer.concat([
      str('MQTT'),
      Buffer.from([4, 0xc2, keepalive >> 8, keepalive & 0xff]),
      str(id),
      str(id),
      str(password),
    ]),
  );
}

export class LoadConn {
  readonly socket: Socket;
  inflight = 0;
  private nextId = 1;
  private seq = 0;
  /**
   * When each packet id in flight was sent. A Map, not an array of every packet id: a 4,096-slot array per
   * connection was 32 KB each (655 MB zero-filled over 20,000 connections of the scale bench), and a
   * connection of that bench has one or two PUBLISHes in flight at a time.
   */
  private sentAt: Map<number, number> | null = null;
  private rest: Buffer | null = null;
  private readonly topic: Buffer;
  connected: Promise<number>;
  closed = false;
  /** When this connection last wrote a packet (performance.now()): a device pings only when silent. */
  lastSent = performance.now();

  constructor(
    port: number,
    readonly device: string,
    readonly home: string,
    password: string,
    private onAck: (latencyMs: number) => void,
    /** The loopback source address (127.0.0.x): each has its own ~28,000 ephemeral ports per destination. */
    localAddress?: string,
  ) {
    this.topic = str(`g365/v1/homes/${home}/devices/${device}/events`);
    this.socket = connect({ port, host: '127.0.0.1', noDelay: true, localAddress });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
    });
    this.connected = new Promise((resolve, reject) => {
      this.connack = resolve;
      this.socket.once('close', () => reject(new Error(`connection of ${device} closed`)));
    });
    this.socket.on('connect', () => this.socket.write(connectPacket(device, password)));
    this.socket.on('data', (d: Buffer) => this.read(d));
  }

  private connack: (rc: number) => void = () => {};

  setAckListener(fn: (latencyMs: number) => void): void {
    this.onAck = fn;
  }

  /** Writes `n` QoS 1 event PUBLISHes in one socket write; returns how many were sent (in-flight cap). */
  publish(n: number): number {
    if (this.closed) return 0;
    this.sentAt ??= new Map();
    const k = Math.min(n, MAX_INFLIGHT - this.inflight);
    if (k <= 0) return 0;
    const parts: Buffer[] = [];
    const now = performance.now();
    for (let i = 0; i < k; i++) {
      const id = this.nextId;
      this.nextId = id === MAX_INFLIGHT ? 1 : id + 1;
      this.sentAt.set(id, now);
      const payload = Buffer.from(
        `{"type":"motion","ts":${Date.now()},"seq":${++this.seq},"state":"active","room":"living"}`,
      );
      parts.push(frame(0x32, Buffer.concat([this.topic, Buffer.from([id >> 8, id & 0xff]), payload])));
    }
    this.inflight += k;
    this.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    this.lastSent = now;
    return k;
  }

  private read(d: Buffer): void {
    let buf = this.rest ? Buffer.concat([this.rest, d]) : d;
    this.rest = null;
    let off = 0;
    const now = performance.now();
    while (buf.length - off >= 2) {
      let len = 0;
      let mul = 1;
      let i = off + 1;
      for (; i < buf.length; i++) {
        const b = buf[i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) break;
      }
      if (i >= buf.length) break;
      const end = i + 1 + len;
      if (end > buf.length) break;
      const type = buf[off]! >> 4;
      if (type === 4 && this.sentAt) {
        const id = buf.readUInt16BE(i + 1);
        this.inflight--;
        this.onAck(now - this.sentAt.get(id)!);
        this.sentAt.delete(id);
      } else if (type === 2) this.connack(buf[i + 2]!);
      off = end;
    }
    if (off < buf.length) {
      buf = buf.subarray(off);
      this.rest = Buffer.from(buf);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Opens `n` connections for devices d{from}… with at most `parallel` CONNECTs outstanding. */
export async function openMany(
  port: number,
  from: number,
  n: number,
  password: string,
  onAck: (ms: number) => void,
  parallel = 256,
): Promise<LoadConn[]> {
  const conns: LoadConn[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const c = new LoadConn(port, `d${from + i}`, `h${from + i}`, password, onAck);
      conns[i] = c;
      const rc = await c.connected;
      if (rc !== 0) throw new Error(`CONNACK ${rc} for d${from + i}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  return conns;
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** Closed loop: every connection keeps `window` publishes in flight for `seconds`. */
export async function closedLoop(
  conns: LoadConn[],
  window: number,
  seconds: number,
): Promise<{ rate: number; p50: number; p99: number }> {
  const lat: number[] = [];
  let acks = 0;
  let running = true;
  const dirty = new Set<LoadConn>();
  let scheduled = false;
  // Refill only the connections that got acknowledgements, once per turn: no busy loop stealing the CPU.
  const refill = () => {
    scheduled = false;
    if (!running) return;
    for (const c of dirty) c.publish(window - c.inflight);
    dirty.clear();
  };
  for (const c of conns)
    c.setAckListener((ms) => {
      acks++;
      lat.push(ms);
      dirty.add(c);
      if (!scheduled) {
        scheduled = true;
        setImmediate(refill);
      }
    });
  const started = performance.now();
  for (const c of conns) c.publish(window - c.inflight);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const elapsed = (performance.now() - started) / 1000;
  const counted = acks;
  await drain(conns);
  lat.sort((a, b) => a - b);
  return { rate: counted / elapsed, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) };
}

/** Open loop: `rate` publishes per second spread over the connections, for `seconds`. */
export async function openLoop(
  conns: LoadConn[],
  rate: number,
  seconds: number,
): Promise<{ offered: number; acked: number; ackRate: number; p50: number; p99: number; slices: number[] }> {
  const lat: number[] = [];
  /** Latencies by 500 ms slice of send time, for recovery after a burst. */
  const bySlice: number[][] = [];
  let acks = 0;
  let lastAck = 0;
  const started = performance.now();
  for (const c of conns)
    c.setAckListener((ms) => {
      acks++;
      lastAck = performance.now();
      lat.push(ms);
      const slice = Math.floor((performance.now() - ms - started) / 500);
      const bucket = bySlice[Math.max(0, slice)] ?? [];
      bySlice[Math.max(0, slice)] = bucket;
      bucket.push(ms);
    });
  let sent = 0;
  let rr = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(rate * seconds, Math.floor(((now - started) * rate) / 1000)) - sent;
      // Spread what is due over the connections, a few per connection per write.
      let left = due;
      let guard = conns.length;
      while (left > 0 && guard-- > 0) {
        const c = conns[rr++ % conns.length]!;
        const k = c.publish(Math.max(1, Math.ceil(due / conns.length)));
        left -= k;
        sent += k;
      }
      if (now - started >= seconds * 1000) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const elapsed = (performance.now() - started) / 1000;
  await drain(conns, 10_000);
  lat.sort((a, b) => a - b);
  return {
    offered: sent / elapsed,
    acked: acks,
    // Acknowledgements over the time until the last one: a backlog drained after the window counts as slow.
    ackRate: acks / (Math.max(lastAck - started, elapsed * 1000) / 1000),
    p50: percentile(lat, 0.5),
    p99: percentile(lat, 0.99),
    slices: Array.from(bySlice, (l) =>
      percentile(
        (l ?? []).sort((a, b) => a - b),
        0.99,
      ),
    ),
  };
}

async function drain(conns: LoadConn[], maxMs = 10_000): Promise<void> {
  const until = performance.now() + maxMs;
  while (conns.some((c) => c.inflight > 0 && !c.closed) && performance.now() < until)
    await new Promise((r) => setTimeout(r, 5));
}
