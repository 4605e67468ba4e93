/**
 * Protocol hygiene in front of aedes (SPEC §3 "never crashes or stalls the gateway", EDGE-01).
 *
 * Every device connection is wrapped in an `MqttGuard` stream before aedes sees a byte. The guard reads the
 * MQTT fixed header of each packet as it arrives and:
 *   - refuses a declared length over `maxPacketBytes` as soon as the length bytes are in, so a declared
 *     256 MB PUBLISH is never buffered (aedes buffers a whole packet and has no size limit);
 *   - forwards only complete packets, so a slow partial CONNECT never reaches aedes and is closed by its
 *     `connectTimeout`;
 *   - closes the connection on what MQTT 3.1.1 forbids and aedes 1.x accepts: invalid UTF-8 or U+0000 in a
 *     topic or client id [MQTT-1.5.3-1, -2], a QoS 1/2 PUBLISH with packet id 0 [MQTT-2.3.1-1], QoS 3
 *     [MQTT-3.3.1-4], a wildcard will topic [MQTT-3.1.3-11 with 4.7.1], an empty client id with clean
 *     session off (CONNACK 0x02 first, [MQTT-3.1.3-8]), a first packet that is not CONNECT [MQTT-3.1.0-1];
 *   - bounds deep topics, inbound QoS 2 handshakes waiting for PUBREL, and idle connections without
 *     keep-alive (half-open);
 *   - throttles each connection's PUBLISH rate with a token bucket: a flooding device is slowed down (its
 *     socket is simply not read), counted, and never starves the others;
 *   - stops reading while the gateway's admission control is closed (the durable log is behind), which is
 *     how overload turns into TCP back-pressure instead of memory growth (EDGE-03);
 *   - holds back a refused login's CONNACK when the login gate says so (EDGE-02: a flooding client
 *     reconnects less often) after aedes has let the connection go, so that only the socket waits, not
 *     aedes' client, its parser and the streams (~10 KB each: 2,000 flood connections held for seconds
 *     kept every young-generation collection copying them).
 *
 * These are transport guards for the machine's resources, not domain time: they use real timers.
 */
import { Duplex } from 'node:stream';

export interface GuardLimits {
  /** Largest MQTT packet accepted (remaining length). Events are at most 2 KiB plus topic (SPEC §3). */
  maxPacketBytes: number;
  /** Most topic levels in a PUBLISH topic or SUBSCRIBE filter. Device topics have 7. */
  maxTopicLevels: number;
  /** Most inbound QoS 2 PUBLISH waiting for their PUBREL on one connection. */
  maxInboundQos2: number;
  /** Per-connection PUBLISH rate: sustained messages per second and burst size (token bucket). */
  publishRate: { perSecond: number; burst: number };
  /** A connection without keep-alive (0) is closed after this long without receiving a byte. */
  idleWithoutKeepaliveMs: number;
}

export const DEFAULT_LIMITS: GuardLimits = {
  maxPacketBytes: 8 * 1024,
  maxTopicLevels: 16,
  maxInboundQos2: 8,
  publishRate: { perSecond: 50, burst: 200 },
  idleWithoutKeepaliveMs: 20 * 60_000,
};

export interface GuardHooks {
  /** A connection was closed for a protocol violation; `reason` is a short stable key. */
  violation(reason: string, remoteAddress: string): void;
  /** A PUBLISH was held back by the per-connection rate limit. */
  throttled(): void;
}

/** Global admission control: while closed, no guard reads from its socket. */
export class Admission {
  private closedSince = false;
  private readonly waiting = new Set<MqttGuard>();

  get isClosed(): boolean {
    return this.closedSince;
  }

  close(): void {
    this.closedSince = true;
  }

  open(): void {
    if (!this.closedSince) return;
    this.closedSince = false;
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const g of waiting) g.wake();
  }

  wait(g: MqttGuard): void {
    this.waiting.add(g);
  }

  forget(g: MqttGuard): void {
    this.waiting.delete(g);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** MQTT 3.1.1 §1.5.3: well-formed UTF-8 without U+0000. ASCII fast path: device topics are ASCII. */
function badString(buf: Buffer, start: number, end: number): boolean {
  let ascii = true;
  for (let i = start; i < end; i++) {
    const b = buf[i]!;
    if (b === 0) return true;
    if (b >= 0x80) ascii = false;
  }
  if (ascii) return false;
  try {
    return utf8.decode(buf.subarray(start, end)).includes('\u0000');
  } catch {
    return true;
  }
}

function levels(buf: Buffer, start: number, end: number): number {
  let n = 1;
  for (let i = start; i < end; i++) if (buf[i] === 0x2f) n++;
  return n;
}

function hasWildcard(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] === 0x2b || buf[i] === 0x23) return true;
  return false;
}

type Socketish = Duplex & {
  remoteAddress?: string;
  setKeepAlive?: (enable: boolean, delay: number) => unknown;
};

/**
 * The stream aedes reads and writes instead of the socket. Writes go straight to the socket; reads carry
 * only complete, checked packets.
 */
export class MqttGuard extends Duplex {
  readonly remoteAddress: string;
  /**
   * Set when the client sent DISCONNECT, a clean end of its session [MQTT-3.14.4]: its will is not
   * published, and presence records the cause `disconnect` (DEV-10). Read here rather than from aedes'
   * private `_disconnected`, since every packet passes through this guard first.
   */
  disconnectSent = false;
  private pending: Buffer | null = null;
  private connected = false;
  private tokens: number;
  private refilledAt = performance.now();
  private readonly qos2 = new Set<number>();
  private holdTimer: NodeJS.Timeout | undefined;
  private held = false;
  private backpressured = false;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Set by `holdRefusal`: what aedes writes is kept for the socket until `ms` have passed. */
  private refusal: { ms: number; bytes: Buffer[] } | null = null;
  private readonly onData = (chunk: Buffer) => this.ingest(chunk);
  private readonly onEnd = () => this.push(null);
  private readonly onGone = () => this.destroy();

  constructor(
    private readonly socket: Socketish,
    private readonly limits: GuardLimits,
    private readonly hooks: GuardHooks,
    private readonly admission: Admission,
  ) {
    super({ allowHalfOpen: false });
    this.remoteAddress = socket.remoteAddress ?? 'unknown';
    this.tokens = limits.publishRate.burst;
    // Half-open TCP connections are found by the kernel's keep-alive probes.
    socket.setKeepAlive?.(true, 60_000);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onGone);
    socket.on('error', this.onGone);
  }

  /**
   * The login on this connection was refused and its answer is to wait `ms` (EDGE-02). From now on what
   * aedes writes (its CONNACK) is kept, and when aedes closes this stream the socket is handed to a timer
   * that sends it after `ms` and closes; nothing else of the connection stays. A client that hangs up
   * first ends the wait.
   */
  holdRefusal(ms: number): void {
    if (this.destroyed || this.socket.destroyed) return;
    this.refusal = { ms, bytes: [] };
    this.socket.pause();
  }

  /** Resumes reading after a throttle pause or when admission reopens. */
  wake(): void {
    this.held = false;
    if (this.destroyed) return;
    if (!this.backpressured) this.socket.resume();
    this.ingest(null);
  }

  override _read(): void {
    if (!this.backpressured) return;
    this.backpressured = false;
    if (!this.held) this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.refusal) {
      this.refusal.bytes.push(chunk);
      cb();
      return;
    }
    if (this.socket.destroyed) {
      cb();
      return;
    }
    if (this.socket.write(chunk)) cb();
    else this.socket.once('drain', () => cb());
  }

  /**
   * aedes (mqtt-packet) corks the stream for each packet and uncorks on the next tick, so everything it
   * writes in one turn arrives here together: one socket write instead of one per PUBACK.
   */
  override _writev(chunks: { chunk: Buffer }[], cb: (e?: Error | null) => void): void {
    if (this.refusal) {
      for (const c of chunks) this.refusal.bytes.push(c.chunk);
      cb();
      return;
    }
    if (this.socket.destroyed) {
      cb();
      return;
    }
    const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    if (this.socket.write(data)) cb();
    else this.socket.once('drain', () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (!this.refusal) this.socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    clearTimeout(this.holdTimer);
    clearTimeout(this.idleTimer);
    this.admission.forget(this);
    this.pending = null;
    if (this.refusal && !this.socket.destroyed) this.sendRefusalLater(this.refusal);
    else if (!this.socket.destroyed) this.socket.destroy();
    this.refusal = null;
    cb(err);
  }

  /** The held refusal: only the socket, its answer and a timer remain (this guard is let go). */
  private sendRefusalLater({ ms, bytes }: { ms: number; bytes: Buffer[] }): void {
    const socket = this.socket;
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('close', this.onGone);
    socket.off('error', this.onGone);
    const timer = setTimeout(() => {
      if (socket.destroyed) return;
      if (bytes.length === 0) socket.destroy();
      else socket.end(Buffer.concat(bytes), () => socket.destroy());
    }, ms);
    socket.once('close', () => clearTimeout(timer));
    socket.on('error', () => socket.destroy());
    // A client that hangs up ends the wait (its FIN arrives as 'end' once the socket reads again).
    socket.once('end', () => socket.destroy());
    socket.resume();
  }

  private refuse(reason: string, connack?: number): void {
    if (this.destroyed) return;
    this.hooks.violation(reason, this.remoteAddress);
    this.pending = null;
    if (connack !== undefined && !this.socket.destroyed) {
      // CONNACK with the refusal code, then close [MQTT-3.2.2-5].
      this.socket.end(Buffer.from([0x20, 0x02, 0x00, connack]));
      this.socket.once('finish', () => this.destroy());
      this.socket.pause();
      return;
    }
    this.destroy();
  }

  private ingest(chunk: Buffer | null): void {
    if (this.destroyed) return;
    let buf: Buffer;
    if (this.pending && chunk) buf = Buffer.concat([this.pending, chunk]);
    else if (this.pending) buf = this.pending;
    else if (chunk) buf = chunk;
    else return;
    this.pending = null;
    if (chunk) this.idleTimer?.refresh();

    let off = 0;
    while (off < buf.length) {
      if (this.admission.isClosed && this.connected) {
        this.hold();
        this.admission.wait(this);
        break;
      }
      // Fixed header: type and flags, then the remaining length in 1–4 bytes [MQTT-2.2.3].
      if (buf.length - off < 2) break;
      let len = 0;
      let mul = 1;
      let i = off + 1;
      let complete = false;
      for (; i < buf.length && i < off + 5; i++) {
        const b = buf[i]!;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          i++;
          break;
        }
      }
      if (!complete) {
        if (i >= off + 5) {
          this.refuse('malformed length');
          return;
        }
        break;
      }
      // The declared size is known before a single payload byte is buffered.
      if (len > this.limits.maxPacketBytes) {
        this.refuse('packet too large');
        return;
      }
      const end = i + len;
      if (end > buf.length) break;
      const verdict = this.inspect(buf, buf[off]!, i, end);
      if (verdict === 'throttle') {
        this.hold();
        break;
      }
      if (verdict !== null) {
        this.refuse(verdict.reason, verdict.connack);
        return;
      }
      off = end;
      if (this.destroyed) return;
    }
    if (off > 0) {
      const pushed = this.push(off === buf.length ? buf : buf.subarray(0, off));
      if (!pushed) {
        this.backpressured = true;
        this.socket.pause();
      }
    }
    if (off < buf.length) {
      // Only an incomplete packet (at most maxPacketBytes + 5) or packets held back by a throttle wait here.
      this.pending = Buffer.from(buf.subarray(off));
    }
  }

  private hold(): void {
    if (this.held) return;
    this.held = true;
    this.socket.pause();
  }

  /** Returns null to forward the packet, 'throttle' to hold it back, or the reason to close. */
  private inspect(
    buf: Buffer,
    header: number,
    start: number,
    end: number,
  ): null | 'throttle' | { reason: string; connack?: number } {
    const type = header >> 4;
    if (!this.connected) {
      if (type !== 1) return { reason: 'first packet is not CONNECT' };
      const v = this.inspectConnect(buf, start, end);
      if (v === null) this.connected = true;
      return v;
    }
    switch (type) {
      case 3: {
        const qos = (header >> 1) & 3;
        if (qos === 3) return { reason: 'QoS 3' };
        if (end - start < 2) return { reason: 'malformed PUBLISH' };
        const tlen = buf.readUInt16BE(start);
        const ts = start + 2;
        const te = ts + tlen;
        if (te > end || tlen === 0) return { reason: 'malformed PUBLISH' };
        if (badString(buf, ts, te)) return { reason: 'invalid UTF-8 in topic' };
        if (hasWildcard(buf, ts, te)) return { reason: 'wildcard in PUBLISH topic' };
        if (levels(buf, ts, te) > this.limits.maxTopicLevels) return { reason: 'topic too deep' };
        if (qos > 0) {
          if (te + 2 > end) return { reason: 'malformed PUBLISH' };
          const id = buf.readUInt16BE(te);
          if (id === 0) return { reason: 'packet id 0' };
          if (qos === 2 && !this.qos2.has(id)) {
            if (this.qos2.size >= this.limits.maxInboundQos2) return { reason: 'QoS 2 flood' };
            this.qos2.add(id);
          }
        }
        return this.takeToken() ? null : 'throttle';
      }
      case 14:
        this.disconnectSent = true;
        return null;
      case 6: // PUBREL completes an inbound QoS 2 handshake.
        if (end - start >= 2) this.qos2.delete(buf.readUInt16BE(start));
        return null;
      case 8:
      case 10: {
        if (end - start < 2 || buf.readUInt16BE(start) === 0) return { reason: 'packet id 0' };
        let p = start + 2;
        while (p < end) {
          if (p + 2 > end) return { reason: 'malformed SUBSCRIBE' };
          const flen = buf.readUInt16BE(p);
          const fs = p + 2;
          const fe = fs + flen;
          if (fe > end || flen === 0) return { reason: 'malformed SUBSCRIBE' };
          if (badString(buf, fs, fe)) return { reason: 'invalid UTF-8 in topic' };
          if (levels(buf, fs, fe) > this.limits.maxTopicLevels) return { reason: 'topic too deep' };
          p = fe + (type === 8 ? 1 : 0);
        }
        return null;
      }
      default:
        return null;
    }
  }

  private inspectConnect(
    buf: Buffer,
    start: number,
    end: number,
  ): null | { reason: string; connack?: number } {
    const str = (p: number): [number, number] | null => {
      if (p + 2 > end) return null;
      const e = p + 2 + buf.readUInt16BE(p);
      return e > end ? null : [p + 2, e];
    };
    const name = str(start);
    if (!name) return { reason: 'malformed CONNECT' };
    let p = name[1];
    if (p + 4 > end) return { reason: 'malformed CONNECT' };
    const flags = buf[p + 1]!;
    const keepalive = buf.readUInt16BE(p + 2);
    p += 4;
    const clientId = str(p);
    if (!clientId) return { reason: 'malformed CONNECT' };
    if (badString(buf, clientId[0], clientId[1])) return { reason: 'invalid UTF-8 in client id' };
    const clean = (flags & 0x02) !== 0;
    // [MQTT-3.1.3-8]: a zero-byte client id with clean session 0 gets CONNACK 0x02 and the connection closes.
    if (clientId[1] === clientId[0] && !clean)
      return { reason: 'empty client id without clean session', connack: 2 };
    p = clientId[1];
    if (flags & 0x04) {
      const wt = str(p);
      if (!wt || wt[1] === wt[0]) return { reason: 'malformed CONNECT' };
      if (badString(buf, wt[0], wt[1])) return { reason: 'invalid UTF-8 in topic' };
      if (hasWildcard(buf, wt[0], wt[1])) return { reason: 'wildcard in will topic' };
      if (levels(buf, wt[0], wt[1]) > this.limits.maxTopicLevels) return { reason: 'topic too deep' };
    }
    if (keepalive === 0) {
      // Without keep-alive aedes never times the connection out: bound how long it may sit silent.
      this.idleTimer = setTimeout(() => this.onIdle(), this.limits.idleWithoutKeepaliveMs);
      this.idleTimer.unref();
    }
    return null;
  }

  private onIdle(): void {
    this.hooks.violation('idle without keep-alive', this.remoteAddress);
    this.destroy();
  }

  private takeToken(): boolean {
    const now = performance.now();
    const { perSecond, burst } = this.limits.publishRate;
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) * perSecond) / 1000);
    this.refilledAt = now;
    // The epsilon keeps a packet released exactly on time from being counted as throttled twice.
    if (this.tokens >= 1 - 1e-6) {
      this.tokens -= 1;
      return true;
    }
    this.hooks.throttled();
    const wait = Math.ceil(((1 - this.tokens) * 1000) / perSecond);
    clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      this.wake();
    }, wait);
    return false;
  }
}
