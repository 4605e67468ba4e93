/**
 * `npm run bench -- scale`: the service as it runs separated (CLU-01) at scale, on this one machine.
 * BENCH_GATEWAYS gateway processes (ROLE=gateway) and one dispatcher (ROLE=dispatcher, with Redis for its
 * live relay) on a throwaway PostgreSQL; BENCH_DEVICES raw-socket devices from several load-generator
 * processes (bench/scale-load.ts; a process holds at most ~20,000 sockets, so do the gateways); steady
 * BENCH_RATES ordinary QoS 1 events/s spread over all the devices while falls are injected on devices whose
 * household has a responder on duty, whose real staff app (mqtt.js, `staff:{id}` with a bearer token)
 * is connected to a gateway process of its own that holds no devices, as deploy/haproxy.cfg routes it
 * (CLU-13; its CPU and RSS are counted with the gateways'). Figures: connect and reconnect (drop all,
 * reconnect) time of every device, total gateway RSS per connection, fall → responder notification p50/p99
 * and the p99 of each of its three hops (device → gateway read, → the first delivery record, → app; from
 * the event's `received_at` and the delivery's `at`), the PUBACK latency of the ordinary traffic, and PostgreSQL and
 * Redis load. The same figures for one gateway process at its
 * limit (BENCH_SINGLE connections) for comparison, the two alternated over BENCH_ROUNDS (A B A B …),
 * printed as median (min–max).
 *
 * Bench devices all share one secret, each device's row holding its own salted hash of it in the format
 * the service issues (SEC-05: `hashDeviceSecret`, HMAC-SHA256, checked in microseconds): the connect
 * figures include the real login cost.
 *
 *   BENCH_DEVICES=100000 BENCH_GATEWAYS=6 BENCH_ROUNDS=2 npm run bench -- scale   (the defaults)
 *   BENCH_SINGLE=19500   connections of the one-gateway comparison (0: none)
 *   BENCH_RATES=5000 BENCH_SECONDS=100 BENCH_FALLS=1000  traffic, its length, falls per measurement (a
 *                        p99 by nearest rank needs 100 or more: of 1,000, the eleventh slowest). The window
 *                        outlasts the processes' collection cycles (a gateway's old generation was
 *                        collected every 25–50 s before CLU-14): 20 s windows could fall between them.
 *                        Each fall's device is one more connection: a layout takes as many as its
 *                        gateways' open files leave room for (one gateway at 19,500: 180);
 *                        BENCH_RATES=1000,2500,5000 measures each rate in turn (lowest first) on the
 *                        same connected devices: where the fall → responder p99 holds its 100 ms
 *   BENCH_WARMUP_S=5     traffic before that window: the steady rate is measured after the start's catch-up
 *                        (its PUBACK p50/p99 are printed apart)
 *   BENCH_WARM_FALLS=20  falls in the warm-up's middle half, not in the p99: the first falls since the
 *                        processes started are slower (code and query plans met for the first time), and
 *                        their latencies are printed apart
 *   BENCH_LOADGEN_NICE=19  the load generators' nice value: the 100,000 devices stand in for hardware of
 *                        their own and take what the service leaves of the 2 cores, below the gateways
 *                        (nice 10, CLU-12) too (0: the service's priority)
 *   BENCH_GATEWAY_NICE=n the gateways' PROCESS_NICE (unset: their default, 10; 0 measures without CLU-12)
 *   BENCH_STAFF_GATEWAY_NICE=n  the staff apps' gateway's (0 unless set, as deployed: CLU-13)
 *   BENCH_STAFF_GATEWAY=0  the staff apps on the first device gateway instead (without CLU-13)
 *   BENCH_GATEWAY_NODE_FLAGS='--trace-gc'  node flags for every gateway after the role's own
 *                        (GATEWAY_HEAP_FLAGS; a later V8 flag wins: `--memory-reducer` measures without
 *                        CLU-14); BENCH_DISPATCHER_NODE_FLAGS the same for the dispatcher (after HEAP_FLAGS).
 *                        With BENCH_LOG_DIR, what they print (--trace-gc) is kept per process
 *   BENCH_LOG_DIR=dir    each service process's output (warnings and errors) in a file of its own
 *   BENCH_HOUSEHOLDS=n   households seeded (default: one per device), so the dispatcher's rules can hold
 *                        100,000 households while fewer devices connect
 *   BENCH_LEARNED_DAYS=28  learned days (RULE-14) in every seeded home's rules state: homes that have lived with
 *                        the service for a month, as in production (0: new homes, whose state is ~7 times smaller)
 *   BENCH_RECONNECT=0    skip the drop-and-reconnect measurement (shorter runs)
 *   BENCH_IDLE_S=10      seconds connected and quiet before the traffic, measured apart (0: none)
 *   BENCH_PG_STATEMENTS=1  the statements that took PostgreSQL's time in each traffic phase (throwaway cluster)
 *                        and each fall from its read to the app split by its event's and its alert's commit times
 *   BENCH_PROF_DIR=dir   V8 CPU profiles (--cpu-prof) of every gateway, the dispatcher and every load
 *                        generator into dir, with dir/manifest.json naming each profile's process and the
 *                        phases' start and end on the profiles' clock (monotonic microseconds)
 *   BENCH_PROF_KINDS=dispatcher  only these kinds of process are profiled (comma-separated: gateway,
 *                        dispatcher, loadgen; default all): a profiler in every process loads the machine
 *                        enough to change what is measured. `npx tsx bench/long-tasks.ts dir kind phase`
 *                        lists where a kind's event loop was held longest
 *
 * Besides, every measurement prints the CPU time each kind of process used in each phase (from /proc),
 * and from it the CPU cost of one connect and of one event in each: where the machine's two cores go.
 */
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, setPriority, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { io } from 'socket.io-client';
import { seedCommunity } from '../dispatcher/seed.ts';
import { PostgresStore } from '../dispatcher/store/postgres.ts';
import { topics } from '../gateway/protocol.ts';
import { hashDeviceSecret } from '../gateway/secrets.ts';
import { GATEWAY_HEAP_FLAGS, HEAP_FLAGS } from '../kernel/heap.ts';
import { planCommunity } from '../simulators/community.ts';
import { freePort, RedisServer } from '../test/cluster/processes.ts';
import { BENCH_SECRET } from './gateway-load.ts';
import {
  benchClusterSettings,
  benchDatabase,
  seedDevices,
  seedLearnedHomes,
  statementCosts,
  stopBenchCluster,
} from './pg-cluster.ts';
import { shown, spread } from './stats.ts';

const env = process.env;
const DEVICES = Number(env.BENCH_DEVICES ?? 100_000);
const GATEWAYS = Number(env.BENCH_GATEWAYS ?? 6);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 2);
const SINGLE = Number(env.BENCH_SINGLE ?? 19_500);
/** Rates of ordinary traffic, each measured in turn on the same connected devices (BENCH_RATES=1000,5000). */
const RATES = (env.BENCH_RATES ?? env.BENCH_RATE ?? '5000')
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
const SECONDS = Number(env.BENCH_SECONDS ?? 100);
const FALLS = Number(env.BENCH_FALLS ?? 1000);
/** Falls in the warm-up's middle half, not measured: the fall path's first use warms it (printed apart). */
const WARM_FALLS = Number(env.BENCH_WARM_FALLS ?? 20);
/** The load generators' nice value (0: the service's own priority). */
const LOADGEN_NICE = Number(env.BENCH_LOADGEN_NICE ?? 19);
/** The gateways' PROCESS_NICE (unset: the role's default, CLU-12). */
const GATEWAY_NICE = env.BENCH_GATEWAY_NICE;
const STAFF_GATEWAY_NICE = env.BENCH_STAFF_GATEWAY_NICE ?? '0';
/** CLU-13: the responders' apps on a gateway process of their own, as deployed (0: on the first one). */
const STAFF_GATEWAY = env.BENCH_STAFF_GATEWAY !== '0';
/** Traffic before the measured window (its PUBACKs reported apart, only WARM_FALLS in it): the rate's start. */
const WARMUP = Number(env.BENCH_WARMUP_S ?? 5);
const HOUSEHOLDS = Number(env.BENCH_HOUSEHOLDS ?? 0);
const RECONNECT = env.BENCH_RECONNECT !== '0';
const LEARNED_DAYS = Number(env.BENCH_LEARNED_DAYS ?? 28);
const IDLE = Number(env.BENCH_IDLE_S ?? 10);
/** A directory for each service process's output (its warnings and errors), or none. */
const LOG_DIR = env.BENCH_LOG_DIR ? resolve(env.BENCH_LOG_DIR) : null;
const PROF_DIR = env.BENCH_PROF_DIR ? resolve(env.BENCH_PROF_DIR) : null;
/** Node flags after the role's own (a later V8 flag wins: `--memory-reducer` measures without CLU-14). */
const words = (v: string | undefined) => (v ?? '').split(/\s+/).filter(Boolean);
const GATEWAY_NODE_FLAGS = words(env.BENCH_GATEWAY_NODE_FLAGS);
const DISPATCHER_NODE_FLAGS = words(env.BENCH_DISPATCHER_NODE_FLAGS);
/** Node flags that write a V8 CPU profile at exit into PROF_DIR, when asked for. */
const PROF_KINDS = new Set((env.BENCH_PROF_KINDS ?? 'gateway,dispatcher,loadgen').split(','));
const profFlags = (kind: string) =>
  PROF_DIR && PROF_KINDS.has(kind) ? ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`] : [];
/**
 * Open files a gateway keeps for what is not a device connection (its database pool, Redis, listening
 * sockets, the staff apps): the falls' devices connect on top of the others only as far as this leaves room.
 */
const GATEWAY_SPARE_FILES = 300;
/** Connections per load-generator process (under its open-files limit, with room for the rest). */
const PER_LOADGEN = 17_000;
const STAFF_PASSWORD = 'bench-staff-password';
const root = join(import.meta.dirname, '..');

/** The soft and hard open-files limits this process (and so its children) starts with. */
function fileLimits(): { soft: number; hard: number } {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'))!;
  const [soft, hard] = line.trim().split(/\s+/).slice(3, 5);
  const n = (s: string | undefined) => (s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s));
  return { soft: n(soft), hard: n(hard) };
}

/** CPU time (user + system) a process has used so far, in ms; 0 once it is gone. */
function cpuOf(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** The monotonic clock V8's CPU profiles are stamped with, in microseconds. */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);

/** Each profiled process (pid → what it is) and the phases' start and end, for reading the profiles. */
const manifest: { processes: Record<string, string>; phases: { name: string; from: number; to: number }[] } =
  { processes: {}, phases: [] };

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

interface Role {
  child: ChildProcess;
  http: number;
  mqtt: number;
  stop: () => Promise<void>;
}

/** One role of the service as an operator starts it, its soft open-files limit raised to the hard one. */
function startRole(role: string, vars: Record<string, string>, files: number): Promise<Role> {
  const dispatcher = role === 'dispatcher';
  const child = spawn(
    'sh',
    [
      '-c',
      `ulimit -n ${files} && exec "$0" "$@"`,
      process.execPath,
      // As `npm run start:gateway` and `start:dispatcher` start them (CLU-14: a gateway's own flags).
      ...(dispatcher
        ? [...HEAP_FLAGS, ...DISPATCHER_NODE_FLAGS]
        : [...GATEWAY_HEAP_FLAGS, ...GATEWAY_NODE_FLAGS]),
      ...profFlags(dispatcher ? 'dispatcher' : 'gateway'),
      '--import',
      'tsx',
      join(root, 'dispatcher/main.ts'),
    ],
    {
      cwd: root,
      env: {
        ...env,
        ROLE: role,
        MQTT_PORT: '0',
        HTTP_PORT: '0',
        MQTT_HOST: '127.0.0.1',
        HTTP_HOST: '127.0.0.1',
        ADMIN_PASSWORD: 'admin-password-365',
        LOG_LEVEL: 'warn',
        ...vars,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  manifest.processes[String(child.pid)] = role;
  let out = '';
  /** Whether the start banner was read (its ports are taken from `out` then, and no more after). */
  let bannerRead = false;
  child.stdout!.on('data', (c) => {
    out += c;
    // Kept short once started (a process may print a line per collection: BENCH_GATEWAY_NODE_FLAGS).
    if (bannerRead && out.length > 100_000) out = out.slice(-50_000);
  });
  if (LOG_DIR) {
    // Every warning and error of the process, in a file of its own (LOG_LEVEL stays warn).
    mkdirSync(LOG_DIR, { recursive: true });
    const file = createWriteStream(join(LOG_DIR, `${role}-${child.pid}.log`));
    child.stdout!.pipe(file);
    child.stderr!.pipe(file);
  }
  child.stderr!.on('data', (c) => {
    out += c;
    if (out.length > 100_000) out = out.slice(-50_000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${role} did not start: ${out}`));
    }, 120_000);
    const onData = () => {
      if (!out.includes('Press Ctrl-C')) return;
      bannerRead = true;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      const started: Role = {
        child,
        http: Number(/(?:console|health) +http:\/\/localhost:(\d+)/.exec(out)?.[1] ?? 0),
        mqtt: Number(/MQTT +mqtt:\/\/localhost:(\d+)/.exec(out)?.[1] ?? 0),
        stop: async () => {
          running.delete(started);
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
          await exited;
          clearTimeout(t);
        },
      };
      running.add(started);
      resolve(started);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} exited ${code}: ${out.slice(-2000)}`));
    });
  });
}

/** Every service process started and not yet stopped: a failed measurement must not leave them running. */
const running = new Set<Role>();

async function ready(r: Role): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const ok = await fetch(`http://127.0.0.1:${r.http}/readyz`)
      .then((x) => x.status === 200)
      .catch(() => false);
    if (ok) return;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('not ready within 60 s');
}

/** A value of a process's /metrics (undefined when it has none). */
async function metricOf(r: Role, name: string): Promise<string | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${r.http}/metrics`)).text();
  return new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
}

/** A process's event-loop delay since the last scrape (prom-client resets it) and its GC pauses so far. */
interface LoopState {
  lagP99: number;
  lagMax: number;
  gcSeconds: number;
  /** GC pauses over 10 ms and over 100 ms, so far. */
  gcOver10: number;
  gcOver100: number;
  /** GC time so far by kind (minor, major, incremental, weakcb), seconds. */
  gcByKind: Record<string, number>;
}
async function loopState(r: Role): Promise<LoopState> {
  const text = await (await fetch(`http://127.0.0.1:${r.http}/metrics`)).text();
  const one = (re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
  const sumAll = (re: RegExp) => [...text.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  const under = (le: string) =>
    sumAll(new RegExp(`^nodejs_gc_duration_seconds_bucket\\{le="${le}",kind="[^"]+"\\} (\\S+)$`, 'gm'));
  const count = sumAll(/^nodejs_gc_duration_seconds_count\{kind="[^"]+"\} (\S+)$/gm);
  return {
    lagP99: one(/^nodejs_eventloop_lag_p99_seconds (\S+)$/m) * 1000,
    lagMax: one(/^nodejs_eventloop_lag_max_seconds (\S+)$/m) * 1000,
    gcSeconds: sumAll(/^nodejs_gc_duration_seconds_sum\{kind="[^"]+"\} (\S+)$/gm),
    gcOver10: count - under('0.01'),
    gcOver100: count - under('0.1'),
    gcByKind: Object.fromEntries(
      [...text.matchAll(/^nodejs_gc_duration_seconds_sum\{kind="([^"]+)"\} (\S+)$/gm)].map((m) => [
        m[1]!,
        Number(m[2]),
      ]),
    ),
  };
}
/** Each process's event-loop delay (p99 / max) and GC pauses between two readings, for the phase's report. */
function loopReport(names: string[], before: LoopState[], after: LoopState[]): string {
  return names
    .map((n, i) => {
      const a = after[i]!;
      const b = before[i]!;
      const kinds = Object.keys(a.gcByKind)
        .map((k) => `${k} ${(a.gcByKind[k]! - (b.gcByKind[k] ?? 0)).toFixed(2)}`)
        .join(', ');
      return `${n} lag p99/max ${a.lagP99.toFixed(0)}/${a.lagMax.toFixed(0)} ms, GC ${(a.gcSeconds - b.gcSeconds).toFixed(2)} s (${kinds}; ${a.gcOver10 - b.gcOver10} over 10 ms, ${a.gcOver100 - b.gcOver100} over 100 ms)`;
    })
    .join('; ');
}

/** Waits until the rules' cursor has reached the log's end (at most 10 minutes); how long it took. */
async function rulesCaughtUp(f: { dbUrl: string; dispatcher: Role }): Promise<{ ms: number; head: number }> {
  const c = new pg.Client({ connectionString: f.dbUrl });
  await c.connect();
  const t0 = performance.now();
  try {
    for (;;) {
      const head = Number((await c.query('SELECT COALESCE(max(seq), 0) AS s FROM events')).rows[0].s);
      const cursor = Number((await metricOf(f.dispatcher, 'g365_rules_cursor')) ?? 0);
      if (cursor >= head) return { ms: performance.now() - t0, head };
      if (performance.now() - t0 > 600_000) {
        console.warn(`warning: the rules are still at ${cursor} of ${head} after 10 minutes`);
        return { ms: performance.now() - t0, head };
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await c.end();
  }
}

async function connectedOn(gateways: Role[]): Promise<number> {
  let n = 0;
  for (const g of gateways) n += Number((await metricOf(g, 'g365_devices_connected')) ?? 0);
  return n;
}

/** A load-generator process and a request/answer over IPC. */
class LoadGen {
  readonly child = fork(join(import.meta.dirname, 'scale-load.ts'), [], {
    execArgv: [...profFlags('loadgen'), '--import', 'tsx'],
  });
  constructor() {
    manifest.processes[String(this.child.pid)] = 'loadgen';
    // The devices stand in for hardware of their own: on this machine they yield the CPU to the service
    // when both want it (their work still shows in the CPU figures, and a rate they fall behind on in
    // "sent"). The falls' devices and the responders' apps run in this process, at normal priority.
    if (LOADGEN_NICE !== 0) setPriority(this.child.pid!, LOADGEN_NICE);
  }
  /** Ends the process as it ends itself (a profile is written then), or kills it after 10 s. */
  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.send({ cmd: 'close' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }
  readonly started = new Promise<void>((r) =>
    this.child.once('message', () => {
      r();
    }),
  );
  ask<T>(m: Record<string, unknown>): Promise<T> {
    return new Promise((resolve, reject) => {
      const on = (a: { cmd: string; error?: string }) => {
        if (a.cmd !== m.cmd) return;
        this.child.off('message', on);
        if (a.error) reject(new Error(a.error));
        else resolve(a as T);
      };
      this.child.on('message', on);
      this.child.send(m);
    });
  }
}

interface Measured {
  devices: number;
  gateways: number;
  connectMs: number;
  connectRetries: number;
  reconnectMs: number;
  rssIdle: number;
  rssBusy: number;
  dispatcherRss: number;
  pgConnections: number;
  /** The traffic at each rate of BENCH_RATES, in that order. */
  rates: AtRate[];
}

/** Steady traffic at one rate: falls, PUBACKs, CPU, PostgreSQL and Redis. */
interface AtRate {
  rate: number;
  fallP50: number;
  fallP99: number;
  /** The slowest fall, and how many took over 100 ms. */
  fallMax: number;
  fallsOver100: number;
  fallsSeen: number;
  /** Falls sent in the measured window: BENCH_FALLS, or fewer where the gateways had no room (`atRate`). */
  falls: number;
  /** Each hop's own p99 over the falls (FallHops), each taken alone (they do not add up to the total's). */
  hopP99: Omit<FallHops, 'split'>;
  pubackP50: number;
  pubackP99: number;
  /** The same in the warm-up (the first BENCH_WARMUP_S of traffic, no falls injected). */
  warmP50: number;
  warmP99: number;
  acked: number;
  sent: number;
  /** CPU of every kind of process (/proc): cores busy, and µs per event sent. */
  cores: number;
  cpuPerEvent: number;
  pgCommits: number;
  pgInserts: number;
  /** PostgreSQL's WAL flushes per second, and their mean time (ms; NaN without track_wal_io_timing). */
  walSyncs: number;
  walSyncMs: number;
  /** % of the time some task of the machine waited for a processor, for I/O (/proc/pressure). */
  cpuPressure: number;
  ioPressure: number;
  redisOps: number;
}

/** A bearer token from the dispatcher's login (POST /api/auth/login). */
async function login(http: number, username: string, password: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${http}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`login ${username}: HTTP ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}

interface Fixture {
  dbUrl: string;
  dispatcher: Role;
  redis: RedisServer;
  loadgens: LoadGen[];
  staff: { id: string; token: string }[];
  /** Fall devices not used yet, each in a household of its own. */
  fallDevices: { id: string; homeId: string; room: string }[];
  files: number;
}

/**
 * The database's commits and rows, and the server's WAL flushes (pg_stat_wal: `wal_sync`, and their time in
 * ms when track_wal_io_timing is on, else 0).
 */
async function pgStats(
  url: string,
): Promise<{ commits: number; inserts: number; conns: number; walSyncs: number; walSyncMs: number }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query(
      `SELECT xact_commit::bigint AS commits, tup_inserted::bigint AS inserts, numbackends AS conns,
         w.wal_sync::bigint AS syncs, w.wal_sync_time AS sync_ms
       FROM pg_stat_database, pg_stat_wal w WHERE datname = current_database()`,
    );
    return {
      commits: Number(r.rows[0].commits),
      inserts: Number(r.rows[0].inserts),
      conns: Number(r.rows[0].conns),
      walSyncs: Number(r.rows[0].syncs),
      walSyncMs: Number(r.rows[0].sync_ms),
    };
  } finally {
    await c.end();
  }
}

/**
 * The machine's pressure stall totals (µs, /proc/pressure: the time some task waited for a processor, for
 * I/O): what else on a shared machine took from the run. Zeros where the kernel does not offer them.
 */
function pressure(): { cpu: number; io: number } {
  const some = (kind: string) => {
    try {
      return Number(/^some .*total=(\d+)/m.exec(readFileSync(`/proc/pressure/${kind}`, 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  };
  return { cpu: some('cpu'), io: some('io') };
}

function redisOps(port: number): number {
  const out = execFileSync('redis-cli', ['-p', String(port), 'info', 'stats']).toString();
  return Number(/total_commands_processed:(\d+)/.exec(out)?.[1] ?? 0);
}

/** The CPU time so far (ms) of each kind of process of the bench. */
interface CpuSnapshot {
  gateways: number;
  dispatcher: number;
  loadgens: number;
  postgres: number;
  redis: number;
}
const CPU_KINDS = ['gateways', 'dispatcher', 'loadgens', 'postgres', 'redis'] as const;

let postmaster: number | null = null;
/** PostgreSQL's CPU time: the postmaster's live children and the reaped ones (its cutime and cstime). */
async function postgresCpu(url: string): Promise<number> {
  if (postmaster === null) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const dir = (await c.query('SHOW data_directory')).rows[0].data_directory as string;
      postmaster = Number(readFileSync(join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      postmaster = 0; // not readable (a server of someone else's): PostgreSQL's CPU is not counted
    } finally {
      await c.end();
    }
  }
  if (!postmaster) return 0;
  let ms = 0;
  try {
    const stat = readFileSync(`/proc/${postmaster}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ms += ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === postmaster) ms += ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
    } catch {}
  }
  return ms;
}

function redisCpu(port: number): number {
  const out = execFileSync('redis-cli', ['-p', String(port), 'info', 'cpu']).toString();
  const s = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(out)?.[1] ?? 0);
  return (s('used_cpu_user') + s('used_cpu_sys')) * 1000;
}

async function cpuSnapshot(f: Fixture, gws: Role[], loadgens: LoadGen[]): Promise<CpuSnapshot> {
  return {
    gateways: gws.reduce((a, g) => a + cpuOf(g.child.pid!), 0),
    dispatcher: cpuOf(f.dispatcher.child.pid!),
    loadgens: loadgens.reduce((a, l) => a + cpuOf(l.child.pid!), 0),
    postgres: await postgresCpu(f.dbUrl),
    redis: redisCpu(f.redis.port),
  };
}

/** CPU used between two snapshots, per kind of process, and the wall time between them. */
interface CpuUse {
  phase: string;
  wallMs: number;
  /** How many connects or events the phase did (the per-unit cost divides by it). */
  units: number;
  /** connection: a quiet phase, its cost per connected device and second. */
  unit: 'connect' | 'event' | 'connection';
  ms: CpuSnapshot;
}

function cpuUse(
  phase: string,
  a: CpuSnapshot,
  b: CpuSnapshot,
  wallMs: number,
  units: number,
  unit: CpuUse['unit'],
): CpuUse {
  const ms = {} as CpuSnapshot;
  for (const k of CPU_KINDS) ms[k] = b[k] - a[k];
  return { phase, wallMs, units, unit, ms };
}

/** One line per phase: CPU seconds per kind of process, and per connect (ms) or per event (µs). */
function printCpu(label: string, uses: CpuUse[]): void {
  for (const u of uses) {
    const per = (x: number) =>
      u.unit === 'connect'
        ? `${(x / u.units).toFixed(2)} ms`
        : u.unit === 'connection'
          ? `${((1e6 * x) / u.wallMs / u.units).toFixed(2)} µs/s`
          : `${((1000 * x) / u.units).toFixed(0)} µs`;
    const total = CPU_KINDS.reduce((a, k) => a + u.ms[k], 0);
    console.log(
      `  ${label} ${u.phase.padEnd(9)} ${(u.wallMs / 1000).toFixed(1)} s wall, ${u.units} ${u.unit}s, CPU ${(total / 1000).toFixed(1)} s ` +
        `(${(total / u.wallMs).toFixed(2)} cores) = ${per(total)}/${u.unit}: ` +
        CPU_KINDS.map((k) => `${k} ${(u.ms[k] / 1000).toFixed(1)} s (${per(u.ms[k])})`).join(', '),
    );
  }
}

/** Nearest rank: the smallest value that p of `sorted` do not exceed (of 100 falls, p99 is the 99th). */
function nearestRank(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.max(0, Math.ceil(sorted.length * p) - 1)]! : Number.NaN;
}

/** A fall's way in three hops, ms each, from the service's own records (fallHops). */
interface FallHops {
  /** Device sent → its gateway's event loop read it (`received_at` of the fall's event). */
  read: number;
  /**
   * Read → the dispatcher's first delivery record of the alert, on any channel: the log, the urgent lane,
   * the raise. The notices of all channels leave together and each is recorded once its send returned:
   * the live page's at once, the app's (`mqtt`) only once the app's gateway confirmed, after the app had
   * it. So the first record is the nearest to the moment the notices left.
   */
  sent: number;
  /** That record → the app had it: Redis, the app's gateway, the app. */
  app: number;
  /**
   * From the read to the app by PostgreSQL's commit times (BENCH_PG_STATEMENTS=1 turns track_commit_timestamp
   * on; null without): read → the event's commit, → the raise's commit, → the app's notice handed to the
   * gateways (listenNotices; NaN when not seen), → the app had it. PostgreSQL's clock is this host's too.
   */
  split: [number, number, number, number] | null;
}

/**
 * Where each fall's time went, from the service's own records: the `received_at` of the alert's first
 * evidence (the fall's event, by its log position) and the alert's first delivery record (FallHops.sent),
 * both on this host's clock (every process here shares it), between the device's send and the app's
 * notice. Falls with a record missing are left out.
 */
async function fallHops(
  url: string,
  falls: { alertId: string; sentAt: number; app: number }[],
  noticed: Map<string, number>,
): Promise<FallHops[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    // The commit times only where the server keeps them (BENCH_PG_STATEMENTS=1), else null.
    const committed = (xmin: string) =>
      `CASE WHEN current_setting('track_commit_timestamp') = 'on'
         THEN (extract(epoch FROM pg_xact_commit_timestamp(${xmin})) * 1000)::bigint END`;
    const r = await c.query(
      `SELECT a.id, e.received_at AS read, ${committed('e.xmin')} AS logged, ${committed('h.xmin')} AS saved,
         (SELECT min(d.at) FROM deliveries d WHERE d.alert_id = a.id) AS sent
       FROM alerts a
       LEFT JOIN events e ON e.seq = (a.body->'evidence'->0->>'seq')::bigint
       LEFT JOIN LATERAL (SELECT xmin FROM alert_history
         WHERE alert_id = a.id AND action = 'raised' ORDER BY id LIMIT 1) h ON true
       WHERE a.id = ANY($1)`,
      [falls.map((x) => x.alertId)],
    );
    const by = new Map(r.rows.map((row) => [row.id as string, row]));
    return falls.flatMap((x) => {
      const row = by.get(x.alertId);
      if (row?.read == null || row.sent == null) return [];
      const read = Number(row.read);
      const sent = Number(row.sent);
      const notice = noticed.get(x.alertId) ?? Number.NaN;
      const split: FallHops['split'] =
        row.logged == null || row.saved == null
          ? null
          : [
              Number(row.logged) - read,
              Number(row.saved) - Number(row.logged),
              notice - Number(row.saved),
              x.app - notice,
            ];
      return [{ read: read - x.sentAt, sent: sent - read, app: x.app - sent, split }];
    });
  } finally {
    await c.end();
  }
}

/**
 * When each alert's notice for a staff app was handed to the gateways (the dispatcher's NOTIFY on
 * `g365_gateway`, CLU-02), as a listener of that channel sees it: between the raise's commit and the app,
 * the dispatcher's part ends here and the app's gateway's begins. Until the returned function is called.
 */
async function listenNotices(url: string): Promise<{ seen: Map<string, number>; stop: () => Promise<void> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const seen = new Map<string, number>();
  c.on('notification', (n) => {
    const at = Date.now();
    try {
      const m = JSON.parse(n.payload ?? '') as { type?: string; payload?: string };
      if (m.type !== 'staffNotice' || !m.payload) return;
      const alertId = (JSON.parse(m.payload) as { alertId?: string }).alertId;
      if (alertId && !seen.has(alertId)) seen.set(alertId, at);
    } catch {
      // not a notice of ours
    }
  });
  await c.query('LISTEN g365_gateway');
  return { seen, stop: () => c.end() };
}

/**
 * Samples what the service's PostgreSQL sessions are doing every 100 ms (state and wait event, e.g. a lock,
 * the WAL's fsync, waiting for the client) until the returned function is called, which stops and
 * summarises: where the time of a slow commit goes.
 */
async function sampleWaits(url: string): Promise<() => Promise<string>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  const counts = new Map<string, number>();
  let samples = 0;
  let busy: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    busy = busy.then(async () => {
      const r = await c
        .query(
          `SELECT application_name AS app, state, wait_event_type AS wt, wait_event AS we FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle'`,
        )
        .catch(() => null);
      if (!r) return;
      samples++;
      for (const row of r.rows) {
        const k = `${row.app || '?'} ${row.state}${row.wt ? ` ${row.wt}:${row.we}` : ''}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
    });
  }, 100);
  return async () => {
    clearInterval(timer);
    await busy;
    await c.end();
    return [...counts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([k, n]) => `${k} ${(n / Math.max(1, samples)).toFixed(2)}`)
      .join(', ');
  };
}

/** One measurement: `devices` connections over `gateways` fresh gateway processes. */
async function measure(f: Fixture, devices: number, gateways: number): Promise<Measured> {
  const gateway = (nice = GATEWAY_NICE) =>
    startRole(
      'gateway',
      { DATABASE_URL: f.dbUrl, ...(nice !== undefined ? { PROCESS_NICE: nice } : {}) },
      f.files,
    );
  const gws = await Promise.all(Array.from({ length: gateways }, () => gateway()));
  // CLU-13: the staff apps' gateway ingests nothing and runs at the dispatcher's priority, as deployed.
  const staffGw = STAFF_GATEWAY ? await gateway(STAFF_GATEWAY_NICE) : null;
  /** Every gateway process, the staff apps' own included (CPU, RSS, event loops). */
  const allGws = staffGw ? [...gws, staffGw] : gws;
  await Promise.all(allGws.map(ready));
  const nLoad = Math.max(gateways, Math.ceil(devices / PER_LOADGEN));
  const slices = Array.from({ length: nLoad }, (_, j) => {
    const from = Math.floor((devices * j) / nLoad);
    return { from, n: Math.floor((devices * (j + 1)) / nLoad) - from, gw: gws[j % gateways]! };
  });
  /** Devices on the gateway holding the most: what room its open files leave for the falls' devices. */
  const mostOnOne = Math.max(...gws.map((g) => slices.reduce((n, s) => n + (s.gw === g ? s.n : 0), 0)));
  const used = slices.map((_, j) => f.loadgens[j]!);
  const cpu: CpuUse[] = [];
  const label = `${devices}/${gateways}`;
  /** Runs a phase, noting its CPU use and its span on the profiles' clock. */
  const phased = async <T>(
    name: string,
    units: (r: T) => number,
    unit: CpuUse['unit'],
    work: () => Promise<T>,
  ) => {
    const c0 = await cpuSnapshot(f, allGws, used);
    const statements = await statementCosts(f.dbUrl);
    await statements?.start();
    const w0 = performance.now();
    const from = monoUs();
    const r = await work();
    manifest.phases.push({ name: `${label} ${name}`, from, to: monoUs() });
    if (statements)
      console.log(`  ${label} ${name}: PostgreSQL statements by server time:\n${await statements.report()}`);
    cpu.push(cpuUse(name, c0, await cpuSnapshot(f, allGws, used), performance.now() - w0, units(r), unit));
    return r;
  };
  const connectAll = async () => {
    const t0 = performance.now();
    const r = await Promise.all(
      slices.map((s, j) =>
        f.loadgens[j]!.ask<{ ms: number; failed: number }>({
          cmd: 'connect',
          port: s.gw.mqtt,
          from: s.from,
          n: s.n,
        }),
      ),
    );
    return { ms: performance.now() - t0, failed: r.reduce((a, x) => a + x.failed, 0) };
  };
  const first = await phased(
    'connect',
    () => devices,
    'connect',
    () => connectAll(),
  );
  const onGateways = await connectedOn(gws);
  if (onGateways < devices) console.warn(`warning: the gateways count ${onGateways} of ${devices} connected`);
  const rssIdle = allGws.reduce((a, g) => a + rssOf(g.child.pid!), 0);
  // Every connect is a presence record in the log (DEV-10): the rules work through them after the storm.
  // The traffic starts once they have, so the steady rate is measured in the steady state; how long the
  // catch-up took is a figure of its own (falls during it wait for the cores it takes).
  const caughtUp = await rulesCaughtUp(f);
  console.log(
    `  ${label} connect: the rules caught up with the log (${caughtUp.head} positions) ${(caughtUp.ms / 1000).toFixed(1)} s after the last device connected`,
  );

  // The responders' apps on the first gateway; the falls' devices spread over all of them.
  const notices: { at: number; alertId: string; householdId: string; rule: string }[] = [];
  // Woken by each notice: the wait for a fall's notice costs no CPU of its own on the busy machine.
  let noticed: (() => void) | null = null;
  const apps = await Promise.all(
    f.staff.map(async (s) => {
      const app = await mqtt.connectAsync({
        host: '127.0.0.1',
        port: (staffGw ?? gws[0]!).mqtt,
        clientId: `staff:${s.id}`,
        username: `staff:${s.id}`,
        password: s.token,
        reconnectPeriod: 0,
      });
      await app.subscribeAsync(topics.staffAlerts(s.id), { qos: 1 });
      app.on('message', (_t, p) => {
        const n = JSON.parse(p.toString()) as { alertId: string; householdId: string; rule: string };
        notices.push({ at: Date.now(), alertId: n.alertId, householdId: n.householdId, rule: n.rule });
        noticed?.();
      });
      return app;
    }),
  );
  // The dispatch screen's live feed (socket.io, as an admin): when each alert was raised and its first
  // escalation step saved, for the falls' breakdown below.
  const adminToken = await login(f.dispatcher.http, 'admin', 'admin-password-365');
  const screen = io(`http://127.0.0.1:${f.dispatcher.http}`, {
    auth: { token: adminToken },
    transports: ['websocket'],
    reconnection: false,
  });
  const live = new Map<string, { raised?: number; step?: number }>();
  screen.on('alert', (m: { alert: { id: string; rule: string; state: string }; action: string }) => {
    if (m.alert.rule !== 'FALL') return;
    const at = Date.now();
    const e = live.get(m.alert.id) ?? {};
    if (m.action === 'raised') e.raised ??= at;
    // RULE-16: the urgent lane saves the first step with the raise (the alert comes `notified`).
    if (m.action === 'escalation' || m.alert.state !== 'raised') e.step ??= at;
    live.set(m.alert.id, e);
  });
  await new Promise<void>((res, rej) => {
    screen.once('connect', () => res());
    screen.once('connect_error', rej);
  });
  // Connected and quiet: what holding the devices costs before a single event (their PINGREQs, the
  // service's own timers).
  if (IDLE > 0)
    await phased(
      'idle',
      () => devices,
      'connection',
      () => new Promise((r) => setTimeout(r, IDLE * 1000)),
    );

  /**
   * Steady traffic at `rate` events/s, with FALLS falls on fresh devices evenly over its measured window,
   * and WARM_FALLS unmeasured ones in the warm-up's middle half (the fall path's first use since the
   * processes started; reported apart).
   */
  const atRate = async (rate: number): Promise<AtRate> => {
    // Each fall's device is one more connection on a gateway already holding its share of the devices:
    // as many as fit under the open-files limit of the gateway holding the most devices, on each (they
    // go round the gateways; the one gateway at its limit has room for a couple of hundred, the first of
    // them for the warm-up).
    const room = Math.max(0, gateways * (f.files - mostOnOne - GATEWAY_SPARE_FILES));
    // No warm-up, no warm-up falls (they would go out together at the start).
    const nWarm = Math.min(WARMUP >= 1 ? WARM_FALLS : 0, room);
    const warmers = f.fallDevices.splice(0, nWarm);
    const fallers = f.fallDevices.splice(0, Math.min(FALLS, room - nWarm));
    const fallClients = await Promise.all(
      [...fallers, ...warmers].map((d, i) =>
        mqtt.connectAsync({
          host: '127.0.0.1',
          port: gws[i % gateways]!.mqtt,
          clientId: d.id,
          username: d.id,
          password: BENCH_SECRET,
          reconnectPeriod: 0,
          protocolVersion: 4,
        }),
      ),
    );
    const at = `${label} ${rate}/s`;
    const pg0 = await pgStats(f.dbUrl);
    const pressure0 = pressure();
    const redis0 = redisOps(f.redis.port);
    const cpu0 = await cpuSnapshot(f, allGws, used);
    const waits = await sampleWaits(f.dbUrl);
    const handedOn = await listenNotices(f.dbUrl);
    const loopRoles = [f.dispatcher, ...allGws];
    const loopNames = [
      'dispatcher',
      ...gws.map((_, i) => `gateway ${i + 1}`),
      ...(staffGw ? ['staff gateway'] : []),
    ];
    const loops0 = await Promise.all(loopRoles.map(loopState));
    const statements = await statementCosts(f.dbUrl);
    await statements?.start();
    const mono0 = monoUs();
    const t0 = performance.now();
    const traffic = Promise.all(
      slices.map((_, j) =>
        f.loadgens[j]!.ask<{
          sent: number;
          acked: number;
          p50: number;
          p99: number;
          warmP50: number;
          warmP99: number;
          secondP99: number[];
        }>({
          cmd: 'traffic',
          rate: rate / nLoad,
          seconds: SECONDS,
          warmup: WARMUP,
        }),
      ),
    );
    // One fall at a time, evenly over [from, to) s of the traffic; a fall not notified within `waitMs`
    // counts as not notified.
    const seen = new Set<string>();
    const inject = async (
      devices: typeof fallers,
      clients: mqtt.MqttClient[],
      from: number,
      to: number,
      waitMs: number,
    ) => {
      const fallLat: number[] = [];
      const fallAcked: number[] = [];
      const fallStages: { alertId: string; sentAt: number; app: number }[] = [];
      /** Falls sent over 100 ms after their slot (the one before them waited long for its notice). */
      let late = 0;
      for (let i = 0; i < devices.length; i++) {
        const slot = t0 + (from + ((i + 0.5) * (to - from)) / devices.length) * 1000;
        await new Promise((r) => setTimeout(r, Math.max(0, slot - performance.now())));
        if (performance.now() - slot > 100) late++;
        const d = devices[i]!;
        const sentAt = Date.now();
        await clients[i]!.publishAsync(
          topics.events(d.homeId, d.id),
          JSON.stringify({ type: 'fall', ts: sentAt, seq: 1, state: 'detected', room: d.room }),
          { qos: 1 },
        );
        // The gateway's PUBACK: the fall is in the log; what follows is the dispatcher's and the way back.
        fallAcked.push(Date.now() - sentAt);
        const until = Date.now() + waitMs;
        for (;;) {
          // Its own notice: the fall's household and rule (a late one of an earlier fall is not taken for it).
          const n = notices.find(
            (x) => x.householdId === d.homeId && x.rule === 'FALL' && !seen.has(x.alertId) && x.at >= sentAt,
          );
          if (n) {
            for (const x of notices) if (x.alertId === n.alertId) seen.add(x.alertId);
            fallLat.push(n.at - sentAt);
            fallStages.push({ alertId: n.alertId, sentAt, app: n.at });
            break;
          }
          const left = until - Date.now();
          if (left <= 0) break;
          await new Promise<void>((r) => {
            const timer = setTimeout(r, left);
            noticed = () => {
              clearTimeout(timer);
              r();
            };
          });
          noticed = null;
        }
        for (const x of notices) seen.add(x.alertId);
      }
      return { fallLat, fallAcked, fallStages, late };
    };
    // The warm-up falls in its middle half, each waiting at most a quarter of it for its notice, so that
    // they are over before the measured window starts.
    const warm = await inject(
      warmers,
      fallClients.slice(fallers.length),
      WARMUP / 4,
      (3 * WARMUP) / 4,
      (WARMUP / 4) * 1000,
    );
    const { fallLat, fallAcked, fallStages, late } = await inject(
      fallers,
      fallClients,
      WARMUP,
      WARMUP + SECONDS,
      10_000,
    );
    if (late > 0)
      console.log(
        `  ${at}: ${late} of ${fallers.length} falls sent over 100 ms after their slot (a fall before them waited long for its notice)`,
      );
    const load = await traffic;
    if (warmers.length > 0) {
      const w = [...warm.fallLat].sort((a, b) => a - b);
      console.log(
        `  ${at}: ${warmers.length} warm-up falls (not measured; the fall path's first use since the processes started), device → app ms in order: ${warm.fallLat.join(' ')} (median ${nearestRank(w, 0.5)}, slowest ${w.at(-1) ?? '?'}, ${warm.fallLat.length} notified)`,
      );
    }
    // Whether the measured window is steady: the ordinary PUBACK p99 of each second, the slowest generator's.
    const seconds = Math.max(...load.map((l) => l.secondP99.length));
    console.log(
      `  ${at}: ordinary PUBACK p99 by second of the traffic (ms; the first ${WARMUP} s are the warm-up): ${Array.from(
        { length: seconds },
        (_, i) => Math.round(Math.max(...load.map((l) => l.secondP99[i] ?? 0))),
      ).join(' ')}`,
    );
    // Before any other scrape of /metrics, which would reset the event-loop delays.
    const loops1 = await Promise.all(loopRoles.map(loopState));
    console.log(
      `  ${at} falls: device → PUBACK ms ${fallAcked.join(' ')}; device → app ms ${fallLat.join(' ')}`,
    );
    const since = (t: number | undefined, from: number) => (t === undefined ? '?' : String(t - from));
    console.log(
      `  ${at} falls, ms after the device sent (PUBACK / raised on the screen / first step on the screen / app): ` +
        fallStages
          .map((s, i) => {
            const l = live.get(s.alertId);
            return `${fallAcked[i]}/${since(l?.raised, s.sentAt)}/${since(l?.step, s.sentAt)}/${s.app - s.sentAt}`;
          })
          .join(' '),
    );
    console.log(
      `  ${at} falls raised by the urgent lane (RULE-16), all so far: ${(await metricOf(f.dispatcher, 'g365_rules_urgent_raised_total')) ?? '?'}; ` +
        `pages of the rules evaluated again after a refused commit: ${(await metricOf(f.dispatcher, 'g365_rules_pages_evaluated_again_total')) ?? '?'}`,
    );
    const elapsed = (performance.now() - t0) / 1000;
    manifest.phases.push({ name: `${label} traffic ${rate}/s`, from: mono0, to: monoUs() });
    const sentAll = load.reduce((a, l) => a + l.sent, 0);
    const use = cpuUse(
      `${rate}/s`,
      cpu0,
      await cpuSnapshot(f, allGws, used),
      elapsed * 1000,
      sentAll,
      'event',
    );
    cpu.push(use);
    console.log(
      `  ${at}: PostgreSQL sessions by what they were doing (sampled every 100 ms): ${await waits()}`,
    );
    console.log(`  ${at}: event loops: ${loopReport(loopNames, loops0, loops1)}`);
    if (statements)
      console.log(`  ${at}: PostgreSQL statements by server time:\n${await statements.report()}`);
    const pg1 = await pgStats(f.dbUrl);
    const pressure1 = pressure();
    const redis1 = redisOps(f.redis.port);
    // After every figure of the window is taken: the query's own work is not counted in them.
    await handedOn.stop();
    const hops = await fallHops(f.dbUrl, fallStages, handedOn.seen);
    console.log(
      `  ${at} falls, hops in ms (device → gateway read / read → first delivery record / record → app): ${hops.map((h) => `${h.read}/${h.sent}/${h.app}`).join(' ')}`,
    );
    const splits = hops.flatMap((h) => (h.split ? [h.split] : []));
    if (splits.length > 0) {
      const p = (i: number, q: number) =>
        nearestRank(
          splits
            .map((x) => x[i]!)
            .filter((v) => !Number.isNaN(v))
            .sort((a, b) => a - b),
          q,
        );
      const total = (h: FallHops) => h.read + h.sent + h.app;
      const slowest = [...hops].sort((a, b) => total(b) - total(a)).slice(0, 20);
      console.log(
        `  ${at} falls, read → app by commit times (read → event committed / → raise committed / → notice handed to the gateways / → app), p50 and p99 ms: ${[0, 1, 2, 3].map((i) => `${p(i, 0.5)}/${p(i, 0.99)}`).join(' ')}; the 20 slowest falls, device → read / those four: ${slowest.map((h) => (h.split ? `${h.read}/${h.split.join('/')}` : '?')).join(' ')}`,
      );
    }
    for (const c of fallClients) c.end(true);
    fallLat.sort((a, b) => a - b);
    const pct = (p: number) => nearestRank(fallLat, p);
    const hopP99 = (k: 'read' | 'sent' | 'app') =>
      nearestRank(
        hops.map((h) => h[k]).sort((a, b) => a - b),
        0.99,
      );
    const cpuMs = CPU_KINDS.reduce((a, k) => a + use.ms[k], 0);
    return {
      rate,
      fallP50: pct(0.5),
      fallP99: pct(0.99),
      fallMax: fallLat.length ? fallLat.at(-1)! : Number.NaN,
      fallsOver100: fallLat.filter((ms) => ms > 100).length,
      fallsSeen: fallLat.length,
      falls: fallers.length,
      hopP99: { read: hopP99('read'), sent: hopP99('sent'), app: hopP99('app') },
      pubackP50: Math.max(...load.map((l) => l.p50)),
      pubackP99: Math.max(...load.map((l) => l.p99)),
      warmP50: Math.max(...load.map((l) => l.warmP50)),
      warmP99: Math.max(...load.map((l) => l.warmP99)),
      sent: sentAll,
      acked: load.reduce((a, l) => a + l.acked, 0),
      cores: cpuMs / (elapsed * 1000),
      cpuPerEvent: (1000 * cpuMs) / sentAll,
      pgCommits: (pg1.commits - pg0.commits) / elapsed,
      pgInserts: (pg1.inserts - pg0.inserts) / elapsed,
      walSyncs: (pg1.walSyncs - pg0.walSyncs) / elapsed,
      walSyncMs:
        pg1.walSyncMs > 0
          ? (pg1.walSyncMs - pg0.walSyncMs) / Math.max(1, pg1.walSyncs - pg0.walSyncs)
          : Number.NaN,
      cpuPressure: (100 * (pressure1.cpu - pressure0.cpu)) / (elapsed * 1e6),
      ioPressure: (100 * (pressure1.io - pressure0.io)) / (elapsed * 1e6),
      redisOps: (redis1 - redis0) / elapsed,
    };
  };
  // Each rate after the other on the same connected devices, the lowest first.
  const rates: AtRate[] = [];
  for (const rate of RATES) rates.push(await atRate(rate));
  screen.close();
  const pgConnections = (await pgStats(f.dbUrl)).conns;
  const rssBusy = allGws.reduce((a, g) => a + rssOf(g.child.pid!), 0);
  const dispatcherRss = rssOf(f.dispatcher.child.pid!);

  for (const c of apps) c.end(true);
  await Promise.all(slices.map((_, j) => f.loadgens[j]!.ask({ cmd: 'drop' })));
  let again = { ms: Number.NaN, failed: 0 };
  if (RECONNECT) {
    again = await phased(
      'reconnect',
      () => devices,
      'connect',
      () => connectAll(),
    );
    const reconnected = await connectedOn(gws);
    if (reconnected < devices)
      console.warn(`warning: the gateways count ${reconnected} of ${devices} reconnected`);
  }
  printCpu(label, cpu);
  await Promise.all(allGws.map((g) => g.stop()));
  await Promise.all(slices.map((_, j) => f.loadgens[j]!.ask({ cmd: 'drop' })));
  return {
    devices,
    gateways,
    connectMs: first.ms,
    connectRetries: first.failed + again.failed,
    reconnectMs: again.ms,
    rssIdle,
    rssBusy,
    dispatcherRss,
    pgConnections,
    rates,
  };
}

export async function run(): Promise<void> {
  const limits = fileLimits();
  const files = Math.min(limits.hard, 1_048_576);
  const perGateway = Math.ceil(DEVICES / GATEWAYS);
  if (perGateway + 200 > files || SINGLE + 200 > files)
    throw new Error(
      `open-files hard limit ${limits.hard} is below ${Math.max(perGateway, SINGLE) + 200}: raise it or add gateways (BENCH_GATEWAYS)`,
    );
  const mb = (x: number) => (x / 2 ** 20).toFixed(0);
  console.log(
    `${new Date().toISOString()}: ${DEVICES.toLocaleString('en')} devices over ${GATEWAYS} gateways vs ` +
      `${SINGLE.toLocaleString('en')} on one, ${ROUNDS} rounds; ${RATES.join(', ')} events/s for ${SECONDS} s each after a ${WARMUP} s warm-up with ${FALLS} falls each; load generators at nice ${LOADGEN_NICE}, gateways at ${GATEWAY_NICE ?? 'their default (10)'}; staff apps on ${STAFF_GATEWAY ? `a gateway of their own at nice ${STAFF_GATEWAY_NICE} (CLU-13)` : 'the first gateway'}; ` +
      `load average ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}, ${mb(totalmem())} MB RAM; open files soft ${limits.soft} hard ${limits.hard} ` +
      `(children run with ${files})`,
  );

  const db = await benchDatabase();
  const store = new PostgresStore({ url: db.url, poolSize: 4 });
  const redis = new RedisServer(await freePort());
  const loadgens: LoadGen[] = [];
  let dispatcher: Role | null = null;
  try {
    await store.migrate();
    const seedStarted = performance.now();
    const seeded = Math.max(DEVICES, SINGLE, HOUSEHOLDS);
    await seedDevices(store, seeded);
    await seedLearnedHomes(store, seeded, LEARNED_DAYS, env.TZ_COMMUNITY ?? 'Asia/Shanghai');
    const plan = planCommunity({
      grids: 1,
      householdsPerGrid: (FALLS + WARM_FALLS) * ROUNDS * RATES.length * 2,
      staffPassword: STAFF_PASSWORD,
    });
    const now = Date.now();
    await seedCommunity(store, { ...plan, devices: [] }, now);
    const falls = plan.devices.filter((d) => d.kind === 'fall');
    for (const d of falls)
      await store.createDevice({ ...d, secretHash: hashDeviceSecret(BENCH_SECRET), createdAt: now });
    console.log(
      `seeded ${seeded.toLocaleString('en')} households and devices in bulk in ${((performance.now() - seedStarted) / 1000).toFixed(1)} s, ` +
        'each device with its own salted hash in the format the service issues (SEC-05); ' +
        (LEARNED_DAYS > 0
          ? `each home's rules state with ${LEARNED_DAYS} learned days (RULE-14, BENCH_LEARNED_DAYS)`
          : 'new homes (no rules state yet: BENCH_LEARNED_DAYS=0)'),
    );
    await redis.start();
    dispatcher = await startRole('dispatcher', { DATABASE_URL: db.url, REDIS_URL: redis.url }, files);
    await ready(dispatcher);
    const staffIds = [...new Set(plan.roster.flatMap((r) => r.staffIds))];
    const staff = await Promise.all(
      staffIds.map(async (id) => {
        const username = plan.staff.find((s) => s.id === id)!.username;
        return { id, token: await login(dispatcher!.http, username, STAFF_PASSWORD) };
      }),
    );
    const nLoad = Math.max(GATEWAYS, Math.ceil(DEVICES / PER_LOADGEN), Math.ceil(SINGLE / PER_LOADGEN));
    for (let i = 0; i < nLoad; i++) loadgens.push(new LoadGen());
    await Promise.all(loadgens.map((l) => l.started));
    const f: Fixture = {
      dbUrl: db.url,
      dispatcher,
      redis,
      loadgens,
      staff,
      fallDevices: falls.map((d) => ({ id: d.id, homeId: d.homeId, room: d.room })),
      files,
    };

    const cluster: Measured[] = [];
    const single: Measured[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      // BENCH_SINGLE=0: the cluster alone.
      for (const kind of SINGLE > 0 ? (['cluster', 'single'] as const) : (['cluster'] as const)) {
        const m = kind === 'cluster' ? await measure(f, DEVICES, GATEWAYS) : await measure(f, SINGLE, 1);
        (kind === 'cluster' ? cluster : single).push(m);
        console.log(
          `round ${r} ${kind}: ${m.devices} devices on ${m.gateways} gateway(s): connect ${(m.connectMs / 1000).toFixed(1)} s, ` +
            `reconnect ${(m.reconnectMs / 1000).toFixed(1)} s, RSS ${mb(m.rssIdle)} → ${mb(m.rssBusy)} MB; ` +
            m.rates
              .map(
                (a) =>
                  `at ${a.rate}/s: fall p50/p99/max ${a.fallP50}/${a.fallP99}/${a.fallMax} ms (${a.fallsSeen}/${a.falls}, ${a.fallsOver100} over 100 ms), ` +
                  `traffic ${a.acked}/${a.sent} acked, PUBACK p99 ${a.pubackP99.toFixed(1)} ms, ` +
                  `${a.cores.toFixed(2)} cores, PG ${a.pgCommits.toFixed(0)} commits/s ${a.pgInserts.toFixed(0)} rows/s ` +
                  `${a.walSyncs.toFixed(0)} WAL flushes/s of ${a.walSyncMs.toFixed(2)} ms, ` +
                  `pressure CPU ${a.cpuPressure.toFixed(0)} % IO ${a.ioPressure.toFixed(0)} %, ` +
                  `Redis ${a.redisOps.toFixed(1)} cmd/s`,
              )
              .join('; ') +
            `; load ${loadavg()[0]!.toFixed(2)}`,
        );
      }
    }

    const row = (label: string, fn: (m: Measured) => number, digits = 0) =>
      console.log(
        `${label.padEnd(50)} ${shown(cluster.map(fn), digits).padStart(24)} ${shown(single.map(fn), digits).padStart(24)}`,
      );
    console.log(
      `\n${'median (min–max) over rounds'.padEnd(50)} ${`${DEVICES} / ${GATEWAYS} gateways`.padStart(24)} ${`${SINGLE} / 1 gateway`.padStart(24)}`,
    );
    row('connect all devices (s)', (m) => m.connectMs / 1000, 1);
    row('connect rate (devices/s)', (m) => m.devices / (m.connectMs / 1000));
    row('reconnect all after a drop (s)', (m) => m.reconnectMs / 1000, 1);
    row('reconnect rate (devices/s)', (m) => m.devices / (m.reconnectMs / 1000));
    row('connect retries (refused/reset, retried)', (m) => m.connectRetries);
    row('gateway RSS, connected idle (MB)', (m) => m.rssIdle / 2 ** 20);
    row('gateway RSS, under traffic (MB)', (m) => m.rssBusy / 2 ** 20);
    row('gateway RSS per connection, idle (KB)', (m) => m.rssIdle / m.devices / 1024, 1);
    row('gateway RSS per connection, under traffic (KB)', (m) => m.rssBusy / m.devices / 1024, 1);
    row('dispatcher RSS (MB)', (m) => m.dispatcherRss / 2 ** 20);
    RATES.forEach((rate, i) => {
      const r = (label: string, fn: (a: AtRate) => number, digits = 0) =>
        row(`${rate}/s: ${label}`, (m) => fn(m.rates[i]!), digits);
      r('fall → responder notification p50 (ms)', (a) => a.fallP50);
      r('fall → responder notification p99 (ms)', (a) => a.fallP99);
      r('fall → responder notification, slowest (ms)', (a) => a.fallMax);
      r('falls over 100 ms', (a) => a.fallsOver100);
      r('falls notified', (a) => a.fallsSeen);
      r('falls sent (as the open files allow)', (a) => a.falls);
      r('fall p99, device → gateway read (ms)', (a) => a.hopP99.read);
      r('fall p99, read → first delivery record (ms)', (a) => a.hopP99.sent);
      r('fall p99, that record → app (ms)', (a) => a.hopP99.app);
      r('ordinary events acknowledged (%)', (a) => (100 * a.acked) / a.sent, 2);
      r('ordinary events PUBACK p50 (ms)', (a) => a.pubackP50, 1);
      r('ordinary events PUBACK p99 (ms)', (a) => a.pubackP99, 1);
      r(`PUBACK p50 in the first ${WARMUP} s (ms)`, (a) => a.warmP50, 1);
      r(`PUBACK p99 in the first ${WARMUP} s (ms)`, (a) => a.warmP99, 1);
      r('cores busy (all processes)', (a) => a.cores, 2);
      r('CPU per event, all processes (µs)', (a) => a.cpuPerEvent);
      r('PostgreSQL commits/s', (a) => a.pgCommits);
      r('PostgreSQL rows inserted/s', (a) => a.pgInserts);
      r('PostgreSQL WAL flushes/s', (a) => a.walSyncs);
      r('PostgreSQL WAL flush, mean (ms)', (a) => a.walSyncMs, 2);
      r('machine: some task waiting for a processor (% of time)', (a) => a.cpuPressure);
      r('machine: some task waiting for I/O (% of time)', (a) => a.ioPressure);
      r('Redis commands/s (dispatcher live relay)', (a) => a.redisOps, 1);
    });
    row('PostgreSQL connections', (m) => m.pgConnections);
    const verdicts = RATES.map((rate, i) => {
      const p99 = spread(cluster.map((m) => m.rates[i]!.fallP99)).median;
      const falls = spread(cluster.map((m) => m.rates[i]!.falls)).median;
      return `\nfall → responder p99 over ${falls} falls a measurement (nearest rank) at ${rate}/s: ${p99} ms ${p99 <= 100 ? '≤' : '>'} 100 ms target with ${DEVICES} devices connected`;
    });
    console.log(
      verdicts.join('') +
        `\nPostgreSQL: ${await benchClusterSettings()}\nload average now ${loadavg()
          .map((x) => x.toFixed(2))
          .join(' ')}`,
    );
  } finally {
    await Promise.all(loadgens.map((l) => l.close()));
    // A measurement that failed left its gateways running (each stops its own when it ends well).
    await Promise.all([...running].map((r) => r.stop()));
    await dispatcher?.stop();
    await redis.stop();
    await store.close();
    await db.drop();
    await stopBenchCluster();
    if (PROF_DIR) {
      mkdirSync(PROF_DIR, { recursive: true });
      writeFileSync(join(PROF_DIR, 'manifest.json'), JSON.stringify(manifest, null, 2));
      console.log(`CPU profiles and their manifest in ${PROF_DIR}`);
    }
  }
}
