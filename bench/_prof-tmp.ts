import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_SECRET, closedLoop, openLoop, openMany } from './gateway-load.ts';
const dir = mkdtempSync(join(tmpdir(), 'g365-prof-'));
const proc = fork(join(import.meta.dirname, 'gateway-broker.ts'), ['gateway', dir, '1000'], {
  execArgv: ['--import', 'tsx', '--cpu-prof', '--cpu-prof-dir=/tmp/perfprof'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const ready = await new Promise<{ port: number }>((r) => proc.once('message', (m) => r(m as { port: number })));
const conns = await openMany(ready.port, 0, 200, BENCH_SECRET, () => {});
await closedLoop(conns, 4, 1);
const mode = process.argv[2] ?? 'closed';
if (mode === 'closed') console.log((await closedLoop(conns, 16, 6)).rate);
else { const r = await openLoop(conns, 10_000, 6); console.log(r.p50, r.p99); }
proc.kill('SIGTERM');
await new Promise((r) => proc.once('exit', r));
process.exit(0);
