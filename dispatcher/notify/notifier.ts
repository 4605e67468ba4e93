/**
 * Notifications (SPEC §7) on every configured channel: live socket.io, the per-staff MQTT topic and an
 * HMAC-signed webhook. Every attempt is recorded; the webhook retries with back-off through the clock.
 */
import { createHmac } from 'node:crypto';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/log.ts';
import { seconds } from '../../kernel/time.ts';
import type { Alert } from '../alerts/model.ts';
import type { Bus } from '../bus.ts';
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
  reason: string;
}

/** One way to reach a person. `send` resolves when the channel took the message, rejects when it failed. */
export interface Channel {
  readonly name: string;
  send(staffId: string | null, payload: NotificationPayload): Promise<void>;
}

export interface NotifierDeps {
  store: Store;
  bus: Bus;
  clock: Clock;
  log: Logger;
  channels: Channel[];
}

export class Notifier {
  constructor(private readonly deps: NotifierDeps) {}

  /** Sends to every channel; never throws (a failed channel is recorded, not fatal). */
  async notify(staffIds: string[], payload: NotificationPayload): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (const staffId of staffIds) {
      for (const ch of this.deps.channels) jobs.push(this.attempt(ch, staffId, payload));
    }
    await Promise.all(jobs);
  }

  private async attempt(ch: Channel, staffId: string | null, payload: NotificationPayload): Promise<void> {
    let error: string | null = null;
    try {
      await ch.send(staffId, payload);
    } catch (e) {
      error = (e as Error).message ?? String(e);
      this.deps.log.warn(
        { channel: ch.name, staffId, alertId: payload.alertId, err: error },
        'notification failed',
      );
    }
    const rec = {
      alertId: payload.alertId,
      staffId,
      channel: ch.name,
      at: this.deps.clock.now(),
      ok: error === null,
      error,
    };
    await this.deps.store
      .recordDelivery(rec)
      .catch((e: unknown) => this.deps.log.error({ err: e }, 'cannot record delivery'));
    this.deps.bus.emit('delivery', rec);
  }
}

/** The MQTT channel: `g365/v1/staff/{staff}/alerts`, QoS 1, for a native app. */
export function mqttChannel(
  publish: (topic: string, payload: string) => Promise<void>,
  topicFor: (staff: string) => string,
): Channel {
  return {
    name: 'mqtt',
    send: async (staffId, payload) => {
      if (!staffId) return;
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
}

/**
 * Outbound webhook to bridge SMS or voice providers. Body: JSON; header `X-G365-Signature: sha256=<hex>`
 * over `<timestamp>.<body>` with `X-G365-Timestamp`, so a receiver can reject replays. Retries 1 s, 4 s, 16 s.
 */
export function webhookChannel(o: WebhookOptions): Channel {
  const attempts = o.attempts ?? 4;
  const post = async (body: string): Promise<void> => {
    const ts = String(o.clock.now());
    const sig = createHmac('sha256', o.secret).update(`${ts}.${body}`).digest('hex');
    const res = await fetch(o.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-g365-timestamp': ts,
        'x-g365-signature': `sha256=${sig}`,
      },
      body,
      signal: AbortSignal.timeout(o.timeoutMs ?? 5000),
    });
    if (!res.ok) throw new Error(`webhook answered HTTP ${res.status}`);
  };
  return {
    name: 'webhook',
    send: async (staffId, payload) => {
      const body = JSON.stringify({ staffId, ...payload });
      let lastError: unknown;
      for (let i = 0; i < attempts; i++) {
        if (i > 0) await new Promise<void>((r) => o.clock.after(seconds(4 ** (i - 1)), r));
        try {
          await post(body);
          return;
        } catch (e) {
          lastError = e;
        }
      }
      throw lastError instanceof Error ? lastError : new Error(String(lastError));
    },
  };
}
