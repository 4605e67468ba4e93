/**
 * `npm run bench`: runs the benchmarks one after another (the machine has 2 cores: never two at once).
 * Each benchmark measures a baseline in the same run and prints ratios, because the machine is shared.
 *   npm run bench              all
 *   npm run bench -- gateway   only those whose name contains "gateway"
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const filter = process.argv[2];
const dir = import.meta.dirname;
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => !filter || f.includes(filter))
  .sort();
for (const f of files) {
  console.log(`\n=== ${f} ===`);
  const mod = (await import(join(dir, f))) as { run: () => Promise<void> };
  await mod.run();
}
process.exit(0);
