/**
 * Fall-to-notification latency (SPEC §6, §7): from a fall radar's QoS 1 publish to the responder's
 * socket.io page and to their MQTT staff topic, through the whole service (gateway with durable log,
 * rules, alert commit, routing, step 0 of the ladder, notifier), while the gateway carries 2,000 events/s
 * of background load. Baseline in the same run: a bare aedes broker's publish→subscribe round trip under
 * the same background load. Target: p99 < 50 ms.
 *
 * The background load is the simulators' load generator (`simulators/load.ts`): every
 * motion sensor, door contact and help button of the seeded community on its own connection with its own
 * credentials, open-loop QoS 1 at the same rate and mix against both brokers. Its own summary (offered vs
 * acknowledged rate, PUBACK latency) is printed, so a run where the load fell behind is visible.
 */
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, ServerToClientEvents } from '../dispatcher/api/types.ts';
import { loadConfig } from '../dispatcher/config.ts';
import { seedCommunity } from '../dispatcher/seed.ts';
import { GuardianService } from '../dispatcher/service.ts';
import { SqliteStore } from '../dispatcher/store/sqlite.ts';
import { topics } from '../gateway/protocol.ts';
import { SystemClock } from '../kernel/clock.ts';
import { silentLogger } from '../kernel/log.ts';
import { type CommunityPlan, planCommunity } from '../simulators/community.ts';
import type { DeviceIdentity } from '../simulators/device.ts';
import { type LoadSummary, runLoad } from '../simulators/load.ts';
import { tempDir } from '../test/helpers.ts';

// BENCH_RATE=8000 npm run bench -- dispatch: the same under heavier background load.
const BACKGROUND_RATE = Number(process.env.BENCH_RATE ?? 2000);
const SAMPLES = 150;
const WARMUP = 10;
// 40 homes: ~220 background devices (each logs in with its own secret, checked as a salted HMAC), ~9
// messages/s each, well under the gateway's per-connection limit of 50/s.
const GRIDS = 5;
const HOMES_PER_GRID = 8;
const PASSWORD = 'bench-password-365';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * p))]!;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the load generator against a broker and resolves once it is sending; `stop()` ends the load and
 * returns its summary after the last acknowledgements. Fall radars are left out: the probes use them, and
 * a second session with a radar's client id would take the probe's connection over (MQTT 3.1.1 §3.1.4).
 */
async function background(
  port: number,
  devices: readonly DeviceIdentity[],
): Promise<{ stop: () => Promise<LoadSummary> }> {
  const abort = new AbortController();
  let sending!: () => void;
  const started = new Promise<void>((r) => {
    sending = r;
  });
  const done = runLoad({
    host: '127.0.0.1',
    port,
    devices: devices.filter((d) => d.kind !== 'fall'),
    rate: BACKGROUND_RATE,
    // Ended by `stop()` once the probes are done.
    durationS: 3600,
    signal: abort.signal,
    onSending: sending,
  });
  await Promise.race([
    started,
    done.then(() => {
      throw new Error('the background load ended before it started sending');
    }),
  ]);
  return {
    stop: async () => {
      abort.abort();
      const s = await done;
      if (s.connectFailed > 0) throw new Error(`${s.connectFailed} background devices could not connect`);
      return s;
    },
  };
}

async function baseline(plan: CommunityPlan): Promise<{ p50: number; p99: number; load: LoadSummary }> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer((s) => broker.handle(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const connect = (id: string) =>
    mqtt.connectAsync({ host: '127.0.0.1', port, clientId: id, reconnectPeriod: 0 });
  const pub = await connect('probe-pub');
  const sub = await connect('probe-sub');
  await sub.subscribeAsync('probe/#', { qos: 1 });
  let waiting: ((t: number) => void) | null = null;
  sub.on('message', () => waiting?.(performance.now()));
  // The same devices as the service's community; bare aedes authenticates nobody, so any secret works.
  const bg = await background(
    port,
    plan.devices.map((d) => ({ ...d, secret: 'bare-aedes-has-no-auth' })),
  );
  await sleep(1500);
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
  const load = await bg.stop();
  for (const c of [pub, sub]) await c.endAsync();
  await new Promise<void>((r) => server.close(() => r()));
  await new Promise<void>((r) => broker.close(() => r()));
  return { p50: pct(lat, 0.5), p99: pct(lat, 0.99), load };
}

async function guardian(plan: CommunityPlan): Promise<{
  socket: { p50: number; p99: number };
  mqtt: { p50: number; p99: number };
  load: LoadSummary;
  events: number;
}> {
  const dir = tempDir('g365-bench-');
  const store = new SqliteStore(join(dir.path, 'guardian365.sqlite'));
  await store.migrate();
  const clock = new SystemClock();
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
  const radars = [];
  for (const d of devices.filter((x) => x.kind === 'fall'))
    radars.push({ d, client: await connectDevice(d), seq: 0 });

  const bg = await background(service.mqttPort, devices);
  const before = await store.countEvents('accepted');
  const probesFrom = clock.now();
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
  const probesTo = clock.now();
  const load = await bg.stop();
  await sleep(500);
  const events = (await store.countEvents('accepted')) - before;
  // A probe is matched to its notification by household: any other alert raised meanwhile (the load's
  // door events, say) could be taken for one, so the run only counts if the falls were the only alerts.
  // (The load's devices going offline when it stops raise DEVICE_OFFLINE after this window, as they should.)
  const other = (await store.listAlertsRaisedBetween(probesFrom, probesTo)).filter((a) => a.rule !== 'FALL');
  for (const s of sockets) s.close();
  for (const c of [...apps, ...radars.map((r) => r.client)]) await c.endAsync();
  await service.stop();
  await store.close();
  dir.remove();
  if (socketLat.length < SAMPLES * 0.9)
    throw new Error(`only ${socketLat.length} of ${SAMPLES} falls were measured`);
  if (other.length > 0)
    throw new Error(
      `the background load raised ${other.length} alerts (${other.map((a) => a.rule).join(', ')})`,
    );
  return {
    socket: { p50: pct(socketLat, 0.5), p99: pct(socketLat, 0.99) },
    mqtt: { p50: pct(mqttLat, 0.5), p99: pct(mqttLat, 0.99) },
    load,
    events,
  };
}

/** One line of the load generator's own view of a run: what it offered, what came back, how fast. */
function loadLine(l: LoadSummary): string {
  const lat = l.latencyMs;
  return (
    `offered ${Math.round(l.offeredRate)}/s, acknowledged ${Math.round(l.ackedRate)}/s` +
    ` (${l.acked} of ${l.sent}, lost ${l.lost}, rejected ${l.rejected}), PUBACK p50 ${lat.p50.toFixed(1)} ms` +
    ` / p99 ${lat.p99.toFixed(1)} ms, ${l.connections} device connections`
  );
}

export async function run(): Promise<void> {
  const plan = planCommunity({ grids: GRIDS, householdsPerGrid: HOMES_PER_GRID, staffPassword: PASSWORD });
  const base = await baseline(plan);
  const g = await guardian(plan);
  const f = (x: number) => `${x.toFixed(1).padStart(6)} ms`;
  console.log(
    `${SAMPLES} falls, one at a time, under ${BACKGROUND_RATE} events/s of background QoS 1 load ` +
      `(simulators/load.ts: motion, heartbeat and door mix from every non-radar device)`,
  );
  console.log(`bare aedes publish→subscribe (baseline)    p50 ${f(base.p50)}   p99 ${f(base.p99)}`);
  console.log(`guardian fall → responder socket.io page    p50 ${f(g.socket.p50)}   p99 ${f(g.socket.p99)}`);
  console.log(`guardian fall → responder MQTT staff topic  p50 ${f(g.mqtt.p50)}   p99 ${f(g.mqtt.p99)}`);
  console.log(`background load, bare aedes: ${loadLine(base.load)}`);
  console.log(`background load, guardian:   ${loadLine(g.load)}`);
  console.log(
    `background events durably logged during the run: ${g.events}; target p99 < 50 ms: ${Math.max(g.socket.p99, g.mqtt.p99) < 50 ? 'met' : 'NOT met'}`,
  );
}
