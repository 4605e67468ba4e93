/**
 * What every route file needs (SPEC §8 Access, §11): the dependencies, the session cookie's name, the
 * request's staff member, scopes and the error that becomes an HTTP answer. Kept apart from app.ts, which
 * imports every route file, so no route file imports app.ts back.
 */
import type { FastifyRequest } from 'fastify';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/log.ts';
import { accessGrids, can, crossesCommunity, type Permission, screenGrids } from '../access.ts';
import type { AlertService } from '../alerts/service.ts';
import type { Auth } from '../auth.ts';
import type { Directory } from '../directory.ts';
import type { Metrics } from '../metrics.ts';
import type { Notifier } from '../notify/notifier.ts';
import type { PushSubscriptions } from '../notify/push.ts';
import type { Staff } from '../registry.ts';
import type { DutyWatch } from '../routing/duty-watch.ts';
import type { RulesConfig } from '../rules/settings.ts';
import type { Store } from '../store/store.ts';
import type { SystemHealth } from '../system-health.ts';
import { type IssueFacts, issueTexts, type Texts } from '../words.ts';
import type { OriginPolicy } from './origin.ts';

export const SESSION_COOKIE = 'g365_session';

declare module 'fastify' {
  interface FastifyRequest {
    staff: Staff | null;
    token: string | null;
  }
}

export interface PushDeps {
  publicKey: string;
  subscriptions: PushSubscriptions;
}

export interface ApiDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  auth: Auth;
  alerts: AlertService;
  directory: Directory;
  metrics: Metrics;
  /** Folder with the built console; not served when missing. */
  consoleDir?: string;
  /** Notification channels' health (dispatch routes). */
  notifier?: Notifier;
  /** Duty gaps and shift handover (dispatch routes). */
  dutyWatch?: DutyWatch;
  /** Ends a device's live MQTT session and forgets its cached login (after disable or secret rotation). */
  revokeDevice?: (deviceId: string) => void;
  /**
   * A staff member's rights or sessions changed (PATCH, import, logout): every live connection (socket.io,
   * staff MQTT) is checked against the sessions again at once — closed if its session ended, re-scoped to
   * the rights in force otherwise (also other desks', whose scope depends on who covers what).
   */
  staffChanged?: (staffIds: readonly string[]) => Promise<void>;
  ready: () => boolean;
  /** The MQTT port the gateway listens on (shown in the admin page's device example). */
  mqttPort?: () => number;
  /** The edge's faults (disk, event log, telemetry, logins): readiness reasons and the dispatch screen. */
  systemHealth?: SystemHealth;
  /** The deployment's rule thresholds (config RULES), for the baseline view's effective thresholds. */
  rules?: RulesConfig;
  /** Web Push: the VAPID public key and the subscriptions (push routes). */
  push?: PushDeps;
  /** The console's origin (PUBLIC_ORIGIN) and which reverse proxy to believe (TRUST_PROXY); see README. */
  security?: OriginPolicy & { trustProxy: boolean | string };
}

/** The grids whose alerts and notices this person's screens show (access.ts screenGrids); null: all. */
export async function screenScope(deps: Pick<ApiDeps, 'store'>, staff: Staff): Promise<string[] | null> {
  return screenGrids(staff, await deps.store.listGrids(), await deps.store.listStaff());
}

/** What one request may reach (SPEC §8 community walls, SEC-02): see access.ts accessGrids and crossesCommunity. */
export interface Scope {
  /** Grids this person may read and act on; null: all. */
  grids: string[] | null;
  has(gridId: string): boolean;
  /** Audits a read or action that reaches past the person's own communities (a community nobody follows). */
  auditCrossing(action: string, target: string, gridId: string): Promise<void>;
}

export async function accessScope(deps: Pick<ApiDeps, 'store' | 'clock'>, staff: Staff): Promise<Scope> {
  const [grids, everyone] = await Promise.all([deps.store.listGrids(), deps.store.listStaff()]);
  const allowed = accessGrids(staff, grids, everyone);
  return {
    grids: allowed,
    has: (gridId) => allowed === null || allowed.includes(gridId),
    auditCrossing: async (action, target, gridId) => {
      if (!crossesCommunity(staff, gridId, grids)) return;
      const community = grids.find((g) => g.id === gridId)?.community ?? null;
      await deps.store.audit({
        at: deps.clock.now(),
        actor: staff.id,
        action: `cross_community.${action}`,
        target,
        detail: { gridId, community },
      });
    },
  };
}

/** An expected refusal: becomes a JSON error with this status and code. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export const STATUS_BY_CODE: Record<string, number> = {
  not_found: 404,
  invalid_transition: 409,
  not_assignee: 403,
  conflict: 409,
  forbidden: 403,
};

export function requireStaff(req: FastifyRequest, perm?: Permission): Staff {
  if (!req.staff) throw new HttpError(401, 'unauthenticated', 'log in first');
  if (perm && !can(req.staff, perm))
    throw new HttpError(403, 'forbidden', `your role may not do this (${perm})`);
  return req.staff;
}

/**
 * What a refused request says to a person (WORDS-02): the first problem as `text` in both languages, and
 * every problem of the request in `problems`, each naming its field, so a form is fixed in one round.
 */
export function validationTexts(issues: IssueFacts[]): { text: Texts; problems: Texts[] } {
  const problems = issues.map(issueTexts);
  return { text: problems[0] ?? { zh: '请求无效', en: 'invalid request' }, problems };
}
