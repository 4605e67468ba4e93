/** DOOR_LEFT_OPEN (RULE-07): the entrance door stays open for 30 min; once per opening. */
import { doorOpenSince } from '../explain.ts';
import type { RuleHandler } from '../run.ts';

export const doorLeftOpen: RuleHandler = {
  rule: 'DOOR_LEFT_OPEN',
  deadlines(run, consider) {
    const s = run.s;
    if (s.door?.open && s.fired.door !== s.door.at)
      consider({
        at: s.door.at + run.set.doorOpenMs,
        rule: 'DOOR_LEFT_OPEN',
        episode: s.door.at,
        thresholdMs: run.set.doorOpenMs,
      });
  },
  fire(run, d) {
    const s = run.s;
    s.fired.door = d.episode!;
    const since = s.door!.at;
    const doorId = run.doorDevice();
    run.trigger(
      'DOOR_LEFT_OPEN',
      d.at,
      doorId,
      {
        seq: s.door!.seq,
        deviceId: doorId,
        type: 'door',
        at: since,
        summary: `entrance door open since ${run.hhmm(since)}`,
      },
      doorOpenSince(since, d.at, run.set.doorOpenMs, run.hhmm),
    );
  },
};
