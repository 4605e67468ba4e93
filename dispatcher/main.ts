/**
 * Entry point: the only place that reads the environment, opens ports and handles signals.
 *
 *   npm start            the whole service on embedded defaults
 *   npm run demo         the same, plus a seeded demo community with simulated homes and responders
 *   npm run start:gateway / start:dispatcher   one role of the service, sharing PostgreSQL (CLU-01)
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Clock, ScaledClock, SystemClock } from '../kernel/clock.ts';
import { createLogger } from '../kernel/log.ts';
import { applyNice, niceFor } from '../kernel/priority.ts';
import { instant } from '../kernel/time.ts';
import { ConfigError, DEMO_MARKER_FILE, isLoopback, loadConfig } from './config.ts';
import { seedDemo } from './seed.ts';
import { DiskFullError, GuardianService, PortInUseError } from './service.ts';
import type { Store } from './store/store.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// A bug that escapes every handler is logged; the process stays up, because stopping it would stop every
// alert. (Handlers that can fail log their own errors with context.)
process.on('unhandledRejection', (reason) => {
  console.error('guardian365: unhandled rejection (bug):', reason);
});

async function main(): Promise<void> {
  // SPEC §9: everything this process creates (database, index, secrets files) is for its owner only.
  process.umask(0o077);
  const demo = process.argv.includes('--demo');
  // CLU-01: `npm run start:gateway` / `start:dispatcher` pass the role on the command line (ROLE wins).
  const roleArg = process.argv.find((a) => a.startsWith('--role='))?.slice('--role='.length);
  // The demo's simulators are loaded only for the demo.
  const demoKit = demo ? await import('../simulators/demo.ts') : null;
  const env = { ...process.env };
  if (roleArg && !env.ROLE) env.ROLE = roleArg;
  // The demo keeps its data apart from a real deployment's unless told otherwise.
  if (demo && !env.DATA_DIR) env.DATA_DIR = './data/demo';
  // The demo's logins are printed and well known: serve them on this machine only unless told otherwise.
  if (demo && !env.HTTP_HOST) env.HTTP_HOST = '127.0.0.1';
  // The demo's admin has a well-known password too, set on every start and printed with the other logins.
  if (demoKit && !env.ADMIN_PASSWORD) env.ADMIN_PASSWORD = demoKit.DEMO_ADMIN_PASSWORD;
  if (demo && !env.MQTT_HOST) env.MQTT_HOST = '127.0.0.1';
  // A folder the demo seeded serves the printed, well-known demo logins (README, Security): unless told
  // otherwise it is served on this machine only, with a warning; asked to serve it on a network address, the
  // start refuses. Use a fresh DATA_DIR for a real deployment.
  const demoSeeded = !demo && existsSync(join(env.DATA_DIR || './data', DEMO_MARKER_FILE));
  if (demoSeeded) {
    const open = (['HTTP_HOST', 'MQTT_HOST'] as const).filter((k) => env[k] && !isLoopback(env[k]!));
    if (open.length)
      throw new ConfigError([
        `${open.join(', ')}: DATA_DIR was seeded by the demo (${DEMO_MARKER_FILE}), whose logins are public; it is served on this machine only. Use a fresh DATA_DIR for a real deployment`,
      ]);
    env.HTTP_HOST ||= '127.0.0.1';
    env.MQTT_HOST ||= '127.0.0.1';
  }
  const config = loadConfig(env);
  const log = createLogger({ level: config.LOG_LEVEL });
  const priority = applyNice(niceFor(config.ROLE, config.PROCESS_NICE), log);
  // Simulated time only when asked for (CLOCK_SPEED / CLOCK_START); the system clock otherwise.
  const simulated = config.CLOCK_SPEED !== 1 || config.CLOCK_START !== undefined;
  const clock: Clock = simulated
    ? new ScaledClock(
        instant(config.CLOCK_START ? Date.parse(config.CLOCK_START) : Date.now()),
        config.CLOCK_SPEED,
        config.CLOCK_ANCHOR_MS,
      )
    : new SystemClock();
  // The demo seeds its community (and, into a fresh folder, its past week: DEMO-01) and writes its devices'
  // provisioning file before the rules start, so the rules begin past the seeded history.
  const plan = demoKit?.demoPlan();
  const devicesFile = join(config.DATA_DIR, DEMO_MARKER_FILE);
  const adminPassword = config.ADMIN_PASSWORD ?? demoKit?.DEMO_ADMIN_PASSWORD ?? '';
  const seed =
    demoKit && plan
      ? async (store: Store) => {
          const now = clock.now();
          await seedDemo(store, plan, {
            adminPassword,
            devicesFile,
            now,
            history: {
              events: demoKit.demoHistory(plan, { now, zone: config.TZ_COMMUNITY }),
              zone: config.TZ_COMMUNITY,
              shifts: { dayStart: config.DAY_SHIFT_START, nightStart: config.NIGHT_SHIFT_START },
            },
          });
        }
      : undefined;
  const service = new GuardianService({
    config,
    clock,
    log,
    consoleDir: join(root, 'console', 'public'),
    seed,
  });
  await service.start();

  let stopDemo: (() => Promise<void>) | null = null;
  const lines = ['', `Guardian 365 is running${config.ROLE === 'all' ? '' : ` (role: ${config.ROLE})`}`];
  if (config.ROLE === 'gateway') lines.push(`  health    http://localhost:${service.httpPort}/readyz`);
  else
    lines.push(
      `  console   http://localhost:${service.httpPort}/`,
      `  API docs  http://localhost:${service.httpPort}/docs`,
    );
  if (config.ROLE !== 'dispatcher') lines.push(`  MQTT      mqtt://localhost:${service.mqttPort}`);
  lines.push(`  data      ${config.DATABASE_URL ? withoutPassword(config.DATABASE_URL) : config.DATA_DIR}`);
  if (priority.nice !== 0 || priority.refused)
    lines.push(
      `  priority  nice ${priority.nice}${priority.refused ? ` (PROCESS_NICE=${config.PROCESS_NICE ?? 'unset'} refused: ${priority.refused})` : ' (PROCESS_NICE; CLU-12)'}`,
    );
  if (simulated)
    lines.push(
      `  clock     SIMULATED: ×${config.CLOCK_SPEED} from ${new Date(clock.now()).toISOString()} (CLOCK_SPEED, CLOCK_START)`,
    );
  const reset = `npm run staff:reset-password -- admin${config.DATA_DIR !== './data' ? ` (with DATA_DIR=${config.DATA_DIR})` : ''}`;
  if (service.generatedAdminPassword) {
    lines.push(
      `  admin login: admin / ${service.generatedAdminPassword}   (shown once; set ADMIN_PASSWORD to choose it)`,
    );
  } else if (!demo && service.adminAccount === 'created') {
    lines.push('  admin login: admin / the ADMIN_PASSWORD you set');
  } else if (!demo && service.adminAccount === 'exists') {
    lines.push(`  admin login: admin / the password set earlier   (forgotten? ${reset})`);
  } else if (!demo && service.adminAccount === 'passwordIgnored') {
    // ADMIN_PASSWORD chooses the first password only: a restart never reverts a password changed since.
    lines.push(
      `  admin login: admin / the password set earlier   (ADMIN_PASSWORD is ignored: the admin account exists; to reset it: ${reset})`,
    );
  }
  if (demoKit && plan) {
    // The service seeded the demo community and wrote its devices' provisioning file; the simulators read
    // that file and speak to the service only as devices and staff do (SIM-01).
    const d = await demoKit.startDemo({
      plan,
      devicesFile,
      clock,
      log: log.child({ module: 'demo' }),
      mqttPort: service.mqttPort,
      httpPort: service.httpPort,
      adminPassword,
    });
    stopDemo = d.stop;
    lines.push('', 'Demo community 阳光社区 seeded; simulated homes and responders are running. Logins:');
    for (const l of d.logins)
      lines.push(`  ${l.role.padEnd(12)} ${l.username.padEnd(12)} ${l.password}   ${l.note}`);
  }
  if (demoSeeded)
    lines.push(
      '',
      `WARNING: ${config.DATA_DIR} was seeded by the demo and its demo logins are public: served on 127.0.0.1 only.`,
      '         Use a fresh DATA_DIR for a real deployment.',
    );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // The service first: its gateway records no presence while shutting down, whereas the demo's devices
    // leaving first would each look like a device going offline (SPEC §5 DEVICE_OFFLINE).
    await service.stop();
    await stopDemo?.();
    log.flush();
    process.exit(0);
  };
  // Before the banner says "Press Ctrl-C": a Ctrl-C right after it must stop the service cleanly.
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  lines.push('', 'Press Ctrl-C to stop.', '');
  console.log(lines.join('\n'));
}

/** A database URL fit to print: its password left out. */
function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError) {
    for (const p of e.problems) console.error(`guardian365: cannot start: ${p}`);
  } else if (e instanceof PortInUseError || e instanceof DiskFullError) {
    console.error(`guardian365: cannot start: ${e.message}`);
  } else {
    console.error('guardian365: cannot start:', e);
  }
  process.exit(2);
});
