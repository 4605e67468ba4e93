/**
 * `npm start` with DATABASE_URL=postgres://… (the real entry file): the service migrates an empty database
 * at start, serves, says it is ready, prints where its data is without the password, and stops cleanly.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../dispatcher/store/postgres.ts';
import { eventually } from '../helpers.ts';
import { BACKENDS, createTestDatabase } from '../store-factory.ts';

const root = join(import.meta.dirname, '..', '..');
const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe.skipIf(pgBackend.skip)(`npm start on ${pgBackend.name}`, () => {
  it('migrates an empty database, is ready, prints the database without its password and stops cleanly', {
    timeout: 90_000,
  }, async () => {
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    // The test server trusts loopback connections: any password is accepted, and none may be printed.
    const url = new URL(db.url);
    url.password = 'not-to-be-printed-365';
    const http = await freePort();
    const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'dispatcher', 'main.ts')], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        LOG_LEVEL: 'info',
        DATABASE_URL: url.toString(),
        ADMIN_PASSWORD: 'admin-password-365',
        MQTT_HOST: '127.0.0.1',
        HTTP_HOST: '127.0.0.1',
        MQTT_PORT: String(await freePort()),
        HTTP_PORT: String(http),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
    });
    proc.stderr!.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    cleanups.push(async () => {
      proc.kill('SIGKILL');
    });
    await eventually(() => out.includes('Guardian 365 is running'), 60_000, 'the start');
    const ready = await fetch(`http://127.0.0.1:${http}/readyz`);
    expect(ready.status).toBe(200);
    expect(out).toContain(`postgres://postgres:***@${url.host}${url.pathname}`);
    expect(out).not.toContain('not-to-be-printed-365');
    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    // The schema is there, and the first start's admin account.
    const store = new PostgresStore({ url: db.url });
    cleanups.push(() => store.close());
    expect(await store.migrate()).toBe(0);
    expect((await store.getStaffByUsername('admin'))?.roles).toContain('admin');
  });
});
