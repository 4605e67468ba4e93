/**
 * DATA-02: the rules process is killed (`kill -9`) in the middle of the log; after the
 * restart no alert is raised twice and none is lost, compared with a run that was never interrupted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import type { EventRecord } from '../../gateway/ports.ts';
import { routineDays } from '../../simulators/routine.ts';
import { tempDir } from '../helpers.ts';
import { DEVICES, household, local, MIN, seedHome, ZONE } from './rules-fixtures.ts';

const HOMES = 30;
const child = join(import.meta.dirname, 'rules-crash-child.ts');

function run(file: string, onLine: (line: string, proc: ChildProcess) => void): Promise<number | null> {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, file, String(local('2026-03-02 00:00'))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      onLine(buf.slice(0, i), proc);
      buf = buf.slice(i + 1);
    }
  });
  return new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
}

async function seed(file: string): Promise<number> {
  const store = new SqliteStore(file);
  await store.migrate();
  const records: EventRecord[] = [];
  const devices = DEVICES.map(([id, d]) => ({ id, ...d }));
  for (let h = 0; h < HOMES; h++) {
    const homeId = `h${h}`;
    await seedHome(store, household({ id: homeId }));
    const steps = routineDays({ homeId, devices, seed: h, zone: ZONE, from: '2026-03-02', days: 2 });
    // Trouble in every home: a fall (sent twice), and in every third home the door left open at night.
    const fallAt = local('2026-03-02 10:00') + h * 7 * MIN;
    steps.push({
      deviceId: 'fall',
      at: fallAt,
      event: { type: 'fall', state: 'detected', room: 'bathroom' },
    });
    steps.push({
      deviceId: 'fall',
      at: fallAt + 2000,
      event: { type: 'fall', state: 'detected', room: 'bathroom' },
    });
    if (h % 3 === 0)
      steps.push({
        deviceId: 'door',
        at: local('2026-03-03 22:30'),
        event: { type: 'door', state: 'open', door: 'front' },
      });
    steps.sort((a, b) => a.at - b.at);
    for (const s of steps) {
      const deviceId = `${homeId}-${s.deviceId}`;
      records.push({
        deviceId,
        homeId,
        receivedAt: s.at,
        topic: `g365/v1/homes/${homeId}/devices/${deviceId}/events`,
        status: 'accepted',
        ts: s.at,
        type: s.event.type,
        deviceSeq: null,
        body: JSON.stringify({ ...s.event, ts: s.at }),
        reason: null,
        flags: [],
      });
    }
  }
  // The log is in arrival order: interleave the homes by time.
  records.sort((a, b) => a.ts - b.ts);
  for (let i = 0; i < records.length; i += 5000) await store.appendEvents(records.slice(i, i + 5000));
  await store.close();
  return records.length;
}

async function summary(file: string) {
  const store = new SqliteStore(file);
  const alerts = await store.listAlerts({ limit: 100_000 });
  const cursor = await store.getCursor('rules');
  await store.close();
  return {
    cursor,
    alerts: alerts
      .map(
        (a) => `${a.householdId} ${a.rule} ${a.raisedAt} ${a.state} x${a.triggerCount} ${a.evidence.length}`,
      )
      .sort(),
  };
}

describe('rules after kill -9', () => {
  it('raises every alert exactly once when the process is killed mid-stream and restarted', {
    timeout: 240_000,
  }, async () => {
    const tmp = tempDir('g365-crash-');
    try {
      const crashed = join(tmp.path, 'crashed.sqlite');
      const reference = join(tmp.path, 'reference.sqlite');
      const total = await seed(crashed);
      copyFileSync(crashed, reference);

      // Uninterrupted run: what must come out.
      expect(await run(reference, () => {})).toBe(0);
      const want = await summary(reference);
      expect(want.alerts.filter((a) => a.includes(' FALL ')).length).toBe(HOMES);
      expect(want.alerts.filter((a) => a.includes(' DOOR_LEFT_OPEN ')).length).toBe(HOMES / 3);

      // Killed after its second commit, then restarted.
      let commits = 0;
      await run(crashed, (line, proc) => {
        if (line.startsWith('committed') && ++commits === 2) proc.kill('SIGKILL');
      });
      const atKill = await summary(crashed);
      expect(atKill.cursor).toBeGreaterThan(0);
      expect(atKill.cursor).toBeLessThan(total);
      expect(atKill.alerts.length).toBeLessThan(want.alerts.length);
      expect(await run(crashed, () => {})).toBe(0);
      const got = await summary(crashed);
      expect(got.cursor).toBe(want.cursor);
      expect(got.alerts).toEqual(want.alerts);
    } finally {
      tmp.remove();
    }
  });
});
