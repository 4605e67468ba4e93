/**
 * The tree tells the data flow (STYLE.md): imports point upstream or to the kernel. This test reads every
 * import line and fails on a forbidden edge.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' || name === 'public' ? [] : files(p);
    return /\.(ts|tsx)$/.test(name) ? [p] : [];
  });
}

function imports(file: string): string[] {
  const src = readFileSync(file, 'utf8');
  return [...src.matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)]
    .map((m) => m[1]!)
    .filter((s) => s.startsWith('.'));
}

const top = (p: string) => relative(root, p).split('/')[0]!;

/** Which top-level folders each folder may import from. */
const ALLOWED: Record<string, string[]> = {
  kernel: ['kernel'],
  gateway: ['gateway', 'kernel'],
  dispatcher: ['dispatcher', 'gateway', 'kernel'],
  console: ['console', 'dispatcher'],
  simulators: ['simulators', 'kernel'],
};

/**
 * Single files a folder may import outside its allowed folders: the contracts between services (STYLE.md,
 * "nothing else crosses service folders"). The simulators speak to the service only as devices and staff do
 * (SIM-01): the device protocol, and the API's types for the simulated staff.
 */
const CONTRACTS: Record<string, string[]> = {
  simulators: ['gateway/protocol.ts', 'dispatcher/api/types.ts'],
};

/**
 * Relative imports of a file as the import-cycle tool reads them (static `import … from`, `export … from`,
 * and `import('…')`), resolved to files of the tree.
 */
function resolvedImports(file: string, known: Set<string>): string[] {
  const src = readFileSync(file, 'utf8');
  const re = /(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
  const out: string[] = [];
  for (const m of src.matchAll(re)) {
    const target = join(file, '..', (m[1] ?? m[2])!);
    const hit = [target, `${target}.ts`, `${target}.tsx`, join(target, 'index.ts')].find((c) => known.has(c));
    if (hit) out.push(hit);
  }
  return out;
}

/** The import cycles of a graph: its strongly connected components of more than one file (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1) found.push(component);
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe('import direction', () => {
  it('keeps the gateway free of the dispatcher, and the kernel free of everything', () => {
    const bad: string[] = [];
    for (const folder of Object.keys(ALLOWED)) {
      for (const f of files(join(root, folder))) {
        for (const spec of imports(f)) {
          const target = top(join(f, '..', spec));
          // The entry file may start the demo's simulators (npm run demo).
          if (relative(root, f) === 'dispatcher/main.ts' && target === 'simulators') continue;
          const file = relative(root, join(f, '..', spec));
          if (!ALLOWED[folder]!.includes(target) && !CONTRACTS[folder]?.includes(file))
            bad.push(`${relative(root, f)} → ${spec}`);
        }
      }
    }
    expect(bad).toEqual([]);
  });

  it('has no import cycles: every file can be read knowing only what it imports', () => {
    const all = Object.keys(ALLOWED).flatMap((folder) => files(join(root, folder)));
    const known = new Set(all);
    const graph = new Map(all.map((f) => [f, resolvedImports(f, known)]));
    const found = cycles(graph).map((c) => c.map((f) => relative(root, f)).sort());
    expect(found).toEqual([]);
  });

  it('finds a cycle when there is one (the detection itself)', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(graph).map((c) => c.sort())).toEqual([['a', 'b', 'c']]);
  });

  it('lets the console import only the dispatcher API types', () => {
    const bad: string[] = [];
    for (const f of files(join(root, 'console'))) {
      for (const spec of imports(f)) {
        const target = relative(root, join(f, '..', spec));
        if (target.startsWith('dispatcher/') && target !== 'dispatcher/api/types.ts')
          bad.push(`${relative(root, f)} → ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('keeps the domain pure: no clock reads, timers, randomness or I/O in rules, alerts, routing', () => {
    const pure = [
      'dispatcher/rules/engine.ts',
      'dispatcher/rules/run.ts',
      'dispatcher/rules/state.ts',
      'dispatcher/rules/explain.ts',
      ...readdirSync(join(root, 'dispatcher/rules/kinds')).map((f) => `dispatcher/rules/kinds/${f}`),
      'dispatcher/rules/baseline.ts',
      'dispatcher/rules/localtime.ts',
      'dispatcher/rules/settings.ts',
      'dispatcher/alerts/lifecycle.ts',
      'dispatcher/alerts/escalation.ts',
      'dispatcher/alerts/model.ts',
      'dispatcher/routing/shifts.ts',
      'dispatcher/routing/roster.ts',
      'dispatcher/access.ts',
    ];
    const bad: string[] = [];
    for (const f of pure) {
      const src = readFileSync(join(root, f), 'utf8');
      for (const word of [
        'Date.now(',
        'new Date()',
        'setTimeout',
        'setInterval',
        'Math.random',
        'process.',
        "from 'node:fs'",
      ]) {
        if (src.includes(word)) bad.push(`${f}: ${word}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
