/**
 * The service's roles as real child processes (`tsx dispatcher/main.ts` with ROLE=…), as an operator runs
 * them: each reads its own environment and prints its ports in the start banner. `startCluster` puts a
 * test's whole deployment together (a seeded PostgreSQL database of its own, Redis, the gateways and
 * dispatchers) with what the tests do on it (logins, devices, staff apps) and one `stop()`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pg from 'pg';
import { seedCommunity } from '../../dispatcher/seed.ts';
import { PostgresStore } from '../../dispatcher/store/postgres.ts';
import type { DeliveryRecord, Store } from '../../dispatcher/store/store.ts';
import { topics } from '../../gateway/protocol.ts';
import { type CommunityPlan, planCommunity } from '../../simulators/community.ts';
import type { DeviceIdentity } from '../../simulators/device.ts';
import { eventually, login, TEST_PASSWORD } from '../helpers.ts';
import { createTestDatabase } from '../store-factory.ts';

const root = join(import.meta.dirname, '..', '..');

/** The `admin` password every role process starts with. */
export const ADMIN_PASSWORD = 'admin-password-365';

export interface RoleProcess {
  child: ChildProcess;
  role: string;
  /** The HTTP port: API and console (dispatcher, all) or /healthz, /readyz, /metrics (gateway). */
  http: number;
  /** The MQTT port (gateway, all); 0 for a dispatcher. */
  mqtt: number;
  /** Everything the process wrote so far. */
  output: () => string;
  /** `kill -9`, resolved when the process is gone. */
  kill: () => Promise<void>;
}

/** Starts one role and resolves once its banner says it is running. */
export function startRole(
  role: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<RoleProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'dispatcher/main.ts')], {
    cwd: root,
    env: {
      ...process.env,
      ROLE: role,
      MQTT_PORT: '0',
      HTTP_PORT: '0',
      MQTT_HOST: '127.0.0.1',
      HTTP_HOST: '127.0.0.1',
      ADMIN_PASSWORD,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (c) => {
    out += c;
  });
  child.stderr!.on('data', (c) => {
    out += c;
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const proc: RoleProcess = {
    child,
    role,
    http: 0,
    mqtt: 0,
    output: () => out,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${role} did not start: ${out}`)), timeoutMs);
    const onData = () => {
      if (!out.includes('Press Ctrl-C')) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      proc.http = Number(/(?:console|health) +http:\/\/localhost:(\d+)/.exec(out)?.[1] ?? 0);
      proc.mqtt = Number(/MQTT +mqtt:\/\/localhost:(\d+)/.exec(out)?.[1] ?? 0);
      resolve(proc);
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} exited ${code}: ${out}`));
    });
  });
}

/** A free TCP port on loopback (the OS chooses; closed again at once). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Debian's redis-server on a port of its own, without persistence; `stop` and `start` again on that port. */
export class RedisServer {
  private child: ChildProcess | null = null;
  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (c) => {
        out += c;
        if (out.includes('Ready to accept connections')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }
}

/** The staff-app (MQTT) deliveries of an alert to one person, once the holding gateway has confirmed them. */
export function appDeliveries(store: Store, alertId: string, staffId: string): Promise<DeliveryRecord[]> {
  return eventually(
    async () => {
      const ds = (await store.listDeliveries(alertId)).filter(
        (d) => d.channel === 'mqtt' && d.staffId === staffId,
      );
      return ds.length > 0 ? ds : undefined;
    },
    10_000,
    'the app delivery recorded',
  );
}

export interface ClusterOptions {
  /** The community seeded before any process starts (planCommunity; the staff log in with TEST_PASSWORD). */
  grids: number;
  householdsPerGrid: number;
  /** Changes the plan before it is seeded (which community each grid belongs to, say). */
  shape?: (plan: CommunityPlan) => void;
  /** The instant the seeded devices are dated (default: now on the wall clock). */
  seededAt?: number;
  /** More rows, written after the plan and before any process starts. */
  seed?: (store: PostgresStore, plan: CommunityPlan) => Promise<void>;
  /** Gateway processes: how many (no INSTANCE_ID), or their INSTANCE_IDs. Default 1. */
  gateways?: number | string[];
  /** Dispatcher processes: how many (no INSTANCE_ID), or their INSTANCE_IDs. Default 1. */
  dispatchers?: number | string[];
  /** A redis-server of its own on a free port, in every process's REDIS_URL. */
  redis?: boolean;
  /** More environment for every process (lease timings, a simulated clock). */
  env?: Record<string, string>;
}

/** A seeded PostgreSQL database of its own, Redis if asked, and the role processes on them. */
export interface Cluster {
  store: PostgresStore;
  /** A small pool of its own for the test's own queries (the lease tables). */
  db: pg.Pool;
  redis: RedisServer | null;
  plan: CommunityPlan;
  devices: DeviceIdentity[];
  /** What every process is started with: DATABASE_URL, REDIS_URL and the options' `env`. */
  env: Record<string, string>;
  /** The first gateway and the first dispatcher started. */
  gateway: RoleProcess;
  dispatcher: RoleProcess;
  /** Every gateway and dispatcher started, by INSTANCE_ID (`gateway-1`, `dispatcher-1`… without one). */
  gateways: Map<string, RoleProcess>;
  dispatchers: Map<string, RoleProcess>;
  /** Starts one more process of `role` with the cluster's environment (stopped with the cluster). */
  start(role: 'gateway' | 'dispatcher', instanceId?: string): Promise<RoleProcess>;
  /** The HTTP address of a process (default: the first dispatcher). */
  base(p?: RoleProcess): string;
  /** A session token from a dispatcher's login API (a staff member's password by default). */
  login(username: string, password?: string, via?: RoleProcess): Promise<string>;
  /** The `admin` session token. */
  admin(via?: RoleProcess): Promise<string>;
  /** A device connected to a gateway with its own credentials, staying connected until `stop`. */
  device(identity: DeviceIdentity, via?: RoleProcess): Promise<mqtt.MqttClient>;
  /**
   * A staff member's app on a gateway: logged in through a dispatcher, subscribed to their notices
   * (QoS 1), each handed to `onNotice` as it arrives; connected until `stop`.
   */
  staffApp(staffId: string, onNotice: (payload: string) => void, via?: RoleProcess): Promise<mqtt.MqttClient>;
  /** The app of every rostered responder, as `staffApp`. */
  rosterApps(
    onNotice: (staffId: string, payload: string) => void,
    via?: RoleProcess,
  ): Promise<mqtt.MqttClient[]>;
  /** Closes the clients, kills every process, stops Redis and drops the database. */
  stop(): Promise<void>;
}

const ids = (n: number | string[]): (string | undefined)[] =>
  typeof n === 'number' ? Array.from({ length: n }, () => undefined) : n;

const first = (of: Map<string, RoleProcess>, role: string): RoleProcess => {
  const p = of.values().next().value;
  if (!p) throw new Error(`no ${role} process in this cluster`);
  return p;
};

/**
 * Starts a cluster: a fresh database with the plan seeded, Redis if asked, then every gateway and
 * dispatcher at once, resolved when each has printed its start banner. On a failure whatever was started
 * is stopped again before the error is thrown.
 */
export async function startCluster(o: ClusterOptions): Promise<Cluster> {
  const database = await createTestDatabase();
  const store = new PostgresStore({ url: database.url });
  const db = new pg.Pool({ connectionString: database.url, max: 2 });
  // pool.end() resolves once it has asked its idle clients to end, not once they have: the database's drop
  // at stop (WITH FORCE) can still reach one and end it with 57P01. That is the teardown, not a failure;
  // a query's own error still fails its test.
  db.on('error', () => {});
  const processes: RoleProcess[] = [];
  const clients: mqtt.MqttClient[] = [];
  let redis: RedisServer | null = null;
  const stop = async () => {
    for (const c of clients.reverse()) c.end(true);
    for (const p of processes) await p.kill();
    await redis?.stop();
    await db.end();
    await store.close();
    await database.drop();
  };
  const gateways = new Map<string, RoleProcess>();
  const dispatchers = new Map<string, RoleProcess>();
  const env: Record<string, string> = { DATABASE_URL: database.url };
  const start = async (role: 'gateway' | 'dispatcher', instanceId?: string) => {
    const p = await startRole(role, instanceId ? { ...env, INSTANCE_ID: instanceId } : env);
    processes.push(p);
    const of = role === 'gateway' ? gateways : dispatchers;
    of.set(instanceId ?? `${role}-${of.size + 1}`, p);
    return p;
  };
  try {
    await store.migrate();
    const plan = planCommunity({
      grids: o.grids,
      householdsPerGrid: o.householdsPerGrid,
      staffPassword: TEST_PASSWORD,
    });
    o.shape?.(plan);
    const devices = await seedCommunity(store, plan, o.seededAt ?? Date.now());
    await o.seed?.(store, plan);
    if (o.redis) {
      redis = new RedisServer(await freePort());
      await redis.start();
      env.REDIS_URL = redis.url;
    }
    // CLU-12: a gateway yields the processor (nice 10) unless told otherwise. Beside other test files
    // running at once, that would measure them, not the service: the harness runs every role at the test
    // runner's own priority (roles.test.ts starts a gateway at its default).
    env.PROCESS_NICE = String(getPriority());
    Object.assign(env, o.env);
    // Started together, as an operator's deployment does; the map keeps the order of the options.
    const wanted = [
      ...ids(o.gateways ?? 1).map((id) => ['gateway', id] as const),
      ...ids(o.dispatchers ?? 1).map((id) => ['dispatcher', id] as const),
    ];
    const started = await Promise.allSettled(
      wanted.map(([role, id]) =>
        startRole(role, id ? { ...env, INSTANCE_ID: id } : env).then((p) => {
          processes.push(p);
          return p;
        }),
      ),
    );
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    wanted.forEach(([role, id], i) => {
      const of = role === 'gateway' ? gateways : dispatchers;
      of.set(id ?? `${role}-${of.size + 1}`, (started[i] as PromiseFulfilledResult<RoleProcess>).value);
    });
    const base = (p?: RoleProcess) => `http://127.0.0.1:${(p ?? cluster.dispatcher).http}`;
    const connect = async (opts: mqtt.IClientOptions, via?: RoleProcess) => {
      const c = await mqtt.connectAsync({
        host: '127.0.0.1',
        port: (via ?? cluster.gateway).mqtt,
        reconnectPeriod: 0,
        ...opts,
      });
      clients.push(c);
      return c;
    };
    const cluster: Cluster = {
      store,
      db,
      redis,
      plan,
      devices,
      env,
      get gateway() {
        return first(gateways, 'gateway');
      },
      get dispatcher() {
        return first(dispatchers, 'dispatcher');
      },
      gateways,
      dispatchers,
      start,
      base,
      login: (username, password = TEST_PASSWORD, via) => login(base(via), username, password),
      admin: (via) => login(base(via), 'admin', ADMIN_PASSWORD),
      device: (d, via) =>
        connect({ clientId: d.id, username: d.id, password: d.secret, protocolVersion: 4 }, via),
      staffApp: async (staffId, onNotice, via) => {
        const username = plan.staff.find((s) => s.id === staffId)!.username;
        const token = await cluster.login(username);
        const app = await connect(
          { clientId: `staff:${staffId}`, username: `staff:${staffId}`, password: token },
          via,
        );
        await app.subscribeAsync(topics.staffAlerts(staffId), { qos: 1 });
        app.on('message', (_t, p) => onNotice(p.toString()));
        return app;
      },
      rosterApps: async (onNotice, via) => {
        const apps: mqtt.MqttClient[] = [];
        for (const staffId of new Set(plan.roster.flatMap((r) => r.staffIds)))
          apps.push(await cluster.staffApp(staffId, (p) => onNotice(staffId, p), via));
        return apps;
      },
      stop,
    };
    return cluster;
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}
