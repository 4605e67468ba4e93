/**
 * The service is measured with the node flags of kernel/heap.ts (`npm run bench:gateway`); every way of starting it must
 * carry them, or it runs with a heap that peaks 200 MB higher under 10,000 busy homes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HEAP_FLAGS } from '../kernel/heap.ts';

const root = join(import.meta.dirname, '..');
const scripts = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts as Record<
  string,
  string
>;
const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))?.[1];

describe('heap flags', () => {
  it.each(['start', 'demo', 'start:gateway', 'start:dispatcher'])(
    'npm run %s starts the service with them',
    (name) => {
      const words = scripts[name]!.split(/\s+/);
      const entry = words.indexOf('dispatcher/main.ts');
      expect(entry).toBeGreaterThan(0);
      for (const flag of HEAP_FLAGS) expect(words.slice(0, entry)).toContain(flag);
    },
  );

  it("the Docker image's CMD starts the service with them", () => {
    const argv = JSON.parse(cmd ?? '[]') as string[];
    expect(argv.at(-1)).toBe('dispatcher/main.ts');
    for (const flag of HEAP_FLAGS) expect(argv).toContain(flag);
  });
});
