/**
 * NO_MORNING_ACTIVITY (RULE-04): no motion by wake time + 90 min (or the household's learned wake time,
 * RULE-14). Checked once a day at that local minute, in the community's zone.
 */
import { morningMinute } from '../baseline.ts';
import { morning } from '../explain.ts';
import { nextLocal, previousLocal } from '../localtime.ts';
import type { RuleHandler } from '../run.ts';

const HOUR = 3_600_000;

export const noMorningActivity: RuleHandler = {
  rule: 'NO_MORNING_ACTIVITY',
  deadlines(run, consider) {
    if (run.s.morningDueAt !== null) consider({ at: run.s.morningDueAt, rule: 'NO_MORNING_ACTIVITY' });
  },
  fire(run, d) {
    const s = run.s;
    const set = run.set;
    const zone = run.ctx.zone;
    const at = d.at;
    const minute = s.morningMinute ?? morningMinute(set, run.baseline()).minute;
    s.morningDueAt = nextLocal(at, Math.min(minute, 1439), zone);
    if (run.suspended(at) || !run.hasMotionSensor()) return;
    // Morning activity is motion since the night ended (or, when the wake time is set before the night
    // ends, in the two hours before it).
    const nightEnd = previousLocal(at, set.night.end, zone);
    const windowStart = at - nightEnd <= 12 * HOUR ? nightEnd : at - 2 * HOUR;
    // Out this morning (SPEC §5 presence: normal, pauses the activity rules). "Away" since before the
    // night is not: nobody came home overnight, or someone lies still behind a closed door.
    if (s.presence === 'away' && (s.presenceAt ?? 0) >= windowStart) return;
    const last = s.lastMotionAt;
    if (last !== null && last >= windowStart) return;
    const m = morningMinute(set, run.baseline());
    const b = run.baseline();
    const said = morning(
      at,
      last,
      m.learned && b?.usualUpBy != null
        ? { learnedUpBy: b.usualUpBy }
        : { wake: set.wake, graceMs: set.morningGraceMs },
      run.hhmm,
    );
    if (run.heldBack('NO_MORNING_ACTIVITY', at, said.what)) return;
    run.trigger(
      'NO_MORNING_ACTIVITY',
      at,
      null,
      last === null
        ? { seq: null, deviceId: null, type: 'morning', at, summary: 'no motion this morning' }
        : run.lastMotionEvidence(`no motion since ${run.hhmm(last)}`),
      said.explanation,
    );
  },
};
