/**
 * Durability before acknowledgement (DEV-05, DATA-02): a gateway in a child
 * process takes thousands of QoS 1 events, is killed with SIGKILL at a random moment, restarts on the same
 * file, and every event whose PUBACK a device received is in the log. Repeated three times.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { topics } from '../../gateway/protocol.ts';
import { hashSecret } from '../../gateway/secrets.ts';
import { bareHousehold, tempDir } from '../helpers.ts';

const DEVICES = 10;
const WINDOW = 20;
const SECRET = 'durable-secret';
const child = join(import.meta.dirname, 'durability-child.ts');

let dir: ReturnType<typeof tempDir>;

beforeAll(() => {
  dir = tempDir();
});
afterAll(() => dir.remove());

async function seed(file: string): Promise<void> {
  const store = new SqliteStore(file);
  await store.migrate();
  await store.upsertGrid({ id: 'g', name: 'g', community: 'c', leaderId: null });
  const hash = await hashSecret(SECRET);
  for (let i = 0; i < DEVICES; i++) {
    await store.upsertHousehold(bareHousehold(`h${i}`, 'g'));
    await store.createDevice({
      id: `d${i}`,
      homeId: `h${i}`,
      kind: 'motion',
      room: 'living',
      secretHash: hash,
      createdAt: 0,
    });
  }
  await store.close();
}

async function startChild(file: string): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, file], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`gateway child exited (${code}) before listening`)));
  });
  return { proc, port: (JSON.parse(line) as { port: number }).port };
}

/** Publishes as fast as the gateway acknowledges until the connection dies; returns the acknowledged seqs. */
async function publishUntilKilled(port: number, onAcks: (n: number) => void): Promise<Map<string, number[]>> {
  const acked = new Map<string, number[]>();
  let total = 0;
  const clients: MqttClient[] = [];
  await Promise.all(
    Array.from({ length: DEVICES }, async (_, i) => {
      const id = `d${i}`;
      const c = await mqtt.connectAsync({
        host: '127.0.0.1',
        port,
        clientId: id,
        username: id,
        password: SECRET,
        reconnectPeriod: 0,
        protocolVersion: 4,
      });
      clients.push(c);
      const mine: number[] = [];
      acked.set(id, mine);
      let seq = 0;
      const topic = topics.events(`h${i}`, id);
      // mqtt.js keeps unacknowledged QoS 1 publishes pending forever once the connection is gone.
      const gone = new Promise<'gone'>((r) => c.once('close', () => r('gone')));
      const lane = async () => {
        while (c.connected) {
          const s = ++seq;
          const body = JSON.stringify({
            type: 'motion',
            ts: Date.now(),
            seq: s,
            state: 'active',
            room: 'living',
          });
          const outcome = await Promise.race([c.publishAsync(topic, body, { qos: 1 }), gone]).catch(
            () => 'gone' as const,
          );
          if (outcome === 'gone') return;
          mine.push(s);
          onAcks(++total);
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, lane));
    }),
  );
  for (const c of clients) c.end(true);
  return acked;
}

describe('durability: kill -9 loses no acknowledged event', () => {
  for (const run of [1, 2, 3]) {
    it(`keeps every acknowledged event after SIGKILL at a random moment (run ${run})`, async () => {
      const file = join(dir.path, `run${run}.sqlite`);
      await seed(file);
      const first = await startChild(file);
      // Kill somewhere after 1,000 to 4,000 acknowledgements, so thousands of events are in flight.
      const killAt = 1_000 + Math.floor(Math.random() * 3_000);
      const exited = new Promise<void>((r) => first.proc.once('exit', () => r()));
      const acked = await publishUntilKilled(first.port, (n) => {
        if (n === killAt) first.proc.kill('SIGKILL');
      });
      await exited;
      const ackedTotal = [...acked.values()].reduce((a, s) => a + s.length, 0);
      expect(ackedTotal).toBeGreaterThanOrEqual(killAt);

      // Restart on the same file: the gateway recovers the log and accepts connections again.
      const second = await startChild(file);
      const probe = await mqtt.connectAsync({
        host: '127.0.0.1',
        port: second.port,
        clientId: 'd0',
        username: 'd0',
        password: SECRET,
        reconnectPeriod: 0,
      });
      await probe.endAsync();
      const store = new SqliteStore(file);
      try {
        const logged = new Map<string, Set<number>>();
        for (const e of await store.readEvents(0, 10_000_000)) {
          if (e.event.type !== 'motion' || e.event.seq === undefined) continue;
          const seqs = logged.get(e.deviceId) ?? new Set<number>();
          logged.set(e.deviceId, seqs);
          seqs.add(e.event.seq);
        }
        const missing: string[] = [];
        for (const [id, seqs] of acked)
          for (const s of seqs) if (!logged.get(id)?.has(s)) missing.push(`${id}#${s}`);
        expect(missing).toEqual([]);
      } finally {
        await store.close();
        second.proc.kill('SIGKILL');
      }
    });
  }
});
