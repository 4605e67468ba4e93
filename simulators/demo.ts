/**
 * `npm run demo`: runs the demo community's simulated homes (each replaying its daily routine, routine.ts)
 * and responders against the running service, with a fall or a press of the help button now and then so the
 * dispatch screen comes alive within a minute. The community is seeded by the service's side
 * (dispatcher/seed.ts seedDemo); the homes read their devices and secrets from the provisioning file it
 * writes, and the responders log in through the API, as real devices and staff do (SIM-01).
 */
import type { Clock, Timer } from '../kernel/clock.ts';
import type { Logger } from '../kernel/log.ts';
import { seconds } from '../kernel/time.ts';
import { type CommunityPlan, planCommunity } from './community.ts';
import { SimHome } from './home.ts';
import { readIdentities } from './provision.ts';
import { Rng } from './random.ts';
import { SimResponder } from './responder.ts';
import { scenario } from './scenarios.ts';

export const DEMO_PASSWORD = 'guardian365';
/** The demo's admin: an admin password has at least 12 characters (SEC: passwords.ts), so it has its own. */
export const DEMO_ADMIN_PASSWORD = 'guardian365-admin';

/** The demo community (阳光社区), with the demo's staff password. */
export const demoPlan = (): CommunityPlan => planCommunity({ staffPassword: DEMO_PASSWORD });

export interface DemoOptions {
  /** The plan the service seeded (demoPlan). */
  plan: CommunityPlan;
  /** The provisioning file the seed wrote: every device's identity and secret. */
  devicesFile: string;
  clock: Clock;
  log: Logger;
  mqttPort: number;
  httpPort: number;
  /** The demo admin's password (printed with the other logins). */
  adminPassword: string;
  zone?: string;
  /** Seconds between injected falls (default 60; the first comes after 15 s). */
  fallEvery?: number;
}

export async function startDemo(o: DemoOptions): Promise<{
  stop: () => Promise<void>;
  logins: { role: string; username: string; password: string; note: string }[];
}> {
  const plan = o.plan;
  const identities = readIdentities(o.devicesFile);
  const onError = (e: unknown) => o.log.warn({ err: (e as Error).message }, 'demo simulator error');
  const broker = { host: '127.0.0.1', port: o.mqttPort };
  const homes = plan.households.map(
    (h, i) =>
      new SimHome({
        homeId: h.id,
        devices: identities.filter((d) => d.homeId === h.id),
        broker,
        clock: o.clock,
        zone: o.zone ?? 'Asia/Shanghai',
        seed: 1000 + i,
        onError,
      }),
  );
  // Homes connect in the background, a few at a time (a demo folder seeded before SEC-05 holds scrypt device
  // hashes: each device's first login then costs the gateway a scrypt check, once): the console is up at
  // once and the first homes are live within seconds.
  const live: SimHome[] = [];
  let stopped = false;
  const connecting = (async () => {
    for (let i = 0; i < homes.length && !stopped; i += 5) {
      await Promise.all(
        homes.slice(i, i + 5).map((h) =>
          h.start().then(
            () => live.push(h),
            (e: unknown) => onError(e),
          ),
        ),
      );
    }
  })();

  // Responders: everyone answers except grid 2's grid worker, so the dispatch room sees escalation at 3 min.
  const base = `http://127.0.0.1:${o.httpPort}`;
  const rng = new Rng(7);
  const responders = plan.staff
    .filter((s) => s.roles.some((r) => r !== 'dispatcher' && r !== 'supervisor'))
    .map(
      (s) =>
        new SimResponder(
          base,
          s.username,
          s.password,
          o.clock,
          {
            silent: s.id === 'grid-2-worker',
            acceptAfter: seconds(rng.between(10, 90)),
            enRouteAfter: seconds(rng.between(5, 20)),
            onSiteAfter: seconds(rng.between(60, 300)),
            resolveAfter: seconds(rng.between(60, 180)),
            outcome: rng.chance(0.2) ? 'false_alarm' : 'assisted',
          },
          onError,
        ),
    );
  await Promise.all(responders.map((r) => r.start()));

  const timers: Timer[] = [];
  const every = seconds(o.fallEvery ?? 60);
  const inject = () => {
    timers.push(o.clock.after(every, inject));
    if (live.length === 0) return;
    const home = rng.pick(live);
    // Mostly falls; now and then the help button, in the homes that have one (scenarios.ts).
    if (home.device('button') && rng.chance(0.3)) home.inject(scenario('help-button'), o.clock.now());
    else home.fall().catch(onError);
  };
  timers.push(o.clock.after(seconds(15), inject));

  return {
    logins: [
      {
        role: 'admin',
        username: 'admin',
        password: o.adminPassword,
        note: 'admin pages (grids, homes, staff, roster)',
      },
      { role: 'dispatcher', username: 'dispatcher', password: DEMO_PASSWORD, note: 'dispatch-room screen' },
      { role: 'supervisor', username: 'supervisor', password: DEMO_PASSWORD, note: 'reports' },
      {
        role: 'responder',
        username: 'g1-worker',
        password: DEMO_PASSWORD,
        note: 'grid 1 day shift (also g1-social at night)',
      },
    ],
    stop: async () => {
      stopped = true;
      for (const t of timers.splice(0)) t.cancel();
      await connecting;
      await Promise.all(responders.map((r) => r.stop()));
      await Promise.all(homes.map((h) => h.stop()));
    },
  };
}

export { demoHistory } from './history.ts';
