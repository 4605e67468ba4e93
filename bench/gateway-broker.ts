/**
 * A broker under test for bench/gateway.bench.ts, in its own process so that the load generator and the
 * broker do not share an event loop:
 *
 *   gateway-broker.ts gateway <dir> <devices>   the full Guardian gateway on a SQLite file in <dir>
 *   gateway-broker.ts gateway-pg <url> <devices> the full Guardian gateway on the PostgreSQL database <url>
 *   gateway-broker.ts aedes                     bare aedes, no auth, in-memory, nobody subscribed
 *   gateway-broker.ts aedes-consumer            bare aedes with an in-process wildcard consumer (the baseline)
 *
 * Sends `{ready, port, startMs}` over IPC once accepting; answers `stats` with the device-to-rules latency
 * samples (gateway) and counts since the last `stats`.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics } from 'node:v8';
import { Aedes } from 'aedes';
import Database from 'better-sqlite3';
import { PostgresStore } from '../dispatcher/store/postgres.ts';
import { SqliteStore } from '../dispatcher/store/sqlite.ts';
import type { Store } from '../dispatcher/store/store.ts';
import { Gateway } from '../gateway/gateway.ts';
import { hashDeviceSecret } from '../gateway/secrets.ts';
import { SystemClock } from '../kernel/clock.ts';
import { silentLogger } from '../kernel/log.ts';
import { BENCH_SECRET } from './gateway-load.ts';
import { seedDevices } from './pg-cluster.ts';

const [kind, dir, devicesArg] = process.argv.slice(2);
const send = (m: unknown) => process.send?.(m);
// A clean exit on SIGTERM lets `--cpu-prof` write its profile.
process.on('SIGTERM', () => process.exit(0));
// Memory figures are of what is held: a full collection first (the broker runs with --expose-gc).
process.on('message', (m: { cmd: string }) => {
  if (m.cmd !== 'gc') return;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  send({ cmd: 'gc', memory: process.memoryUsage() });
});

/** One hash of the bench secret for every bench device, in the format the service issues (SEC-05). */
const benchHash = (): string => hashDeviceSecret(BENCH_SECRET);

/** The same devices in a PostgreSQL database (once: a restart finds them there). */
async function seedPostgres(store: PostgresStore, n: number): Promise<void> {
  await store.migrate();
  const have = await store.pool.query('SELECT COUNT(*) AS n FROM devices');
  if (Number(have.rows[0].n) >= n) return;
  await seedDevices(store, n);
}

/** Devices `d0…dN` in homes `h0…hN`, sharing one hash of the bench secret. */
async function seed(file: string, n: number): Promise<void> {
  const store = new SqliteStore(file);
  await store.migrate();
  await store.close();
  const hash = benchHash();
  const db = new Database(file);
  db.transaction(() => {
    db.prepare(
      `INSERT OR IGNORE INTO grids (id, name, community, leader_id) VALUES ('g', 'g', 'c', NULL)`,
    ).run();
    const home = db.prepare(
      `INSERT OR IGNORE INTO households (id, grid_id, building, unit, room, residents, contacts, access_notes, routine)
       VALUES (?, 'g', '1', '1', '1', '[]', '[]', '', '{"nightStart":"22:00","nightEnd":"06:00","wakeTime":"07:30","thresholds":{}}')`,
    );
    const dev = db.prepare(
      `INSERT OR IGNORE INTO devices (id, home_id, kind, room, secret_hash, created_at) VALUES (?, ?, 'motion', 'living', ?, 0)`,
    );
    for (let i = 0; i < n; i++) {
      home.run(`h${i}`);
      dev.run(`d${i}`, `h${i}`, hash);
    }
  })();
  db.close();
}

/**
 * BENCH_TRACE=1: where the gateway's PUBACK latency goes, on stderr at each `stats` (between the bench's
 * phases): each log batch from its hand-over to the store to its answer (the durable write, waiting
 * for the batches before it included) and its size, the event loop's delay, and the collector's pauses.
 */
const trace = process.env.BENCH_TRACE ? tracer() : null;

function tracer() {
  const writes: number[] = [];
  const sizes: number[] = [];
  const gcs: number[] = [];
  const eld = monitorEventLoopDelay({ resolution: 1 });
  eld.enable();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push(e.duration);
  }).observe({ entryTypes: ['gc'] });
  const pct = (xs: number[], p: number) => {
    const v = xs.sort((a, b) => a - b);
    return v.length ? v[Math.min(v.length - 1, Math.floor(v.length * p))]! : Number.NaN;
  };
  const line = (xs: number[]) =>
    `p50 ${pct(xs, 0.5).toFixed(1)} p99 ${pct(xs, 0.99).toFixed(1)} max ${pct(xs, 1).toFixed(1)}`;
  return {
    write(ms: number, n: number) {
      writes.push(ms);
      sizes.push(n);
    },
    report() {
      const gcTotal = gcs.reduce((a, b) => a + b, 0);
      process.stderr.write(
        `    trace: ${writes.length} log batches, write ms ${line(writes)}, records ${line(sizes)};` +
          ` event-loop delay ms p99 ${(eld.percentile(99) / 1e6).toFixed(1)} max ${(eld.max / 1e6).toFixed(1)};` +
          ` gc ${gcs.length} pauses, ${gcTotal.toFixed(0)} ms, ${line(gcs)}\n`,
      );
      writes.length = 0;
      sizes.length = 0;
      gcs.length = 0;
      eld.reset();
    },
  };
}

if (kind === 'gateway' || kind === 'gateway-pg') {
  const seedStarted = performance.now();
  let store: Store;
  if (kind === 'gateway') {
    const file = join(dir!, 'bench.sqlite');
    await seed(file, Number(devicesArg ?? 1000));
    store = new SqliteStore(file);
  } else {
    const pg = new PostgresStore({ url: dir!, poolSize: 10 });
    await seedPostgres(pg, Number(devicesArg ?? 1000));
    store = pg;
  }
  const seedMs = performance.now() - seedStarted;
  const started = performance.now();
  await store.migrate();
  let rulesLat: number[] = [];
  let handed = 0;
  const gw = new Gateway({
    store,
    clock: new SystemClock(),
    log: silentLogger(),
    port: 0,
    host: '127.0.0.1',
    // The load generator drives a few hundred connections far above a real device's rate.
    limits: { publishRate: { perSecond: 1_000_000, burst: 1_000_000 } },
    onLogWrite: (ms, n) => trace?.write(ms, n),
    onEvents: (events) => {
      const now = Date.now();
      handed += events.length;
      for (const e of events) if (e.event.type === 'motion') rulesLat.push(now - e.ts);
    },
  });
  await gw.start();
  send({ ready: true, port: gw.port, startMs: performance.now() - started, seedMs });
  process.on('message', async (m: { cmd: string }) => {
    if (m.cmd === 'stats') {
      trace?.report();
      const lat = rulesLat.sort((a, b) => a - b);
      rulesLat = [];
      const at = (p: number) =>
        lat.length ? lat[Math.min(lat.length - 1, Math.floor(lat.length * p))]! : null;
      send({
        cmd: 'stats',
        rules: { n: lat.length, p50: at(0.5), p99: at(0.99) },
        handed,
        logged: await store.countEvents('accepted'),
      });
    }
  });
} else if (kind === 'aedes' || kind === 'aedes-consumer') {
  const started = performance.now();
  const broker = await Aedes.createBroker();
  if (kind === 'aedes-consumer') {
    // The same hand-off as the gateway's, without auth, validation or durability: an in-process QoS 1
    // wildcard subscription that parses each payload.
    broker.subscribe(
      'g365/#',
      (packet, cb) => {
        JSON.parse(String(packet.payload));
        cb();
      },
      () => {},
    );
  }
  const server = createServer({ noDelay: true }, (s) => broker.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  send({
    ready: true,
    port: (server.address() as { port: number }).port,
    startMs: performance.now() - started,
  });
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'stats')
      send({ cmd: 'stats', rules: { n: 0, p50: null, p99: null }, handed: 0, logged: 0 });
  });
} else {
  throw new Error(`unknown broker kind ${kind}`);
}
// BENCH_MEMLOG=1: the broker's memory by heap space every 500 ms, on stderr (what grows, and whether it is
// garbage: the bench also reports the heap after a collection at the end of the busy homes).
if (process.env.BENCH_MEMLOG) {
  const mb = (x: number) => (x / 2 ** 20).toFixed(0);
  setInterval(() => {
    const m = process.memoryUsage();
    const spaces = getHeapSpaceStatistics()
      .filter((x) => x.space_used_size > 2 ** 20)
      .map((x) => `${x.space_name}:${mb(x.space_used_size)}`)
      .join(' ');
    process.stderr.write(
      `mem ${kind} rss ${mb(m.rss)} heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} ${spaces}\n`,
    );
  }, 500).unref();
}
