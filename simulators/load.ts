/**
 * Load generation: many provisioned devices, each on its own MQTT connection with its own
 * credentials, publish a realistic mix of QoS 1 events at an open-loop rate. It measures what a device
 * sees: PUBACK latency (SPEC §3: the acknowledgement means "durably recorded"), rejections (the reasons
 * the gateway publishes on each device's `errors` topic) and refused logins.
 *
 * The client is a raw socket speaking MQTT 3.1.1: CONNECT and SUBSCRIBE come from mqtt-packet, PUBLISH is
 * framed by hand. FACTS.md: mqtt.js costs several times more CPU per message than a raw-socket client and
 * halves the measured ceiling, and the load generator shares the machine with the service.
 */
import { createConnection, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import type { DeviceKind } from '../gateway/protocol.ts';
import { topics } from '../gateway/protocol.ts';
import type { DeviceIdentity } from './device.ts';
import { encodeLength } from './mqtt-frame.ts';
import { Rng } from './random.ts';

export type LoadEventKind = 'motion' | 'heartbeat' | 'door' | 'fall' | 'sos' | 'invalid';

/**
 * Default mix, from the ordinary routine (routine.ts): a home sends ~600 motion triggers and ~1,700
 * heartbeats a day with all its devices, a few door events; falls and SOS are rare and each one raises an
 * alert, so they are off unless asked for.
 */
export const DEFAULT_MIX: Record<LoadEventKind, number> = {
  motion: 0.55,
  heartbeat: 0.4,
  door: 0.05,
  fall: 0,
  sos: 0,
  invalid: 0,
};

/** The device kind each event kind needs (`invalid` and `heartbeat`: any device). */
const KIND_OF: Record<LoadEventKind, DeviceKind | null> = {
  motion: 'motion',
  heartbeat: null,
  door: 'door',
  fall: 'fall',
  sos: 'button',
  invalid: null,
};

export interface LoadOptions {
  host: string;
  port: number;
  /** Provisioned devices with their secrets; at most `maxConnections` of them connect. */
  devices: readonly DeviceIdentity[];
  /** Messages per second offered, open loop (the rate does not slow down when acknowledgements do). */
  rate: number;
  /** Seconds of sending (default 30). */
  durationS?: number;
  /** Stop after this many messages instead (whichever comes first). */
  total?: number;
  /** FACTS.md: one process holds ~19,900 sockets here; keep room for the service's own. Default 15,000. */
  maxConnections?: number;
  /** New connections per second (default 2,000). */
  connectRate?: number;
  /** Share of each event kind (normalised). */
  mix?: Partial<Record<LoadEventKind, number>>;
  /** A PUBACK not back after this long counts as lost (default 10 s). */
  ackTimeoutMs?: number;
  /** How often `onProgress` is called (default 1 s). */
  progressEveryMs?: number;
  onProgress?: (p: LoadProgress) => void;
  /**
   * Called once, when every connection has settled and sending starts: a benchmark measuring something else
   * under this load starts then, and ends the load with `signal` (with a long `durationS`).
   */
  onSending?: () => void;
  /** Source of the events' `ts` (the service's clock, when it runs on a scaled clock). Default Date.now. */
  now?: () => number;
  seed?: number;
  /** Subscribe each device to its `errors` topic to count rejections (default true). */
  countRejections?: boolean;
  signal?: AbortSignal;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface LoadProgress {
  phase: 'connecting' | 'sending' | 'draining';
  elapsedS: number;
  connected: number;
  connectFailed: number;
  sent: number;
  acked: number;
  rejected: number;
  inFlight: number;
  /** Acknowledgements per second over the last interval. */
  ackRate: number;
  /** PUBACK latency over the last interval, ms. */
  p50: number;
  p99: number;
}

export interface LoadSummary {
  connections: number;
  connectFailed: number;
  /** CONNACK return codes of refused logins, counted. */
  refused: Record<string, number>;
  /** Connections that closed while the run was going. */
  dropped: number;
  sent: number;
  acked: number;
  rejected: number;
  /** Sent but never acknowledged within the timeout. */
  lost: number;
  byKind: Record<LoadEventKind, number>;
  connectS: number;
  sendS: number;
  offeredRate: number;
  ackedRate: number;
  latencyMs: LatencySummary;
}

export function percentiles(values: number[]): LatencySummary {
  if (values.length === 0) return { count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0 };
  const v = Float64Array.from(values).sort();
  const at = (q: number) => v[Math.min(v.length - 1, Math.floor(q * v.length))]!;
  let sum = 0;
  for (const x of v) sum += x;
  return {
    count: v.length,
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    p999: at(0.999),
    max: v[v.length - 1]!,
    mean: sum / v.length,
  };
}

/** A PUBLISH at QoS 1, framed by hand (MQTT 3.1.1 §3.3): cheaper than a generic encoder per message. */
function publishPacket(topic: Buffer, id: number, payload: Buffer, retain = false): Buffer {
  const remaining = 2 + topic.length + 2 + payload.length;
  const lenBytes = encodeLength(remaining);
  const buf = Buffer.allocUnsafe(1 + lenBytes.length + remaining);
  let o = 0;
  buf[o++] = 0x32 | (retain ? 1 : 0);
  o += lenBytes.copy(buf, o);
  buf.writeUInt16BE(topic.length, o);
  o += 2;
  topic.copy(buf, o);
  o += topic.length;
  buf.writeUInt16BE(id, o);
  o += 2;
  payload.copy(buf, o);
  return buf;
}

class Conn {
  socket: Socket | undefined;
  open = false;
  private nextId = 1;
  readonly pending = new Map<number, number>();
  seq = 0;
  doorOpen = false;
  readonly eventsTopic: Buffer;
  lastWrite = 0;

  constructor(readonly d: DeviceIdentity) {
    this.eventsTopic = Buffer.from(topics.events(d.homeId, d.id));
  }

  takeId(): number {
    // Packet ids 1..65535; an id still awaiting its PUBACK is skipped.
    for (let i = 0; i < 65535; i++) {
      const id = this.nextId;
      this.nextId = id === 65535 ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
    return 0;
  }
}

/**
 * Connects the devices, sends `rate` messages per second for `durationS` seconds, waits for the last
 * acknowledgements, disconnects cleanly and returns the summary.
 */
export async function runLoad(o: LoadOptions): Promise<LoadSummary> {
  const now = o.now ?? Date.now;
  const rng = new Rng(o.seed ?? 2026);
  const mixIn = { ...DEFAULT_MIX, ...o.mix };
  const ackTimeout = o.ackTimeoutMs ?? 10_000;
  const progressEvery = o.progressEveryMs ?? 1000;
  const countRejections = o.countRejections ?? true;
  const conns = pickConnections(o.devices, o.maxConnections ?? 15_000).map((d) => new Conn(d));

  const s = {
    connected: 0,
    connectFailed: 0,
    refused: {} as Record<string, number>,
    dropped: 0,
    sent: 0,
    acked: 0,
    rejected: 0,
    byKind: { motion: 0, heartbeat: 0, door: 0, fall: 0, sos: 0, invalid: 0 } as Record<
      LoadEventKind,
      number
    >,
  };
  const latencies: number[] = [];
  let window: number[] = [];
  let windowAcks = 0;
  let phase: LoadProgress['phase'] = 'connecting';
  const t0 = performance.now();
  let lastProgress = t0;
  const progress = (force = false) => {
    const t = performance.now();
    if (!o.onProgress || (!force && t - lastProgress < progressEvery)) return;
    const w = percentiles(window);
    o.onProgress({
      phase,
      elapsedS: (t - t0) / 1000,
      connected: s.connected,
      connectFailed: s.connectFailed,
      sent: s.sent,
      acked: s.acked,
      rejected: s.rejected,
      inFlight: conns.reduce((n, c) => n + c.pending.size, 0),
      ackRate: (windowAcks * 1000) / Math.max(1, t - lastProgress),
      p50: w.p50,
      p99: w.p99,
    });
    lastProgress = t;
    window = [];
    windowAcks = 0;
  };
  // Keep-alive (MQTT 3.1.1 §3.1.2.10): a device quiet for 30 s sends PINGREQ, well inside the 60 s it declared.
  const ping = mqttPacket.generate({ cmd: 'pingreq' });
  let lastPing = t0;
  const ticker = setInterval(
    () => {
      progress();
      const t = performance.now();
      if (t - lastPing < 10_000) return;
      lastPing = t;
      for (const c of conns)
        if (c.open && c.socket && t - c.lastWrite > 30_000) {
          c.socket.write(ping);
          c.lastWrite = t;
        }
    },
    Math.max(50, Math.floor(progressEvery / 4)),
  );

  const onPacket = (c: Conn, p: Packet) => {
    if (p.cmd === 'puback') {
      const sentAt = p.messageId === undefined ? undefined : c.pending.get(p.messageId);
      if (sentAt === undefined) return;
      c.pending.delete(p.messageId!);
      const ms = performance.now() - sentAt;
      latencies.push(ms);
      window.push(ms);
      windowAcks++;
      s.acked++;
    } else if (p.cmd === 'publish') {
      // A rejection report on the device's errors topic (SPEC §3).
      s.rejected++;
    }
  };

  const connect = (c: Conn) =>
    new Promise<void>((resolve) => {
      const socket = createConnection({ host: o.host, port: o.port });
      socket.setNoDelay(true);
      const parser = mqttPacket.parser({ protocolVersion: 4 });
      let settled = false;
      const done = (ok: boolean) => {
        if (settled) return;
        settled = true;
        if (ok) s.connected++;
        else s.connectFailed++;
        resolve();
      };
      parser.on('packet', (p: Packet) => {
        if (p.cmd === 'connack') {
          if (p.returnCode !== 0) {
            const code = String(p.returnCode);
            s.refused[code] = (s.refused[code] ?? 0) + 1;
            socket.destroy();
            done(false);
            return;
          }
          c.open = true;
          c.socket = socket;
          c.lastWrite = performance.now();
          // A real device announces itself (retained `online`) and listens for its rejections.
          const status = Buffer.from(topics.status(c.d.homeId, c.d.id));
          const id = c.takeId();
          socket.write(publishPacket(status, id, Buffer.from('online'), true));
          if (countRejections) {
            socket.write(
              mqttPacket.generate({
                cmd: 'subscribe',
                messageId: c.takeId(),
                subscriptions: [{ topic: topics.errors(c.d.homeId, c.d.id), qos: 0 }],
              }),
            );
          }
          done(true);
          return;
        }
        onPacket(c, p);
      });
      parser.on('error', () => socket.destroy());
      socket.on('data', (b) => parser.parse(b));
      socket.on('error', () => {});
      socket.on('close', () => {
        if (c.open && phase !== 'draining') s.dropped++;
        c.open = false;
        done(false);
      });
      socket.write(
        mqttPacket.generate({
          cmd: 'connect',
          protocolId: 'MQTT',
          protocolVersion: 4,
          clean: true,
          clientId: c.d.id,
          keepalive: 60,
          username: c.d.id,
          password: Buffer.from(c.d.secret),
          will: {
            topic: topics.status(c.d.homeId, c.d.id),
            payload: Buffer.from('offline'),
            qos: 1,
            retain: true,
          },
        }),
      );
    });

  try {
    // Connect at a bounded rate, a bounded number at a time.
    const connectRate = o.connectRate ?? 2000;
    const inFlight = new Set<Promise<void>>();
    for (let i = 0; i < conns.length; i++) {
      if (o.signal?.aborted) break;
      const due = t0 + (i * 1000) / connectRate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      while (inFlight.size >= 500) await Promise.race(inFlight);
      const p = connect(conns[i]!).finally(() => inFlight.delete(p));
      inFlight.add(p);
      progress();
    }
    await Promise.all(inFlight);
    const connectS = (performance.now() - t0) / 1000;

    // Devices able to send each kind of event.
    const open = conns.filter((c) => c.open);
    const byDeviceKind = new Map<DeviceKind | null, Conn[]>([[null, open]]);
    for (const c of open) {
      const list = byDeviceKind.get(c.d.kind) ?? [];
      list.push(c);
      byDeviceKind.set(c.d.kind, list);
    }
    const kinds = (Object.keys(mixIn) as LoadEventKind[]).filter(
      (k) => mixIn[k] > 0 && (byDeviceKind.get(KIND_OF[k])?.length ?? 0) > 0,
    );
    const totalWeight = kinds.reduce((n, k) => n + mixIn[k], 0);
    const pickKind = (): LoadEventKind => {
      let r = rng.next() * totalWeight;
      for (const k of kinds) {
        r -= mixIn[k];
        if (r <= 0) return k;
      }
      return kinds[kinds.length - 1]!;
    };

    phase = 'sending';
    const durationMs = (o.durationS ?? 30) * 1000;
    const limit = o.total ?? Number.POSITIVE_INFINITY;
    const start = performance.now();
    let offered = 0;
    o.onSending?.();
    if (open.length > 0 && kinds.length > 0) {
      for (;;) {
        if (o.signal?.aborted) break;
        const elapsed = performance.now() - start;
        if (elapsed >= durationMs || offered >= limit) break;
        // Open loop: what the clock says is due, whatever the acknowledgements do (bounded catch-up).
        const due = Math.min(limit, Math.floor((elapsed / 1000) * o.rate));
        let batch = Math.min(due - offered, Math.max(1, Math.ceil(o.rate / 20)));
        while (batch-- > 0) {
          const kind = pickKind();
          const pool = byDeviceKind.get(KIND_OF[kind])!;
          const c = pool[Math.floor(rng.next() * pool.length)]!;
          offered++;
          if (!c.open || !c.socket) continue;
          const id = c.takeId();
          if (id === 0) continue;
          const ts = now();
          c.seq = Math.max(c.seq + 1, ts);
          c.lastWrite = performance.now();
          c.pending.set(id, c.lastWrite);
          c.socket.write(publishPacket(c.eventsTopic, id, payloadFor(kind, c, ts, rng)));
          s.sent++;
          s.byKind[kind]++;
        }
        progress();
        await sleep(Math.max(1, Math.min(20, 1000 / Math.max(1, o.rate))));
      }
    }
    const sendS = (performance.now() - start) / 1000;

    phase = 'draining';
    const drainUntil = performance.now() + ackTimeout;
    while (performance.now() < drainUntil && conns.some((c) => c.pending.size > 0)) {
      progress();
      await sleep(20);
    }
    progress(true);
    const lost = conns.reduce((n, c) => n + c.pending.size, 0);

    return {
      connections: s.connected,
      connectFailed: s.connectFailed,
      refused: s.refused,
      dropped: s.dropped,
      sent: s.sent,
      acked: s.acked,
      rejected: s.rejected,
      lost,
      byKind: s.byKind,
      connectS,
      sendS,
      offeredRate: s.sent / Math.max(0.001, sendS),
      ackedRate: s.acked / Math.max(0.001, sendS),
      latencyMs: percentiles(latencies),
    };
  } finally {
    clearInterval(ticker);
    phase = 'draining';
    const disconnect = mqttPacket.generate({ cmd: 'disconnect' });
    await Promise.all(
      conns.map(
        (c) =>
          new Promise<void>((resolve) => {
            const sock = c.socket;
            c.open = false;
            if (!sock || sock.destroyed) return resolve();
            sock.once('close', () => resolve());
            sock.end(disconnect);
            setTimeout(() => sock.destroy(), 2000).unref();
          }),
      ),
    );
  }
}

function payloadFor(kind: LoadEventKind, c: Conn, ts: number, rng: Rng): Buffer {
  const seq = c.seq;
  switch (kind) {
    case 'motion':
      return Buffer.from(
        `{"type":"motion","ts":${ts},"seq":${seq},"state":"active","room":${JSON.stringify(c.d.room)}}`,
      );
    case 'heartbeat':
      return Buffer.from(
        `{"type":"heartbeat","ts":${ts},"seq":${seq},"battery":${60 + rng.int(0, 40)},"rssi":${-40 - rng.int(0, 40)},"fw":"1.4.2"}`,
      );
    case 'door':
      c.doorOpen = !c.doorOpen;
      return Buffer.from(
        `{"type":"door","ts":${ts},"seq":${seq},"state":"${c.doorOpen ? 'open' : 'closed'}","door":"front"}`,
      );
    case 'fall':
      return Buffer.from(`{"type":"fall","ts":${ts},"seq":${seq},"state":"detected","confidence":0.9}`);
    case 'sos':
      return Buffer.from(`{"type":"sos","ts":${ts},"seq":${seq}}`);
    case 'invalid':
      return Buffer.from(`{"type":"motion","ts":${ts},"state":`);
  }
}

/**
 * Which devices connect when not all can: every home's first choice first (a motion sensor), then each
 * home's second (the door contact), and so on, so a capped run still spreads over every home and kind.
 */
export function pickConnections(devices: readonly DeviceIdentity[], max: number): DeviceIdentity[] {
  const rank: Record<DeviceKind, number> = { motion: 0, door: 1, fall: 2, button: 3 };
  const byHome = new Map<string, DeviceIdentity[]>();
  for (const d of devices) {
    const list = byHome.get(d.homeId) ?? [];
    list.push(d);
    byHome.set(d.homeId, list);
  }
  const homes = [...byHome.values()].map((l) =>
    [...l].sort((a, b) => rank[a.kind] - rank[b.kind] || a.id.localeCompare(b.id)),
  );
  const out: DeviceIdentity[] = [];
  for (let i = 0; out.length < max; i++) {
    let any = false;
    for (const h of homes) {
      const d = h[i];
      if (!d) continue;
      any = true;
      out.push(d);
      if (out.length >= max) break;
    }
    if (!any) break;
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function formatProgress(p: LoadProgress): string {
  return (
    `[${p.elapsedS.toFixed(1).padStart(6)} s] ${p.phase.padEnd(10)} connected ${p.connected}` +
    `${p.connectFailed ? ` (failed ${p.connectFailed})` : ''}  sent ${p.sent}  acked ${p.acked}` +
    `  rejected ${p.rejected}  in flight ${p.inFlight}  ${Math.round(p.ackRate)} ack/s` +
    `  p50 ${p.p50.toFixed(1)} ms  p99 ${p.p99.toFixed(1)} ms`
  );
}

export function formatSummary(s: LoadSummary): string {
  const l = s.latencyMs;
  const refused = Object.entries(s.refused)
    .map(([code, n]) => `${n} × code ${code}`)
    .join(', ');
  return [
    'load summary',
    `  connections  ${s.connections} in ${s.connectS.toFixed(1)} s` +
      `${s.connectFailed ? `, ${s.connectFailed} failed${refused ? ` (${refused})` : ''}` : ''}` +
      `${s.dropped ? `, ${s.dropped} dropped during the run` : ''}`,
    `  sent         ${s.sent} in ${s.sendS.toFixed(1)} s (${Math.round(s.offeredRate)} msg/s)  ` +
      Object.entries(s.byKind)
        .filter(([, n]) => n > 0)
        .map(([k, n]) => `${k} ${n}`)
        .join(', '),
    `  acknowledged ${s.acked} (${Math.round(s.ackedRate)} msg/s)   lost ${s.lost}   rejected ${s.rejected}`,
    `  PUBACK latency ms  p50 ${l.p50.toFixed(1)}  p90 ${l.p90.toFixed(1)}  p99 ${l.p99.toFixed(1)}` +
      `  p99.9 ${l.p999.toFixed(1)}  max ${l.max.toFixed(1)}  mean ${l.mean.toFixed(1)}`,
  ].join('\n');
}
