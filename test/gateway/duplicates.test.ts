/**
 * SPEC §3 duplicates: the rule (gateway/duplicates.ts) on its own, then through a real gateway and SQLite
 * file with real MQTT clients: epoch-millisecond seqs each sent twice are recorded once, and a device
 * whose counter starts again after a power cycle (a new session) has its new events recorded.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admitSeq, type DeviceSeqs, emptySeqState, RecentSeqs } from '../../gateway/duplicates.ts';
import type { Gateway } from '../../gateway/gateway.ts';
import { topics } from '../../gateway/protocol.ts';
import { BACKENDS } from '../store-factory.ts';
import { connectDevice, type GatewayWorld, gatewayWorld, SECRET } from './fixtures.ts';

const S = Date.UTC(2026, 2, 10, 2, 0);
const device = (): DeviceSeqs => ({ state: emptySeqState(), recent: new RecentSeqs(1024) });

describe('the duplicate rule (SPEC §3)', () => {
  it('refuses a repeated epoch-millisecond seq however far below the highest it is', () => {
    const d = device();
    const take = (seq: number, session: string | null = 'a') => admitSeq(d, seq, seq, session);
    expect([take(S), take(S + 5000), take(S), take(S + 5000)]).toEqual([true, true, false, false]);
    // A day of events later the first one is still known.
    for (let k = 2; k < 500; k++) take(S + k * 180_000);
    expect(take(S)).toBe(false);
    expect(take(S + 1)).toBe(true);
    // Epoch microseconds too.
    const us = device();
    const m = S * 1000;
    expect([
      admitSeq(us, m, S, 'a'),
      admitSeq(us, m + 5_000_000, S + 5000, 'a'),
      admitSeq(us, m, S, 'a'),
    ]).toEqual([true, true, false]);
  });

  it('refuses resends in a new session (a reconnect after a gateway crash) and takes what follows', () => {
    const d = device();
    for (let s = 1; s <= 40; s++) admitSeq(d, s, S + s * 1000, 'first');
    // The device resends what was not acknowledged (same seqs, same events), then goes on.
    expect([38, 39, 40, 41].map((s) => admitSeq(d, s, S + s * 1000, 'second'))).toEqual([
      false,
      false,
      false,
      true,
    ]);
    // Within a session a repeated seq is a duplicate whatever its time.
    expect(admitSeq(d, 41, S + 999_000, 'second')).toBe(false);
  });

  it('takes a counter that started again after a power cycle, and refuses its resends', () => {
    const d = device();
    for (let s = 1; s <= 500; s++) admitSeq(d, s, S + s * 1000, 'before');
    // After the power cycle: a new session, seq 1 again with a new event.
    const later = S + 600_000;
    expect(admitSeq(d, 1, later, 'after')).toBe(true);
    expect(admitSeq(d, 2, later + 1000, 'after')).toBe(true);
    expect(admitSeq(d, 2, later + 1000, 'after')).toBe(false);
    // A restart whose clock came back behind: the seq was recorded, but with another event.
    const e = device();
    for (let s = 1; s <= 10; s++) admitSeq(e, s, S + s * 1000, 'before');
    expect(admitSeq(e, 3, S - 3_600_000, 'after')).toBe(true);
    expect(admitSeq(e, 4, S - 3_599_000, 'after')).toBe(true);
  });

  it('never takes a repeated seq for a restart without a new session', () => {
    const d = device();
    admitSeq(d, 7, S, null);
    expect(admitSeq(d, 7, S + 60_000, null)).toBe(false);
    expect(admitSeq(d, 7, S + 60_000, 'same')).toBe(true); // a session it had not seen: a new count
  });
});

describe.each(BACKENDS)(
  'gateway on $name: duplicates recorded once, restarts recorded (SPEC §3)',
  ({ backend, skip }) => {
    let world: GatewayWorld;
    let gateway: Gateway;
    beforeAll(async () => {
      if (skip) return;
      world = await gatewayWorld(backend);
      gateway = await world.start();
    });
    afterAll(() => world?.close());

    const topic = topics.events('h1', 'h1-motion');
    const motion = (seq: number, ts: number) =>
      JSON.stringify({ type: 'motion', ts, seq, state: 'active', room: 'living' });
    const rows = async () =>
      (await world.store.readEvents(0, 100_000))
        .filter((e) => e.deviceId === 'h1-motion')
        .flatMap((e) => (e.event.type === 'motion' ? [e.event.seq] : []));
    const send = async (c: MqttClient, seq: number, ts: number) => {
      await c.publishAsync(topic, motion(seq, ts), { qos: 1 });
    };

    it.skipIf(skip)('records epoch-millisecond seqs S and S+5000, each sent twice, once each', async () => {
      const now = Date.now();
      const c = await connectDevice(gateway.port, 'h1-motion', SECRET);
      await send(c, now, now);
      await send(c, now + 5000, now + 5000);
      await send(c, now, now);
      await send(c, now + 5000, now + 5000);
      await c.endAsync();
      // Resent again after a reconnect (same events): still once.
      const again = await connectDevice(gateway.port, 'h1-motion', SECRET);
      await send(again, now, now);
      await send(again, now + 5000, now + 5000);
      await again.endAsync();
      expect((await rows()).filter((s) => s === now || s === now + 5000)).toEqual([now, now + 5000]);
    });

    it.skipIf(skip)(
      'records consecutive seqs once, and a counter that restarted after a reconnect',
      async () => {
        const t = Date.now() - 120_000;
        const before = await connectDevice(gateway.port, 'h1-motion', SECRET);
        for (let s = 1; s <= 30; s++) await send(before, s, t + s * 1000);
        await send(before, 29, t + 29_000);
        await send(before, 30, t + 30_000);
        await before.endAsync();
        // A power cycle: a new session, the count from 1 again, with new events.
        const after = await connectDevice(gateway.port, 'h1-motion', SECRET);
        const later = Date.now();
        for (let s = 1; s <= 3; s++) await send(after, s, later + s);
        await send(after, 3, later + 3);
        await after.endAsync();
        const counted = (await rows()).filter((s) => (s ?? 0) < 1000);
        expect(counted).toEqual([...Array.from({ length: 30 }, (_, i) => i + 1), 1, 2, 3]);
      },
    );
  },
);
