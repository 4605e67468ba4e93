/**
 * One instance per embedded data folder (the real entry file, as `npm start` runs it): a second process
 * on the same DATA_DIR refuses to start with a message naming the folder while the first runs, and the
 * lock goes with the first process however it ends (kill -9 included).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, tempDir } from '../helpers.ts';

const root = join(import.meta.dirname, '..', '..');
const procs: ChildProcess[] = [];
const dir = tempDir();
afterAll(() => {
  for (const p of procs) p.kill('SIGKILL');
  dir.remove();
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function start() {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'dispatcher', 'main.ts')], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      LOG_LEVEL: 'warn',
      DATA_DIR: dir.path,
      ADMIN_PASSWORD: 'admin-password-365',
      MQTT_HOST: '127.0.0.1',
      HTTP_HOST: '127.0.0.1',
      MQTT_PORT: String(await freePort()),
      HTTP_PORT: String(await freePort()),
    },
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

describe('one instance per data folder', () => {
  it('refuses a second service on the same DATA_DIR, naming it, and frees the folder when the first is killed', async () => {
    const first = await start();
    await eventually(() => first.out().includes('Guardian 365 is running'), 60_000, 'the first start');

    const second = await start();
    expect(await second.exited).toBe(2);
    expect(second.out()).toContain(
      `guardian365: cannot start: DATA_DIR=${dir.path}: another Guardian 365 process is using this data folder`,
    );
    expect(first.proc.exitCode).toBeNull();

    first.proc.kill('SIGKILL');
    await first.exited;
    const third = await start();
    await eventually(
      () => third.out().includes('Guardian 365 is running'),
      60_000,
      'the start after kill -9',
    );
    third.proc.kill('SIGINT');
    expect(await third.exited).toBe(0);
  }, 200_000);
});
