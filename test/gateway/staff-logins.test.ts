/**
 * Staff app MQTT logins overtaken by a change of staff sessions (CLU-02), on a real gateway with real mqtt.js
 * clients and the service's own staff sessions (dispatcher/auth.ts) on a real SQLite file: a login whose
 * session ends while its token is checked is refused when the staff connections are re-checked meanwhile,
 * one whose session stands is let in, and one whose second ask cannot reach the sessions is refused as
 * server unavailable (CONNACK 3), as at its first check. The window is made by holding the check's answer
 * after the real session lookup has run (as a slow link to the dispatcher would), not by replacing it.
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Auth } from '../../dispatcher/auth.ts';
import type { Gateway } from '../../gateway/gateway.ts';
import { hashPassword } from '../../gateway/secrets.ts';
import { clock, connectDevice, type GatewayWorld, gatewayWorld } from './fixtures.ts';

let world: GatewayWorld;
let gw: Gateway;
let auth: Auth;
/** While set, every staff check's answer (already looked up) waits for it. */
let hold: { looked: () => void; release: Promise<void> } | null = null;
/** While set, a staff check cannot reach the sessions (as when the dispatcher is unreachable). */
let unreachable = false;

beforeAll(async () => {
  world = await gatewayWorld();
  auth = new Auth({ store: world.store, clock, sessionHours: 8 });
  await world.store.createStaff({
    id: 'w1',
    name: 'Worker One',
    phone: '13800000001',
    roles: ['grid_worker'],
    gridIds: ['g1'],
    username: 'worker1',
    passwordHash: await hashPassword('worker1-password'),
  });
  gw = await world.start({
    authenticateStaff: async (staffId, token) => {
      if (unreachable) throw new Error('connect ECONNREFUSED (the dispatcher is down)');
      const session = await auth.session(token);
      const answer = session?.staff.id === staffId ? { expiresAt: session.expiresAt } : null;
      const h = hold;
      if (h) {
        h.looked();
        await h.release;
      }
      return answer;
    },
  });
});

afterAll(async () => {
  await world.close();
});

async function token(): Promise<string> {
  const r = await auth.login('worker1', 'worker1-password');
  if (!r.ok) throw new Error(`login failed: ${r.reason}`);
  return r.token;
}

/** A staff app's login held after its session was looked up: `release` lets its answer go on. */
function heldLogin(password: string): {
  looked: Promise<void>;
  release: () => void;
  outcome: Promise<MqttClient | number>;
} {
  let release!: () => void;
  let looked!: () => void;
  const lookedUp = new Promise<void>((r) => {
    looked = r;
  });
  hold = {
    looked,
    release: new Promise<void>((r) => {
      release = r;
    }),
  };
  const outcome = connectDevice(gw.port, 'staff:w1', password).then(
    (c) => c,
    (e: { code?: number }) => e.code ?? -1,
  );
  return { looked: lookedUp, release, outcome };
}

/**
 * A staff app's login whose session was looked up (it stood), then overtaken: `meanwhile` runs, and the
 * staff connections are re-checked (`closed`: how many that closed) before its answer goes on.
 */
async function overtakenLogin(meanwhile: (token: string) => Promise<void> = async () => {}) {
  const t = await token();
  const [rechecked, refused] = [gw.metrics.loginRechecked, gw.metrics.loginRevokedUnderWay];
  const login = heldLogin(t);
  await login.looked;
  hold = null;
  await meanwhile(t);
  const closed = await gw.recheckStaff();
  return {
    ...login,
    token: t,
    closed,
    rechecked: () => gw.metrics.loginRechecked - rechecked,
    refused: () => gw.metrics.loginRevokedUnderWay - refused,
  };
}

describe('staff app logins under way', () => {
  it('refuses a staff login whose session ended while its token was checked, once staff are re-checked', async () => {
    // The session was looked up (it stood); now the person logs out, and the change re-checks staff apps.
    const login = await overtakenLogin((t) => auth.logout(t));
    expect(login.closed).toBe(0);
    login.release();
    expect(await login.outcome).toBe(4);
    expect(login.rechecked()).toBe(1);
    expect(login.refused()).toBe(1);
  });

  it('lets a staff login under way in when the re-check finds its session standing', async () => {
    const login = await overtakenLogin();
    login.release();
    const client = await login.outcome;
    if (typeof client === 'number') throw new Error(`refused with CONNACK ${client}`);
    expect(client.connected).toBe(true);
    expect(login.rechecked()).toBe(1);
    await client.endAsync();
  });

  it('refuses with CONNACK 3 a staff login whose re-ask cannot reach the sessions, and lets the next one in', async () => {
    const login = await overtakenLogin();
    // The re-check asked this login to ask again; by then the sessions cannot be reached.
    unreachable = true;
    try {
      login.release();
      expect(await login.outcome).toBe(3);
    } finally {
      unreachable = false;
    }
    expect(login.rechecked()).toBe(1);
    // Nothing of the refused login stays behind: the same token logs in once the sessions answer again.
    const client = await connectDevice(gw.port, 'staff:w1', login.token);
    expect(client.connected).toBe(true);
    await client.endAsync();
  });
});
