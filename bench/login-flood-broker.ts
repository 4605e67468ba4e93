/**
 * The gateway under a login flood, for bench/login-flood.bench.ts, in its own process: devices `f0…fN`
 * (the flood's known ids) and `good0…goodN` (valid devices), each with its own salted hash in the format
 * the service issues (SEC-05: `hashDeviceSecret`). `BENCH_FLOOD_HASH=legacy`: every row holds one shared
 * scrypt hash with production parameters instead, as rows hashed before SEC-05 do until their device's
 * next good login. Sends `{ready, port}` over IPC; answers `stats` with its memory and login counters.
 */
import { join } from 'node:path';
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
send({ ready: true, port: gw.port });
process.on('message', (m: { cmd: string }) => {
  if (m.cmd !== 'stats') return;
  const g = gw.metrics as unknown as Record<string, unknown>;
  const counters: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(g)) if (typeof v === 'number' && /auth|login/i.test(k)) counters[k] = v;
  send({ cmd: 'stats', rssMb: Math.round(process.memoryUsage().rss / 2 ** 20), counters });
});
