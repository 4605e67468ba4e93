/**
 * NIGHT_EXIT (RULE-03) and the home's "away" presence (RULE-10): the entrance door opened and closed and
 * nothing moved inside for 10 min. By day the resident is away, which pauses the activity rules; in the
 * night window it raises NIGHT_EXIT. The exit episode itself (door closed, waiting for motion inside) is
 * one of the home's shared facts (`engine.ts`).
 */
import { nightExit as words } from '../explain.ts';
import type { RuleHandler } from '../run.ts';

export const nightExit: RuleHandler = {
  rule: 'NIGHT_EXIT',
  deadlines(run, consider) {
    const exit = run.s.exit;
    if (!exit) return;
    const thresholdMs = exit.night ? run.set.nightExitMs : run.set.awayAfterMs;
    consider({ at: exit.closedAt + thresholdMs, rule: 'NIGHT_EXIT', thresholdMs });
  },
  fire(run, d) {
    const s = run.s;
    const at = d.at;
    const exit = s.exit!;
    s.exit = null;
    s.presence = 'away';
    s.presenceAt = at;
    if (!exit.night || run.suspended(at)) return;
    const said = words(exit, run.set.night, run.set.nightExitMs, run.hhmm);
    if (run.heldBack('NIGHT_EXIT', at, said.what)) return;
    const doorId = run.doorDevice();
    run.trigger(
      'NIGHT_EXIT',
      at,
      doorId,
      { seq: exit.seq, deviceId: doorId, type: 'door', at: exit.closedAt, summary: said.summary },
      said.explanation,
    );
  },
};
