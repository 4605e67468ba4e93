/**
 * Group commit for the durable event log. Appends arriving in the same turn of the event loop are written
 * in one transaction (one fsync), and each caller is answered only after its record is on disk: the gateway
 * acknowledges a QoS 1 event (PUBACK) after that answer, never before (SPEC §3 "Acceptance").
 */
import type { AppendOutcome, EventRecord, GatewayStore, PresenceUpdate } from './ports.ts';

interface Pending {
  record: EventRecord;
  resolve: (o: AppendOutcome) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitOptions {
  store: GatewayStore;
  /** Largest batch written in one transaction. */
  maxBatch?: number;
  /** Called after each committed batch with the records and their outcomes, in log order. */
  onCommitted?: (records: EventRecord[], outcomes: AppendOutcome[]) => void;
  onWriteLatency?: (ms: number, batchSize: number) => void;
  /** Called after each batch, written or failed (admission control watches the queue depth). */
  onBatchSettled?: () => void;
  /**
   * Pending device-row presence updates, taken at the start of each batch and written in its transaction:
   * one fsync per batch instead of two. Taken updates whose batch fails are handed to `onPresenceFailed`.
   */
  takePresence?: () => PresenceUpdate[];
  onPresenceFailed?: (updates: PresenceUpdate[]) => void;
  /** Called when the queue is empty and no batch is being written. */
  onIdle?: () => void;
}

export class GroupCommitLog {
  private queue: Pending[] = [];
  private flushing = false;
  private scheduled = false;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatch: number;

  constructor(private readonly opts: GroupCommitOptions) {
    this.maxBatch = opts.maxBatch ?? 1000;
  }

  append(record: EventRecord): Promise<AppendOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      this.schedule();
    });
  }

  get depth(): number {
    return this.queue.length;
  }

  /** A batch is queued or being written (it will carry any pending presence updates). */
  get busy(): boolean {
    return this.flushing || this.scheduled || this.queue.length > 0;
  }

  /** Resolves when everything appended so far is written (graceful shutdown). */
  drain(): Promise<void> {
    if (!this.flushing && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        const records = batch.map((p) => p.record);
        const presence = this.opts.takePresence?.() ?? [];
        const started = performance.now();
        let outcomes: AppendOutcome[];
        try {
          outcomes = await this.opts.store.appendEvents(records, presence);
        } catch (e) {
          if (presence.length) this.opts.onPresenceFailed?.(presence);
          for (const p of batch) p.reject(e);
          this.opts.onBatchSettled?.();
          continue;
        }
        this.opts.onWriteLatency?.(performance.now() - started, batch.length);
        for (const [i, p] of batch.entries()) p.resolve(outcomes[i]!);
        this.opts.onCommitted?.(records, outcomes);
        this.opts.onBatchSettled?.();
      }
    } finally {
      this.flushing = false;
      const waiters = this.idleWaiters.splice(0);
      for (const w of waiters) w();
      if (this.queue.length === 0) this.opts.onIdle?.();
    }
  }
}
