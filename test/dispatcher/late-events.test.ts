/**
 * A late message never invents what did not happen (SPEC §3, §5 "Time"): the whole service on loopback
 * ports with a real SQLite file, the home's devices publishing over MQTT with their own credentials and
 * their own clocks, time on the manual clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../kernel/clock.ts';
import { instant, minutes, seconds } from '../../kernel/time.ts';
import type { SimDevice } from '../../simulators/device.ts';
import { connectHome, type Harness, liveTo as liveToOf, rulesCaughtUp, startHarness } from '../helpers.ts';

const START = Date.parse('2026-03-10T10:00:00+08:00');
const HOME = 'home-1-01';
const dev = (what: string) => `${HOME}-${what}`;

const open: { close(): unknown }[] = [];
let h: Harness | undefined;

afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
  await h?.close();
  h = undefined;
});

const liveTo = (h: Harness, clock: ManualClock, devices: Map<string, SimDevice>, to: number) =>
  liveToOf(h, clock, devices.values(), to);

async function home(): Promise<{ clock: ManualClock; devices: Map<string, SimDevice> }> {
  const clock = new ManualClock(instant(START));
  h = await startHarness({ clock, grids: 1, perGrid: 1 });
  const devices = await connectHome(h, clock, HOME, open);
  for (const d of devices.values()) await d.send({ type: 'heartbeat', battery: 90 });
  await rulesCaughtUp(h);
  return { clock, devices };
}

const alertsOf = async (rule?: string) =>
  (await h!.store.listAlerts({ householdId: HOME, limit: 100 })).filter((a) => !rule || a.rule === rule);

describe('late device messages', () => {
  it('raises nothing for a bathroom motion delivered 70 s late after a living-room motion that came later', async () => {
    const { clock, devices } = await home();
    const inBathroom = START + minutes(1);
    // The resident walks from the bathroom to the living room; the bathroom sensor's link is down a while.
    await clock.advanceTo(instant(inBathroom + seconds(30)));
    await devices.get(dev('motion-living'))!.send({ type: 'motion', state: 'active', room: 'living' });
    await clock.advanceTo(instant(inBathroom + seconds(70)));
    await devices
      .get(dev('motion-bathroom'))!
      .send({ type: 'motion', state: 'active', room: 'bathroom' }, { ts: inBathroom });
    await rulesCaughtUp(h!);
    expect(h!.service.pipeline.homeState(HOME)).toMatchObject({
      lastMotionAt: inBathroom + seconds(30),
      lastMotionRoom: 'living',
    });

    // The resident sits in the living room: 40 min after either motion, nothing is raised.
    await liveTo(h!, clock, devices, START + minutes(50));
    expect(await alertsOf()).toEqual([]);

    // The bathroom rule is live: a bathroom motion in time is the last one, and 40 min later it is raised.
    const later = START + minutes(50);
    await devices.get(dev('motion-bathroom'))!.send({ type: 'motion', state: 'active', room: 'bathroom' });
    await liveTo(h!, clock, devices, later + minutes(40) - 1);
    expect(await alertsOf()).toEqual([]);
    await liveTo(h!, clock, devices, later + minutes(40));
    expect((await alertsOf()).map((a) => [a.rule, a.raisedAt])).toEqual([
      ['BATHROOM_DWELL', later + minutes(40)],
    ]);
  });

  it('runs a device clock 10 min fast on receive time, flagged clock_skew, as SPEC §3 says', async () => {
    const { clock, devices } = await home();
    const at = START + minutes(1);
    await clock.advanceTo(instant(at));
    await devices
      .get(dev('motion-bathroom'))!
      .send({ type: 'motion', state: 'active', room: 'bathroom' }, { ts: at + minutes(10) });
    await rulesCaughtUp(h!);
    const logged = (await h!.store.readEvents(0, 1000)).find((e) => e.event.type === 'motion')!;
    expect(logged.flags).toContain('clock_skew');
    expect(logged.ts).toBe(at);
    await liveTo(h!, clock, devices, at + minutes(40) - 1);
    expect(await alertsOf()).toEqual([]);
    await liveTo(h!, clock, devices, at + minutes(40));
    expect((await alertsOf()).map((a) => [a.rule, a.raisedAt])).toEqual([
      ['BATHROOM_DWELL', at + minutes(40)],
    ]);

    // A fall from a radar whose clock is 10 min fast is raised now, and its SLA runs from now.
    const fallAt = clock.now();
    await devices.get(dev('fall'))!.send({ type: 'fall', state: 'detected' }, { ts: fallAt + minutes(10) });
    await rulesCaughtUp(h!);
    const [fall] = await alertsOf('FALL');
    expect(fall?.raisedAt).toBe(fallAt);
    expect(fall?.onSiteDueAt).toBe(fallAt + minutes(15));
  });

  it('raises a fall delivered 3 min late at once, saying when it happened and how late it came', async () => {
    const { clock, devices } = await home();
    const fellAt = START + minutes(2);
    await clock.advanceTo(instant(fellAt + minutes(3)));
    await devices
      .get(dev('fall'))!
      .send({ type: 'fall', state: 'detected', room: 'bathroom' }, { ts: fellAt });
    await rulesCaughtUp(h!);
    const [fall] = await alertsOf('FALL');
    expect(fall?.raisedAt).toBe(fellAt + minutes(3));
    expect(fall?.evidence[0]?.at).toBe(fellAt);
    expect(fall?.explanation.en).toBe(
      'fall radar detected a fall in bathroom at 10:02; reported 3 min late, at 10:05',
    );
    expect(fall?.explanation.zh).toBe('10:02 跌倒雷达在卫生间检测到跌倒（10:05 才收到，延迟 3分钟）');
  });
});
