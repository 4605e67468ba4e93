/**
 * The words server and console must agree on, defined once: alert states and which are open (ALERT-01),
 * the outcomes a person records, staff roles and which of them respond (SEC-01), and the id grammar
 * (DEV-02). Plain values with no imports but the kernel's pattern, so the console's bundle can carry them
 * (it reads them through api/types.ts).
 */
export { ID_PATTERN, ID_RULE, ID_SOURCE } from '../kernel/id-pattern.ts';

export const ALERT_STATES = [
  'raised',
  'notified',
  'accepted',
  'en_route',
  'on_site',
  'resolved',
  'cancelled',
] as const;
export type AlertState = (typeof ALERT_STATES)[number];
export const OPEN_STATES: readonly AlertState[] = ['raised', 'notified', 'accepted', 'en_route', 'on_site'];
export const isOpen = (s: AlertState): boolean => OPEN_STATES.includes(s);

export const OUTCOMES = [
  'assisted',
  'ambulance',
  'false_alarm',
  'resident_away',
  'device_fault',
  'other',
  'auto_cleared',
] as const;
export type Outcome = (typeof OUTCOMES)[number];
/** What a person may record on resolving (RULE-13: `auto_cleared` is the service's own). */
export type PersonOutcome = Exclude<Outcome, 'auto_cleared'>;
export const PERSON_OUTCOMES = OUTCOMES.filter((o): o is PersonOutcome => o !== 'auto_cleared');

export const STAFF_ROLES = [
  'grid_worker',
  'social_worker',
  'building_leader',
  'volunteer',
  'property_duty',
  'dispatcher',
  'supervisor',
  'admin',
] as const;
export type StaffRole = (typeof STAFF_ROLES)[number];
/** The roles that go to a household (SPEC §1); only these are rostered and routed to. */
export const RESPONDER_ROLES: readonly StaffRole[] = [
  'grid_worker',
  'social_worker',
  'building_leader',
  'volunteer',
  'property_duty',
];
export const hasResponderRole = (roles: readonly StaffRole[]): boolean =>
  roles.some((r) => RESPONDER_ROLES.includes(r));
