/**
 * Test fixtures built from the real parts: a temporary SQLite file, the whole service on OS-chosen
 * loopback ports, a small seeded community, logins. Nothing of ours is mocked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { type Config, loadConfig } from '../dispatcher/config.ts';
import { type Household, householdInput } from '../dispatcher/registry.ts';
import { seedCommunity } from '../dispatcher/seed.ts';
import { GuardianService } from '../dispatcher/service.ts';
import type { Store } from '../dispatcher/store/store.ts';
import { type Clock, type ManualClock, ScaledClock } from '../kernel/clock.ts';
import { silentLogger } from '../kernel/log.ts';
import { instant } from '../kernel/time.ts';
import { type CommunityPlan, planCommunity } from '../simulators/community.ts';
import { type DeviceIdentity, SimDevice } from '../simulators/device.ts';
import { SimHome } from '../simulators/home.ts';
import { type Backend, storeAt, testDatabase } from './store-factory.ts';

export const TEST_PASSWORD = 'test-password-365';

/**
 * Fixed instants for tests that run the whole service with a browser: a Wednesday in the day shift and
 * the early hours of the next morning, still in that Wednesday's night shift (Asia/Shanghai, UTC+8 all
 * year). Tests never depend on the hour the suite happens to run at. In the future, so the browser keeps
 * the session cookie the service dates by its clock.
 */
export const AT = {
  /** Wednesday 14:00: the day shift, six hours from either edge. */
  day: '2031-03-12T14:00:00+08:00',
  /** Thursday 01:20: Wednesday's night shift, which began at 20:00 the evening before. */
  night: '2031-03-13T01:20:00+08:00',
} as const;

/** A clock that starts at a fixed instant and then runs at real speed (timers fire on their own). */
export function clockAt(iso: string): ScaledClock {
  return new ScaledClock(instant(Date.parse(iso)), 1);
}

/** A fresh folder under the system's temp folder, or under `parent` (a small filesystem of a test). */
export function tempDir(prefix = 'g365-', parent = tmpdir()): { path: string; remove: () => void } {
  const path = mkdtempSync(join(parent, prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

export function testConfig(dataDir: string, extra: Record<string, string> = {}): Config {
  return loadConfig({
    MQTT_PORT: '0',
    HTTP_PORT: '0',
    MQTT_HOST: '127.0.0.1',
    HTTP_HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    ADMIN_PASSWORD: 'admin-password-365',
    LOG_LEVEL: 'silent',
    ...extra,
  });
}

export interface Harness {
  service: GuardianService;
  store: Store;
  plan: CommunityPlan;
  devices: DeviceIdentity[];
  dir: string;
  baseUrl: string;
  /** Stops the service and starts a new one on the same database file and the same ports. */
  restart: (whileDown?: () => Promise<void>) => Promise<void>;
  close: () => Promise<void>;
}

/** A staff member's native app on the service's MQTT port: client id and user `staff:{id}`, a login token. */
export function staffApp(h: Harness, staffId: string, token: string): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync({
    host: '127.0.0.1',
    port: h.service.mqttPort,
    clientId: `staff:${staffId}`,
    username: `staff:${staffId}`,
    password: token,
    reconnectPeriod: 0,
  });
}

/**
 * The service with one household, `home-1-01` in Asia/Shanghai, and that household's simulated home
 * connected to it over MQTT with its own devices' credentials (started; the caller stops both).
 */
export async function harnessWithHome(clock: Clock, seed: number): Promise<{ h: Harness; home: SimHome }> {
  const h = await startHarness({ clock, grids: 1, perGrid: 1 });
  const home = new SimHome({
    homeId: 'home-1-01',
    devices: h.devices.filter((d) => d.homeId === 'home-1-01'),
    broker: { host: '127.0.0.1', port: h.service.mqttPort },
    clock,
    zone: 'Asia/Shanghai',
    seed,
  });
  await home.start();
  return { h, home };
}

/**
 * Starts the whole service on a fresh SQLite file with a small community (`grids` × `perGrid` homes).
 * `restart` stops it and starts a new service on the same file, as after a crash or an upgrade.
 */
export async function startHarness(o: {
  clock: Clock;
  grids?: number;
  perGrid?: number;
  consoleDir?: string;
  env?: Record<string, string>;
  /** The database (test/store-factory.ts): a SQLite file in the data folder by default. */
  backend?: Backend;
  /** Where the data folder is made (default: the system's temp folder). */
  dataParent?: string;
}): Promise<Harness> {
  const tmp = tempDir('g365-', o.dataParent);
  const db =
    o.backend === 'postgres'
      ? await testDatabase('postgres')
      : {
          open: () => storeAt({ backend: 'sqlite', where: join(tmp.path, 'guardian365.sqlite') }),
          remove: async () => {},
        };
  let store = db.open();
  await store.migrate();
  const plan = planCommunity({
    grids: o.grids ?? 2,
    householdsPerGrid: o.perGrid ?? 2,
    staffPassword: TEST_PASSWORD,
  });
  const devices = await seedCommunity(store, plan, o.clock.now());
  let config = testConfig(tmp.path, o.env);
  const make = () =>
    new GuardianService({ config, clock: o.clock, log: silentLogger(), store, consoleDir: o.consoleDir });
  const h: Harness = {
    service: make(),
    store,
    plan,
    devices,
    dir: tmp.path,
    baseUrl: '',
    restart: async (whileDown?: () => Promise<void>) => {
      // Same ports, as a restarted deployment: clients reconnect to where they were.
      config = testConfig(tmp.path, {
        ...o.env,
        HTTP_PORT: String(h.service.httpPort),
        MQTT_PORT: String(h.service.mqttPort),
      });
      await h.service.stop();
      await store.close();
      await whileDown?.();
      store = db.open();
      h.store = store;
      h.service = make();
      await h.service.start();
      h.baseUrl = `http://127.0.0.1:${h.service.httpPort}`;
    },
    close: async () => {
      await h.service.stop();
      await store.close();
      await db.remove();
      tmp.remove();
    },
  };
  await h.service.start();
  h.baseUrl = `http://127.0.0.1:${h.service.httpPort}`;
  return h;
}

export async function login(baseUrl: string, username: string, password = TEST_PASSWORD): Promise<string> {
  const res = await fetch(`${baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`login ${username}: HTTP ${res.status}`);
  return ((await res.json()) as { token: string }).token;
}

export async function apiCall<T = Record<string, unknown>>(
  baseUrl: string,
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as T };
}

/** Polls `check` until it returns a value (not undefined/false) or the time runs out. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A household with the registry's defaults (no residents, default routine), as the API would store it. */
export function bareHousehold(id: string, gridId: string, over: Record<string, unknown> = {}): Household {
  return householdInput.parse({ id, gridId, address: { building: '1', unit: '1', room: '101' }, ...over });
}

/** The rules have committed everything in the log and fired what their timers made due. */
export async function rulesCaughtUp(h: Harness): Promise<void> {
  const end = async () => {
    const events = await h.store.readEvents(0, 1_000_000);
    return events.length ? events[events.length - 1]!.seq : 0;
  };
  await eventually(
    async () => (await h.store.getCursor('rules')) >= (await end()),
    10_000,
    'the rules to reach the end of the log',
  );
  await h.service.pipeline.idle();
  await new Promise((r) => setImmediate(r));
  await h.service.pipeline.idle();
}

/** Every device of one home connected over MQTT with its own credentials (closed by `close`). */
export async function connectHome(
  h: Harness,
  clock: Clock,
  homeId: string,
  open: { close(): unknown }[],
): Promise<Map<string, SimDevice>> {
  const out = new Map<string, SimDevice>();
  for (const id of h.devices.filter((d) => d.homeId === homeId)) {
    const dev = new SimDevice(id, { host: '127.0.0.1', port: h.service.mqttPort }, clock);
    await dev.connect();
    open.push({ close: () => dev.disconnect() });
    out.set(id.id, dev);
  }
  return out;
}

/** The manual clock runs to `to`; every device given sends its heartbeat at each 5-min mark on the way. */
export async function liveTo(
  h: Harness,
  clock: ManualClock,
  devices: Iterable<SimDevice>,
  to: number,
): Promise<void> {
  const period = 5 * 60_000;
  const all = [...devices];
  while (clock.now() < to) {
    const mark = Math.floor(clock.now() / period) * period + period;
    clock.advanceTo(instant(Math.min(mark, to)));
    await rulesCaughtUp(h);
    if (clock.now() === mark) for (const d of all) await d.send({ type: 'heartbeat', battery: 90 });
  }
  await rulesCaughtUp(h);
}
