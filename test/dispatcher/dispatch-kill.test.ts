/**
 * SPEC §6, §9: every deadline is stored with the alert, so after `kill -9` in the middle of an escalation
 * a restarted service resumes every clock where it stood and no step fires twice. The service runs in a
 * real child process on a real SQLite file; both processes share one anchored clock running 40× fast.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { seedCommunity } from '../../dispatcher/seed.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { minutes } from '../../kernel/time.ts';
import { planCommunity } from '../../simulators/community.ts';
import { SimDevice } from '../../simulators/device.ts';
import { eventually, TEST_PASSWORD, tempDir } from '../helpers.ts';
import { AnchoredClock } from './dispatch-helpers.ts';

const root = join(import.meta.dirname, '..', '..');
const SIM_START = Date.parse('2026-03-10T10:00:00+08:00');
const SPEED = 40; // one real second is 40 s of service time

const children: ChildProcess[] = [];
const closers: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const c of closers.splice(0).reverse()) await c();
});

function startChild(env: Record<string, string>): Promise<{ child: ChildProcess; mqtt: number }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'test/dispatcher/dispatch-child.ts')],
    {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let err = '';
  child.stderr!.on('data', (c) => {
    err += c;
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve({ child, mqtt: JSON.parse(line!).mqtt });
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code}: ${err}`)));
  });
}

describe('restart after kill -9 in the middle of an escalation', () => {
  it('resumes the ladder from the stored deadlines: every step once, at its own minute', async () => {
    const dir = tempDir();
    closers.push(() => dir.remove());
    const file = join(dir.path, 'guardian365.sqlite');
    const seedStore = new SqliteStore(file);
    await seedStore.migrate();
    const plan = planCommunity({ grids: 1, householdsPerGrid: 1, staffPassword: TEST_PASSWORD });
    const clock = new AnchoredClock(SIM_START, Date.now(), SPEED);
    const devices = await seedCommunity(seedStore, plan, clock.now());
    await seedStore.close();
    const env = {
      DB_FILE: file,
      DATA_DIR: dir.path,
      SIM_START: String(SIM_START),
      REAL_START: String(Date.now() - (clock.now() - SIM_START) / SPEED),
      SPEED: String(SPEED),
    };

    const first = await startChild(env);
    const reader = new SqliteStore(file);
    closers.push(() => reader.close());
    const radar = new SimDevice(
      devices.find((d) => d.kind === 'fall')!,
      { host: '127.0.0.1', port: first.mqtt },
      clock,
    );
    await radar.connect();
    await radar.send({ type: 'fall', state: 'detected' });
    await radar.disconnect();
    // The FALL, not the radar's DEVICE_OFFLINE after its disconnect (raised later, so listed first).
    const alert = await eventually(
      async () => (await reader.listAlerts({ state: 'open' })).find((a) => a.rule === 'FALL'),
      20_000,
      'alert',
    );
    const history = () => reader.alertHistory(alert.id);
    const stepsOf = async () =>
      (await history()).filter((e) => e.actor === 'escalation').map((e) => String(e.data.step ?? e.action));

    // Kill -9 right after the 3-minute step, with the 6-minute step pending.
    await eventually(async () => (await stepsOf()).includes('notify_next'), 30_000, '3-minute step');
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    // Killed mid-escalation: some steps taken, the next one pending in the database (normally the
    // 6-minute step; on a stalled machine perhaps a later one — the assertions below hold either way).
    const stepsAtKill = await stepsOf();
    const pending = (await reader.getAlert(alert.id))!.nextStepAt;
    expect(stepsAtKill.slice(0, 2)).toEqual(['notify_primary', 'notify_next']);
    expect(stepsAtKill.length).toBeLessThan(5);
    expect(pending).not.toBeNull();

    // Stay down past the pending deadline, then restart on the same file.
    await eventually(() => clock.now() > pending! + minutes(1), 30_000, 'downtime past the pending step');
    await startChild({ ...env, MQTT_PORT: String(first.mqtt) });
    await eventually(
      async () => (await reader.getAlert(alert.id))?.slaBreached,
      60_000,
      'breach at 15 minutes',
    );
    await new Promise((r) => setTimeout(r, 1500)); // one more service minute: nothing may repeat

    expect(await stepsOf()).toEqual([
      'notify_primary',
      'notify_next',
      'notify_all',
      'sla_at_risk',
      'sla_breach',
    ]);
    const h = await history();
    const at = (step: string) => h.find((e) => (e.data.step ?? e.action) === step)!.at - alert.raisedAt;
    // Each step is stamped with its own deadline, including the one that came due while the service was down.
    expect([at('notify_next'), at('notify_all'), at('sla_at_risk'), at('sla_breach')]).toEqual([
      minutes(3),
      minutes(6),
      minutes(12),
      minutes(15),
    ]);
    const a = (await reader.getAlert(alert.id))!;
    expect(a).toMatchObject({ flagged: true, slaAtRisk: true, slaBreached: true, nextStepAt: null });
  }, 120_000);
});
