/**
 * Long tasks in a process's V8 CPU profile: stretches of samples without idle between them (the event
 * loop did not come back), over a threshold, and the frames they spent their time in.
 *
 *   npx tsx bench/long-tasks.ts dir kind [phase] [minMs=10]
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
const [dir, kind, phaseName, minArg] = process.argv.slice(2);
if (!dir || !kind) throw new Error('usage');
const MIN = Number(minArg ?? 10) * 1000;
const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
const phase = manifest.phases.find((p: { name: string }) => p.name === (phaseName ?? 'measured'));
const short = (u: string) =>
  u
    .replace(/^.*node_modules\//, '')
    .replace(/^.*\/main\//, '')
    .replace(/^file:\/\//, '');
const name = (n: Node) =>
  `${n.callFrame.functionName || '(anon)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const lens: number[] = [];
const incl = new Map<string, number>();
const self = new Map<string, number>();
const roots = new Map<string, number>();
let busyTotal = 0;
let longTotal = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const pid = /\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(file)?.[1];
  if ((pid && manifest.processes[pid]) !== kind) continue;
  const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  let t = p.startTime;
  let cur: { start: number; samples: { id: number; dt: number }[] } | null = null;
  const close = (end: number) => {
    if (!cur) return;
    const len = end - cur.start;
    lens.push(len);
    if (len >= MIN) {
      longTotal += len;
      for (const s of cur.samples) {
        const leaf = byId.get(s.id)!;
        const a = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + s.dt);
        a(self, name(leaf));
        const chain: Node[] = [];
        for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id))
          chain.push(byId.get(id)!);
        const seen = new Set<string>();
        for (const n of chain) {
          const k = name(n);
          if (!seen.has(k)) a(incl, k);
          seen.add(k);
        }
        // The first frames below (root): what the task was.
        const r = chain
          .reverse()
          .slice(1, 4)
          .map((n) => n.callFrame.functionName || '(anon)')
          .join(' > ');
        a(roots, r);
      }
    }
    cur = null;
  };
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i]!;
    if (t < phase.from || t >= phase.to) {
      close(t);
      continue;
    }
    const dt = p.timeDeltas[i + 1] ?? 0;
    const leaf = byId.get(p.samples[i]!)!;
    if (leaf.callFrame.functionName === '(idle)') {
      close(t);
      continue;
    }
    busyTotal += dt;
    if (!cur) cur = { start: t, samples: [] };
    cur.samples.push({ id: leaf.id, dt });
  }
  close(t);
}
lens.sort((a, b) => a - b);
const q = (f: number) => (lens[Math.floor(f * (lens.length - 1))]! / 1000).toFixed(1);
console.log(
  `${kind} in ${phase.name}: ${lens.length} tasks, busy ${(busyTotal / 1e3).toFixed(0)} ms; task p50 ${q(0.5)} p90 ${q(0.9)} p99 ${q(0.99)} max ${q(1)} ms; over ${MIN / 1000} ms: ${lens.filter((l) => l >= MIN).length}, ${(longTotal / 1e3).toFixed(0)} ms`,
);
const top = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `  ${(v / 1e3).toFixed(0).padStart(6)} ms  ${k}`)
    .join('\n');
console.log(
  `long tasks, by root:\n${top(roots, 15)}\nlong tasks, inclusive:\n${top(incl, 40)}\nlong tasks, self:\n${top(self, 25)}`,
);
