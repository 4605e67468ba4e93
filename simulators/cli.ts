/**
 * The simulators' command line (SIM-01). It speaks to a running service only as devices and staff
 * do: the admin API to provision, MQTT with each device's credentials, the API and live channel as
 * responders. Entry file: the only simulator file that reads argv and the environment and prints.
 *
 *   npm run sim -- --help
 *   npm run sim:load -- --homes 10000 --rate 2000
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { DateTime } from 'luxon';
import { type Clock, ScaledClock, SystemClock } from '../kernel/clock.ts';
import { instant, seconds } from '../kernel/time.ts';
import { type CommunityPlan, planCommunity } from './community.ts';
import type { DeviceIdentity } from './device.ts';
import { SimHome } from './home.ts';
import { DEFAULT_MIX, formatProgress, formatSummary, type LoadEventKind, runLoad } from './load.ts';
import { adminLogin, provisionViaApi, readIdentities } from './provision.ts';
import { Rng } from './random.ts';
import { SimResponder } from './responder.ts';
import { localDate } from './routine.ts';
import { localInstant, SCENARIOS, scenario } from './scenarios.ts';

const HELP = `Guardian 365 simulators: a living community on demand.

usage: npm run sim -- [command] [options]

commands
  run         (default) provision the community and run its homes (daily routines, heartbeats) and,
              with --responders, its on-duty staff, against a running service
  load        load generation: many devices publish a realistic mix of QoS 1 events at a fixed rate,
              with live progress and a summary (also: npm run sim:load -- ...)
  provision   only create the community through the admin API and save the device secrets
  scenarios   list the injectable scenarios and the alerts each must (not) raise

service
  --url URL              HTTP API of the service            (default http://127.0.0.1:8080)
  --mqtt URL             MQTT broker                        (default mqtt://127.0.0.1:1883)
  --admin-user NAME      admin login                        (default admin)
  --admin-password PW    admin password                     (default $ADMIN_PASSWORD)

community (provisioned through POST /api/grids, /api/households, /api/staff, /api/roster, /api/devices)
  --homes N              number of households                (default 30)
  --per-grid N           households per grid                 (default 10; grids = homes / per-grid)
  --seed N               seed: same seed, same community and same routines (default 365)
  --staff-password PW    password of every simulated staff login (default guardian365)
  --identities FILE      where device secrets are kept (0600) (default ./data/sim-identities.json)
  --no-provision         use the identities file as it is (the community exists)

run
  --speed X              simulated time runs X times faster; the service must run with CLOCK_SPEED=X
                         (the simulators read the service's current time and follow it)  (default 1)
  --for DURATION         stop after this much real time, e.g. 90s, 10m, 2h (default: until Ctrl-C)
  --scenario SPEC        inject a scenario: NAME[@HH:MM][#HOME_ID] (repeatable; default time is the
                         scenario's own, next occurrence; default home is the first that has the devices)
  --responders           run simulated responders for every on-duty staff member
  --silent USERNAME      this responder never answers (repeatable)
  --progress-every SEC   a progress line every SEC seconds (default 10 for run, 1 for load)

load
  --rate N               messages per second offered, open loop (default 1000)
  --duration SEC         seconds of sending (default 30)
  --max-connections N    device connections (default 15000; FACTS.md: ~19,900 sockets per process)
  --connect-rate N       new connections per second (default 2000)
  --mix k=v,...          shares of motion, heartbeat, door, fall, sos, invalid (default motion=0.55,
                         heartbeat=0.4,door=0.05); fall and sos raise real alerts
  --devices-per-home N   provision only the first N devices of each home (default all 6–7)

examples
  npm run demo                                         # service + demo community in one process
  CLOCK_SPEED=600 npm start                            # a service whose day lasts 2.4 minutes
  npm run sim -- --speed 600 --homes 20 --responders --scenario fall-bathroom-night
  npm run sim -- scenarios
  npm run sim:load -- --homes 10000 --rate 2000 --devices-per-home 2
`;

const options = {
  help: { type: 'boolean', short: 'h' },
  url: { type: 'string', default: 'http://127.0.0.1:8080' },
  mqtt: { type: 'string', default: 'mqtt://127.0.0.1:1883' },
  'admin-user': { type: 'string', default: 'admin' },
  'admin-password': { type: 'string' },
  homes: { type: 'string', default: '30' },
  'per-grid': { type: 'string', default: '10' },
  seed: { type: 'string', default: '365' },
  'staff-password': { type: 'string', default: 'guardian365' },
  identities: { type: 'string', default: './data/sim-identities.json' },
  'no-provision': { type: 'boolean' },
  speed: { type: 'string', default: '1' },
  for: { type: 'string' },
  scenario: { type: 'string', multiple: true },
  responders: { type: 'boolean' },
  silent: { type: 'string', multiple: true },
  'progress-every': { type: 'string' },
  rate: { type: 'string', default: '1000' },
  duration: { type: 'string', default: '30' },
  'max-connections': { type: 'string', default: '15000' },
  'connect-rate': { type: 'string', default: '2000' },
  mix: { type: 'string' },
  'devices-per-home': { type: 'string' },
} as const;

class UsageError extends Error {}

function num(name: string, v: string | undefined, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name}: expected a number ≥ ${min}, got ${v}`);
  return n;
}

function duration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v);
  if (!m) throw new UsageError(`--for: expected a duration such as 90s, 10m or 2h, got ${v}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
  return Number(m[1]) * unit;
}

function mqttAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  if (u.protocol !== 'mqtt:') throw new UsageError(`--mqtt: expected mqtt://host:port, got ${url}`);
  return { host: u.hostname, port: Number(u.port || 1883) };
}

function parseMix(v: string | undefined): Partial<Record<LoadEventKind, number>> | undefined {
  if (!v) return undefined;
  const out: Partial<Record<LoadEventKind, number>> = { motion: 0, heartbeat: 0, door: 0 };
  for (const part of v.split(',')) {
    const [k, w] = part.split('=');
    if (!k || !(k in DEFAULT_MIX) || w === undefined)
      throw new UsageError(`--mix: expected kind=share with kinds ${Object.keys(DEFAULT_MIX).join(', ')}`);
    out[k as LoadEventKind] = num('mix', w);
  }
  return out;
}

const say = (line: string) => console.log(line);

async function plan(v: Values): Promise<{ plan: CommunityPlan; token: string }> {
  const homes = num('homes', v.homes, 1);
  const perGrid = Math.min(homes, num('per-grid', v['per-grid'], 1));
  const p = planCommunity({
    grids: Math.ceil(homes / perGrid),
    householdsPerGrid: perGrid,
    seed: num('seed', v.seed),
    staffPassword: v['staff-password'],
  });
  // The last grid may be partly filled.
  p.households = p.households.slice(0, homes);
  const keep = new Set(p.households.map((h) => h.id));
  p.devices = p.devices.filter((d) => keep.has(d.homeId));
  const perHome = v['devices-per-home'] ? num('devices-per-home', v['devices-per-home'], 1) : undefined;
  if (perHome !== undefined) {
    // Keep each home's most telling devices first: a motion sensor, the door contact, the fall radar.
    const rank = { motion: 0, door: 1, fall: 2, button: 3 } as const;
    const order = new Map(p.households.map((h, i) => [h.id, i]));
    p.devices.sort((a, b) => order.get(a.homeId)! - order.get(b.homeId)! || rank[a.kind] - rank[b.kind] || 0);
    const count = new Map<string, number>();
    p.devices = p.devices.filter((d) => {
      const n = (count.get(d.homeId) ?? 0) + 1;
      count.set(d.homeId, n);
      return n <= perHome;
    });
  }
  const password = v['admin-password'] ?? process.env.ADMIN_PASSWORD;
  if (!password) throw new UsageError('--admin-password (or ADMIN_PASSWORD) is needed to provision');
  const token = await adminLogin(v.url, v['admin-user'], password);
  return { plan: p, token };
}

async function provision(
  v: Values,
): Promise<{ plan: CommunityPlan; devices: DeviceIdentity[]; token: string }> {
  const { plan: p, token } = await plan(v);
  if (v['no-provision']) {
    const known = new Map(readIdentities(v.identities).map((d) => [d.id, d]));
    const devices = p.devices.flatMap((d) => known.get(d.id) ?? []);
    if (devices.length === 0) throw new UsageError(`no device identities in ${v.identities}`);
    return { plan: p, devices, token };
  }
  mkdirSync(dirname(v.identities), { recursive: true });
  const started = Date.now();
  let last = 0;
  const devices = await provisionViaApi({
    baseUrl: v.url,
    token,
    plan: p,
    identitiesFile: v.identities,
    onProgress: (done, total, what) => {
      if (Date.now() - last < 2000 && done < total) return;
      last = Date.now();
      say(`provisioning ${what.padEnd(10)} ${done}/${total}`);
    },
  });
  say(
    `provisioned ${p.grids.length} grids, ${p.households.length} households, ${p.staff.length} staff, ` +
      `${devices.length} devices in ${((Date.now() - started) / 1000).toFixed(1)} s (secrets in ${v.identities})`,
  );
  return { plan: p, devices, token };
}

/** The service's clock, read through the API, followed at the same speed. */
async function serviceClock(v: Values, token: string, speed: number): Promise<Clock> {
  const t0 = Date.now();
  const res = await fetch(`${v.url}/api/alerts?limit=1`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`cannot read the service's time: HTTP ${res.status}`);
  const { now } = (await res.json()) as { now: number };
  const rtt = Date.now() - t0;
  const skew = Math.abs(now - (t0 + rtt / 2));
  if (speed === 1 && skew < 60_000) return new SystemClock();
  if (speed === 1)
    say(
      `note: the service's clock is ${Math.round(skew / 60_000)} min away from this machine's; following it`,
    );
  return new ScaledClock(instant(now + (rtt / 2) * speed), speed);
}

async function run(v: Values): Promise<void> {
  const speed = num('speed', v.speed, 0.001);
  const every = num('progress-every', v['progress-every'] ?? '10', 1) * 1000;
  const stopAfter = v.for ? duration(v.for) : Number.POSITIVE_INFINITY;
  const broker = mqttAddress(v.mqtt);
  const { plan: p, devices, token } = await provision(v);
  const clock = await serviceClock(v, token, speed);
  const zone = 'Asia/Shanghai';
  const errors: string[] = [];
  const onError = (e: unknown) => {
    if (errors.length < 5) errors.push((e as Error).message);
  };
  const seed = num('seed', v.seed);
  const homes = p.households.map(
    (h, i) =>
      new SimHome({
        homeId: h.id,
        devices: devices.filter((d) => d.homeId === h.id),
        broker,
        clock,
        zone,
        seed: seed * 1000 + i,
        wakeTime: h.routine.wakeTime,
        onError,
      }),
  );
  say(`connecting ${devices.length} devices of ${homes.length} homes …`);
  for (let i = 0; i < homes.length; i += 50) await Promise.all(homes.slice(i, i + 50).map((h) => h.start()));
  const local = (t: number) => DateTime.fromMillis(t, { zone }).toFormat("yyyy-MM-dd HH:mm:ss 'local'");
  say(`homes running; time ${local(clock.now())} (×${speed})`);

  for (const spec of v.scenario ?? []) {
    const m = /^([a-z-]+)(?:@(\d{2}:\d{2}))?(?:#([A-Za-z0-9_-]+))?$/.exec(spec);
    if (!m) throw new UsageError(`--scenario: expected NAME[@HH:MM][#HOME], got ${spec}`);
    const s = scenario(m[1]!);
    const home =
      homes.find((h) => h.homeId === m[3]) ??
      homes.find((h) => s.needs.every((k) => h.device(k))) ??
      (() => {
        throw new UsageError(`--scenario ${spec}: no home has ${s.needs.join(', ')}`);
      })();
    const now = clock.now();
    let at = localInstant(localDate(now, zone), m[2] ?? s.defaultTime, zone);
    if (at < now + 60_000) at += 24 * 3_600_000;
    home.inject(s, at);
    const expect = s.expect.map((e) => e.rule).join(', ') || 'no alert';
    say(`scenario ${s.name} in ${home.homeId} at ${local(at)}: expect ${expect}`);
  }

  const responders: SimResponder[] = [];
  if (v.responders) {
    const rng = new Rng(seed);
    const silent = new Set(v.silent ?? []);
    for (const s of p.staff.filter((x) => x.roles.some((r) => r !== 'dispatcher' && r !== 'supervisor'))) {
      const r = new SimResponder(
        v.url,
        s.username,
        s.password,
        clock,
        {
          silent: silent.has(s.username),
          acceptAfter: seconds(rng.between(20, 120)),
          enRouteAfter: seconds(rng.between(10, 40)),
          onSiteAfter: seconds(rng.between(180, 600)),
          resolveAfter: seconds(rng.between(120, 300)),
          outcome: rng.chance(0.2) ? 'false_alarm' : 'assisted',
        },
        onError,
      );
      await r.start();
      responders.push(r);
    }
    say(`${responders.length} responders on the live channel (silent: ${[...silent].join(', ') || 'none'})`);
  }

  const realStart = Date.now();
  const stopAt = realStart + stopAfter;
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await Promise.all(responders.map((r) => r.stop()));
    await Promise.all(homes.map((h) => h.stop()));
    const sent = homes.reduce((n, h) => n + h.sent, 0);
    const failed = homes.reduce((n, h) => n + h.failed, 0);
    say(`stopped: ${sent} events acknowledged, ${failed} not sent`);
  };
  process.on('SIGINT', () => void stop().then(() => process.exit(0)));
  process.on('SIGTERM', () => void stop().then(() => process.exit(0)));
  while (!stopping && Date.now() < stopAt) {
    await new Promise((r) => setTimeout(r, Math.min(every, Math.max(10, stopAt - Date.now()))));
    const sent = homes.reduce((n, h) => n + h.sent, 0);
    const failed = homes.reduce((n, h) => n + h.failed, 0);
    const accepted = responders.reduce((n, r) => n + r.accepted.length, 0);
    say(
      `[${((Date.now() - realStart) / 1000).toFixed(0).padStart(5)} s] ${local(clock.now())}` +
        `  events acknowledged ${sent}  not sent ${failed}` +
        (v.responders ? `  alerts accepted by responders ${accepted}` : '') +
        (errors.length ? `  last error: ${errors.at(-1)}` : ''),
    );
  }
  await stop();
}

async function load(v: Values): Promise<void> {
  // Every option is checked before anything is sent.
  const broker = mqttAddress(v.mqtt);
  const settings = {
    rate: num('rate', v.rate, 1),
    durationS: num('duration', v.duration, 1),
    maxConnections: num('max-connections', v['max-connections'], 1),
    connectRate: num('connect-rate', v['connect-rate'], 1),
    mix: parseMix(v.mix),
    progressEveryMs: num('progress-every', v['progress-every'] ?? '1', 0.1) * 1000,
  };
  const { devices } = await provision(v);
  say(`load: ${devices.length} devices provisioned, offering ${settings.rate} msg/s for ${v.duration} s`);
  const ac = new AbortController();
  process.once('SIGINT', () => ac.abort());
  const summary = await runLoad({
    ...broker,
    ...settings,
    devices,
    onProgress: (pr) => say(formatProgress(pr)),
    signal: ac.signal,
  });
  say(formatSummary(summary));
}

function listScenarios(): void {
  for (const s of SCENARIOS) {
    const expect = s.expect.map((e) => e.rule + (e.evidence ? ` ("${e.evidence}")` : '')).join(', ');
    say(`${s.name.padEnd(22)} ${s.description}`);
    say(
      `${''.padEnd(22)} at ${s.defaultTime}; needs ${s.needs.join(', ')}; within ${Math.round(s.within / 60_000)} min: ` +
        `expect ${expect || 'no alert'}; never ${s.expectNot.join(', ') || '—'}` +
        (s.rejected ? `; ${s.rejected} rejected` : '') +
        (s.refused ? `; login refused (${s.refused.map((r) => r.code).join(', ')})` : ''),
    );
  }
}

type Values = ReturnType<typeof parse>['values'];
function parse(argv: string[]) {
  return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(process.argv.slice(2));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    say(HELP);
    return;
  }
  const command = positionals[0] ?? 'run';
  switch (command) {
    case 'run':
      return run(values);
    case 'load':
      return load(values);
    case 'provision':
      await provision(values);
      return;
    case 'scenarios':
      return listScenarios();
    default:
      throw new UsageError(`unknown command ${command}; try --help`);
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    if (e instanceof UsageError) console.error(`sim: ${e.message}\n(npm run sim -- --help for usage)`);
    else if (e instanceof TypeError && e.message === 'fetch failed')
      console.error(`sim: cannot reach the service (${String(e.cause ?? e)}); is it running? (--url)`);
    else console.error(`sim: ${(e as Error).message ?? e}`);
    process.exit(2);
  },
);
