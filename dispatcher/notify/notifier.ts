/**
 * Notifications (SPEC §7) on every configured channel: live socket.io, the per-staff MQTT topic and an
 * HMAC-signed webhook. Every attempt is recorded; the webhook retries with back-off through the clock.
 */
import { createHmac } from 'node:crypto';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/log.ts';
import { seconds } from '../../kernel/time.ts';
import type { Alert } from '../alerts/model.ts';
import type { Bus, ChannelHealth } from '../bus.ts';
import type { Store } from '../store/store.ts';

export interface NotificationPayload {
  alertId: string;
  rule: Alert['rule'];
  severity: Alert['severity'];
  state: Alert['state'];
  householdId: string;
  gridId: string;
  address: string;
  explanation: Alert['explanation'];
  raisedAt: number;
  onSiteDueAt: number | null;
  /** When the next escalation step falls due (a push message is worth holding until then), or null. */
  nextStepAt: number | null;
  reason: string;
  /**
   * Names this notice among the alert's notices: the same for every attempt and retry of it, also after a
   * restart re-sends it, so a bridge can drop a repeat (the webhook's idempotency key is made from it).
   */
  noticeId: string;
}

/** One way to reach a person. `send` resolves when the channel took the message, rejects when it failed. */
export interface Channel {
  readonly name: string;
  /**
   * `attempt` is told about each failed try that the channel will retry itself (the webhook's back-off),
   * so every attempt is recorded (SPEC §7), not only the final outcome.
   */
  send(staffId: string | null, payload: NotificationPayload, attempt?: AttemptReporter): Promise<void>;
}

export type AttemptReporter = (error: string) => void;

/**
 * The channel works but this person cannot be reached on it right now (no responder page open). Recorded as
 * a failed delivery, but it does not make the channel unhealthy.
 */
export class Unreachable extends Error {}

export type { ChannelHealth } from '../bus.ts';

/** Failures in a row after which a channel is shown as failing. */
export const FAILING_AFTER = 3;

export interface NotifierDeps {
  store: Store;
  bus: Bus;
  clock: Clock;
  log: Logger;
  channels: Channel[];
}

export class Notifier {
  private health = new Map<string, ChannelHealth>();

  constructor(private readonly deps: NotifierDeps) {
    for (const ch of deps.channels) this.health.set(ch.name, freshHealth(ch.name));
  }

  /**
   * Rebuilds each channel's health from the delivery attempts recorded since `since`, so a restart does
   * not hide a channel that was failing (the attempts are the truth, SPEC §7). Emits nothing.
   */
  async restore(since: number): Promise<void> {
    for (let cursor = since, page = 0; page < 100; page++) {
      const recs = await this.deps.store.listDeliveriesSince(cursor, 5000);
      for (const r of recs) {
        if (!this.health.has(r.channel) || r.delivered || (!r.ok && UNREACHABLE.has(r.error ?? ''))) continue;
        this.apply(this.health.get(r.channel)!, r.at, r.ok ? null : r.error);
      }
      if (recs.length < 5000) break;
      cursor = recs.at(-1)!.at + 1;
    }
  }

  /** Each channel's health since start, for the dispatch screen. */
  channelHealth(): ChannelHealth[] {
    return [...this.health.values()].map((h) => ({ ...h }));
  }

  /** Sends to every channel; never throws (a failed channel is recorded, not fatal). */
  async notify(staffIds: string[], payload: NotificationPayload): Promise<void> {
    await Promise.all(staffIds.map((staffId) => this.notifyOne(staffId, payload)));
  }

  /**
   * Every channel for one person. When none of them reached the person (no page open, no app, no phone
   * subscribed to push, the bridge failing), the dispatch room is told at once (NOTIFY-02): nobody else
   * knows that this responder will not hear of the alert.
   */
  private async notifyOne(staffId: string, payload: NotificationPayload): Promise<void> {
    const results = await Promise.all(this.deps.channels.map((ch) => this.attempt(ch, staffId, payload)));
    if (results.some((r) => r.error === null)) return;
    const at = this.deps.clock.now();
    this.deps.log.warn({ staffId, alertId: payload.alertId }, 'responder not reachable on any channel');
    this.deps.bus.emit('responderUnreachable', {
      alertId: payload.alertId,
      gridId: payload.gridId,
      staffId,
      at,
      reason: payload.reason,
      channels: results.map((r) => ({ channel: r.channel, error: r.error })),
    });
  }

  /**
   * A channel's own word that a message reached the person's device (the push service worker's receipt,
   * the page's acknowledgement): recorded beside the attempt, shown on the alert panel (NOTIFY-02).
   */
  async recordReceipt(alertId: string, staffId: string, channel: string): Promise<void> {
    const rec = {
      alertId,
      staffId,
      channel,
      at: this.deps.clock.now(),
      ok: true,
      error: null,
      delivered: true,
    };
    await this.deps.store.recordDelivery(rec);
    this.deps.bus.emit('delivery', rec);
  }

  private async attempt(
    ch: Channel,
    staffId: string | null,
    payload: NotificationPayload,
  ): Promise<{ channel: string; error: string | null }> {
    let error: string | null = null;
    let unreachable = false;
    const retried: Promise<void>[] = [];
    try {
      await ch.send(staffId, payload, (e) => {
        retried.push(this.record(ch.name, staffId, payload.alertId, e, false));
      });
    } catch (e) {
      error = (e as Error).message ?? String(e);
      unreachable = e instanceof Unreachable;
      if (!unreachable)
        this.deps.log.warn(
          { channel: ch.name, staffId, alertId: payload.alertId, err: error },
          'notification failed',
        );
    }
    await Promise.all(retried);
    await this.record(ch.name, staffId, payload.alertId, error, unreachable);
    return { channel: ch.name, error };
  }

  private async record(
    channel: string,
    staffId: string | null,
    alertId: string,
    error: string | null,
    unreachable: boolean,
  ): Promise<void> {
    const rec = { alertId, staffId, channel, at: this.deps.clock.now(), ok: error === null, error };
    await this.deps.store
      .recordDelivery(rec)
      .catch((e: unknown) => this.deps.log.error({ err: e }, 'cannot record delivery'));
    this.deps.bus.emit('delivery', rec);
    if (!unreachable) this.track(channel, rec.at, error);
  }

  private apply(h: ChannelHealth, at: number, error: string | null): void {
    h.attempts++;
    if (error === null) {
      h.consecutiveFailures = 0;
      h.lastOkAt = at;
    } else {
      h.failures++;
      h.consecutiveFailures++;
      h.lastFailureAt = at;
      h.lastError = error;
    }
    h.status = h.consecutiveFailures >= FAILING_AFTER ? 'failing' : 'ok';
  }

  private track(channel: string, at: number, error: string | null): void {
    const h = this.health.get(channel) ?? freshHealth(channel);
    this.health.set(channel, h);
    const before = h.status;
    this.apply(h, at, error);
    if (h.status !== before) {
      this.deps.log.warn({ channel, status: h.status }, 'notification channel health changed');
      this.deps.bus.emit('channelHealth', { ...h });
    }
  }
}

/** The error recorded when a responder has no page open (see Unreachable): not the channel's fault. */
export const UNREACHABLE_PAGE = 'no open responder page';
/** The error recorded when no app of this staff member listens on their MQTT topic (see Unreachable). */
export const UNREACHABLE_APP = 'no app subscribed';
/** The error recorded when a staff member has no phone subscribed to Web Push (see Unreachable). */
export const UNREACHABLE_PUSH = 'no push subscription';
/** The error recorded when every push subscription of the staff member was gone (404/410) and removed. */
export const PUSH_GONE = 'push subscription expired';
const UNREACHABLE = new Set([UNREACHABLE_PAGE, UNREACHABLE_APP, UNREACHABLE_PUSH, PUSH_GONE]);

function freshHealth(channel: string): ChannelHealth {
  return {
    channel,
    status: 'ok',
    consecutiveFailures: 0,
    attempts: 0,
    failures: 0,
    lastOkAt: null,
    lastFailureAt: null,
    lastError: null,
  };
}

/**
 * The MQTT channel: `g365/v1/staff/{staff}/alerts`, QoS 1, for a native app. A staff member with no app
 * listening (none connected and subscribed, no persistent session that keeps QoS 1 messages for it) is
 * recorded as unreachable, not as sent: a delivery shown as made must have reached someone's phone.
 */
export function mqttChannel(
  publish: (topic: string, payload: string) => Promise<void>,
  topicFor: (staff: string) => string,
  listening?: (staff: string) => Promise<boolean>,
): Channel {
  return {
    name: 'mqtt',
    send: async (staffId, payload) => {
      if (!staffId) return;
      if (listening && !(await listening(staffId))) throw new Unreachable(UNREACHABLE_APP);
      await publish(topicFor(staffId), JSON.stringify(payload));
    },
  };
}

export interface WebhookOptions {
  url: string;
  secret: string;
  clock: Clock;
  log: Logger;
  /** Attempts in all, including the first. */
  attempts?: number;
  timeoutMs?: number;
  /**
   * What a bridge needs beside the notice to send an SMS or place a call without looking anything up
   * (NOTIFY-05): the recipient and their phone, a short text in their language, the alert's link and an
   * idempotency key.
   */
  describe?: (staffId: string | null, payload: NotificationPayload) => Promise<WebhookExtras>;
}

export interface WebhookExtras {
  recipient: { staffId: string | null; name: string; phone: string } | null;
  lang: 'zh' | 'en';
  /** Fits one SMS: 70 characters in Chinese, 160 in English; the link goes beside it. */
  text: string;
  link: string;
  /** The same for every attempt and retry of one notice to one person. */
  idempotencyKey: string;
}

/**
 * Posts a JSON body to the deployment's webhook, signed (`X-G365-Signature: sha256=<hex>` over
 * `<timestamp>.<body>`, with `X-G365-Timestamp`, so a receiver can reject replays) and retried 1 s, 4 s,
 * 16 s on the clock. `attempt` hears of each failed try that is retried. Shared by the staff notices and
 * the family updates.
 */
export function webhookPoster(
  o: WebhookOptions,
): (body: string, idempotencyKey: string | null, attempt?: AttemptReporter) => Promise<void> {
  const attempts = o.attempts ?? 4;
  const post = async (body: string, key: string | null): Promise<void> => {
    const ts = String(o.clock.now());
    const sig = createHmac('sha256', o.secret).update(`${ts}.${body}`).digest('hex');
    const res = await fetch(o.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-g365-timestamp': ts,
        'x-g365-signature': `sha256=${sig}`,
        ...(key ? { 'idempotency-key': key } : {}),
      },
      body,
      signal: AbortSignal.timeout(o.timeoutMs ?? 5000),
    });
    if (!res.ok) throw new Error(`webhook answered HTTP ${res.status}`);
  };
  return async (body, key, attempt) => {
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      if (i > 0) {
        attempt?.(`attempt ${i} of ${attempts}: ${(lastError as Error).message ?? String(lastError)}`);
        await new Promise<void>((r) => o.clock.after(seconds(4 ** (i - 1)), r, 'webhook back-off'));
      }
      try {
        await post(body, key);
        return;
      } catch (e) {
        lastError = e;
      }
    }
    throw new Error(
      `attempt ${attempts} of ${attempts}: ${(lastError as Error).message ?? String(lastError)}`,
    );
  };
}

/** Outbound webhook to bridge SMS or voice providers: the notice, and what a bridge needs to send it. */
export function webhookChannel(o: WebhookOptions): Channel {
  const post = webhookPoster(o);
  return {
    name: 'webhook',
    send: async (staffId, payload, attempt) => {
      const extras = await o.describe?.(staffId, payload);
      const body = JSON.stringify({ kind: 'staff', staffId, ...payload, ...extras });
      await post(body, extras?.idempotencyKey ?? null, attempt);
    },
  };
}
