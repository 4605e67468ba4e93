/**
 * Sustained QoS 1 ingest: the full gateway path (authentication, ACL, validation, durable group-commit
 * log with fsync, hand-off) against a bare aedes broker measured in the same run with the same load
 * generator (closed loop: each client keeps `window` publishes in flight).
 */

import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { SqliteStore } from '../dispatcher/store/sqlite.ts';
import { Gateway } from '../gateway/gateway.ts';
import { topics } from '../gateway/protocol.ts';
import { hashSecret } from '../gateway/secrets.ts';
import { SystemClock } from '../kernel/clock.ts';
import { silentLogger } from '../kernel/log.ts';
import { tempDir } from '../test/helpers.ts';

const CLIENTS = 50;
const WINDOW = 20;
const SECONDS = 5;

async function load(
  port: number,
  creds: (i: number) => { id: string; home: string; secret: string },
): Promise<{ rate: number; p50: number; p99: number }> {
  const clients: MqttClient[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = creds(i);
    clients.push(
      await mqtt.connectAsync({
        host: '127.0.0.1',
        port,
        clientId: c.id,
        username: c.id,
        password: c.secret,
        reconnectPeriod: 0,
      }),
    );
  }
  const lat: number[] = [];
  let done = 0;
  let stop = false;
  const until = Date.now() + SECONDS * 1000;
  await Promise.all(
    clients.map(async (client, i) => {
      const c = creds(i);
      let seq = 0;
      const one = async (): Promise<void> => {
        while (!stop) {
          const t = performance.now();
          await client.publishAsync(
            topics.events(c.home, c.id),
            JSON.stringify({ type: 'motion', ts: Date.now(), seq: ++seq, state: 'active', room: 'living' }),
            { qos: 1 },
          );
          lat.push(performance.now() - t);
          done++;
          if (Date.now() > until) stop = true;
        }
      };
      await Promise.all(Array.from({ length: WINDOW }, one));
    }),
  );
  await Promise.all(clients.map((c) => c.endAsync()));
  lat.sort((a, b) => a - b);
  return {
    rate: done / SECONDS,
    p50: lat[Math.floor(lat.length * 0.5)]!,
    p99: lat[Math.floor(lat.length * 0.99)]!,
  };
}

export async function run(): Promise<void> {
  // Baseline: bare aedes, no auth, in-memory.
  const bare = await Aedes.createBroker();
  const server: Server = createServer({ noDelay: true }, (s) => bare.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const barePort = (server.address() as { port: number }).port;
  const base = await load(barePort, (i) => ({ id: `d${i}`, home: `h${i}`, secret: 'x' }));
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => bare.close(() => r()));

  // The full gateway on a real SQLite file.
  const dir = tempDir();
  const store = new SqliteStore(join(dir.path, 'bench.sqlite'));
  await store.migrate();
  await store.upsertGrid({ id: 'g', name: 'g', community: 'c', leaderId: null });
  const hash = await hashSecret('s3cret-bench');
  for (let i = 0; i < CLIENTS; i++) {
    await store.upsertHousehold({
      id: `h${i}`,
      gridId: 'g',
      address: { building: '1', unit: '1', room: '1' },
      residents: [],
      contacts: [],
      accessNotes: '',
      routine: { nightStart: '22:00', nightEnd: '06:00', wakeTime: '07:30', thresholds: {} },
      awayUntil: null,
      awayReason: null,
    });
    await store.createDevice({
      id: `d${i}`,
      homeId: `h${i}`,
      kind: 'motion',
      room: 'living',
      secretHash: hash,
      createdAt: 0,
    });
  }
  let handed = 0;
  const gw = new Gateway({
    store,
    clock: new SystemClock(),
    log: silentLogger(),
    port: 0,
    host: '127.0.0.1',
    onEvents: (e) => {
      handed += e.length;
    },
  });
  await gw.start();
  const full = await load(gw.port, (i) => ({ id: `d${i}`, home: `h${i}`, secret: 's3cret-bench' }));
  await gw.stop();
  const logged = await store.countEvents('accepted');
  await store.close();
  dir.remove();

  const row = (name: string, r: { rate: number; p50: number; p99: number }) =>
    `${name.padEnd(40)} ${r.rate.toFixed(0).padStart(8)} msg/s   PUBACK p50 ${r.p50.toFixed(1).padStart(6)} ms   p99 ${r.p99.toFixed(1).padStart(6)} ms`;
  console.log(
    `closed loop: ${CLIENTS} clients × ${WINDOW} in flight, ${SECONDS} s each, QoS 1, mqtt.js load client`,
  );
  console.log(row('bare aedes (baseline, no durability)', base));
  console.log(row('guardian gateway (durable before PUBACK)', full));
  console.log(
    `ratio gateway / bare aedes: ${(full.rate / base.rate).toFixed(2)}   events logged ${logged}, handed to rules ${handed}`,
  );
}
