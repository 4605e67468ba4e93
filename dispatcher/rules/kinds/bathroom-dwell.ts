/**
 * BATHROOM_DWELL (RULE-06): the last motion (by event time) was in the bathroom and nothing moves anywhere
 * for 40 min. Once per last motion; not while the resident is away or went out through the door since.
 */
import { bathroomQuiet, withThreshold } from '../explain.ts';
import { lateMotionAfter, movedBefore, type RuleHandler } from '../run.ts';

export const bathroomDwell: RuleHandler = {
  rule: 'BATHROOM_DWELL',
  deadlines(run, consider) {
    const s = run.s;
    const last = s.lastMotionAt;
    if (last === null || s.presence === 'away') return;
    if (
      s.lastMotionRoom === 'bathroom' &&
      s.fired.bathroom !== last &&
      !(s.lastDoorAt !== null && s.lastDoorAt > last)
    )
      consider({
        at: last + run.set.bathroomMs,
        rule: 'BATHROOM_DWELL',
        episode: last,
        thresholdMs: run.set.bathroomMs,
      });
  },
  fire(run, d) {
    const s = run.s;
    const at = d.at;
    s.fired.bathroom = d.episode!;
    if (run.suspended(at)) return;
    const last = s.lastMotionAt!;
    const what = bathroomQuiet(last, at, run.hhmm);
    if (run.heldBack('BATHROOM_DWELL', at, what)) return;
    run.trigger(
      'BATHROOM_DWELL',
      at,
      null,
      run.lastMotionEvidence(`last motion in the bathroom at ${run.hhmm(last)}`),
      withThreshold(what, run.set.bathroomMs),
    );
  },
  onEvent(run, e) {
    // Heard late, from inside the quiet period this alert was raised for on time: the resident moved before.
    const prev = lateMotionAfter(run, e);
    if (prev !== null && run.s.fired.bathroom === prev && e.ts < prev + run.set.bathroomMs)
      movedBefore(run, 'BATHROOM_DWELL', e);
  },
};
