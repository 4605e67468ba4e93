/**
 * Who may see and do what (SPEC §1, §8). Pure: decisions from the staff member's roles and grids.
 */
import type { Grid, Staff, StaffRole } from './registry.ts';
import { hasResponderRole } from './terms.ts';

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

export const isResponder = (staff: Pick<Staff, 'roles'>): boolean => hasResponderRole(staff.roles);

/** Grids whose alerts and households this person may see: null means all. */
export function visibleGrids(staff: Pick<Staff, 'roles' | 'gridIds'>): string[] | null {
  if (can(staff, 'alerts.read.all')) return null;
  return staff.gridIds;
}

/** Roles whose work is the dispatch room's screen (an admin's is the system). */
const DESK_ROLES: StaffRole[] = ['dispatcher', 'supervisor'];

/**
 * The communities a dispatch role's screen follows (SEC-02): those of the grids it
 * covers, or every community (null) when it covers none. Grids that no longer exist leave nothing to
 * follow: then every community rather than none. And a community that no desk follows (no enabled
 * dispatcher or supervisor covers it, and none covers every community) is followed by every desk: an
 * alert seen by nobody is the worst bug (SPEC §1). Null for responders (they are scoped by grid instead).
 */
export function dispatchCommunities(
  staff: Pick<Staff, 'roles' | 'gridIds'>,
  grids: readonly Pick<Grid, 'id' | 'community'>[],
  everyone: readonly Pick<Staff, 'roles' | 'gridIds' | 'disabled'>[],
): string[] | null {
  if (visibleGrids(staff) !== null || staff.gridIds.length === 0) return null;
  const communityOf = new Map(grids.map((g) => [g.id, g.community]));
  const follows = (p: Pick<Staff, 'gridIds'>) =>
    p.gridIds.flatMap((id) => (communityOf.has(id) ? [communityOf.get(id)!] : []));
  const mine = follows(staff);
  if (mine.length === 0) return null;
  const desks = everyone.filter((p) => !p.disabled && p.roles.some((r) => DESK_ROLES.includes(r)));
  // A desk of every community (no grid, or grids that are all gone) sees the rest.
  if (desks.some((p) => follows(p).length === 0)) return [...new Set(mine)];
  const followed = new Set(desks.flatMap(follows));
  const unfollowed = grids.map((g) => g.community).filter((c) => !followed.has(c));
  return [...new Set([...mine, ...unfollowed])];
}

/**
 * The grids whose alerts and notices (duty gaps, handover) this person's screens show: a responder's
 * grids, the grids of a dispatcher's communities, or every grid (null) for a dispatcher who covers none.
 */
export function screenGrids(
  staff: Pick<Staff, 'roles' | 'gridIds'>,
  grids: readonly Pick<Grid, 'id' | 'community'>[],
  everyone: readonly Pick<Staff, 'roles' | 'gridIds' | 'disabled'>[],
): string[] | null {
  const communities = dispatchCommunities(staff, grids, everyone);
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

/**
 * SPEC §8 Access, SEC-02: the grids whose households, devices, timelines, coverage, duty, reports and alerts this
 * person may read and act on (null: all). A community's staff see their community only: a responder their
 * grids; a dispatcher or supervisor who covers grids the grids of those grids' communities, plus those of
 * any community no desk follows (dispatchCommunities: an alert nobody watches is the worst bug); a
 * street-level desk (covers no grid) and an admin (who keeps the registry) see all.
 */
export function accessGrids(
  staff: Pick<Staff, 'roles' | 'gridIds'>,
  grids: readonly Pick<Grid, 'id' | 'community'>[],
  everyone: readonly Pick<Staff, 'roles' | 'gridIds' | 'disabled'>[],
): string[] | null {
  if (staff.roles.includes('admin')) return null;
  return screenGrids(staff, grids, everyone);
}

/**
 * Whether acting on (or reading) something of this grid crosses a community wall: the person is a desk of
 * some communities and the grid is of another one (reached only because nobody follows it). Such actions
 * are audited as cross-community.
 */
export function crossesCommunity(
  staff: Pick<Staff, 'roles' | 'gridIds'>,
  gridId: string,
  grids: readonly Pick<Grid, 'id' | 'community'>[],
): boolean {
  if (staff.roles.includes('admin') || visibleGrids(staff) !== null || staff.gridIds.length === 0)
    return false;
  const communityOf = new Map(grids.map((g) => [g.id, g.community]));
  const mine = new Set(staff.gridIds.flatMap((g) => (communityOf.has(g) ? [communityOf.get(g)!] : [])));
  return mine.size > 0 && !mine.has(communityOf.get(gridId) ?? '');
}
