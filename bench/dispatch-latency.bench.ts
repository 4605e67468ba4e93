/**
 * Fall-to-notification latency (SPEC §6, §7): from a fall radar's QoS 1 publish to the responder's
 * socket.io page and to their MQTT staff topic, through the whole service (gateway with durable log,
 * rules, alert commit, routing, step 0 of the ladder, notifier), while the gateway carries 2,000 motion
 * events/s of background load from other homes. Baseline in the same run: a bare aedes broker's
 * publish→subscribe round trip under the same background load. Target: p99 < 50 ms.
 */
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '../dispatcher/api/types.ts';
import { loadConfig } from '../dispatcher/config.ts';
import { GuardianService } from '../dispatcher/service.ts';
import { SqliteStore } from '../dispatcher/store/sqlite.ts';
import { topics } from '../gateway/protocol.ts';
import { SystemClock } from '../kernel/clock.ts';
import { silentLogger } from '../kernel/log.ts';
import { planCommunity } from '../simulators/community.ts';
import { seedCommunity } from '../simulators/seed.ts';
import { tempDir } from '../test/helpers.ts';

const BACKGROUND_RATE = 2000;
const BACKGROUND_CLIENTS = 40;
const SAMPLES = 150;
const WARMUP = 10;
const GRIDS = 5;
const HOMES_PER_GRID = 8;
const PASSWORD = 'bench-password-365';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Open-loop background publisher: `rate` QoS 1 messages a second spread over the clients. */
function background(
  clients: { client: MqttClient; topic: string; body: (seq: number) => string }[],
  rate: number,
): { stop: () => Promise<number> } {
  let sent = 0;
  let seq = 0;
  const started = performance.now();
  const tick = 10;
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * rate) - sent;
    for (let i = 0; i < due; i++) {
      const c = clients[(sent + i) % clients.length]!;
      c.client.publish(c.topic, c.body(++seq), { qos: 1 });
    }
    sent += Math.max(0, due);
  }, tick);
  return {
    stop: async () => {
      clearInterval(timer);
      return sent / ((performance.now() - started) / 1000);
    },
  };
}

async function baseline(): Promise<{ p50: number; p99: number; rate: number }> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer((s) => broker.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const connect = (id: string) =>
    mqtt.connectAsync({ host: '127.0.0.1', port, clientId: id, reconnectPeriod: 0 });
  const load = [];
  for (let i = 0; i < BACKGROUND_CLIENTS; i++)
    load.push({
      client: await connect(`bg${i}`),
      topic: `g365/v1/homes/h${i}/devices/d${i}/events`,
      body: (seq: number) =>
        JSON.stringify({ type: 'motion', ts: Date.now(), seq, state: 'active', room: 'living' }),
    });
  const pub = await connect('probe-pub');
  const sub = await connect('probe-sub');
  await sub.subscribeAsync('probe/#', { qos: 1 });
  let waiting: ((t: number) => void) | null = null;
  sub.on('message', () => waiting?.(performance.now()));
  const bg = background(load, BACKGROUND_RATE);
  await sleep(1000);
  const lat: number[] = [];
  for (let i = 0; i < SAMPLES + WARMUP; i++) {
    const t0 = performance.now();
    const got = new Promise<number>((r) => {
      waiting = r;
    });
    pub.publish(`probe/${i}`, JSON.stringify({ type: 'fall', ts: Date.now(), seq: i, state: 'detected' }), {
      qos: 1,
    });
    const t1 = await got;
    if (i >= WARMUP) lat.push(t1 - t0);
    await sleep(40);
  }
  const rate = await bg.stop();
  for (const c of [...load.map((l) => l.client), pub, sub]) await c.endAsync();
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => broker.close(() => r()));
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), rate };
}

async function guardian(): Promise<{
  socket: { p50: number; p99: number };
  mqtt: { p50: number; p99: number };
  rate: number;
  events: number;
}> {
  const dir = tempDir('g365-bench-');
  const store = new SqliteStore(join(dir.path, 'guardian365.sqlite'));
  await store.migrate();
  const clock = new SystemClock();
  const plan = planCommunity({ grids: GRIDS, householdsPerGrid: HOMES_PER_GRID, staffPassword: PASSWORD });
  const devices = await seedCommunity(store, plan, clock.now());
  const config = loadConfig({
    MQTT_PORT: '0',
    HTTP_PORT: '0',
    MQTT_HOST: '127.0.0.1',
    HTTP_HOST: '127.0.0.1',
    DATA_DIR: dir.path,
    ADMIN_PASSWORD: 'admin-password-365',
    LOG_LEVEL: 'silent',
    // Day shift at any hour of the run, so the day worker is always the primary.
    DAY_SHIFT_START: '00:00',
    NIGHT_SHIFT_START: '23:59',
  });
  const service = new GuardianService({ config, clock, log: silentLogger(), store });
  await service.start();
  const base = `http://127.0.0.1:${service.httpPort}`;
  const login = async (username: string) => {
    const r = await fetch(`${base}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password: username === 'admin' ? 'admin-password-365' : PASSWORD }),
    });
    return ((await r.json()) as { token: string }).token;
  };

  // Each grid's primary: the phone page (socket.io) and the native app (MQTT staff topic).
  type Probe = { socket: number | null; mqtt: number | null; done: () => void };
  const pending = new Map<string, Probe>(); // by household id
  const sockets: Socket<ServerToClientEvents, ClientToServerEvents>[] = [];
  const apps: MqttClient[] = [];
  const check = (p: Probe) => {
    if (p.socket !== null && p.mqtt !== null) p.done();
  };
  for (let g = 1; g <= GRIDS; g++) {
    const staffId = `grid-${g}-worker`;
    const token = await login(`g${g}-worker`);
    const s: Socket<ServerToClientEvents, ClientToServerEvents> = io(base, {
      auth: { token },
      transports: ['websocket'],
    });
    await new Promise<void>((r) => s.once('connect', () => r()));
    s.on('notification', (n) => {
      const p = pending.get(n.householdId);
      if (p && p.socket === null) {
        p.socket = performance.now();
        check(p);
      }
    });
    sockets.push(s);
    const app = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: service.mqttPort,
      clientId: `staff:${staffId}`,
      username: `staff:${staffId}`,
      password: token,
      reconnectPeriod: 0,
    });
    await app.subscribeAsync(topics.staffAlerts(staffId), { qos: 1 });
    app.on('message', (_t, payload) => {
      const n = JSON.parse(payload.toString()) as { alertId: string; householdId: string };
      const p = pending.get(n.householdId);
      if (p && p.mqtt === null) {
        p.mqtt = performance.now();
        check(p);
      }
    });
    apps.push(app);
  }
  const dispatcherToken = await login('dispatcher');

  const connectDevice = (d: (typeof devices)[number]) =>
    mqtt.connectAsync({
      host: '127.0.0.1',
      port: service.mqttPort,
      clientId: d.id,
      username: d.id,
      password: d.secret,
      reconnectPeriod: 0,
    });
  const motion = devices.filter((d) => d.kind === 'motion').slice(0, BACKGROUND_CLIENTS);
  const load = [];
  for (const d of motion)
    load.push({
      client: await connectDevice(d),
      topic: topics.events(d.homeId, d.id),
      body: (seq: number) =>
        JSON.stringify({ type: 'motion', ts: Date.now(), seq, state: 'active', room: d.room }),
    });
  const radars = [];
  for (const d of devices.filter((x) => x.kind === 'fall'))
    radars.push({ d, client: await connectDevice(d), seq: 0 });

  const before = await store.countEvents('accepted');
  const bg = background(load, BACKGROUND_RATE);
  await sleep(1500);
  const socketLat: number[] = [];
  const mqttLat: number[] = [];
  for (let i = 0; i < SAMPLES + WARMUP; i++) {
    const r = radars[i % radars.length]!;
    const t0 = performance.now();
    const probe: Probe = { socket: null, mqtt: null, done: () => {} };
    const done = new Promise<void>((resolve) => {
      probe.done = resolve;
    });
    pending.set(r.d.homeId, probe);
    r.client.publish(
      topics.events(r.d.homeId, r.d.id),
      JSON.stringify({ type: 'fall', ts: Date.now(), seq: ++r.seq, state: 'detected', room: r.d.room }),
      { qos: 1 },
    );
    await Promise.race([done, sleep(5000)]);
    pending.delete(r.d.homeId);
    if (i >= WARMUP && probe.socket !== null && probe.mqtt !== null) {
      socketLat.push(probe.socket - t0);
      mqttLat.push(probe.mqtt - t0);
    }
    // Close the alert so the next fall at this home raises a new one (one open alert per problem).
    const open = await store.listAlerts({ householdId: r.d.homeId, state: 'open', limit: 5 });
    for (const a of open)
      await fetch(`${base}/api/alerts/${a.id}/cancel`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${dispatcherToken}` },
        body: JSON.stringify({ reason: 'benchmark' }),
      });
    await sleep(20);
  }
  const rate = await bg.stop();
  await sleep(500);
  const events = (await store.countEvents('accepted')) - before;
  for (const s of sockets) s.close();
  for (const c of [...apps, ...load.map((l) => l.client), ...radars.map((r) => r.client)]) await c.endAsync();
  await service.stop();
  await store.close();
  dir.remove();
  if (socketLat.length < SAMPLES * 0.9)
    throw new Error(`only ${socketLat.length} of ${SAMPLES} falls were measured`);
  return {
    socket: { p50: pct(socketLat, 0.5), p99: pct(socketLat, 0.99) },
    mqtt: { p50: pct(mqttLat, 0.5), p99: pct(mqttLat, 0.99) },
    rate,
    events,
  };
}

export async function run(): Promise<void> {
  const base = await baseline();
  const g = await guardian();
  const f = (x: number) => `${x.toFixed(1).padStart(6)} ms`;
  console.log(
    `${SAMPLES} falls, one at a time, under ${BACKGROUND_RATE} motion events/s of background QoS 1 load (${BACKGROUND_CLIENTS} clients)`,
  );
  console.log(
    `bare aedes publish→subscribe (baseline)    p50 ${f(base.p50)}   p99 ${f(base.p99)}   load ${base.rate.toFixed(0)}/s`,
  );
  console.log(
    `guardian fall → responder socket.io page    p50 ${f(g.socket.p50)}   p99 ${f(g.socket.p99)}   load ${g.rate.toFixed(0)}/s`,
  );
  console.log(`guardian fall → responder MQTT staff topic  p50 ${f(g.mqtt.p50)}   p99 ${f(g.mqtt.p99)}`);
  console.log(
    `background events durably logged during the run: ${g.events}; target p99 < 50 ms: ${Math.max(g.socket.p99, g.mqtt.p99) < 50 ? 'met' : 'NOT met'}`,
  );
}
