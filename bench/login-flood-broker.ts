/**
 * The gateway under a login flood, for bench/login-flood.bench.ts, in its own process: devices `f0…fN`
 * (the flood's known ids) and `good0…goodN` (valid devices), each with its own salted hash in the format
 * the service issues (SEC-05: `hashDeviceSecret`). `BENCH_FLOOD_HASH=legacy`: every row holds one shared
 * scrypt hash with production parameters instead, as rows hashed before SEC-05 do until their device's
 * next good login. Sends `{ready, port}` over IPC; answers `stats` with its memory and login counters.
 */
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { SqliteStore } from '../dispatcher/store/sqlite.ts';
import { Gateway } from '../gateway/gateway.ts';
import { hashDeviceSecret, hashPassword } from '../gateway/secrets.ts';
import { SystemClock } from '../kernel/clock.ts';
import { silentLogger } from '../kernel/log.ts';
import { FLOOD_SECRET } from './gateway-load.ts';

const [dir, floodIds, goodIds] = process.argv.slice(2);
const send = (m: unknown) => process.send?.(m);
process.on('SIGTERM', () => process.exit(0));

const file = join(dir!, 'flood.sqlite');
const seedStore = new SqliteStore(file);
await seedStore.migrate();
await seedStore.close();
// The legacy format is the one staff passwords keep: scrypt N=16384.
const legacy = process.env.BENCH_FLOOD_HASH === 'legacy' ? await hashPassword(FLOOD_SECRET) : null;
const hash = () => legacy ?? hashDeviceSecret(FLOOD_SECRET);
const db = new Database(file);
db.transaction(() => {
  db.prepare(`INSERT INTO grids (id, name, community, leader_id) VALUES ('g', 'g', 'c', NULL)`).run();
  const home = db.prepare(
    `INSERT INTO households (id, grid_id, building, unit, room, residents, contacts, access_notes, routine)
     VALUES (?, 'g', '1', '1', '1', '[]', '[]', '', '{"nightStart":"22:00","nightEnd":"06:00","wakeTime":"07:30","thresholds":{}}')`,
  );
  const dev = db.prepare(
    `INSERT INTO devices (id, home_id, kind, room, secret_hash, created_at) VALUES (?, ?, 'motion', 'living', ?, 0)`,
  );
  for (const [prefix, n] of [
    ['f', Number(floodIds)],
    ['good', Number(goodIds)],
  ] as const)
    for (let i = 0; i < n; i++) {
      home.run(`h-${prefix}${i}`);
      dev.run(`${prefix}${i}`, `h-${prefix}${i}`, hash());
    }
})();
db.close();

const store = new SqliteStore(file);
await store.migrate();
const gw = new Gateway({ store, clock: new SystemClock(), log: silentLogger(), port: 0, host: '0.0.0.0' });
await gw.start();
// Where a slow PUBACK comes from: this process's event loop held up (its own work, GC) or not.
const loop = monitorEventLoopDelay({ resolution: 5 });
loop.enable();
const gc = { n: 0, ms: 0, maxMs: 0, byKind: {} as Record<string, { n: number; ms: number; maxMs: number }> };
const GC_KINDS: Record<number, string> = { 1: 'minor', 4: 'major', 8: 'incremental', 16: 'weakcb' };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.n++;
    gc.ms += e.duration;
    gc.maxMs = Math.max(gc.maxMs, e.duration);
    const kind = GC_KINDS[(e as unknown as { detail: { kind: number } }).detail.kind] ?? 'other';
    gc.byKind[kind] ??= { n: 0, ms: 0, maxMs: 0 };
    const k = gc.byKind[kind];
    k.n++;
    k.ms += e.duration;
    k.maxMs = Math.max(k.maxMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });
let cpu = process.cpuUsage();
let since = performance.now();

send({ ready: true, port: gw.port });
process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'reset') {
    loop.reset();
    Object.assign(gc, { n: 0, ms: 0, maxMs: 0, byKind: {} });
    cpu = process.cpuUsage();
    since = performance.now();
    send({ cmd: 'reset' });
    return;
  }
  if (m.cmd !== 'stats') return;
  const g = gw.metrics as unknown as Record<string, unknown>;
  const counters: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(g)) if (typeof v === 'number' && /auth|login/i.test(k)) counters[k] = v;
  const used = process.cpuUsage(cpu);
  send({
    cmd: 'stats',
    rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
    counters,
    loopMs: { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    gc: { ...gc },
    cpuShare: (used.user + used.system) / 1000 / (performance.now() - since),
  });
});
