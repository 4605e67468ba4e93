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
  simulators: ['simulators', 'gateway', 'kernel', 'dispatcher'],
};

describe('import direction', () => {
  it('keeps the gateway free of the dispatcher, and the kernel free of everything', () => {
    const bad: string[] = [];
    for (const folder of Object.keys(ALLOWED)) {
      for (const f of files(join(root, folder))) {
        for (const spec of imports(f)) {
          const target = top(join(f, '..', spec));
          // The entry file may start the demo's simulators (npm run demo).
          if (relative(root, f) === 'dispatcher/main.ts' && target === 'simulators') continue;
          if (!ALLOWED[folder]!.includes(target)) bad.push(`${relative(root, f)} → ${spec}`);
        }
      }
    }
    expect(bad).toEqual([]);
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
