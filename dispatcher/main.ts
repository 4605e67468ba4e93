/**
 * Entry point: the only place that reads the environment, opens ports and handles signals.
 *
 *   npm start            the whole service on embedded defaults
 *   npm run demo         the same, plus a seeded demo community with simulated homes and responders
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Clock, ScaledClock, SystemClock } from '../kernel/clock.ts';
import { createLogger } from '../kernel/log.ts';
import { instant } from '../kernel/time.ts';
import { ConfigError, loadConfig } from './config.ts';
import { DiskFullError, GuardianService, PortInUseError } from './service.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// A bug that escapes every handler is logged; the process stays up, because stopping it would stop every
// alert. (Handlers that can fail log their own errors with context.)
process.on('unhandledRejection', (reason) => {
  console.error('guardian365: unhandled rejection (bug):', reason);
});

async function main(): Promise<void> {
  const demo = process.argv.includes('--demo');
  const env = { ...process.env };
  // The demo keeps its data apart from a real deployment's unless told otherwise.
  if (demo && !env.DATA_DIR) env.DATA_DIR = './data/demo';
  // The demo's logins are printed and well known: serve them on this machine only unless told otherwise.
  if (demo && !env.HTTP_HOST) env.HTTP_HOST = '127.0.0.1';
  if (demo && !env.MQTT_HOST) env.MQTT_HOST = '127.0.0.1';
  const config = loadConfig(env);
  const log = createLogger({ level: config.LOG_LEVEL });
  // Simulated time only when asked for (CLOCK_SPEED / CLOCK_START); the system clock otherwise.
  const simulated = config.CLOCK_SPEED !== 1 || config.CLOCK_START !== undefined;
  const clock: Clock = simulated
    ? new ScaledClock(
        instant(config.CLOCK_START ? Date.parse(config.CLOCK_START) : Date.now()),
        config.CLOCK_SPEED,
      )
    : new SystemClock();
  const service = new GuardianService({ config, clock, log, consoleDir: join(root, 'console', 'public') });
  await service.start();

  let stopDemo: (() => Promise<void>) | null = null;
  const lines = [
    '',
    'Guardian 365 is running',
    `  console   http://localhost:${service.httpPort}/`,
    `  API docs  http://localhost:${service.httpPort}/docs`,
    `  MQTT      mqtt://localhost:${service.mqttPort}`,
    `  data      ${config.DATABASE_URL ?? config.DATA_DIR}`,
  ];
  if (simulated)
    lines.push(
      `  clock     SIMULATED: ×${config.CLOCK_SPEED} from ${new Date(clock.now()).toISOString()} (CLOCK_SPEED, CLOCK_START)`,
    );
  if (service.generatedAdminPassword) {
    lines.push(
      `  admin login: admin / ${service.generatedAdminPassword}   (shown once; set ADMIN_PASSWORD to choose it)`,
    );
  }
  if (demo) {
    const { startDemo } = await import('../simulators/demo.ts');
    const d = await startDemo({
      store: service.store,
      clock,
      log: log.child({ module: 'demo' }),
      mqttPort: service.mqttPort,
      httpPort: service.httpPort,
      dataDir: config.DATA_DIR,
    });
    stopDemo = d.stop;
    lines.push('', 'Demo community 阳光社区 seeded; simulated homes and responders are running. Logins:');
    for (const l of d.logins)
      lines.push(`  ${l.role.padEnd(12)} ${l.username.padEnd(12)} ${l.password}   ${l.note}`);
  }
  lines.push('', 'Press Ctrl-C to stop.', '');
  console.log(lines.join('\n'));

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
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
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
