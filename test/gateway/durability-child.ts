/**
 * A gateway in its own process for the kill -9 test (durability.test.ts): opens the store at
 * `<backend> <where>` (a SQLite file or a PostgreSQL URL, test/store-factory.ts), starts the gateway on an OS-chosen loopback port and prints `{"port": N}` once
 * accepting. It is killed with SIGKILL, never stopped.
 */
import { Gateway } from '../../gateway/gateway.ts';
import { SystemClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { type Backend, storeAt } from '../store-factory.ts';

const [backend, where] = process.argv.slice(2) as [Backend, string];
if (!where) throw new Error('usage: durability-child.ts <sqlite|postgres> <file or URL>');
const store = storeAt({ backend, where });
await store.migrate();
const gateway = new Gateway({
  store,
  clock: new SystemClock(),
  log: silentLogger(),
  port: 0,
  host: '127.0.0.1',
  // The test floods from a few devices: the per-device limit would only slow it down.
  limits: { publishRate: { perSecond: 1_000_000, burst: 1_000_000 } },
});
await gateway.start();
process.stdout.write(`${JSON.stringify({ port: gateway.port })}\n`);
