/**
 * Web Push (NOTIFY-03): the responder page is an installable web app whose service worker shows an alert
 * notice on a locked phone, through the push service of the phone's browser (RFC 8030), the message
 * encrypted for that subscription (RFC 8291) and signed with the deployment's VAPID key (RFC 8292). The
 * `web-push` library does the protocol; this file keeps the keys and subscriptions and makes it a channel.
 *
 * The VAPID key pair is generated on first start and kept in the store's settings, with the deployment's
 * data: a new key would orphan every subscription. Subscriptions are kept per staff member (a few phones
 * each); one the push service answers 404 or 410 for is gone and is removed (RFC 8030 §7.3).
 */
import { Agent } from 'node:https';
import webpush, { type PushSubscription, WebPushError } from 'web-push';
import type { Logger } from '../../kernel/log.ts';
import type { Store } from '../store/store.ts';
import {
  type Channel,
  type NotificationPayload,
  PUSH_GONE,
  UNREACHABLE_PUSH,
  Unreachable,
} from './notifier.ts';
import { type NoticeLang, noticeTitle, smsText } from './texts.ts';

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
}

export interface StoredSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
  /** The language of the page that subscribed: the notice is written in it. */
  lang: NoticeLang;
  createdAt: number;
}

/** Phones one staff member may have subscribed at once; the oldest is dropped beyond. */
export const MAX_SUBSCRIPTIONS = 5;
/** A push service that does not answer within this is a failed attempt (the notifier records it). */
const SEND_TIMEOUT_MS = 10_000;

const VAPID_KEY = 'push.vapid';
const subsKey = (staffId: string) => `push.subscriptions.${staffId}`;

/** The deployment's VAPID keys: read from the store, or generated and stored on the first start. */
export async function vapidKeys(store: Store): Promise<VapidKeys> {
  const saved = await store.getSetting(VAPID_KEY);
  if (saved) return JSON.parse(saved) as VapidKeys;
  const keys = webpush.generateVAPIDKeys();
  await store.setSetting(VAPID_KEY, JSON.stringify(keys));
  return keys;
}

/** Each staff member's push subscriptions, kept in the store's settings; changes per person are serial. */
export class PushSubscriptions {
  private chains = new Map<string, Promise<unknown>>();

  constructor(private readonly store: Store) {}

  async list(staffId: string): Promise<StoredSubscription[]> {
    const raw = await this.store.getSetting(subsKey(staffId));
    return raw ? (JSON.parse(raw) as StoredSubscription[]) : [];
  }

  /** Adds or refreshes one subscription (same endpoint = same phone). */
  add(staffId: string, sub: StoredSubscription): Promise<void> {
    return this.change(staffId, (subs) =>
      [...subs.filter((s) => s.endpoint !== sub.endpoint), sub].slice(-MAX_SUBSCRIPTIONS),
    );
  }

  /** Removes one phone's subscription; true when there was one. */
  async remove(staffId: string, endpoint: string): Promise<boolean> {
    let removed = false;
    await this.change(staffId, (subs) => {
      const left = subs.filter((s) => s.endpoint !== endpoint);
      removed = left.length !== subs.length;
      return left;
    });
    return removed;
  }

  /** Removes every subscription of a staff member (their rights ended). */
  clear(staffId: string): Promise<void> {
    return this.change(staffId, () => []);
  }

  private change(staffId: string, fn: (subs: StoredSubscription[]) => StoredSubscription[]): Promise<void> {
    const prev = this.chains.get(staffId) ?? Promise.resolve();
    const next = prev
      .catch(() => {})
      .then(async () => {
        const subs = fn(await this.list(staffId));
        await this.store.setSetting(subsKey(staffId), JSON.stringify(subs));
      });
    this.chains.set(staffId, next);
    void next.finally(() => {
      if (this.chains.get(staffId) === next) this.chains.delete(staffId);
    });
    return next;
  }
}

/** What the service worker receives (console/public/sw.js shows it). */
export interface PushMessage {
  alertId: string;
  rule: NotificationPayload['rule'];
  severity: NotificationPayload['severity'];
  title: string;
  body: string;
  /** The page to open on a tap: the responder page at this alert. */
  url: string;
  reason: string;
  raisedAt: number;
}

export interface WebPushOptions {
  keys: VapidKeys;
  /** VAPID `sub` claim: a mailto: or https: contact for the push services' operators. */
  subject: string;
  subscriptions: PushSubscriptions;
  log: Logger;
  /** Seconds the push service may hold the message while the phone is unreachable. */
  ttlFor: (p: NotificationPayload) => number;
  /** Extra certificate authorities to trust for push services (a private relay; the tests' own). */
  ca?: string;
}

/**
 * The push channel. Urgency `high` (RFC 8030 §5.3): a phone in power saving still wakes for it. A staff
 * member with no subscribed phone is unreachable on it, not a channel failure; one phone reached is enough.
 */
export function webPushChannel(o: WebPushOptions): Channel {
  const agent = o.ca ? new Agent({ ca: o.ca, keepAlive: true }) : undefined;
  return {
    name: 'push',
    send: async (staffId, p) => {
      if (!staffId) return;
      const subs = await o.subscriptions.list(staffId);
      if (subs.length === 0) throw new Unreachable(UNREACHABLE_PUSH);
      let reached = 0;
      let gone = 0;
      let lastError = '';
      await Promise.all(
        subs.map(async (sub) => {
          const message: PushMessage = {
            alertId: p.alertId,
            rule: p.rule,
            severity: p.severity,
            title: noticeTitle(sub.lang, p),
            body: `${smsText(sub.lang, p)}\n${p.explanation[sub.lang]}`,
            url: `/#/respond/${encodeURIComponent(p.alertId)}`,
            reason: p.reason,
            raisedAt: p.raisedAt,
          };
          try {
            await webpush.sendNotification(sub as PushSubscription, JSON.stringify(message), {
              vapidDetails: {
                subject: o.subject,
                publicKey: o.keys.publicKey,
                privateKey: o.keys.privateKey,
              },
              TTL: Math.max(0, Math.round(o.ttlFor(p))),
              urgency: 'high',
              timeout: SEND_TIMEOUT_MS,
              ...(agent ? { agent } : {}),
            });
            reached++;
          } catch (e) {
            if (e instanceof WebPushError && (e.statusCode === 404 || e.statusCode === 410)) {
              gone++;
              await o.subscriptions.remove(staffId, sub.endpoint);
              o.log.info({ staffId, status: e.statusCode }, 'push subscription gone; removed');
              return;
            }
            lastError =
              e instanceof WebPushError
                ? `push service answered HTTP ${e.statusCode}`
                : `push service unreachable: ${(e as Error).message}`;
          }
        }),
      );
      if (reached > 0) return;
      if (gone === subs.length) throw new Unreachable(PUSH_GONE);
      throw new Error(lastError);
    },
  };
}
