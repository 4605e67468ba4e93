/**
 * Nobody is locked out of their own service (SPEC §2): the real entry file (`npm start`, `npm run demo`)
 * and the real reset command (`npm run staff:reset-password`) as separate processes on one real SQLite
 * data folder. A start that fails creates no admin; the next start prints the password; ADMIN_PASSWORD
 * for an existing admin is named as ignored with the reset command; the reset command works while the
 * service runs, ends the person's sessions and is audited; the demo prints a working admin login on every
 * start.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { io } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { apiCall, eventually, login, tempDir } from '../helpers.ts';

const root = join(import.meta.dirname, '..', '..');
const procs: ChildProcess[] = [];
const dirs: { remove: () => void }[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) p.kill('SIGKILL');
  for (const d of dirs.splice(0)) d.remove();
});

interface Run {
  proc: ChildProcess;
  out: () => string;
  stdout: () => string;
  exited: Promise<number | null>;
}

function run(file: string, args: string[], env: Record<string, string>, stdin?: string): Run {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, file), ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'warn', ...env },
    stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  procs.push(proc);
  if (stdin !== undefined) proc.stdin!.end(stdin);
  let out = '';
  let stdout = '';
  proc.stdout!.on('data', (d) => {
    out += d;
    stdout += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, out: () => out, stdout: () => stdout, exited };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function dataDir(): string {
  const d = tempDir();
  dirs.push(d);
  return d.path;
}

async function started(
  env: Record<string, string>,
  demo = false,
): Promise<Run & { base: string; mqttPort: number }> {
  const http = await freePort();
  const mqttPort = await freePort();
  const s = run('dispatcher/main.ts', demo ? ['--demo'] : [], {
    MQTT_PORT: String(mqttPort),
    HTTP_PORT: String(http),
    ...env,
  });
  await eventually(
    () => s.out().includes('Press Ctrl-C to stop.') || s.proc.exitCode !== null,
    60_000,
    'banner',
  );
  expect(s.out()).toContain('Press Ctrl-C to stop.');
  return { ...s, base: `http://127.0.0.1:${http}`, mqttPort };
}

async function stopped(s: Run): Promise<void> {
  s.proc.kill('SIGINT');
  const code = await s.exited;
  expect(code, `${s.out()}\nsignal: ${s.proc.signalCode}`).toBe(0);
}

const adminLine = (out: string) => out.split('\n').find((l) => l.includes('admin login')) ?? '';
const printedPassword = (out: string) => /admin login: admin \/ (\S{16}) /.exec(out)?.[1];

async function staffInStore(dir: string, username: string) {
  const store = new SqliteStore(join(dir, 'guardian365.sqlite'));
  try {
    await store.migrate();
    return await store.getStaffByUsername(username);
  } finally {
    await store.close();
  }
}

const reset = (dir: string, args: string[], stdin?: string) =>
  run('dispatcher/staff-cli.ts', args, { DATA_DIR: dir }, stdin);

describe('the admin account', () => {
  it('is not created by a start that fails on a port in use; the next start creates it and prints its password', async () => {
    const dir = dataDir();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '0.0.0.0', r));
    const busy = (blocker.address() as { port: number }).port;
    try {
      const failed = run('dispatcher/main.ts', [], {
        DATA_DIR: dir,
        MQTT_PORT: String(await freePort()),
        HTTP_PORT: String(busy),
      });
      expect(await failed.exited).toBe(2);
      expect(failed.out()).toContain(`port ${busy} is already in use; set HTTP_PORT to a free port`);
      expect(failed.out()).not.toContain('admin login');
    } finally {
      blocker.close();
    }
    expect(await staffInStore(dir, 'admin')).toBeNull();

    const s = await started({ DATA_DIR: dir });
    const password = printedPassword(s.out());
    expect(password, s.out()).toBeDefined();
    await login(s.base, 'admin', password!);
    await stopped(s);

    // Later starts say where the password is and how to reset it, never nothing.
    const again = await started({ DATA_DIR: dir });
    expect(adminLine(again.out())).toContain('npm run staff:reset-password -- admin');
    expect(again.out()).not.toContain(password!);
    await stopped(again);
  }, 120_000);

  it('says that ADMIN_PASSWORD is ignored once the account exists, and how to reset it', async () => {
    const dir = dataDir();
    const first = await started({ DATA_DIR: dir, ADMIN_PASSWORD: 'first-password-365' });
    await stopped(first);
    const s = await started({ DATA_DIR: dir, ADMIN_PASSWORD: 'second-password-365' });
    expect(adminLine(s.out())).toMatch(
      /ADMIN_PASSWORD is ignored: the admin account exists; to reset it: npm run staff:reset-password -- admin/,
    );
    expect(s.out()).not.toContain('second-password-365');
    await login(s.base, 'admin', 'first-password-365');
    expect(
      (
        await fetch(`${s.base}/api/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'admin', password: 'second-password-365' }),
        })
      ).status,
    ).toBe(401);
    await stopped(s);
  }, 120_000);
});

describe('npm run staff:reset-password', () => {
  it('resets a password while the service runs: printed once, old sessions end, audited', async () => {
    const dir = dataDir();
    const s = await started({ DATA_DIR: dir, ADMIN_PASSWORD: 'forgotten-password-365' });
    const oldToken = await login(s.base, 'admin', 'forgotten-password-365');
    expect((await apiCall(s.base, oldToken, 'GET', '/api/me')).status).toBe(200);
    // A console page open on the old session, live.
    const page = io(s.base, { auth: { token: oldToken }, transports: ['websocket'], reconnection: false });
    await new Promise<void>((resolve, reject) => {
      page.once('connect', () => resolve());
      page.once('connect_error', reject);
    });
    const ended = new Promise<string>((r) => page.once('disconnect', (reason) => r(reason)));
    // And a staff app on MQTT, logged in with the same session's token.
    const app = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: s.mqttPort,
      clientId: 'staff:admin',
      username: 'staff:admin',
      password: oldToken,
      reconnectPeriod: 0,
    });
    const appClosed = new Promise<void>((r) => app.once('close', () => r()));

    const r = reset(dir, ['admin']);
    expect(await r.exited).toBe(0);
    const password = r.stdout().trim();
    expect(password).toMatch(/^\S{16}$/);
    expect(r.out()).toContain('password of admin reset');
    expect(r.out()).toContain('1 session(s) ended');

    // The running service sees it at once: the old session is refused, the new password works.
    expect((await apiCall(s.base, oldToken, 'GET', '/api/me')).status).toBe(401);
    await expect(login(s.base, 'admin', 'forgotten-password-365')).rejects.toThrow(/401/);
    const token = await login(s.base, 'admin', password);
    // The live page and the app of the old session end too (the service checks sessions every 10 s).
    expect(await ended).toBe('io server disconnect');
    page.close();
    await appClosed;
    expect(app.connected).toBe(false);
    await app.endAsync(true);
    const audit = await apiCall<{ entries: { actor: string; action: string; target: string }[] }>(
      s.base,
      token,
      'GET',
      '/api/audit?action=staff.password_reset',
    );
    expect(audit.body.entries).toContainEqual(
      expect.objectContaining({ actor: 'cli', action: 'staff.password_reset', target: 'admin' }),
    );
    await stopped(s);
  }, 120_000);

  it('takes the password from standard input, and refuses a short one or an unknown person, changing nothing', async () => {
    const dir = dataDir();
    const s = await started({ DATA_DIR: dir, ADMIN_PASSWORD: 'admin-password-365' });
    await stopped(s);

    const short = reset(dir, ['admin', '--password-stdin'], 'short\n');
    expect(await short.exited).toBe(1);
    expect(short.out()).toContain('nothing changed: the password must have at least 8 characters');
    const ghost = reset(dir, ['nobody-here']);
    expect(await ghost.exited).toBe(1);
    expect(ghost.out()).toContain('nothing changed: no staff member with username "nobody-here"');
    const usage = reset(dir, []);
    expect(await usage.exited).toBe(2);
    expect(usage.out()).toContain('usage: npm run staff:reset-password -- <username>');

    const chosen = reset(dir, ['admin', '--password-stdin'], 'chosen-password-365\n');
    expect(await chosen.exited).toBe(0);
    // A chosen password is not echoed.
    expect(chosen.stdout()).toBe('');
    const again = await started({ DATA_DIR: dir });
    await login(again.base, 'admin', 'chosen-password-365');
    await expect(login(again.base, 'admin', 'admin-password-365')).rejects.toThrow(/401/);
    await stopped(again);
  }, 120_000);
});

describe('npm run demo', () => {
  it('prints a working admin login on every start, the second as well as the first', async () => {
    const dir = dataDir();
    for (const start of ['first', 'second']) {
      const s = await started({ DATA_DIR: dir }, true);
      const line = s
        .out()
        .split('\n')
        .find((l) => /^\s+admin\s+admin\s/.test(l));
      expect(line, `${start} start:\n${s.out()}`).toBeDefined();
      const password = line!.trim().split(/\s+/)[2]!;
      await login(s.base, 'admin', password);
      // Killed, not stopped: a clean stop of 195 simulated devices is not what this test is about.
      s.proc.kill('SIGKILL');
      await s.exited;
    }
  }, 180_000);
});
