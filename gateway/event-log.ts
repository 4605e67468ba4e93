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
  /** Largest batch handed to the store at once. */
  maxBatch?: number;
  /** Batches handed to the store before the first is answered (default 16). */
  maxInFlight?: number;
  /** Records queued that are sent at once instead of at the end of the turn (default 256). */
  eagerBatch?: number;
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
  private scheduled = false;
  /** Batches handed to the store and not yet answered, and the records they carry. */
  private inFlight = 0;
  private inFlightRecords = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly eagerBatch: number;

  constructor(private readonly opts: GroupCommitOptions) {
    this.maxBatch = opts.maxBatch ?? 1000;
    this.maxInFlight = opts.maxInFlight ?? 16;
    this.eagerBatch = opts.eagerBatch ?? 256;
  }

  append(record: EventRecord): Promise<AppendOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ record, resolve, reject });
      // A full batch goes at once, so the writer starts on it while this turn parses the next packets.
      if (this.queue.length >= this.eagerBatch && this.inFlight < this.maxInFlight) this.flush();
      else this.schedule();
    });
  }

  /** Records not yet durable: waiting for a batch or in one being written. */
  get depth(): number {
    return this.queue.length + this.inFlightRecords;
  }

  /** A batch is queued or being written (it will carry any pending presence updates). */
  get busy(): boolean {
    return this.inFlight > 0 || this.scheduled || this.queue.length > 0;
  }

  /** Resolves when everything appended so far is written (graceful shutdown). */
  drain(): Promise<void> {
    if (!this.busy) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /**
   * Hands what arrived since the last turn to the store as one batch, without waiting for the batches
   * before it (the store answers them in order; its writer takes batches that queue up together).
   */
  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      this.send(this.queue.splice(0, this.maxBatch));
    }
  }

  private send(batch: Pending[]): void {
    const records = batch.map((p) => p.record);
    const presence = this.opts.takePresence?.() ?? [];
    const started = performance.now();
    this.inFlight++;
    this.inFlightRecords += batch.length;
    const settled = () => {
      this.inFlight--;
      this.inFlightRecords -= batch.length;
      this.opts.onBatchSettled?.();
      if (this.queue.length > 0) this.schedule();
      else if (this.inFlight === 0 && !this.scheduled) {
        for (const w of this.idleWaiters.splice(0)) w();
        this.opts.onIdle?.();
      }
    };
    this.opts.store.appendEvents(records, presence).then(
      (outcomes) => {
        try {
          this.opts.onWriteLatency?.(performance.now() - started, batch.length);
          for (const [i, p] of batch.entries()) p.resolve(outcomes[i]!);
          this.opts.onCommitted?.(records, outcomes);
        } finally {
          settled();
        }
      },
      (e: unknown) => {
        try {
          if (presence.length) this.opts.onPresenceFailed?.(presence);
          for (const p of batch) p.reject(e);
        } finally {
          settled();
        }
      },
    );
  }
}
