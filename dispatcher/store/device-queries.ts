/**
 * Devices across households as queries (SPEC §3 device health, §8 the dispatch screen): the admin's device
 * list with its filters and the dispatch screen's health panel are answered by the database, not by reading
 * every device into memory (a district holds ~800,000). One SQL text for both backends: they differ only in
 * placeholders and in how a set of grids is tested, which each backend passes in. Booleans are tested as
 * `d.online` / `NOT d.online`, which both read (SQLite's 0/1, PostgreSQL's booleans).
 */
import { deviceFrom, type Row } from './rows.ts';
import type { DeviceHealthCounts, DeviceQuery, DeviceRow } from './store.ts';

export type { DeviceHealthCounts, DeviceQuery, DeviceRow };

/** A placeholder for a value, and a test that `h.grid_id` is in a set of grids. */
export interface SqlDialect {
  arg: (v: unknown) => string;
  inGrids: (ids: string[]) => string;
}

function scope(q: Pick<DeviceQuery, 'gridIds' | 'grid' | 'homeId'>, s: SqlDialect): string[] {
  const where = ['d.retired_at IS NULL', 'h.retired_at IS NULL'];
  if (q.gridIds) where.push(s.inGrids(q.gridIds));
  if (q.grid !== undefined) where.push(`h.grid_id = ${s.arg(q.grid)}`);
  if (q.homeId !== undefined) where.push(`d.home_id = ${s.arg(q.homeId)}`);
  return where;
}

const low = (s: SqlDialect, level: number) => `(d.battery IS NOT NULL AND d.battery <= ${s.arg(level)})`;

function selection(q: DeviceQuery, s: SqlDialect): string | null {
  switch (q.select) {
    case undefined:
      return null;
    case 'offline':
      return 'NOT d.online AND NOT d.disabled AND d.last_seen_at IS NOT NULL';
    case 'low_battery':
      return low(s, q.lowBattery);
    case 'rejecting':
      return 'd.rejected_count > 0';
    case 'never_seen':
      return 'd.last_seen_at IS NULL';
    case 'disabled':
      return 'd.disabled';
    case 'problems':
      return `NOT d.disabled AND (NOT d.online OR ${low(s, q.lowBattery)} OR d.rejected_count > 0)`;
    case 'unmapped_room':
      return 'NOT d.disabled AND d.room_text IS NOT NULL';
  }
}

/** The devices a query selects, with their household's grid and address, at most `limit`. */
export function deviceRowsSql(q: DeviceQuery, s: SqlDialect): string {
  const where = scope(q, s);
  const chosen = selection(q, s);
  if (chosen) where.push(`(${chosen})`);
  // The dispatch screen's list: offline first, then low battery, then by messages rejected.
  const order =
    q.select === 'problems'
      ? `d.online, CASE WHEN ${low(s, q.lowBattery)} THEN 0 ELSE 1 END, d.rejected_count DESC, d.id`
      : 'd.id';
  return `SELECT d.*, h.grid_id AS h_grid_id, h.building AS h_building, h.unit AS h_unit, h.room AS h_room
    FROM devices d JOIN households h ON h.id = d.home_id
    WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ${s.arg(q.limit)}`;
}

/** The dispatch screen's device health figures over the enabled devices in scope. */
export function deviceCountsSql(q: Pick<DeviceQuery, 'gridIds' | 'lowBattery'>, s: SqlDialect): string {
  // Values are bound in the order their placeholders appear (SQLite's `?`): the select list first.
  const isLow = low(s, q.lowBattery);
  const where = [...scope(q, s), 'NOT d.disabled'];
  return `SELECT count(*) AS total,
      coalesce(sum(CASE WHEN d.online THEN 1 ELSE 0 END), 0) AS online,
      coalesce(sum(CASE WHEN ${isLow} THEN 1 ELSE 0 END), 0) AS low_battery,
      coalesce(sum(CASE WHEN d.rejected_count > 0 THEN 1 ELSE 0 END), 0) AS rejecting
    FROM devices d JOIN households h ON h.id = d.home_id WHERE ${where.join(' AND ')}`;
}

export function deviceRowFrom(r: Row): DeviceRow {
  return {
    ...deviceFrom(r),
    gridId: String(r.h_grid_id),
    address: { building: String(r.h_building), unit: String(r.h_unit), room: String(r.h_room) },
  };
}

export function deviceCountsFrom(r: Row | undefined): DeviceHealthCounts {
  const n = (v: unknown) => Number(v ?? 0);
  const total = n(r?.total);
  const online = n(r?.online);
  return {
    total,
    online,
    offline: total - online,
    lowBattery: n(r?.low_battery),
    rejecting: n(r?.rejecting),
  };
}

/** SQLite: `?` placeholders; a set of grids as an IN list (never empty: an empty scope matches nothing). */
export const sqliteDialect = (args: unknown[]): SqlDialect => ({
  arg: (v) => {
    args.push(v);
    return '?';
  },
  inGrids: (ids) => {
    args.push(...ids);
    return ids.length ? `h.grid_id IN (${ids.map(() => '?').join(', ')})` : '0';
  },
});

/** PostgreSQL: `$n` placeholders; a set of grids as one array parameter. */
export const pgDialect = (args: unknown[]): SqlDialect => {
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  return { arg, inGrids: (ids) => `h.grid_id = ANY(${arg(ids)}::text[])` };
};
