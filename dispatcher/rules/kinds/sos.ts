/** SOS (RULE-02): the help button is pressed. Critical, raised when the service heard of it. */
import { helpPressed, lateWords } from '../explain.ts';
import type { RuleHandler } from '../run.ts';

export const sos: RuleHandler = {
  rule: 'SOS',
  onEvent(run, e) {
    if (e.logged.event.type !== 'sos') return;
    run.trigger(
      'SOS',
      e.heard,
      e.logged.deviceId,
      e.evidence(`help button pressed in ${e.room}`),
      helpPressed(e.room, run.hhmm(e.ts), lateWords(e.ts, e.heard, e.late, run.hhmm)),
    );
  },
};
