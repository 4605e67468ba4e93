/**
 * The service is measured with the node flags of kernel/heap.ts (`npm run bench:gateway`); every way of starting it must
 * carry them, or it runs with a heap that peaks 200 MB higher under 10,000 busy homes. A gateway process
 * adds its own (CLU-14), or it stops for a full collection every 25–50 s under steady traffic.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GATEWAY_HEAP_FLAGS, HEAP_FLAGS } from '../kernel/heap.ts';

const root = join(import.meta.dirname, '..');
const scripts = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).scripts as Record<
  string,
  string
>;
const cmd = /^CMD (\[.*\])$/m.exec(readFileSync(join(root, 'Dockerfile'), 'utf8'))?.[1];
const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
/** Each service of docker-compose.yml: its name and its lines up to the next service. */
const services = [...compose.matchAll(/^ {2}([\w-]+):\n((?: {4}.*\n|\s*\n| *#.*\n)*)/gm)].map((m) => ({
  name: m[1]!,
  body: m[2]!,
}));

describe('heap flags', () => {
  // Each script and the flags it must carry: a gateway's own (CLU-14) for start:gateway only.
  it.each([
    ['start', HEAP_FLAGS],
    ['demo', HEAP_FLAGS],
    ['start:gateway', GATEWAY_HEAP_FLAGS],
    ['start:dispatcher', HEAP_FLAGS],
  ] as const)('npm run %s starts the service with them', (name, flags) => {
    const words = scripts[name]!.split(/\s+/);
    const entry = words.indexOf('dispatcher/main.ts');
    expect(entry).toBeGreaterThan(0);
    for (const flag of flags) expect(words.slice(0, entry)).toContain(flag);
    // The other roles keep V8's memory reducer: it is a gateway's own.
    if (name !== 'start:gateway') expect(words).not.toContain('--no-memory-reducer');
  });

  it("the Docker image's CMD starts the service with them", () => {
    const argv = JSON.parse(cmd ?? '[]') as string[];
    expect(argv.at(-1)).toBe('dispatcher/main.ts');
    for (const flag of HEAP_FLAGS) expect(argv).toContain(flag);
  });

  it("docker-compose.yml's gateways run the image's command with the flags of a gateway process", () => {
    const anchor = /command: &gateway-command (\[.*\])$/m.exec(compose)?.[1];
    const argv = JSON.parse(anchor ?? '[]') as string[];
    expect(argv.slice(0, 1)).toEqual(['node']);
    expect(argv.slice(-3)).toEqual(['--import', 'tsx', 'dispatcher/main.ts']);
    expect(argv.slice(1, -3)).toEqual([...GATEWAY_HEAP_FLAGS]);
    // The image's own CMD with the gateway's flag added, nothing else changed.
    const image = JSON.parse(cmd ?? '[]') as string[];
    const at = image.indexOf('--import');
    expect(argv).toEqual([...image.slice(0, at), '--no-memory-reducer', ...image.slice(at)]);
    const gateways = services.filter(
      (s) => /^\s+ROLE: gateway$/m.test(s.body) || /<<: \*gateway-env/.test(s.body),
    );
    expect(gateways.map((g) => g.name)).toEqual(['gateway-1', 'gateway-2', 'gateway-staff-1']);
    for (const g of gateways) expect(g.body).toMatch(/^ {4}command: (&gateway-command |\*gateway-command$)/m);
    // Every other service of the image runs its CMD (HEAP_FLAGS).
    for (const s of services.filter((x) => /image: guardian365/.test(x.body) && !gateways.includes(x)))
      expect(s.body).not.toMatch(/^ {4}command:/m);
  });
});
