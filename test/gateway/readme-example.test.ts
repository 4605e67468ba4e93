/**
 * The README's own device examples, run as a newcomer runs them: each `mosquitto_pub` block of the README's
 * "Devices" section is parsed out of README.md and run by bash, with Debian's mosquitto_pub, against the
 * whole service on a loopback port (the port through MQTT_PORT, as the README says). Each is accepted, none
 * is flagged clock_skew, and none raises a technical alert (DEVICE_OFFLINE, LOW_BATTERY), although
 * mosquitto_pub ends every session with a clean DISCONNECT (SPEC §3, §5).
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SystemClock } from '../../kernel/clock.ts';
import { eventually, type Harness, startHarness } from '../helpers.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

/** The ```sh blocks of the README's "## Devices" section that publish with mosquitto_pub. */
function readmeExamples(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Devices');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .filter((b) => b.includes('mosquitto_pub'));
}

let h: Harness;
beforeAll(async () => {
  // The device's clock is the machine's (`date`): the service runs on the system clock, as deployed.
  h = await startHarness({ clock: new SystemClock(), grids: 1, perGrid: 1 });
});
afterAll(() => h?.close());

describe("the README's device examples", () => {
  const examples = readmeExamples();

  it('has a heartbeat and a fall example', () => {
    expect(examples.length).toBe(2);
    expect(examples[0]).toContain('"type":"heartbeat"');
    expect(examples[1]).toContain('"type":"fall"');
  });

  it.each(examples.map((e, i) => [i, e] as const))(
    'example %i runs as written: accepted, no clock_skew, no technical alert',
    async (_i, example) => {
      const identity = h.devices.find((d) => d.id === 'home-1-01-fall')!;
      const log = async () =>
        (await h.store.readEvents(0, 1_000_000)).filter((e) => e.deviceId === identity.id);
      const seen = (await log()).length;
      const rejected = await h.store.countEvents('rejected');

      await run('bash', ['-c', example], {
        env: { PATH: process.env.PATH ?? '', SECRET: identity.secret, MQTT_PORT: String(h.service.mqttPort) },
      });

      // The event, then the end of the session (a clean DISCONNECT) are in the log …
      const mine = await eventually(
        async () => {
          const all = (await log()).slice(seen);
          return all.some((e) => e.event.type === 'presence' && e.event.state === 'offline')
            ? all
            : undefined;
        },
        10_000,
        'the event and the end of the session in the log',
      );
      const published = mine.filter((e) => e.event.type !== 'presence');
      expect(published).toHaveLength(1);
      expect(published[0]!.flags).toEqual([]);
      expect(
        mine.find((e) => e.event.type === 'presence' && e.event.state === 'offline')?.event,
      ).toMatchObject({
        cause: 'disconnect',
      });
      expect(await h.store.countEvents('rejected')).toBe(rejected);
      // … and the rules have read past both.
      const last = mine.at(-1)!.seq;
      await eventually(() => h.service.pipeline.position >= last, 10_000, 'the rules past the session end');
      const alerts = await h.store.listAlerts({ householdId: 'home-1-01', limit: 100 });
      expect(alerts.filter((a) => a.severity === 'technical').map((a) => a.rule)).toEqual([]);
      if (published[0]!.event.type === 'fall') expect(alerts.map((a) => a.rule)).toContain('FALL');
      else expect(alerts).toEqual([]);
    },
  );
});
