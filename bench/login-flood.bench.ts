/**
 * `npm run bench -- login-flood` (SPEC §3, §9: a bad actor must never stall durable ingestion): the
 * gateway (devices stored as the service stores them, SEC-05) in its own process, a flood of wrong-secret CONNECTs with known
 * device ids from 127.0.0.1 in another, and here, from other loopback addresses, a connected device
 * publishing QoS 1 events every 50 ms and fresh valid devices connecting every 2 s. The same probes run
 * without the flood first: that is the baseline of this run (the machine is shared; read the ratios).
 *
 *   BENCH_FLOOD_S=60 …       flood duration in seconds (default 30)
 *   BENCH_FLOOD_CONNS=2000 … flood connections (default 2,000)
 *   BENCH_FLOOD_HASH=legacy …  every device row holds a legacy scrypt hash (rows not re-hashed yet)
 *   BENCH_CPU_PROF=/tmp/prof …  a CPU profile of the gateway's process
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { HEAP_FLAGS } from '../kernel/heap.ts';
import { connectPacket, FLOOD_SECRET } from './gateway-load.ts';

const FLOOD_S = Number(process.env.BENCH_FLOOD_S ?? 30);
const CONNS = Number(process.env.BENCH_FLOOD_CONNS ?? 2_000);
const FLOOD_IDS = 2_000;
const GOOD_IDS = 200;
const here = import.meta.dirname;
/** A PUBACK or CONNACK not seen by then counts at this value (and is reported as missing). */
const GIVE_UP_MS = 20_000;

function child(script: string, args: string[], prof = false): ChildProcess {
  const cpuProf =
    prof && process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  return fork(join(here, script), args, {
    execArgv: [...HEAP_FLAGS, ...cpuProf, '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
}

function ask<T>(c: ChildProcess, cmd: string, reply = cmd): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: { cmd?: string }) => {
      if (m.cmd !== reply) return;
      c.off('message', on);
      resolve(m as T);
    };
    c.on('message', on);
    c.send({ cmd });
  });
}

function str(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

function publishPacket(topic: string, payload: string, id: number): Buffer {
  const body = Buffer.concat([str(topic), Buffer.from([id >> 8, id & 0xff]), Buffer.from(payload)]);
  return Buffer.concat([Buffer.from([0x32, body.length]), body]);
}

/** A valid device on its own loopback address: times its CONNACK and each QoS 1 event's PUBACK. */
class Probe {
  readonly socket: Socket;
  readonly opened = performance.now();
  connackMs: number | null = null;
  connackCode: number | null = null;
  error: string | null = null;
  tcpMs: number | null = null;
  closedMs: number | null = null;
  private readonly sent = new Map<number, number>();
  readonly acks: number[] = [];
  private nextId = 1;
  private seq = 0;
  private rest = Buffer.alloc(0);

  constructor(
    port: number,
    localAddress: string,
    readonly device: string,
  ) {
    this.socket = connect({ port, host: '127.0.0.1', localAddress, noDelay: true });
    this.socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e.code ?? e.message;
    });
    this.socket.on('connect', () => {
      this.tcpMs = performance.now() - this.opened;
      this.socket.write(connectPacket(device, FLOOD_SECRET, 60));
    });
    this.socket.on('close', () => {
      this.closedMs ??= performance.now() - this.opened;
    });
    this.socket.on('data', (d: Buffer) => this.read(d));
  }

  publish(): void {
    if (this.connackCode !== 0 || this.socket.destroyed) return;
    const id = this.nextId;
    this.nextId = (this.nextId % 60_000) + 1;
    const payload = JSON.stringify({
      type: 'motion',
      state: 'active',
      room: 'living',
      ts: Date.now(),
      seq: ++this.seq,
    });
    this.sent.set(id, performance.now());
    this.socket.write(
      publishPacket(`g365/v1/homes/h-${this.device}/devices/${this.device}/events`, payload, id),
    );
  }

  /** Events still waiting for their PUBACK, as their age now. */
  waiting(): number[] {
    const now = performance.now();
    return [...this.sent.values()].map((t) => now - t);
  }

  end(): void {
    this.socket.destroy();
  }

  private read(d: Buffer): void {
    let buf = this.rest.length ? Buffer.concat([this.rest, d]) : d;
    while (buf.length >= 2) {
      const len = buf[1]!;
      if (buf.length < 2 + len) break;
      const type = buf[0]! >> 4;
      if (type === 2) {
        this.connackMs = performance.now() - this.opened;
        this.connackCode = buf[3]!;
      } else if (type === 4) {
        const id = buf.readUInt16BE(2);
        const t = this.sent.get(id);
        if (t !== undefined) {
          this.sent.delete(id);
          this.acks.push(performance.now() - t);
        }
      }
      buf = buf.subarray(2 + len);
    }
    this.rest = Buffer.from(buf);
  }
}

interface Phase {
  name: string;
  puback: number[];
  missing: number;
  fresh: { connack: number | null; code: number | string | null; puback: number | null }[];
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(s.length * p))]! : Number.NaN;
};
const ms = (x: number | null) => (x === null ? `>${GIVE_UP_MS / 1000}s` : `${x.toFixed(1)} ms`);

/** The connected probe publishes every 50 ms; a fresh valid device connects every 2 s and sends one event. */
async function phase(
  name: string,
  port: number,
  probe: Probe,
  seconds: number,
  nextGood: () => string,
): Promise<Phase> {
  const before = probe.acks.length;
  const fresh: Probe[] = [];
  const tick = setInterval(() => probe.publish(), 50);
  const started = performance.now();
  let lastFresh = -Infinity;
  while (performance.now() - started < seconds * 1000) {
    if (performance.now() - lastFresh >= 2_000) {
      lastFresh = performance.now();
      fresh.push(new Probe(port, '127.0.0.3', nextGood()));
    }
    for (const f of fresh)
      if (f.connackCode === 0 && f.acks.length === 0 && f.waiting().length === 0) f.publish();
    await new Promise((r) => setTimeout(r, 20));
  }
  clearInterval(tick);
  // The fresh devices still connecting get up to GIVE_UP_MS from their start.
  const deadline = Math.max(...fresh.map((f) => f.opened)) + GIVE_UP_MS;
  while (performance.now() < deadline && fresh.some((f) => f.acks.length === 0)) {
    for (const f of fresh)
      if (f.connackCode === 0 && f.acks.length === 0 && f.waiting().length === 0) f.publish();
    await new Promise((r) => setTimeout(r, 20));
  }
  const puback = [...probe.acks.slice(before), ...probe.waiting()];
  const result: Phase = {
    name,
    puback,
    missing: probe.waiting().length,
    fresh: fresh.map((f) => ({
      connack: f.connackCode === 0 ? f.connackMs : null,
      code: f.connackCode ?? f.error ?? `tcp ${f.tcpMs?.toFixed(0)} closed ${f.closedMs?.toFixed(0)}`,
      puback: f.acks.length ? f.connackMs! + f.acks[0]! : null,
    })),
  };
  for (const f of fresh) f.end();
  return result;
}

interface BrokerStats {
  rssMb: number;
  counters: Record<string, number>;
  loopMs: { p50: number; p99: number; max: number };
  gc: {
    n: number;
    ms: number;
    maxMs: number;
    byKind: Record<string, { n: number; ms: number; maxMs: number }>;
  };
  cpuShare: number;
}

/** The gateway process over the phase: its CPU, its event loop's delay and GC, and the machine's load. */
function reportProcess(s: BrokerStats): void {
  console.log(
    `${''.padEnd(14)} gateway process: ${(s.cpuShare * 100).toFixed(0)} % of a core, event-loop delay p50 ${s.loopMs.p50.toFixed(1)} ms p99 ${s.loopMs.p99.toFixed(1)} ms max ${s.loopMs.max.toFixed(1)} ms, GC ${s.gc.n} pauses ${s.gc.ms.toFixed(0)} ms (longest ${s.gc.maxMs.toFixed(1)} ms: ${Object.entries(
      s.gc.byKind,
    )
      .map(([k, g]) => `${k} ${g.n}× ${g.ms.toFixed(0)} ms, longest ${g.maxMs.toFixed(1)}`)
      .join('; ')}); load average ${loadavg()[0]!.toFixed(2)}`,
  );
}

function report(p: Phase, base?: Phase): void {
  if (process.env.BENCH_DEBUG) console.log(JSON.stringify(p.fresh));
  const p50 = pct(p.puback, 0.5);
  const p99 = pct(p.puback, 0.99);
  const ratio = base ? ` (×${(p99 / pct(base.puback, 0.99)).toFixed(1)} baseline p99)` : '';
  console.log(
    `${p.name.padEnd(14)} connected device PUBACK n=${p.puback.length} p50 ${p50.toFixed(1)} ms p99 ${p99.toFixed(1)} ms max ${Math.max(...p.puback).toFixed(1)} ms${ratio}; in flight at the end ${p.missing}`,
  );
  const connected = p.fresh.filter((f) => f.puback !== null).map((f) => f.puback!);
  const worst = connected.length < p.fresh.length ? null : Math.max(...connected);
  console.log(
    `${''.padEnd(14)} fresh valid devices from another address: ${connected.length}/${p.fresh.length} got CONNACK+PUBACK within ${GIVE_UP_MS / 1000} s; connect-to-PUBACK p50 ${pct(connected, 0.5).toFixed(0)} ms max ${ms(worst)}`,
  );
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'g365-flood-'));
  const broker = child('login-flood-broker.ts', [dir, String(FLOOD_IDS), String(GOOD_IDS)], true);
  let flood: ChildProcess | undefined;
  try {
    const { port } = await new Promise<{ port: number }>((resolve) =>
      broker.on('message', (m: { ready?: boolean; port: number }) => m.ready && resolve(m)),
    );
    let good = 1;
    const nextGood = () => `good${good++}`;
    const probe = new Probe(port, '127.0.0.2', 'good0');
    while (probe.connackCode === null) await new Promise((r) => setTimeout(r, 20));
    if (probe.connackCode !== 0) throw new Error(`probe refused (${probe.connackCode})`);
    const rss0 = (await ask<{ rssMb: number }>(broker, 'stats')).rssMb;
    console.log(
      `${new Date().toISOString()} login flood: ${CONNS} connections from 127.0.0.1, ${FLOOD_IDS} known ids ` +
        `(${process.env.BENCH_FLOOD_HASH === 'legacy' ? 'legacy scrypt hashes' : 'fast hashes, as issued'}), ` +
        `wrong secrets, ${FLOOD_S} s; load average ${loadavg()
          .map((x) => x.toFixed(2))
          .join(' ')}`,
    );
    await ask(broker, 'reset');
    const base = await phase('baseline', port, probe, 10, nextGood);
    report(base);
    reportProcess(await ask<BrokerStats>(broker, 'stats'));
    await ask(broker, 'reset');
    flood = child('../simulators/login-flood.ts', [String(port), String(CONNS), 'f', String(FLOOD_IDS)]);
    const during = await phase('during flood', port, probe, FLOOD_S, nextGood);
    const rssFlood = await ask<BrokerStats>(broker, 'stats');
    const sent = await ask<{ attempts: number; refused: number }>(flood, 'stop', 'stopped');
    flood = undefined;
    report(during, base);
    reportProcess(rssFlood);
    await ask(broker, 'reset');
    const after = await phase('after flood', port, probe, 10, nextGood);
    report(after, base);
    const end = await ask<BrokerStats>(broker, 'stats');
    reportProcess(end);
    console.log(
      `flood: ${sent.attempts} CONNECTs sent, ${sent.refused} refused by CONNACK (${(sent.attempts / FLOOD_S).toFixed(0)}/s); gateway RSS ${rss0} -> ${rssFlood.rssMb} MB during -> ${end.rssMb} MB after; counters ${JSON.stringify(end.counters)}`,
    );
    const p99 = pct(during.puback, 0.99);
    const worstFresh = during.fresh.map((f) => f.puback ?? Number.POSITIVE_INFINITY);
    console.log(
      `targets: PUBACK p99 during flood ≤ 50 ms: ${p99 <= 50 ? 'met' : 'NOT met'} (${p99.toFixed(1)} ms); fresh device CONNACK+PUBACK ≤ 2 s: ${Math.max(...worstFresh) <= 2_000 ? 'met' : 'NOT met'}`,
    );
    probe.end();
  } finally {
    flood?.kill('SIGTERM');
    broker.kill('SIGTERM');
    await new Promise((r) => broker.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}
