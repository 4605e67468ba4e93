/**
 * Starting the real entry file (`npm start`'s command) the way a newcomer does: bad configuration, a port
 * in use and an unwritable data directory each stop the start with one line that says what to change;
 * a good start serves the API and the console and stops cleanly on SIGINT.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../dispatcher/config.ts';
import { eventually, tempDir } from '../helpers.ts';

const root = join(import.meta.dirname, '..', '..');
const procs: ChildProcess[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) p.kill('SIGKILL');
});

function start(env: Record<string, string>): {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
} {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'dispatcher', 'main.ts')], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  procs.push(proc);
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, out: () => out, exited };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('configuration', () => {
  it('reports every bad variable at once, naming it and what is expected', () => {
    try {
      loadConfig({ MQTT_PORT: 'abc', TZ_COMMUNITY: 'Mars/Olympus', DAY_SHIFT_START: '8am' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const text = (e as ConfigError).problems.join('\n');
      expect(text).toMatch(/MQTT_PORT="abc"/);
      expect(text).toMatch(/TZ_COMMUNITY="Mars\/Olympus": expected an IANA time zone/);
      expect(text).toMatch(/DAY_SHIFT_START="8am": expected a time of day HH:MM/);
    }
  });

  it('uses the SPEC defaults', () => {
    expect(loadConfig({})).toMatchObject({
      MQTT_PORT: 1883,
      HTTP_PORT: 8080,
      DATA_DIR: './data',
      TZ_COMMUNITY: 'Asia/Shanghai',
    });
  });
});

describe('npm start', () => {
  it('stops with one line naming the variable when a value is wrong', async () => {
    const s = start({ HTTP_PORT: '99999' });
    expect(await s.exited).toBe(2);
    expect(
      s
        .out()
        .trim()
        .split('\n')
        .filter((l) => l.includes('cannot start')),
    ).toEqual([expect.stringMatching(/^guardian365: cannot start: HTTP_PORT="99999": /)]);
  });

  it('stops with a message when the MQTT port is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '0.0.0.0', r));
    const port = (blocker.address() as { port: number }).port;
    const dir = tempDir();
    try {
      const s = start({ MQTT_PORT: String(port), HTTP_PORT: String(await freePort()), DATA_DIR: dir.path });
      expect(await s.exited).toBe(2);
      expect(s.out()).toContain(
        `guardian365: cannot start: port ${port} is already in use; set MQTT_PORT to a free port`,
      );
    } finally {
      blocker.close();
      dir.remove();
    }
  });

  it('stops with a message when the data directory cannot be written', async () => {
    const dir = tempDir();
    const file = join(dir.path, 'not-a-dir');
    mkdirSync(dir.path, { recursive: true });
    await import('node:fs').then((fs) => fs.writeFileSync(file, 'x'));
    const s = start({
      DATA_DIR: join(file, 'data'),
      MQTT_PORT: String(await freePort()),
      HTTP_PORT: String(await freePort()),
    });
    expect(await s.exited).toBe(2);
    expect(s.out()).toMatch(
      /cannot start: DATA_DIR=.*not-a-dir\/data: the data directory cannot be created or written/,
    );
    dir.remove();
  });

  it('starts on embedded defaults, creates the database and the admin, and shuts down cleanly on Ctrl-C', async () => {
    const tmp = tempDir();
    // A data folder the service creates itself.
    const dir = { path: join(tmp.path, 'data'), remove: tmp.remove };
    const http = await freePort();
    const s = start({ DATA_DIR: dir.path, MQTT_PORT: String(await freePort()), HTTP_PORT: String(http) });
    await eventually(() => s.out().includes('Press Ctrl-C to stop.'), 60_000, 'start banner');
    expect(s.out()).toMatch(/admin login: admin \/ \S{16}/);
    const ready = await fetch(`http://127.0.0.1:${http}/readyz`);
    expect(ready.status).toBe(200);
    const page = await fetch(`http://127.0.0.1:${http}/`);
    expect(await page.text()).toContain('<div id="app">');
    s.proc.kill('SIGINT');
    expect(await s.exited).toBe(0);
    const { existsSync, statSync } = await import('node:fs');
    expect(existsSync(join(dir.path, 'guardian365.sqlite'))).toBe(true);
    // Personal data and password hashes: the folder for its owner only, every store file 0600.
    const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);
    expect(mode(dir.path)).toBe('700');
    const files = ['guardian365.sqlite', 'guardian365.sqlite-home-index']
      .flatMap((f) => [f, `${f}-wal`, `${f}-shm`])
      .map((f) => join(dir.path, f))
      .filter((f) => existsSync(f));
    expect(files.length).toBeGreaterThanOrEqual(2);
    expect(Object.fromEntries(files.map((f) => [f, mode(f)]))).toEqual(
      Object.fromEntries(files.map((f) => [f, '600'])),
    );
    dir.remove();
  }, 90_000);
});

describe('configuration safety', () => {
  it('refuses shift boundaries where the day would not start before the night', () => {
    expect(() => loadConfig({ DAY_SHIFT_START: '20:00', NIGHT_SHIFT_START: '08:00' })).toThrow(
      /DAY_SHIFT_START=20:00, NIGHT_SHIFT_START=08:00: the day shift must start before the night shift/,
    );
    expect(() => loadConfig({ DAY_SHIFT_START: '08:00', NIGHT_SHIFT_START: '08:00' })).toThrow(ConfigError);
  });

  it('never echoes a password or secret in a configuration error', () => {
    try {
      loadConfig({
        ADMIN_PASSWORD: 'short7!',
        WEBHOOK_URL: 'http://127.0.0.1:9/x',
        WEBHOOK_SECRET: 'tooShortSecret',
      });
      expect.unreachable();
    } catch (e) {
      const text = (e as ConfigError).problems.join('\n');
      expect(text).toMatch(/ADMIN_PASSWORD="\(hidden\)": must be at least 12 characters for an admin/);
      expect(text).not.toContain('short7!');
      expect(text).not.toContain('tooShortSecret');
    }
  });

  it('serves a demo-seeded folder on this machine only, with a warning, and refuses a network address for it', {
    timeout: 120_000,
  }, async () => {
    const dir = tempDir();
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir.path, 'demo-devices.json'), '[]');
    const refused = start({
      DATA_DIR: dir.path,
      HTTP_HOST: '0.0.0.0',
      MQTT_PORT: String(await freePort()),
      HTTP_PORT: String(await freePort()),
    });
    expect(await refused.exited).toBe(2);
    expect(refused.out()).toMatch(/cannot start: HTTP_HOST: DATA_DIR was seeded by the demo/);

    const http = await freePort();
    const s = start({ DATA_DIR: dir.path, MQTT_PORT: String(await freePort()), HTTP_PORT: String(http) });
    await eventually(() => s.out().includes('Press Ctrl-C to stop.'), 60_000, 'start banner');
    expect(s.out()).toMatch(/WARNING: .* seeded by the demo .* served on 127\.0\.0\.1 only/);
    expect((await fetch(`http://127.0.0.1:${http}/readyz`)).status).toBe(200);
    // Not on any other address of this machine.
    const { networkInterfaces } = await import('node:os');
    const other = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal);
    const reached = other
      ? await fetch(`http://${other.address}:${http}/readyz`).then(
          () => true,
          () => false,
        )
      : false;
    expect(reached).toBe(false);
    s.proc.kill('SIGINT');
    expect(await s.exited).toBe(0);
    dir.remove();
  });

  it('refuses a webhook that is not http(s)', () => {
    expect(() =>
      loadConfig({ WEBHOOK_URL: 'file:///etc/passwd', WEBHOOK_SECRET: 'a-secret-of-16-chars' }),
    ).toThrow(/WEBHOOK_URL="file:\/\/\/etc\/passwd": expected an http\(s\) URL/);
    expect(
      loadConfig({ WEBHOOK_URL: 'https://sms.example.org/hook', WEBHOOK_SECRET: 'a-secret-of-16-chars' })
        .WEBHOOK_URL,
    ).toBe('https://sms.example.org/hook');
  });
});
