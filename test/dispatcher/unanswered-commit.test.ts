/**
 * RULE-16 on a real PostgreSQL through a real TCP proxy that loses the answer to a commit: the raise of a
 * fall is written with its first notice, the connection drops before the service hears that it was
 * committed, and the notice must still leave once the alert turns out to be stored (not wait for the
 * ladder's next step at minute 3).
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Alert } from '../../dispatcher/alerts/model.ts';
import { Directory } from '../../dispatcher/directory.ts';
import { RULES_RETRY_MS, RulesPipeline } from '../../dispatcher/rules/pipeline.ts';
import { PostgresStore } from '../../dispatcher/store/postgres.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { instant, ms } from '../../kernel/time.ts';
import { eventually } from '../helpers.ts';
import { BACKENDS, createTestDatabase } from '../store-factory.ts';
import { DEVICES, household, local, seedHome, ZONE } from './rules-fixtures.ts';

const pgBackend = BACKENDS.find((b) => b.backend === 'postgres')!;
const READY_FOR_QUERY = Buffer.from([0x5a, 0, 0, 0, 5]);

/**
 * A TCP proxy to PostgreSQL. Armed, it passes on the first message that writes an alert, lets the server
 * run it to its end (ReadyForQuery), and then closes the client's connection instead of answering.
 */
async function lossyProxy(
  target: URL,
): Promise<{ url: string; arm: () => void; dropped: () => number; close: () => void }> {
  let armed = false;
  let dropped = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    let losing = false;
    let answer = Buffer.alloc(0);
    client.on('data', (chunk) => {
      if (armed && chunk.includes('INSERT INTO alerts')) {
        armed = false;
        losing = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!losing) {
        client.write(chunk);
        return;
      }
      answer = Buffer.concat([answer, chunk]);
      if (answer.includes(READY_FOR_QUERY)) {
        dropped++;
        client.destroy();
        upstream.destroy();
      }
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = new URL(target.toString());
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.toString(),
    arm: () => {
      armed = true;
    },
    dropped: () => dropped,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe.skipIf(pgBackend.skip)(`${pgBackend.name}: a raise whose commit goes unanswered (RULE-16)`, () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /**
   * A household with a fall sensor on a fresh database; the rules reach it through the lossy proxy, the
   * test through a store of its own. `sent`: the alerts whose first notices left; `raised`: those handed on
   * as raised.
   */
  async function rig() {
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    const direct = new PostgresStore({ url: db.url });
    cleanups.push(() => direct.close());
    await direct.migrate();
    const start = local('2026-03-10 09:00');
    await seedHome(direct, household(), DEVICES, instant(start));
    const proxy = await lossyProxy(new URL(db.url));
    cleanups.push(proxy.close);
    const store = new PostgresStore({ url: proxy.url });
    store.pool.on('error', () => {});
    cleanups.push(() => store.close());
    const clock = new ManualClock(instant(start));
    const directory = new Directory({
      store,
      zone: ZONE,
      shifts: { dayStart: '08:00', nightStart: '20:00' },
    });
    const sent: string[] = [];
    const raised: string[] = [];
    const pipeline = new RulesPipeline({
      store,
      directory,
      clock,
      log: silentLogger(),
      onCommitted: (r) => raised.push(...r.map((a) => a.id)),
      // The alert service's seam: the steps due at the raise, and what sends their notices.
      stepsAtRaise: async (a: Alert) => ({
        alert: { ...a, state: 'notified', assigneeId: 'grid-1-worker' },
        history: [],
        send: (saved) => sent.push(saved.id),
      }),
    });
    cleanups.push(() => pipeline.stop());
    await pipeline.start();
    await direct.appendEvents([
      {
        deviceId: 'h1-fall',
        homeId: 'h1',
        receivedAt: start,
        topic: 'g365/v1/homes/h1/devices/h1-fall/events',
        status: 'accepted',
        ts: start,
        type: 'fall',
        deviceSeq: 1,
        body: JSON.stringify({ type: 'fall', ts: start, seq: 1, state: 'detected', room: 'bathroom' }),
        reason: null,
        flags: [],
      },
    ]);
    const falls = async () => direct.listAlerts({ householdId: 'h1', rule: 'FALL' });
    return { direct, proxy, clock, pipeline, sent, raised, falls };
  }

  it("sends the fall's first notice once the alert turns out to be stored", async () => {
    const { direct, proxy, pipeline, sent, raised, falls } = await rig();
    const [fall] = await direct.readEvents(0, 10);
    proxy.arm();
    await pipeline.urgent([fall!]);
    // Written, but the lane never heard so: it told nobody.
    expect(proxy.dropped()).toBe(1);
    const [stored] = await falls();
    expect(stored).toMatchObject({ state: 'notified', assigneeId: 'grid-1-worker' });
    expect(sent).toEqual([]);
    expect(raised).toEqual([]);

    // The ordered pass comes to the fall, finds its alert stored, hands it on as raised (screens, the
    // next step's timer) and the notice leaves.
    pipeline.wake();
    await eventually(() => sent.length > 0, 10_000, 'the first notice');
    await pipeline.idle();
    expect(sent).toEqual([stored!.id]);
    expect(raised).toEqual([stored!.id]);
    expect(await falls()).toHaveLength(1);
  });

  it("sends the first notice of a page's raise whose commit went unanswered, when the page is tried again", async () => {
    const { proxy, clock, pipeline, sent, falls } = await rig();
    // A fall only the ordered pass sees (no urgent lane here): its page's commit goes unanswered.
    proxy.arm();
    pipeline.wake();
    await eventually(() => proxy.dropped() === 1, 10_000, 'the commit to go unanswered');
    const stored = await eventually(async () => (await falls())[0], 10_000, 'the alert stored');
    // The page is tried again (after RULES_RETRY_MS on the rules' clock, or at once one by one): the alert
    // is found stored and its notice leaves, once.
    await eventually(
      async () => {
        await clock.advance(ms(RULES_RETRY_MS));
        await pipeline.idle();
        return sent.length > 0;
      },
      10_000,
      'the first notice',
    );
    expect(sent).toEqual([stored.id]);
    expect(await falls()).toHaveLength(1);
  });
});
