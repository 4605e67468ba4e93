/**
 * `npm run bench -- event-log`: how much the shared event log on PostgreSQL takes, and how long a fall waits
 * at it, when several gateways append to it at once (CLU-01, DEV-12). BENCH_LOG_WRITERS stores (each as a
 * gateway process holds one: its own pool and its devices' seq cache) append batches of BENCH_LOG_BATCH
 * events, each event with its device's row (last seen, battery), as fast as the log lets them, for
 * BENCH_SECONDS; meanwhile an urgent record (RULE-16: a fall, in a transaction of its own) is appended
 * every 100 ms through the first store. Baseline in the same run: one store doing the same, whose appends
 * never wait for the log lock. The two alternate over BENCH_ROUNDS (A B A B …) and print as median
 * (min–max). Every commit is durable (synchronous_commit and fsync on, as in production).
 *
 *   BENCH_LOG_WRITERS=6 BENCH_LOG_BATCH=20 BENCH_SECONDS=8 BENCH_ROUNDS=3 npm run bench -- event-log
 *
 * A batch of 20 is what a gateway's 20 ms pace (LOG_COMMIT_MS) gathers at 5,000 events/s over 6 gateways.
 * The stores share this one Node process, so the figures are the database's and the lock's, not a
 * gateway's own CPU (bench/scale.bench.ts measures the whole path).
 */
import { PostgresStore } from '../dispatcher/store/postgres.ts';
import type { EventRecord, PresenceUpdate } from '../gateway/ports.ts';
import { benchClusterSettings, benchDatabase, seedDevices, stopBenchCluster } from './pg-cluster.ts';
import { shown } from './stats.ts';

const env = process.env;
const WRITERS = Number(env.BENCH_LOG_WRITERS ?? 6);
const BATCH = Number(env.BENCH_LOG_BATCH ?? 20);
const SECONDS = Number(env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
/** Devices per store: each event of a batch is a different device, as on a gateway. */
const PER_STORE = 3000;
const URGENT_EVERY_MS = 100;
const T = Date.UTC(2026, 2, 10, 2, 0);

interface Measured {
  eventsPerS: number;
  appendP50: number;
  appendP99: number;
  urgentP50: number;
  urgentP99: number;
}

const pct = (xs: number[], p: number) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor(v.length * p))]! : Number.NaN;
};

/** One measurement on a database of its own: `writers` stores appending at once. */
async function measure(writers: number): Promise<Measured> {
  const db = await benchDatabase();
  const stores: PostgresStore[] = [];
  try {
    const n = writers * PER_STORE;
    const setup = new PostgresStore({ url: db.url });
    stores.push(setup);
    await setup.migrate();
    await seedDevices(setup, n);
    const writing = Array.from({ length: writers }, () => new PostgresStore({ url: db.url }));
    stores.push(...writing);
    // Each store's devices logged in through it, as at a gateway: its appends take the short way (one round trip).
    for (const [k, s] of writing.entries())
      for (let i = k * PER_STORE; i < (k + 1) * PER_STORE; i++) await s.findDevice(`d${i}`);
    const seqs = new Map<number, number>();
    const record = (i: number, ts: number, type: string): EventRecord => {
      const seq = (seqs.get(i) ?? 0) + 1;
      seqs.set(i, seq);
      return {
        deviceId: `d${i}`,
        homeId: `h${i}`,
        receivedAt: ts,
        topic: `g365/v1/homes/h${i}/devices/d${i}/events`,
        status: 'accepted',
        ts,
        type,
        deviceSeq: seq,
        body: JSON.stringify({
          type,
          ts,
          seq,
          state: type === 'fall' ? 'detected' : 'active',
          room: 'living',
        }),
        reason: null,
        flags: [],
      };
    };
    let stop = false;
    let events = 0;
    const appends: number[] = [];
    const urgent: number[] = [];
    const started = performance.now();
    const writer = async (s: PostgresStore, k: number) => {
      // The first device of the first store stands for a fall detector; each store's others take its
      // ordinary traffic in turn.
      for (let r = 0; !stop; r++) {
        const records: EventRecord[] = [];
        const presence: PresenceUpdate[] = [];
        for (let j = 0; j < BATCH; j++) {
          const i = k * PER_STORE + 1 + ((r * BATCH + j) % (PER_STORE - 1));
          const ts = T + Math.round(performance.now() - started);
          records.push(record(i, ts, 'motion'));
          presence.push({ deviceId: `d${i}`, lastSeenAt: ts, online: true, battery: 80 });
        }
        const t = performance.now();
        await s.appendEvents(records, presence);
        appends.push(performance.now() - t);
        events += BATCH;
      }
    };
    const falls = async () => {
      while (!stop) {
        await new Promise((r) => setTimeout(r, URGENT_EVERY_MS));
        const t = performance.now();
        await writing[0]!.appendEvents([record(0, T + Math.round(t - started), 'fall')], [], {
          urgent: true,
        });
        urgent.push(performance.now() - t);
      }
    };
    const timer = setTimeout(() => {
      stop = true;
    }, SECONDS * 1000);
    await Promise.all([...writing.map(writer), falls()]);
    clearTimeout(timer);
    const elapsed = (performance.now() - started) / 1000;
    return {
      eventsPerS: events / elapsed,
      appendP50: pct(appends, 0.5),
      appendP99: pct(appends, 0.99),
      urgentP50: pct(urgent, 0.5),
      urgentP99: pct(urgent, 0.99),
    };
  } finally {
    for (const s of stores) await s.close();
    await db.drop();
  }
}

export async function run(): Promise<void> {
  console.log(
    `${WRITERS} stores appending batches of ${BATCH} events with their devices' rows vs 1, ${ROUNDS} rounds of ${SECONDS} s; a fall every ${URGENT_EVERY_MS} ms`,
  );
  const one: Measured[] = [];
  const many: Measured[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      one.push(await measure(1));
      many.push(await measure(WRITERS));
      const [a, b] = [one.at(-1)!, many.at(-1)!];
      console.log(
        `  round ${r + 1}: 1 store ${a.eventsPerS.toFixed(0)} events/s, fall ${a.urgentP50.toFixed(1)}/${a.urgentP99.toFixed(1)} ms; ` +
          `${WRITERS} stores ${b.eventsPerS.toFixed(0)} events/s, fall ${b.urgentP50.toFixed(1)}/${b.urgentP99.toFixed(1)} ms`,
      );
    }
    const row = (label: string, f: (m: Measured) => number, digits = 0) =>
      console.log(
        `  ${label.padEnd(34)} ${shown(one.map(f), digits).padEnd(22)} ${shown(many.map(f), digits)}`,
      );
    console.log(`\n  ${''.padEnd(34)} ${'1 store'.padEnd(22)} ${WRITERS} stores`);
    row('events/s logged', (m) => m.eventsPerS);
    row('append of a batch p50 (ms)', (m) => m.appendP50, 1);
    row('append of a batch p99 (ms)', (m) => m.appendP99, 1);
    row('urgent append (a fall) p50 (ms)', (m) => m.urgentP50, 1);
    row('urgent append (a fall) p99 (ms)', (m) => m.urgentP99, 1);
    const ratio = (f: (m: Measured) => number) =>
      shown(
        many.map((m, i) => f(m) / f(one[i]!)),
        2,
      );
    console.log(
      `\n  ${WRITERS} stores / 1 store, same round: events/s ${ratio((m) => m.eventsPerS)}, fall p99 ${ratio((m) => m.urgentP99)}`,
    );
    console.log(`PostgreSQL: ${await benchClusterSettings()}`);
  } finally {
    await stopBenchCluster();
  }
}
