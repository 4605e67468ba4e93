/**
 * The simulators' command line against the whole real service: provisioning through the admin API, homes
 * running with their own credentials, clear help and clear usage errors.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../kernel/clock.ts';
import type { DeviceIdentity } from '../../simulators/device.ts';
import { readIdentities } from '../../simulators/provision.ts';
import { apiCall, type Harness, login, startHarness } from '../helpers.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const cli = (args: string[]) =>
  run(tsx, ['simulators/cli.ts', ...args], { cwd: root, timeout: 90_000 }).then(
    (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, out: e.stdout, err: e.stderr }),
  );

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('npm run sim', () => {
  it('prints its help, and names the bad option when called wrongly', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('usage: npm run sim -- [command] [options]');
    expect(help.out).toContain('--scenario');
    const bad = await cli(['load', '--rate', 'fast', '--admin-password', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--rate: expected a number');
    const unknown = await cli(['--homse', '3']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("'--homse'");
  });

  it('provisions homes through the admin API, keeps their secrets, and runs them with their own credentials', {
    timeout: 120_000,
  }, async () => {
    h = await startHarness({ clock: new SystemClock(), grids: 1, perGrid: 1 });
    const mqtt = `mqtt://127.0.0.1:${h.service.mqttPort}`;
    const identities = join(h.dir, 'sim', 'ids.json');
    const common = ['--url', h.baseUrl, '--mqtt', mqtt, '--admin-password', 'admin-password-365'];
    const common2 = [...common, '--homes', '3', '--per-grid', '2', '--identities', identities];

    const p = await cli(['provision', ...common2]);
    expect(p.err).toBe('');
    expect(p.out).toMatch(/provisioned 2 grids, 3 households, \d+ staff, 20 devices/);
    const ids: DeviceIdentity[] = readIdentities(identities);
    expect(ids.map((d) => d.homeId).sort()).toContain('home-2-01');
    expect(statSync(identities).mode & 0o777).toBe(0o600);
    const admin = await login(h.baseUrl, 'admin', 'admin-password-365');
    const dev = await apiCall(h.baseUrl, admin, 'GET', '/api/devices/home-2-01-fall');
    expect(dev.status).toBe(200);

    const r = await cli(['run', ...common2, '--no-provision', '--for', '4s', '--progress-every', '1']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('connecting 20 devices of 3 homes');
    const acked = Number(/stopped: (\d+) events acknowledged, 0 not sent/.exec(r.out)?.[1] ?? -1);
    // Every device announced itself and sent its first heartbeat within seconds of starting.
    const state = await apiCall<{ device: { lastSeenAt: number | null; online: boolean } }>(
      h.baseUrl,
      admin,
      'GET',
      '/api/devices/home-2-01-door',
    );
    expect(state.body.device.lastSeenAt).not.toBeNull();
    expect(acked).toBeGreaterThanOrEqual(0);
  });
});
