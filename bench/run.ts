/**
 * `npm run bench`: runs the benchmarks one after another (the machine has 2 cores: never two at once),
 * each in a process of its own started with the service's V8 heap flags (kernel/heap.ts): a benchmark that
 * runs the service inside its process (dispatch-latency) measures it as `npm start` runs it.
 * Each benchmark measures a baseline in the same run and prints ratios, because the machine is shared.
 *   npm run bench              all
 *   npm run bench -- gateway   only those whose name contains "gateway"
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HEAP_FLAGS } from '../kernel/heap.ts';

const [filter, only] = process.argv.slice(2);
const dir = import.meta.dirname;

if (filter === '--one') {
  // In the child: the one benchmark.
  const mod = (await import(pathToFileURL(join(dir, only!)).href)) as { run: () => Promise<void> };
  await mod.run();
  process.exit(0);
}

const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => !filter || f.includes(filter))
  .sort();
let failed = 0;
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const r = spawnSync(
    process.execPath,
    [...HEAP_FLAGS, '--import', 'tsx', import.meta.filename, '--one', f],
    {
      stdio: 'inherit',
    },
  );
  if (r.status !== 0) {
    failed++;
    console.error(`${f} failed (exit ${r.status ?? r.signal})`);
  }
}
process.exit(failed ? 1 : 0);
