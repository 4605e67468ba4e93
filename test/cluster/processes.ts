/**
 * The service's roles as real child processes (`tsx dispatcher/main.ts` with ROLE=…), as an operator runs
 * them: each reads its own environment and prints its ports in the start banner.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { DeliveryRecord, Store } from '../../dispatcher/store/store.ts';
import { eventually } from '../helpers.ts';

const root = join(import.meta.dirname, '..', '..');

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
      ADMIN_PASSWORD: 'admin-password-365',
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
