/**
 * The load generator against the whole real service: its summary must agree with what the service
 * recorded (acknowledged = durably logged, rejected = recorded as rejected, bad logins refused).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SystemClock } from '../../kernel/clock.ts';
import { formatSummary, type LoadProgress, pickConnections, runLoad } from '../../simulators/load.ts';
import { type Harness, startHarness } from '../helpers.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('load generator', () => {
  it('sends a QoS 1 mix whose acknowledgements and rejections match the event log, and reports progress', async () => {
    h = await startHarness({ clock: new SystemClock(), grids: 1, perGrid: 3 });
    const store = h.store;
    const before = {
      accepted: await store.countEvents('accepted'),
      rejected: await store.countEvents('rejected'),
    };
    const impostor = { ...h.devices[0]!, secret: 'not-the-secret' };
    const progress: LoadProgress[] = [];
    const s = await runLoad({
      host: '127.0.0.1',
      port: h.service.mqttPort,
      devices: [...h.devices, { ...impostor, id: `${impostor.homeId}-ghost` }],
      rate: 300,
      durationS: 1.5,
      mix: { motion: 0.5, heartbeat: 0.3, door: 0.1, invalid: 0.1 },
      progressEveryMs: 200,
      onProgress: (p) => progress.push(p),
    });
    expect(s.connections).toBe(h.devices.length);
    expect(s.refused).toEqual({ '4': 1 });
    expect(s.sent).toBeGreaterThan(200);
    expect(s.acked).toBe(s.sent);
    expect(s.lost).toBe(0);
    expect(s.byKind.invalid).toBeGreaterThan(0);
    expect(s.byKind.motion + s.byKind.heartbeat + s.byKind.door + s.byKind.invalid).toBe(s.sent);
    expect(s.latencyMs.count).toBe(s.acked);
    expect(s.latencyMs.p50).toBeGreaterThan(0);
    expect(s.latencyMs.p99).toBeGreaterThanOrEqual(s.latencyMs.p50);
    // Every rejection is reported back on the device's errors topic and recorded in the log.
    expect(s.rejected).toBe(s.byKind.invalid);
    expect((await store.countEvents('rejected')) - before.rejected).toBe(s.byKind.invalid);
    // Accepted: every valid event, plus the gateway's own presence records (connect, disconnect).
    expect((await store.countEvents('accepted')) - before.accepted).toBeGreaterThanOrEqual(
      s.sent - s.byKind.invalid,
    );
    expect(progress.some((p) => p.phase === 'sending' && p.acked > 0)).toBe(true);
    expect(formatSummary(s)).toMatch(/acknowledged \d+ .* lost 0 {3}rejected \d+/);
  });

  it('spreads a capped number of connections over every home before a second device per home', () => {
    const devices = ['a', 'b', 'c'].flatMap((home) =>
      (['fall', 'door', 'motion', 'motion'] as const).map((kind, i) => ({
        id: `${home}-${i}`,
        homeId: home,
        kind,
        room: 'living',
        secret: 's',
      })),
    );
    const picked = pickConnections(devices, 5);
    expect(picked.map((d) => d.homeId)).toEqual(['a', 'b', 'c', 'a', 'b']);
    expect(picked.slice(0, 3).every((d) => d.kind === 'motion')).toBe(true);
  });
});
