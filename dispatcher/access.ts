/**
 * Who may see and do what (SPEC §1, §8). Pure: decisions from the staff member's roles and grids.
 */
import { type Grid, RESPONDER_ROLES, type Staff, type StaffRole } from './registry.ts';

export type Permission =
  | 'alerts.read.all'
  | 'alerts.act.all'
  | 'alerts.respond'
  | 'households.read.all'
  | 'households.read.own'
  | 'households.sensitive'
  | 'registry.write'
  | 'registry.read'
  | 'reports.read'
  | 'audit.read';

export const PERMISSIONS: readonly Permission[] = [
  'alerts.read.all',
  'alerts.act.all',
  'alerts.respond',
  'households.read.all',
  'households.read.own',
  'households.sensitive',
  'registry.write',
  'registry.read',
  'reports.read',
  'audit.read',
];

const BY_ROLE: Record<StaffRole, Permission[]> = {
  admin: [
    'alerts.read.all',
    'alerts.act.all',
    'households.read.all',
    'households.sensitive',
    'registry.write',
    'registry.read',
    'reports.read',
    'audit.read',
  ],
  dispatcher: [
    'alerts.read.all',
    'alerts.act.all',
    'households.read.all',
    'households.sensitive',
    'registry.read',
  ],
  supervisor: ['alerts.read.all', 'households.read.all', 'registry.read', 'reports.read'],
  grid_worker: ['alerts.respond', 'households.read.own', 'households.sensitive'],
  social_worker: ['alerts.respond', 'households.read.own', 'households.sensitive'],
  building_leader: ['alerts.respond', 'households.read.own', 'households.sensitive'],
  volunteer: ['alerts.respond', 'households.read.own'],
  property_duty: ['alerts.respond', 'households.read.own', 'households.sensitive'],
};

export function can(staff: Pick<Staff, 'roles'>, p: Permission): boolean {
  return staff.roles.some((r) => BY_ROLE[r].includes(p));
}

export const isResponder = (staff: Pick<Staff, 'roles'>): boolean =>
  staff.roles.some((r) => RESPONDER_ROLES.includes(r));

/** Grids whose alerts and households this person may see: null means all. */
export function visibleGrids(staff: Pick<Staff, 'roles' | 'gridIds'>): string[] | null {
  if (can(staff, 'alerts.read.all')) return null;
  return staff.gridIds;
}

/**
 * The communities a dispatch role's screen follows (SPEC §7, issue 4 item 6): those of the grids it
 * covers, or every community (null) when it covers none. Grids that no longer exist leave nothing to follow:
 * then every community rather than none, so no alert goes unseen (SPEC §1). Null for responders too (they
 * are scoped by grid instead).
 */
export function dispatchCommunities(
  staff: Pick<Staff, 'roles' | 'gridIds'>,
  grids: readonly Pick<Grid, 'id' | 'community'>[],
): string[] | null {
  if (visibleGrids(staff) !== null || staff.gridIds.length === 0) return null;
  const mine = new Set(staff.gridIds);
  const communities = grids.filter((g) => mine.has(g.id)).map((g) => g.community);
  return communities.length === 0 ? null : [...new Set(communities)];
}

/**
 * The grids whose alerts and notices (duty gaps, handover) this person's screens show: a responder's
 * grids, the grids of a dispatcher's communities, or every grid (null) for a dispatcher who covers none.
 */
export function screenGrids(
  staff: Pick<Staff, 'roles' | 'gridIds'>,
  grids: readonly Pick<Grid, 'id' | 'community'>[],
): string[] | null {
  const communities = dispatchCommunities(staff, grids);
  if (communities === null) return visibleGrids(staff);
  return grids.filter((g) => communities.includes(g.community)).map((g) => g.id);
}

export function mayViewGrid(staff: Pick<Staff, 'roles' | 'gridIds'>, gridId: string): boolean {
  const grids = visibleGrids(staff);
  return grids === null || grids.includes(gridId);
}

/** Everything this person may do, for the console to decide which pages to show (the API still checks each). */
export function permissionsOf(staff: Pick<Staff, 'roles'>): Permission[] {
  return PERMISSIONS.filter((p) => can(staff, p));
}

/**
 * The household file (SPEC §4, §8): dispatch roles read every household, responders only those of the
 * grids they cover. Anyone else reads none.
 */
export function mayReadHousehold(staff: Pick<Staff, 'roles' | 'gridIds'>, gridId: string): boolean {
  if (can(staff, 'households.read.all')) return true;
  return can(staff, 'households.read.own') && staff.gridIds.includes(gridId);
}
