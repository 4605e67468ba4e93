/**
 * Every rule of SPEC §5, one file each: a new rule is one new file and one line here.
 *
 * The order matters only for ties and is kept stable so a replay yields the same triggers in the same
 * order (RULE-14): deadlines due at the same millisecond fire in this order, and an event's triggers are
 * listed in it (after DEVICE_OFFLINE's sign of life, which every event is first).
 */
import type { RuleHandler } from '../run.ts';
import { bathroomDwell } from './bathroom-dwell.ts';
import { deviceOffline } from './device-offline.ts';
import { doorLeftOpen } from './door-left-open.ts';
import { fall } from './fall.ts';
import { inactivity } from './inactivity.ts';
import { lowBattery } from './low-battery.ts';
import { nightExit } from './night-exit.ts';
import { noMorningActivity } from './no-morning-activity.ts';
import { sos } from './sos.ts';

export const RULE_HANDLERS: readonly RuleHandler[] = [
  fall,
  sos,
  nightExit,
  doorLeftOpen,
  bathroomDwell,
  inactivity,
  noMorningActivity,
  deviceOffline,
  lowBattery,
];
