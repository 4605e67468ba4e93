/**
 * Device logins under a flood and behind a shared address (SPEC §3, §9, EDGE-02, SEC-05): wrong-secret
 * CONNECTs with known device ids never stall the durable log, whether the ids' rows hold the fast hash the
 * service issues (checked at once, no scrypt at all) or a legacy scrypt hash (checked within the login
 * gate's bounds); one misconfigured device behind a carrier NAT or a building hub slows only itself; the
 * cost of refused logins is bounded; the flood is counted and logged once per period. Real gateway, real
 * hashes of both formats, raw MQTT clients on other loopback addresses (127.0.0.0/8).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topics } from '../../gateway/protocol.ts';
import { hashDeviceSecret } from '../../gateway/secrets.ts';
import { createLogger } from '../../kernel/log.ts';
import { eventually } from '../helpers.ts';
import {
  type GatewayWorld,
  gatewayWorld,
  legacyDeviceHash,
  RawClient,
  rawPublish,
  SECRET,
} from './fixtures.ts';

const FLOOD_IDS = 200;
let world: GatewayWorld;

beforeAll(async () => {
  world = await gatewayWorld();
  // The flood's known ids: `f…` rows still holding a legacy scrypt hash (production cost, not re-hashed
  // since: the flood never sends their secret), `k…` rows with the fast hash the service issues now.
  const legacy = await legacyDeviceHash('the-flood-never-sends-this');
  for (let i = 0; i < FLOOD_IDS; i++)
    for (const [id, secretHash] of [
      [`f${i}`, legacy],
      [`k${i}`, hashDeviceSecret('the-flood-never-sends-this')],
    ] as const)
      await world.store.createDevice({
        id,
        homeId: 'h2',
        kind: 'motion',
        room: 'living',
        secretHash,
        createdAt: 0,
      });
  // A valid device whose row still holds a legacy hash: its scrypt check must get through the flood.
  await world.store.createDevice({
    id: 'h2-door',
    homeId: 'h2',
    kind: 'door',
    room: 'entrance',
    secretHash: await legacyDeviceHash(SECRET),
    createdAt: 0,
  });
});

afterAll(async () => {
  await world.close();
});

/** Log lines as objects, read back from a real pino logger. */
function capturedLog() {
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: createLogger({ level: 'info', destination }), lines };
}

/** One QoS 1 event from a raw client, answered by its PUBACK. */
async function publishEvent(c: RawClient, home: string, device: string, id: number): Promise<void> {
  const payload = JSON.stringify({ type: 'door', state: 'open', ts: Date.now(), seq: id });
  c.write(rawPublish(Buffer.from(topics.events(home, device)), Buffer.from(payload), 1, id));
  await eventually(
    () => c.packets.some((p) => p.cmd === 'puback' && p.messageId === id),
    30_000,
    `PUBACK ${id} for ${device}`,
  );
}

function startFlood(port: number, connections: number, prefix: 'f' | 'k'): ChildProcess {
  return fork(
    join(import.meta.dirname, '../../simulators/login-flood.ts'),
    [String(port), String(connections), prefix, String(FLOOD_IDS)],
    { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
}

describe('gateway: a wrong-secret login flood', () => {
  it('on ids holding the fast hash, costs no scrypt check: a connected device is acknowledged and a valid device from another address gets in', {
    timeout: 150_000,
  }, async () => {
    const g = await world.start({ loginReportMs: 3_600_000 });
    const connected = await RawClient.open(g.port, '127.0.0.2');
    expect(await connected.login('h1-door')).toBe(0);
    const flood = startFlood(g.port, 1_000, 'k');
    try {
      await eventually(() => g.metrics.authFailures >= 300, 60_000, 'the flood under way');
      for (let id = 1; id <= 5; id++) await publishEvent(connected, 'h1', 'h1-door', id);
      const fresh = await RawClient.open(g.port, '127.0.0.3');
      expect(await fresh.login('h2-fall')).toBe(0);
      await publishEvent(fresh, 'h2', 'h2-fall', 1);
      fresh.end();
    } finally {
      flood.kill('SIGTERM');
      connected.end();
    }
    const m = g.metrics;
    // Every refusal was a fast check: nothing queued, nothing refused unchecked, no scrypt.
    expect(m.loginFastChecks).toBeGreaterThanOrEqual(300);
    expect(m.loginChecks).toBe(0);
    expect(m.loginBusy).toBe(0);
    await g.stop();
  });

  it('on ids still holding a legacy scrypt hash, keeps acknowledging a connected device, lets a valid device from another address in, and logs the flood once per period', {
    timeout: 150_000,
  }, async () => {
    const { log, lines } = capturedLog();
    const g = await world.start({ log, loginReportMs: 3_600_000 });
    const connected = await RawClient.open(g.port, '127.0.0.2');
    expect(await connected.login('h1-door')).toBe(0);
    const flood = startFlood(g.port, 1_000, 'f');
    try {
      await eventually(() => g.metrics.authFailures >= 300, 60_000, 'the flood under way');
      // The connected device's events are acknowledged while the flood goes on.
      for (let id = 1; id <= 5; id++) await publishEvent(connected, 'h1', 'h1-door', id);
      // A valid device whose legacy hash must be checked (scrypt) gets in from another address.
      const fresh = await RawClient.open(g.port, '127.0.0.3');
      expect(await fresh.login('h2-door')).toBe(0);
      await publishEvent(fresh, 'h2', 'h2-door', 1);
      const during = g.metrics.authFailures;
      await eventually(() => g.metrics.authFailures > during + 100, 60_000, 'the flood still under way');
      fresh.end();
    } finally {
      flood.kill('SIGTERM');
      connected.end();
    }
    const m = g.metrics;
    // The flood was counted, and most of it was refused without a secret check.
    expect(m.authFailures).toBeGreaterThan(400);
    expect(m.loginChecks).toBeLessThan(m.authFailures / 2);
    expect(m.loginBusy + m.loginSkipped).toBeGreaterThan(0);
    // Logged once for the period (the first refusal), not once per attempt; the summary comes at its end.
    expect(lines.filter((l) => l.msg === 'mqtt login refused')).toHaveLength(1);
    await g.stop();
    const summary = lines.filter((l) => l.msg === 'mqtt logins refused since the last report');
    expect(summary).toHaveLength(1);
    expect(summary[0]!.refused).toBeGreaterThan(400);
  });
});

describe('gateway: login limits behind a shared address', () => {
  it('slows only the misconfigured device behind an address; the others get in at once, and a success resets it', async () => {
    const g = await world.start({ loginFailuresAllowed: 3 });
    const nat = '127.0.0.5';
    const attempt = async (id: string, secret: string) => {
      const c = await RawClient.open(g.port, nat);
      const rc = await c.login(id, secret);
      c.end();
      return rc;
    };
    // A device that kept an old secret retries again and again.
    for (let i = 0; i < 6; i++) expect(await attempt('h1-motion', 'old-secret')).toBe(4);
    // Each retry is checked at once against the fast hash (SEC-05): no scrypt check, nothing queued.
    expect(g.metrics.loginFastChecks).toBe(6);
    expect(g.metrics.loginChecks).toBe(0);
    // Its refusals beyond the third were held back.
    const held = g.metrics.authThrottled;
    expect(held).toBeGreaterThan(0);
    // The homes beside it behind the same address are neither held back nor refused.
    for (const id of ['h1-fall', 'h1-door', 'h2-fall']) expect(await attempt(id, SECRET)).toBe(0);
    expect(g.metrics.authThrottled).toBe(held);
    expect(g.metrics.loginBusy).toBe(0);
    // Given the right secret, it gets in; its failures are forgotten: the next wrong one is not held back.
    expect(await attempt('h1-motion', SECRET)).toBe(0);
    expect(await attempt('h1-motion', 'another-wrong-secret')).toBe(4);
    expect(g.metrics.authThrottled).toBe(held);
    await g.stop();
  });

  it("holds a suspect device's refusal back before its CONNACK 4, while a valid device from the same address is answered at once", async () => {
    const g = await world.start({ loginFailuresAllowed: 1, loginGate: { maxRefusalDelayMs: 500 } });
    const nat = '127.0.0.8';
    const timed = async (id: string, secret: string) => {
      const c = await RawClient.open(g.port, nat);
      const started = performance.now();
      const rc = await c.login(id, secret);
      const ms = performance.now() - started;
      c.end();
      return { rc, ms };
    };
    expect((await timed('h1-motion', 'old-secret')).rc).toBe(4);
    const held = g.metrics.authThrottled;
    // Its second failure: the refusal waits 500 ms on the socket (aedes has let the connection go).
    const slow = timed('h1-motion', 'old-secret-2');
    // Meanwhile a valid device behind the same address gets in at once.
    const good = await timed('h1-door', SECRET);
    expect(good.rc).toBe(0);
    const refused = await slow;
    expect(refused.rc).toBe(4);
    expect(refused.ms).toBeGreaterThanOrEqual(450);
    expect(good.ms).toBeLessThan(refused.ms);
    expect(g.metrics.authThrottled).toBe(held + 1);
    await g.stop();
  });

  it('bounds what refused logins from an address cost: beyond the budget they are refused unchecked, while another address gets in', async () => {
    const g = await world.start({
      loginFailuresAllowed: 2,
      loginGate: { suspectPerSecond: 1, maxSuspectQueued: 4, maxRefusalDelayMs: 250 },
    });
    const bad = '127.0.0.6';
    // Different device ids fail from one address: it becomes suspect.
    for (let i = 0; i < 3; i++) {
      const c = await RawClient.open(g.port, bad);
      expect(await c.login(`f${i}`, 'guess')).toBe(4);
      c.end();
    }
    const checksBefore = g.metrics.loginChecks;
    // 30 guesses at once from it: at most its share of the suspect queue waits; the rest get CONNACK 3.
    const clients = await Promise.all(Array.from({ length: 30 }, () => RawClient.open(g.port, bad)));
    const codes = await Promise.all(clients.map((c, i) => c.login(`f${10 + i}`, 'guess')));
    for (const c of clients) c.end();
    expect(codes.filter((c) => c === 3).length).toBeGreaterThan(20);
    expect(codes.every((c) => c === 3 || c === 4)).toBe(true);
    expect(g.metrics.loginChecks - checksBefore).toBeLessThan(10);
    expect(g.metrics.loginBusy).toBeGreaterThan(20);
    // A valid device elsewhere is not affected.
    const good = await RawClient.open(g.port, '127.0.0.7');
    expect(await good.login('h2-fall')).toBe(0);
    good.end();
    await g.stop();
  });
});
