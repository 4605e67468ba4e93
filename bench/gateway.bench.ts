/**
 * `npm run bench:gateway`: the full gateway path (authentication, ACL, validation,
 * durable group-commit log with fsync before PUBACK, hand-off to the rules) against bare aedes (no auth,
 * in memory) and Debian's mosquitto, each in its own process, driven by the same raw-socket load
 * generator in this process. The machine is shared and noisy: the brokers are measured in interleaved
 * rounds (A B C … A B C …) and each figure is the median over the rounds with its range.
 *
 *   BENCH_ROUNDS=5 npm run bench:gateway      rounds of all the brokers (default 3)
 *   BENCH_HOMES=19500 npm run bench:gateway   idle-connection figures at 19,500 homes (default 10,000)
 *   BENCH_KINDS=gateway,gateway-pg …           only the listed brokers (ratios among those measured)
 *   BENCH_JSON=1 …                             every figure of every round as JSON too
 *   BENCH_WINDOW=64 npm run bench:gateway      QoS 1 messages in flight per connection in the closed loop (16)
 *   BENCH_MEMLOG=1 …                              the node brokers' memory by heap space every 500 ms
 *   BENCH_NODE_FLAGS='--max-semi-space-size=32' …  extra node flags for the node brokers (GC experiments)
 *   BENCH_CPU_PROF=/tmp/prof …                   a CPU profile of each node broker (all its threads)
 *   BENCH_TRACE=1 …                              per phase, in the gateways: log batch write times and sizes,
 *                                                event-loop delay, collector pauses (gateway-broker.ts)
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HEAP_FLAGS } from '../kernel/heap.ts';
import { BENCH_SECRET, closedLoop, type LoadConn, openLoop, openMany } from './gateway-load.ts';
import { benchClusterSettings, benchDatabase, stopBenchCluster } from './pg-cluster.ts';
import { shown, spread } from './stats.ts';

type Kind = 'gateway' | 'gateway-pg' | 'aedes' | 'aedes-consumer' | 'mosquitto';
const HOMES = Number(process.env.BENCH_HOMES ?? 10_000);
const LOAD_CONNS = 200;
const here = import.meta.dirname;

interface Stats {
  rules: { n: number; p50: number | null; p99: number | null };
  handed: number;
  logged: number;
}

interface Broker {
  kind: Kind;
  port: number;
  pid: number;
  /** From process spawn until a CONNECT gets its CONNACK. */
  spawnToAcceptingMs: number;
  /** Inside the process: open the store, migrate, listen (node brokers only). */
  startMs: number | null;
  stats(): Promise<Stats>;
  /** A full garbage collection in the broker, then its memory report (node brokers). */
  gc(): Promise<NodeJS.MemoryUsage | undefined>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * What the process holds, in MB: its RSS less the heap V8 keeps committed but unused after a collection
 * (that part comes and goes with the collector's timing, not with what a connection costs). Without a
 * memory report (mosquitto): the RSS.
 */
function held(m: NodeJS.MemoryUsage | undefined, pid: number): number {
  return m ? (m.rss - (m.heapTotal - m.heapUsed)) / 2 ** 20 : rssMb(pid);
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

async function untilAccepting(port: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1' }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function startBroker(kind: Kind, dir: string): Promise<Broker> {
  const t0 = performance.now();
  if (kind === 'mosquitto') {
    const port = await freePort();
    const conf = join(dir, 'mosquitto.conf');
    writeFileSync(
      conf,
      `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\nset_tcp_nodelay true\npersistence false\nlog_dest none\n`,
    );
    const t = performance.now();
    const proc = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: 'ignore' });
    await untilAccepting(port);
    const spawnToAcceptingMs = performance.now() - t;
    return {
      kind,
      port,
      pid: proc.pid!,
      spawnToAcceptingMs,
      startMs: null,
      stats: async () => ({ rules: { n: 0, p50: null, p99: null }, handed: 0, logged: 0 }),
      gc: async () => undefined,
      stop: () => stopProc(proc),
    };
  }
  const proc = fork(join(here, 'gateway-broker.ts'), [kind, dir, String(HOMES + LOAD_CONNS)], {
    // BENCH_CPU_PROF=<dir>: a CPU profile of each node broker, written when it is stopped.
    execArgv: [
      '--expose-gc',
      // The heap as the service runs it; the baselines run as they come.
      ...(kind.startsWith('gateway') ? HEAP_FLAGS : []),
      ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
      '--import',
      'tsx',
      ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  /** One request to the broker process over IPC, answered by a message with the same `cmd`. */
  const ask = <T>(cmd: string) =>
    new Promise<T>((resolve) => {
      const on = (m: unknown) => {
        if ((m as { cmd?: string }).cmd !== cmd) return;
        proc.off('message', on);
        resolve(m as T);
      };
      proc.on('message', on);
      proc.send({ cmd });
    });
  const ready = await new Promise<{ port: number; startMs: number; seedMs?: number }>((resolve, reject) => {
    proc.once('message', (m) => resolve(m as { port: number; startMs: number; seedMs?: number }));
    proc.once('exit', (c) => reject(new Error(`${kind} broker exited (${c})`)));
  });
  return {
    kind,
    port: ready.port,
    pid: proc.pid!,
    // Seeding the bench's devices is not part of a start: it is taken out.
    spawnToAcceptingMs: performance.now() - t0 - (ready.seedMs ?? 0),
    startMs: ready.startMs,
    stats: () => ask<Stats>('stats'),
    gc: async () => (await ask<{ memory: NodeJS.MemoryUsage }>('gc')).memory,
    stop: () => stopProc(proc),
  };
}

function stopProc(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill(process.env.BENCH_CPU_PROF ? 'SIGTERM' : 'SIGKILL');
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f0 = (n: number | null | undefined) =>
  n === null || n === undefined || Number.isNaN(n) ? '—' : n.toFixed(0);
const f1 = (n: number | null | undefined) =>
  n === null || n === undefined || Number.isNaN(n) ? '—' : n.toFixed(1);

interface Result {
  sustained: { rate: number; p50: number; p99: number };
  at: Record<
    number,
    { ackRate: number; p50: number; p99: number; rulesP50: number | null; rulesP99: number | null }
  >;
  healthy: number;
  overload: {
    offered: number;
    ackRate: number;
    peakRss: number;
    recoveryP99: number;
    recoveredWithinMs: number | null;
  };
  idle: {
    homes: number;
    rssMb: number;
    perConnKb: number;
    reconnectMs: number;
    connectMs: number;
    /** The same homes sending 5,000 events/s between them. */
    busyRssMb: number;
    busyAckRate: number;
    busyP99: number;
  };
  spawnToAcceptingMs: number;
  startMs: number | null;
  /** The same, restarted on its own data after a kill -9. */
  restartToAcceptingMs: number;
  lostAcked: number | null;
}

async function measure(kind: Kind): Promise<Result> {
  const t0 = performance.now();
  const phase = (name: string) =>
    process.stderr.write(`  ${kind}: ${name} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  const tmp = mkdtempSync(join(tmpdir(), `g365-bench-${kind}-`));
  // PostgreSQL: a database of its own on the bench's server, dropped afterwards (pg-cluster.ts).
  const pgDb = kind === 'gateway-pg' ? await benchDatabase() : null;
  const dir = pgDb?.url ?? tmp;
  let broker = await startBroker(kind, dir);
  const first = broker;
  try {
    let totalAcked = 0;
    const count = (r: { acked?: number }) => {
      totalAcked += r.acked ?? 0;
    };
    const conns = await openMany(broker.port, 0, LOAD_CONNS, BENCH_SECRET, () => {});
    phase('connected, warm-up');
    await closedLoop(conns, 4, 1);
    await broker.stats(); // the warm-up's samples are not the steady rates'

    phase('latency at steady rates');
    const at: Result['at'] = {};
    for (const rate of [2_000, 5_000, 10_000]) {
      const r = await openLoop(conns, rate, 4);
      count(r);
      const s = await broker.stats();
      at[rate] = { ackRate: r.ackRate, p50: r.p50, p99: r.p99, rulesP50: s.rules.p50, rulesP99: s.rules.p99 };
      process.stderr.write(
        `    ${rate}/s: PUBACK p50 ${f1(r.p50)} p99 ${f1(r.p99)} ms, device-to-rules p99 ${f0(s.rules.p99)} ms\n`,
      );
    }

    // Saturating phases come after the steady rates: a rate's latency is measured in steady state, not
    // in the seconds a saturating burst leaves behind (that recovery has its own figure, after the burst).
    phase('sustained');
    const sustained = await closedLoop(conns, Number(process.env.BENCH_WINDOW ?? 16), 5);
    totalAcked += Math.round(sustained.rate * 5);
    await broker.stats();
    process.stderr.write(`    sustained ${f0(sustained.rate)}/s\n`);

    phase('highest healthy rate');
    // The highest open-loop rate with PUBACK p99 under 100 ms and (nearly) everything acknowledged.
    let healthy = 10_000;
    for (const rate of [15_000, 20_000, 25_000, 30_000, 35_000]) {
      const r = await openLoop(conns, rate, 3);
      count(r);
      await broker.stats();
      if (r.p99 >= 100 || r.ackRate < 0.95 * rate) break;
      healthy = rate;
    }

    phase('40k/s burst');
    // 40k/s offered for 5 s, then 2k/s: delivery, memory, recovery.
    let peakRss = rssMb(broker.pid);
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, rssMb(broker.pid));
    }, 100);
    const burst = await openLoop(conns, 40_000, 5);
    count(burst);
    clearInterval(sampler);
    await broker.stats();
    const after = await openLoop(conns, 2_000, 5);
    count(after);
    await broker.stats();
    // Recovered: the start of the first 500 ms slice (by send time) after which every slice has p99 < 100 ms.
    let recoveredWithinMs: number | null = null;
    for (let i = after.slices.length - 1; i >= 0; i--) {
      if (after.slices[i]! >= 100) break;
      recoveredWithinMs = i * 500;
    }
    for (const c of conns) c.close();

    phase('idle homes');
    // Idle homes in a broker started afresh on the same data (the heap grown by the bursts above is not
    // what 10,000 homes cost): memory per connection, connect and reconnect time. The gateway is stopped
    // with SIGKILL, so the count of logged events below also checks that no acknowledged one was lost.
    await broker.stop();
    broker = await startBroker(kind, dir);
    await sleep(500);
    // Per connection: the growth from half the homes to all of them, after a full collection each time
    // (what a connection holds, without the fixed cost of the first connections: caches, threads, arenas).
    const half = Math.floor(HOMES / 2);
    let t = performance.now();
    let idle: LoadConn[] = await openMany(broker.port, LOAD_CONNS, half, BENCH_SECRET, () => {});
    let connectMs = performance.now() - t;
    await sleep(1000);
    const halfHeld = held(await broker.gc(), broker.pid);
    t = performance.now();
    idle.push(...(await openMany(broker.port, LOAD_CONNS + half, HOMES - half, BENCH_SECRET, () => {})));
    connectMs += performance.now() - t;
    await sleep(1000);
    const idleHeld = held(await broker.gc(), broker.pid);
    const idleRss = rssMb(broker.pid);
    for (const c of idle) c.close();
    await sleep(1500);
    t = performance.now();
    idle = await openMany(broker.port, LOAD_CONNS, HOMES, BENCH_SECRET, () => {});
    const reconnectMs = performance.now() - t;
    // The same homes, each now talking: 5,000 events/s spread over all of them, peak RSS.
    let busyRss = rssMb(broker.pid);
    const busySampler = setInterval(() => {
      busyRss = Math.max(busyRss, rssMb(broker.pid));
    }, 100);
    const busy = await openLoop(idle, 5_000, 4);
    count(busy);
    clearInterval(busySampler);
    if (process.env.BENCH_MEMLOG) {
      const m = await broker.gc();
      if (m)
        process.stderr.write(
          `    after the busy homes and a collection: heap ${f0(m.heapUsed / 2 ** 20)} MB\n`,
        );
    }
    for (const c of idle) c.close();
    process.stderr.write(
      `    ${HOMES} homes at 5,000/s: peak RSS ${f0(busyRss)} MB, PUBACK p99 ${f1(busy.p99)} ms\n`,
    );

    const final = await broker.stats();
    return {
      sustained,
      at,
      healthy,
      overload: {
        offered: burst.offered,
        ackRate: burst.ackRate,
        peakRss,
        recoveryP99: after.p99,
        recoveredWithinMs,
      },
      idle: {
        homes: HOMES,
        rssMb: idleRss,
        perConnKb: ((idleHeld - halfHeld) * 1024) / (HOMES - half),
        reconnectMs,
        connectMs,
        busyRssMb: busyRss,
        busyAckRate: busy.ackRate,
        busyP99: busy.p99,
      },
      spawnToAcceptingMs: first.spawnToAcceptingMs,
      startMs: first.startMs,
      restartToAcceptingMs: broker.spawnToAcceptingMs,
      lostAcked: kind.startsWith('gateway') ? Math.max(0, totalAcked - final.logged) : null,
    };
  } finally {
    await broker.stop();
    await pgDb?.drop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The brokers are measured in rounds, A B C … A B C …, BENCH_ROUNDS of them (3 by default): a neighbour's
 * load that comes and goes falls on every broker alike instead of on whichever was being measured, and
 * each figure is printed as its median over the rounds with the range (min–max). Ratios are taken within
 * each round (both brokers under the same load), then their median.
 */
export async function run(): Promise<void> {
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
  const kinds = (['aedes-consumer', 'aedes', 'mosquitto', 'gateway', 'gateway-pg'] as const).filter(
    (k) => !process.env.BENCH_KINDS || process.env.BENCH_KINDS.split(',').includes(k),
  );
  const results = new Map<Kind, Result[]>(kinds.map((k) => [k, []]));
  for (let round = 1; round <= rounds; round++)
    for (const kind of kinds) {
      console.log(`round ${round}/${rounds}: measuring ${kind} …`);
      results.get(kind)!.push(await measure(kind));
    }
  await stopBenchCluster();
  if (process.env.BENCH_JSON)
    console.log(JSON.stringify(Object.fromEntries(results), (k, v) => (k === 'slices' ? undefined : v), 1));
  const all = (k: Kind) => results.get(k) ?? [];
  const cols = (label: string, fn: (r: Result) => number | null | undefined, digits = 0) =>
    `${label.padEnd(52)} ${kinds.map((k) => shown(all(k).map(fn), digits).padStart(34)).join(' ')}`;
  const pair = (label: string, p50: (r: Result) => number | null | undefined, p99: typeof p50) =>
    `${label.padEnd(52)} ${kinds.map((k) => `${shown(all(k).map(p50), 1)} / ${shown(all(k).map(p99), 1)}`.padStart(34)).join(' ')}`;
  const ratio = (a: Kind, b: Kind, fn: (r: Result) => number) =>
    shown(
      all(a).map((r, i) => fn(r) / fn(all(b)[i]!)),
      2,
    );
  const names: Record<Kind, string> = {
    gateway: 'gateway',
    'gateway-pg': 'gateway (PG)',
    'aedes-consumer': 'aedes+consumer',
    aedes: 'aedes ack-only',
    mosquitto: 'mosquitto',
  };
  console.log(
    `\nraw-socket load generator, ${LOAD_CONNS} connections for rates, QoS 1 events; ${HOMES} idle homes for memory;` +
      ` ${rounds} interleaved rounds: median (min–max)`,
  );
  console.log(`${''.padEnd(52)} ${kinds.map((k) => names[k].padStart(34)).join(' ')}`);
  console.log(cols('sustained QoS 1/s (closed loop, 16 in flight/conn)', (r) => r.sustained.rate));
  for (const rate of [2_000, 10_000])
    console.log(
      pair(
        `PUBACK p50 / p99 at ${rate}/s (ms)`,
        (r) => r.at[rate]?.p50,
        (r) => r.at[rate]?.p99,
      ),
    );
  for (const rate of [2_000, 5_000, 10_000])
    console.log(
      pair(
        `device-to-rules p50 / p99 at ${rate}/s (ms, ±1)`,
        (r) => r.at[rate]?.rulesP50,
        (r) => r.at[rate]?.rulesP99,
      ),
    );
  console.log(cols('highest rate with PUBACK p99 < 100 ms (/s)', (r) => r.healthy));
  console.log(cols('40k/s offered: acknowledged rate (/s)', (r) => r.overload.ackRate));
  console.log(cols('40k/s offered: peak RSS (MB)', (r) => r.overload.peakRss));
  console.log(cols('after the burst, 2k/s for 5 s: PUBACK p99 (ms)', (r) => r.overload.recoveryP99, 1));
  console.log(cols(`RSS with ${HOMES} idle homes (MB)`, (r) => r.idle.rssMb));
  console.log(cols('memory per idle connection (KB; half→all, after GC)', (r) => r.idle.perConnKb, 1));
  console.log(cols(`${HOMES} homes sending 5,000/s: peak RSS (MB)`, (r) => r.idle.busyRssMb));
  console.log(cols(`${HOMES} homes sending 5,000/s: acked/s`, (r) => r.idle.busyAckRate));
  console.log(cols(`${HOMES} homes sending 5,000/s: PUBACK p99 (ms)`, (r) => r.idle.busyP99, 1));
  console.log(cols(`connect ${HOMES} homes (ms)`, (r) => r.idle.connectMs));
  console.log(cols(`reconnect ${HOMES} homes (ms)`, (r) => r.idle.reconnectMs));
  console.log(cols('spawn to accepting (ms, includes tsx boot)', (r) => r.spawnToAcceptingMs));
  console.log(cols('start inside the process (ms)', (r) => r.startMs, 1));
  console.log(cols('restart after kill -9 to accepting (ms, incl. tsx)', (r) => r.restartToAcceptingMs));
  const sustained = (r: Result) => r.sustained.rate;
  const g = all('gateway');
  const p = all('gateway-pg');
  // Ratios of the brokers measured in this run (BENCH_KINDS may leave some out).
  const ratios = (
    [
      ['gateway', 'aedes-consumer', 'gateway / bare aedes with consumer'],
      ['gateway', 'aedes', 'gateway / aedes ack-only'],
      ['gateway', 'mosquitto', 'gateway / mosquitto'],
      ['gateway-pg', 'gateway', 'gateway (PG) / gateway (SQLite)'],
      ['gateway-pg', 'aedes-consumer', 'gateway (PG) / bare aedes with consumer'],
    ] as const
  )
    .filter(([a, b]) => results.has(a) && results.has(b))
    .map(([a, b, label]) => `${label} ${ratio(a, b, sustained)}`);
  if (ratios.length > 0)
    console.log(`\nsustained ratios within each round, median (min–max): ${ratios.join('   ')}`);
  if (g.length > 0)
    console.log(
      `gateway: 40k burst delivered / min(offered, best sustained) ${shown(
        g.map((r) => r.overload.ackRate / Math.min(r.overload.offered, r.sustained.rate)),
        2,
      )}   acknowledged but not in the log: ${g.map((r) => r.lostAcked).join(', ')}`,
    );
  if (p.length === 0) return;
  const pgRate = spread(p.map(sustained)).median;
  const pgP99 = spread(p.map((r) => r.at[2_000]?.p99)).median;
  console.log(
    `PostgreSQL: acknowledged but not in the log ${p.map((r) => r.lostAcked).join(', ')};` +
      ` targets (medians): ≥ 20,000 durable/s ${pgRate >= 20_000 ? 'met' : 'NOT met'} (${f0(pgRate)}/s),` +
      ` PUBACK p99 ≤ 20 ms at 2,000/s ${pgP99 <= 20 ? 'met' : 'NOT met'} (${f1(pgP99)} ms),` +
      ` rules at 5,000/s: device-to-rules p99 ${shown(p.map((r) => r.at[5_000]?.rulesP99))} ms,` +
      ` ${shown(p.map((r) => r.at[5_000]?.ackRate))}/s acknowledged`,
  );
  console.log(`PostgreSQL settings: ${await benchClusterSettings()}`);
}
