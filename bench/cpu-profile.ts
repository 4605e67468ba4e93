/**
 * Reads the V8 CPU profiles a `BENCH_PROF_DIR=dir npm run bench -- scale` run wrote, per kind of process
 * and per phase of the run (dir/manifest.json): where each process's CPU went, as self time and as
 * inclusive time per function, and self time per package (node_modules/<name>, our own folders, node's
 * internals, GC, idle).
 *
 *   npx tsx bench/cpu-profile.ts dir [top=25]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
}
interface Manifest {
  processes: Record<string, string>;
  phases: { name: string; from: number; to: number }[];
}

const [dir, topArg] = process.argv.slice(2);
if (!dir) throw new Error('usage: tsx bench/cpu-profile.ts dir [top]');
const TOP = Number(topArg ?? 25);
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;

function where(url: string): string {
  if (!url) return '(native)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  if (url.startsWith('node:')) return 'node:internal';
  const ours = /\/(gateway|dispatcher|kernel|bench|simulators)\/([^/]+)$/.exec(url);
  if (ours) return `${ours[1]}/${ours[2]}`;
  return url.replace(/^.*\//, '');
}
const frameName = (n: Node) =>
  `${n.callFrame.functionName || '(anonymous)'} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;

/** Per (kind, phase): sampled µs by self frame, by inclusive frame, by package; and the total. */
interface Tally {
  total: number;
  idle: number;
  self: Map<string, number>;
  incl: Map<string, number>;
  pkg: Map<string, number>;
}
const tallies = new Map<string, Tally>();
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const pid = /\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(file)?.[1];
  const kind = (pid && manifest.processes[pid]) || 'bench';
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    const dt = p.timeDeltas[i + 1] ?? 0;
    const phase = manifest.phases.find((ph) => t >= ph.from && t < ph.to)?.name ?? 'other';
    const key = `${kind} | ${phase}`;
    let tally = tallies.get(key);
    if (!tally) {
      tally = { total: 0, idle: 0, self: new Map(), incl: new Map(), pkg: new Map() };
      tallies.set(key, tally);
    }
    const leaf = byId.get(p.samples[i]!)!;
    const name = leaf.callFrame.functionName;
    if (name === '(idle)') {
      tally.idle += dt;
      continue;
    }
    tally.total += dt;
    add(tally.self, frameName(leaf), dt);
    add(tally.pkg, name === '(garbage collector)' ? '(gc)' : where(leaf.callFrame.url), dt);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const f = frameName(byId.get(id)!);
      if (seen.has(f)) continue;
      seen.add(f);
      add(tally.incl, f, dt);
    }
  }
}

const top = (m: Map<string, number>, total: number, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(
      ([k, v]) =>
        `    ${((100 * v) / total).toFixed(1).padStart(5)} %  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`,
    )
    .join('\n');

for (const [key, t] of [...tallies].sort((a, b) => a[0].localeCompare(b[0]))) {
  if (t.total < 200_000) continue;
  console.log(
    `\n=== ${key}: busy ${(t.total / 1000).toFixed(0)} ms, idle ${(t.idle / 1000).toFixed(0)} ms (sampled, all processes of the kind)`,
  );
  console.log(`  by package (self):\n${top(t.pkg, t.total, 15)}`);
  console.log(`  by function (self):\n${top(t.self, t.total, TOP)}`);
  console.log(`  by function (inclusive):\n${top(t.incl, t.total, TOP)}`);
}
