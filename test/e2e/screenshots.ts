/**
 * Takes the README's screenshots from a real run: the service with the demo community on a temporary data
 * folder, Debian's Chromium at wall-screen and phone sizes.  npx tsx test/e2e/screenshots.ts
 */
import { join } from 'node:path';
import { GuardianService } from '../../dispatcher/service.ts';
import { SystemClock } from '../../kernel/clock.ts';
import { silentLogger } from '../../kernel/log.ts';
import { DEMO_PASSWORD, startDemo } from '../../simulators/demo.ts';
import { tempDir, testConfig } from '../helpers.ts';
import { launchBrowser } from './browser.ts';

const root = join(import.meta.dirname, '..', '..');
const dir = tempDir();
const clock = new SystemClock();
const log = silentLogger();
const service = new GuardianService({
  config: testConfig(dir.path),
  clock,
  log,
  consoleDir: join(root, 'console', 'public'),
});
await service.start();
const demo = await startDemo({
  store: service.store,
  clock,
  log,
  mqttPort: service.mqttPort,
  httpPort: service.httpPort,
  dataDir: dir.path,
  fallEvery: 8,
});
const wait = Number(process.argv[2] ?? 45);
console.log(`demo running; waiting ${wait} s for alerts to build up`);
await new Promise((r) => setTimeout(r, wait * 1000));

const browser = await launchBrowser();
const base = `http://127.0.0.1:${service.httpPort}`;
async function shot(user: string, file: string, viewport: { width: number; height: number }) {
  const page = await browser.newPage({ viewport });
  await page.goto(base);
  await page.fill('input[name=username]', user);
  await page.fill('input[name=password]', DEMO_PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForTimeout(2500);
  await page.screenshot({ path: join(root, 'docs', file) });
  await page.close();
  console.log(`docs/${file}`);
}
await shot('dispatcher', 'console-dispatch.png', { width: 1920, height: 1080 });
await shot('g1-worker', 'console-responder.png', { width: 360, height: 740 });
await browser.close();
await demo.stop();
await service.stop();
dir.remove();
process.exit(0);
