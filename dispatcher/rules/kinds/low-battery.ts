/**
 * LOW_BATTERY (RULE-09): battery at or below 15 % (or the household's threshold). Technical: a reading
 * back above the threshold plus a hysteresis clears it (RULE-13). A motion sensor whose dead battery is
 * replaced can see again: the silence clocks restart (RULE-10).
 */
import { batteryLow } from '../explain.ts';
import type { RuleHandler } from '../run.ts';
import { BATTERY_HYSTERESIS, DEAD_BATTERY_PERCENT } from '../settings.ts';

export const lowBattery: RuleHandler = {
  rule: 'LOW_BATTERY',
  onEvent(run, e) {
    const ev = e.logged.event;
    if (ev.type !== 'heartbeat' || ev.battery === undefined) return;
    const s = run.s;
    const id = e.logged.deviceId;
    const f = s.devices[id]!;
    if (f.batteryAt != null && e.ts < f.batteryAt) return; // late: a newer reading stands
    const threshold = run.set.lowBatteryPercent;
    const wasDead = f.battery !== null && f.battery <= DEAD_BATTERY_PERCENT;
    const low = f.low ? ev.battery <= threshold + BATTERY_HYSTERESIS : ev.battery <= threshold;
    s.devices[id] = { ...f, battery: ev.battery, batteryAt: e.ts, low };
    if (wasDead && ev.battery > DEAD_BATTERY_PERCENT && e.device?.kind === 'motion') s.quietFrom = e.heard;
    if (low && !f.low) {
      run.trigger(
        'LOW_BATTERY',
        e.heard,
        id,
        e.evidence(`battery ${ev.battery}%`),
        batteryLow(id, ev.battery, threshold),
      );
    } else if (!low && f.low && !Object.values(s.devices).some((x) => x.low)) {
      run.clear('LOW_BATTERY', id, e.heard, e.evidence(`battery back to ${ev.battery}%`));
    }
  },
};
