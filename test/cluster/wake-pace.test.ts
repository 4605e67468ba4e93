/**
 * CLU-02 and RULE-16 on separate processes: a gateway wakes the rules for ordinary records at most once
 * every EVENTS_WAKE_MS, however many it commits, and never leaves the last of them without a wake-up; a
 * fall's urgent notification goes at once, inside that interval, and the dispatcher's rules read every
 * ordinary record.
 */
import type mqtt from 'mqtt';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../gateway/protocol.ts';
import { eventually } from '../helpers.ts';
import { BACKENDS } from '../store-factory.ts';
import { type Cluster, startCluster } from './processes.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const PACE_MS = 1_000;

describe.skipIf(pgBackend.skip)(`a gateway's wake-ups for the rules on ${pgBackend.name}`, () => {
  let cluster: Cluster;
  let listener: pg.Client;
  const heard: { channel: string; at: number }[] = [];

  beforeAll(async () => {
    cluster = await startCluster({
      grids: 1,
      householdsPerGrid: 1,
      env: { EVENTS_WAKE_MS: String(PACE_MS) },
    });
    listener = new pg.Client({ connectionString: cluster.env.DATABASE_URL });
    await listener.connect();
    listener.on('notification', (n) => heard.push({ channel: n.channel, at: performance.now() }));
    await listener.query('LISTEN g365_events; LISTEN g365_urgent');
  }, 120_000);
  afterAll(async () => {
    await listener?.end();
    await cluster?.stop();
  });

  const rulesCursor = async () => {
    const text = await (await fetch(`${cluster.base()}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('g365_rules_cursor '));
    return line ? Number(line.split(' ')[1]) : Number.NaN;
  };
  const publish = (c: mqtt.MqttClient, homeId: string, deviceId: string, body: object) =>
    c.publishAsync(topics.events(homeId, deviceId), JSON.stringify(body), { qos: 1 });

  it('sends one wake-up per interval for a stream of commits, the last included, and a fall at once', {
    timeout: 90_000,
  }, async () => {
    const motion = cluster.devices.find((d) => d.kind === 'motion')!;
    const radar = cluster.devices.find((d) => d.kind === 'fall')!;
    const m = await cluster.device(motion);
    const r = await cluster.device(radar);
    const before = heard.length;
    const start = performance.now();
    // 40 commits, each acknowledged before the next is sent: without the pace, one wake-up each.
    for (let seq = 1; seq <= 40; seq++) {
      await publish(m, motion.homeId, motion.id, {
        type: 'motion',
        ts: Date.now(),
        seq,
        state: seq % 2 ? 'active' : 'idle',
        room: motion.room,
      });
      await new Promise((res) => setTimeout(res, 10));
    }
    const lastAcked = performance.now();
    // The last commit is followed by a wake-up, at most one interval (and a busy machine's slack) later.
    await eventually(
      () => heard.some((h, i) => i >= before && h.channel === 'g365_events' && h.at > lastAcked),
      PACE_MS + 10_000,
      'a wake-up after the last commit',
    );
    const span = performance.now() - start;
    const wakeUps = heard.slice(before).filter((h) => h.channel === 'g365_events').length;
    // One at the first commit, then at most one per interval begun.
    expect(wakeUps).toBeGreaterThanOrEqual(1);
    expect(wakeUps).toBeLessThanOrEqual(Math.ceil(span / PACE_MS) + 1);
    expect(wakeUps).toBeLessThan(40);

    // An ordinary commit's wake-up opens an interval; the fall committed inside it is announced at once.
    await publish(m, motion.homeId, motion.id, {
      type: 'motion',
      ts: Date.now(),
      seq: 41,
      state: 'active',
      room: motion.room,
    });
    const acked41 = performance.now();
    await eventually(
      () => heard.some((h) => h.channel === 'g365_events' && h.at > acked41),
      PACE_MS + 10_000,
      'the wake-up for the last ordinary commit',
    );
    const mark = heard.length;
    await publish(r, radar.homeId, radar.id, { type: 'fall', ts: Date.now(), seq: 1, state: 'detected' });
    await eventually(
      () => heard.slice(mark).some((h) => h.channel === 'g365_urgent'),
      10_000,
      "the fall's urgent notification",
    );
    const after = heard.slice(mark);
    const urgentAt = after.findIndex((h) => h.channel === 'g365_urgent');
    const eventsAt = after.findIndex((h) => h.channel === 'g365_events');
    // The fall did not wait for the paced wake-up of the log.
    expect(eventsAt === -1 || urgentAt < eventsAt).toBe(true);

    // The rules read every record: their cursor reaches the fall's position in the log.
    const last = (await cluster.store.readEvents(0, 1_000)).at(-1)!;
    expect(last.event.type).toBe('fall');
    await eventually(async () => (await rulesCursor()) >= last.seq, 10_000, 'the rules caught up');
  });
});
