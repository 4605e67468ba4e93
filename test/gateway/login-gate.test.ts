/**
 * The login gate's scheduling (gateway/login-gate.ts) with real scrypt checks (legacy device hashes): a
 * closed connection costs no check, one address's queue never holds up another's, the checks running at
 * once stay bounded (fewer while checks keep failing), and known answers cost nothing. Fast-format hashes
 * (SEC-05) never wait.
 */
import { scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LoginGate } from '../../gateway/login-gate.ts';
import { hashDeviceSecret } from '../../gateway/secrets.ts';

/** A stored hash with production-like cost (N = 2^14), so checks overlap as they do in the gateway. */
function stored(secret: string): string {
  const salt = Buffer.from('gate-test-salt-0');
  const key = scryptSync(secret, salt, 32, { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
  return `scrypt$16384$8$1$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

const HASH = stored('right');
const alive = () => true;

describe('login gate', () => {
  it('skips the check of a connection that closed while it waited', async () => {
    const gate = new LoginGate({ concurrency: 1 });
    let open = true;
    const first = gate.check('d1', 'a', 'wrong-1', HASH, alive);
    const second = gate.check('d2', 'a', 'right', HASH, () => open);
    open = false;
    expect(await first).toBe('wrong');
    expect(await second).toBe('gone');
    expect(gate.stats).toMatchObject({ checks: 1, skipped: 1 });
  });

  it("takes addresses in turn: a valid device elsewhere does not wait behind one address's queue", async () => {
    const gate = new LoginGate({ concurrency: 1, failuresAllowed: 1000, failedPerSecond: 1000 });
    const done: string[] = [];
    const flood = Array.from({ length: 12 }, (_, i) =>
      gate.check(`f${i}`, 'flood', `guess-${i}`, HASH, alive).then(() => done.push(`f${i}`)),
    );
    const good = gate.check('good', 'elsewhere', 'right', HASH, alive).then((r) => {
      done.push('good');
      return r;
    });
    expect(await good).toBe('ok');
    await Promise.all(flood);
    // The first flood check was already running; the valid device's came right after it.
    expect(done.indexOf('good')).toBeLessThanOrEqual(2);
  });

  it('runs at most two checks at once, one while checks keep failing, and answers known secrets for free', async () => {
    const gate = new LoginGate({ concurrency: 2, failuresAllowed: 1000, failedPerSecond: 3 });
    let most = 0;
    const watch = setInterval(() => {
      most = Math.max(most, gate.stats.running);
    }, 1);
    const first = await Promise.all(
      Array.from({ length: 4 }, (_, i) => gate.check(`d${i}`, `addr${i}`, 'x', HASH, alive)),
    );
    expect(first).toEqual(['wrong', 'wrong', 'wrong', 'wrong']);
    expect(most).toBe(2);
    // Failing faster than 3 per second: the next checks run one at a time.
    most = 0;
    await Promise.all(Array.from({ length: 4 }, (_, i) => gate.check(`e${i}`, `addr${i}`, 'y', HASH, alive)));
    clearInterval(watch);
    expect(most).toBe(1);
    // The same wrong secret again, and a verified one again: no check.
    const checks = gate.stats.checks;
    expect(await gate.check('d0', 'addr0', 'x', HASH, alive)).toBe('wrong');
    expect(await gate.check('ok', 'addr9', 'right', HASH, alive)).toBe('ok');
    expect(await gate.check('ok', 'addr9', 'right', HASH, alive)).toBe('ok');
    expect(gate.stats.checks).toBe(checks + 1);
    // A rotated secret (another stored hash) is checked afresh.
    expect(await gate.check('ok', 'addr9', 'right', stored('rotated'), alive)).toBe('wrong');
    expect(gate.stats.checks).toBe(checks + 2);
  });

  it('answers a fast-format hash at once, even while scrypt checks fill every slot and the suspect queue', async () => {
    const gate = new LoginGate({ concurrency: 1, failuresAllowed: 1, maxSuspectQueued: 2 });
    // A device that failed is suspect: its legacy checks queue behind the running one.
    expect(await gate.check('s', 'nat', 'guess', HASH, alive)).toBe('wrong');
    gate.failed('s', 'nat');
    const legacy = Array.from({ length: 3 }, (_, i) => gate.check('s', 'nat', `guess-${i}`, HASH, alive));
    const fast = hashDeviceSecret('right');
    // Same device, same address: the fast hash is answered before any of those finish.
    expect(await gate.check('s', 'nat', 'right', fast, alive)).toBe('ok');
    expect(await gate.check('s', 'nat', 'wrong', fast, alive)).toBe('wrong');
    expect(gate.stats.running + gate.stats.queued).toBeGreaterThan(0);
    expect(gate.stats.fast).toBe(2);
    await Promise.all(legacy);
    gate.stop();
  });
});
