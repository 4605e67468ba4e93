/**
 * FALL (RULE-01): a fall is detected. Critical, raised when the service heard of it. What follows (the
 * radar clearing it, the resident moving) is evidence on the open alert and never closes it (RULE-13).
 */
import { formatDuration, ms } from '../../../kernel/time.ts';
import { fallDetected, lateWords } from '../explain.ts';
import { motionRoom, type RuleHandler } from '../run.ts';

export const fall: RuleHandler = {
  rule: 'FALL',
  onEvent(run, e) {
    const s = run.s;
    const ev = e.logged.event;
    if (ev.type === 'fall') {
      const where = ev.room ?? e.room;
      if (ev.state === 'detected') {
        s.lastFallAt = Math.max(s.lastFallAt ?? e.ts, e.ts);
        const conf = ev.confidence === undefined ? '' : ` (${Math.round(ev.confidence * 100)}%)`;
        run.trigger(
          'FALL',
          e.heard,
          e.logged.deviceId,
          e.evidence(`fall detected in ${where}${conf}`),
          fallDetected(where, conf, run.hhmm(e.ts), lateWords(e.ts, e.heard, e.late, run.hhmm)),
        );
      } else if (s.lastFallAt !== null) {
        run.attach(
          'FALL',
          e.heard,
          e.logged.deviceId,
          e.evidence(`fall radar reports the fall cleared (${where})`),
        );
      }
      return;
    }
    if (ev.type === 'motion' && ev.state === 'active' && s.lastFallAt !== null && e.ts > s.lastFallAt) {
      run.attach(
        'FALL',
        e.heard,
        e.logged.deviceId,
        e.evidence(
          `resident moved after the fall (${motionRoom(e)}, ${formatDuration(ms(e.ts - s.lastFallAt))} later)`,
        ),
      );
      s.lastFallAt = null;
    }
  },
};
