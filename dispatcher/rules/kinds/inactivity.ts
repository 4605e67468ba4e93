/**
 * INACTIVITY (RULE-05): outside the night window, the resident at home, no motion anywhere for 4 h (or the
 * household's learned threshold for that hour, RULE-14). Once per quiet period.
 */

import { inactivityMs } from '../baseline.ts';
import { inactivityThreshold, noMotionSince } from '../explain.ts';
import { isNight, localMinute, nextLocal } from '../localtime.ts';
import { lateMotionAfter, movedBefore, type RuleHandler, type Run } from '../run.ts';

const hourOf = (run: Run, at: number): number => Math.floor(localMinute(at, run.ctx.zone) / 60);

export const inactivity: RuleHandler = {
  rule: 'INACTIVITY',
  deadlines(run, consider) {
    const s = run.s;
    const set = run.set;
    const zone = run.ctx.zone;
    if (s.lastMotionAt === null || s.presence === 'away') return;
    const anchor = run.quietAnchor();
    if (s.fired.inactivity === anchor || isNight(anchor, set.night, zone)) return;
    const t = inactivityMs(set, run.baseline(), hourOf(run, anchor));
    // INACTIVITY is a daytime rule (SPEC §5 "outside the night window"): a quiet period that runs into
    // the night is sleep, and the next morning belongs to NO_MORNING_ACTIVITY.
    if (anchor + t.ms < nextLocal(anchor, set.night.start, zone) || set.night.start === set.night.end)
      consider({
        at: anchor + t.ms,
        rule: 'INACTIVITY',
        episode: anchor,
        thresholdMs: t.ms,
        learned: t.learned,
      });
  },
  fire(run, d) {
    const s = run.s;
    const at = d.at;
    s.fired.inactivity = d.episode!;
    if (run.suspended(at) || s.presence === 'away') return;
    const last = s.lastMotionAt!;
    const usual = d.learned ? run.baseline()?.longestQuietByHour[hourOf(run, d.episode!)] : undefined;
    const what = noMotionSince(last, at, run.hhmm);
    if (run.heldBack('INACTIVITY', at, what)) return;
    run.trigger(
      'INACTIVITY',
      at,
      null,
      run.lastMotionEvidence(`no motion since ${run.hhmm(last)}`),
      inactivityThreshold(what, d.thresholdMs!, usual),
    );
  },
  onEvent(run, e) {
    // Heard late, from inside the quiet period this alert was raised for on time: the resident moved before.
    if (lateMotionAfter(run, e) === null) return;
    const anchor = run.quietAnchor();
    if (
      run.s.fired.inactivity === anchor &&
      e.ts > anchor &&
      e.ts < anchor + inactivityMs(run.set, run.baseline(), hourOf(run, anchor)).ms
    )
      movedBefore(run, 'INACTIVITY', e);
  },
};
