/**
 * Family updates (NOTIFY-04): a household may have its emergency contacts told, through the deployment's
 * webhook, when a safety alert is raised, when someone is on the way and when it is resolved. Opt-in per
 * contact (`updates: true` in the household file, each change audited), in the contacts' order, with
 * reassuring words and nothing from the access notes. Technical alerts are never sent to a family.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/log.ts';
import { type Alert, isSafety } from '../alerts/model.ts';
import type { Bus } from '../bus.ts';
import type { Directory } from '../directory.ts';
import type { Household } from '../registry.ts';
import type { Store } from '../store/store.ts';
import type { webhookPoster } from './notifier.ts';
import { type FamilyStage, familyText, type NoticeLang } from './texts.ts';

export interface FamilyNotifierDeps {
  bus: Bus;
  store: Store;
  directory: Directory;
  clock: Clock;
  log: Logger;
  post: ReturnType<typeof webhookPoster>;
  lang: NoticeLang;
}

/** The channel name family updates are recorded under (the alert panel shows them apart). */
export const FAMILY_CHANNEL = 'family';

const STAGE_OF: Record<string, FamilyStage> = {
  raised: 'raised',
  'en-route': 'en_route',
  resolve: 'resolved',
};

export class FamilyNotifier {
  private unsubscribe: (() => void) | null = null;
  private inFlight = new Set<Promise<void>>();

  constructor(private readonly deps: FamilyNotifierDeps) {}

  start(): void {
    this.unsubscribe = this.deps.bus.on('alertChanged', ({ alert, action }) => {
      const stage = STAGE_OF[action];
      if (!stage || !isSafety(alert.severity)) return;
      const job = this.tell(alert, stage).catch((e: unknown) =>
        this.deps.log.error({ err: e, alertId: alert.id, stage }, 'family update failed'),
      );
      this.inFlight.add(job);
      void job.finally(() => this.inFlight.delete(job));
    });
  }

  /** Stops listening and lets updates already on their way finish. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    await Promise.all([...this.inFlight]);
  }

  private async tell(alert: Alert, stage: FamilyStage): Promise<void> {
    const home = await this.deps.directory.home(alert.householdId);
    if (!home) return;
    const resident = home.household.residents[0]?.name ?? '';
    const contacts = home.household.contacts
      .map((c, index) => ({ ...c, index }))
      .filter((c) => c.updates === true);
    // In the household file's order: the first contact hears first.
    for (const c of contacts) {
      const idempotencyKey = createHash('sha256')
        .update(`${alert.id}/family/${c.index}/${stage}`)
        .digest('hex')
        .slice(0, 32);
      const body = JSON.stringify({
        kind: 'family',
        alertId: alert.id,
        householdId: alert.householdId,
        stage,
        recipient: { name: c.name, relation: c.relation ?? null, phone: c.phone },
        lang: this.deps.lang,
        text: familyText(this.deps.lang, stage, alert, resident),
        idempotencyKey,
      });
      let error: string | null = null;
      try {
        await this.deps.post(body, idempotencyKey);
      } catch (e) {
        error = (e as Error).message;
        this.deps.log.warn({ alertId: alert.id, stage, contact: c.index }, 'family update not delivered');
      }
      const rec = {
        alertId: alert.id,
        staffId: null,
        channel: FAMILY_CHANNEL,
        at: this.deps.clock.now(),
        ok: error === null,
        error,
      };
      await this.deps.store.recordDelivery(rec);
      this.deps.bus.emit('delivery', rec);
    }
  }
}

/**
 * The contacts whose opt-in to family updates a household edit changes (by position): each change is
 * audited (NOTIFY-04), whichever path made it (the household form, an import).
 */
export function familyOptInChanges(
  before: Pick<Household, 'contacts'> | null,
  after: Pick<Household, 'contacts'>,
): { contact: number; updates: boolean }[] {
  const changes: { contact: number; updates: boolean }[] = [];
  const n = Math.max(before?.contacts.length ?? 0, after.contacts.length);
  for (let i = 0; i < n; i++) {
    const was = before?.contacts[i]?.updates === true;
    const now = after.contacts[i]?.updates === true;
    if (was !== now) changes.push({ contact: i, updates: now });
  }
  return changes;
}
