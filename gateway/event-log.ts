/**
 * Group commit for the durable event log. Appends arriving in the same turn of the event loop (or within one
 * pace, `paceMs`) are written in one transaction (one fsync), each with the change it makes to its device's
 * row (DEV-12), and each caller is answered only after its record is on disk: the gateway
 * acknowledges a QoS 1 event (PUBACK) after that answer, never before (SPEC §3 "Acceptance").
 *
 * When the log cannot write (disk full, I/O error: `storageUnavailable`), nothing is answered and nothing is
 * dropped: the records go back into the queue in their order and are tried again (250 ms doubling to 5 s)
 * until a write succeeds, so the devices are held, not refused, and resume by themselves (SPEC §9).
 */
import type { AppendOutcome, EventRecord, GatewayStore, PresenceUpdate } from './ports.ts';

interface Pending {
  /** Order of arrival, kept when failed batches go back into the queue. */
  n: number;
  record: EventRecord;
  /** DEV-12: the record's change to its device's row, written in the record's transaction or not at all. */
  update?: PresenceUpdate;
  resolve: (o: AppendOutcome) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitOptions {
  store: GatewayStore;
  /** Largest batch handed to the store at once. */
  maxBatch?: number;
  /** Batches handed to the store before the first is answered (default 16). */
  maxInFlight?: number;
  /** Records queued that are sent at once instead of at the end of the turn or the pace (default 256). */
  eagerBatch?: number;
  /**
   * DEV-12: ordinary batches leave at most once per this many ms (default 0: at the end of every turn).
   * What arrives meanwhile waits for company, so a quiet gateway writes one transaction per pace instead of
   * one per record; a full batch (`eagerBatch`) and an urgent record (RULE-16) never wait.
   */
  paceMs?: number;
  /** Called after each committed batch with the records and their outcomes, in log order. */
  onCommitted?: (records: EventRecord[], outcomes: AppendOutcome[]) => void;
  onWriteLatency?: (ms: number, batchSize: number) => void;
  /** Called after each batch, written or failed (admission control watches the queue depth). */
  onBatchSettled?: () => void;
  /**
   * Pending device-row presence updates not tied to a record, taken at the start of each ordinary batch and
   * written in its transaction: one fsync per batch instead of two. Taken updates whose batch fails are
   * handed to `onPresenceFailed`.
   */
  takePresence?: () => PresenceUpdate[];
  onPresenceFailed?: (updates: PresenceUpdate[]) => void;
  /** Called when the queue is empty and no batch is being written. */
  onIdle?: () => void;
  /** The log stopped being able to write (first failure), and wrote again. */
  onUnavailable?: (reason: string) => void;
  onAvailable?: () => void;
}

/** Errors that say the storage cannot take writes now (and may later), rather than a bad record. */
export function storageUnavailable(e: unknown): boolean {
  const code = String((e as { code?: unknown })?.code ?? '');
  const msg = e instanceof Error ? e.message : String(e);
  return (
    /^SQLITE_(FULL|IOERR|CANTOPEN|BUSY|READONLY)/.test(code) ||
    /^(ENOSPC|EIO|EDQUOT|EROFS)$/.test(code) ||
    /disk is full|disk I\/O error|database or disk is full|ENOSPC/i.test(msg)
  );
}

const RETRY_FIRST_MS = 250;
const RETRY_MAX_MS = 5_000;

export class GroupCommitLog {
  private queue: Pending[] = [];
  private scheduled = false;
  private paceTimer: NodeJS.Timeout | undefined;
  /** Batches handed to the store and not yet answered, and the records they carry. */
  private inFlight = 0;
  private inFlightRecords = 0;
  private idleWaiters: (() => void)[] = [];
  private arrivals = 0;
  /** While the storage cannot write: why; batches wait for `retryTimer`. */
  private unavailable: { reason: string } | null = null;
  private retryMs = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly eagerBatch: number;
  private readonly paceMs: number;
  /** When the last ordinary batch left (monotonic ms), for `paceMs`. */
  private lastSent = Number.NEGATIVE_INFINITY;

  constructor(private readonly opts: GroupCommitOptions) {
    this.maxBatch = opts.maxBatch ?? 1000;
    this.maxInFlight = opts.maxInFlight ?? 16;
    this.eagerBatch = opts.eagerBatch ?? 256;
    this.paceMs = opts.paceMs ?? 0;
  }

  /**
   * `urgent` (RULE-16: a fall detected, a help button): handed to the store at once as a batch of its own,
   * ahead of what waits in the queue and whatever number of batches are being written, unless the storage
   * is failing (then it waits in arrival order like every record: nothing is answered before it is written).
   */
  append(record: EventRecord, urgent = false, update?: PresenceUpdate): Promise<AppendOutcome> {
    return new Promise((resolve, reject) => {
      const p: Pending = { n: this.arrivals++, record, resolve, reject };
      if (update) p.update = update;
      if (urgent && !this.unavailable && !this.retryTimer) {
        this.send([p], true);
        return;
      }
      this.queue.push(p);
      // A full batch goes at once, so the writer starts on it while this turn parses the next packets; what
      // follows waits a whole pace after it.
      if (this.queue.length >= this.eagerBatch && this.inFlight < this.maxInFlight) {
        this.unschedule();
        this.flush();
        if (this.queue.length > 0) this.schedule();
      } else this.schedule();
    });
  }

  /** Records not yet durable: waiting for a batch or in one being written. */
  get depth(): number {
    return this.queue.length + this.inFlightRecords;
  }

  /** Set while the storage cannot take writes (records are held and retried). */
  get failing(): { reason: string } | null {
    return this.unavailable;
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
    if (this.scheduled || this.retryTimer) return;
    this.scheduled = true;
    const go = () => {
      this.paceTimer = undefined;
      if (!this.scheduled) return;
      this.scheduled = false;
      this.flush();
      this.idleIfDone();
    };
    // The pace is the machine's (how often it commits), not domain time: monotonic, not the clock.
    const wait = this.lastSent + this.paceMs - performance.now();
    if (wait > 0) this.paceTimer = setTimeout(go, wait);
    else setImmediate(go);
  }

  private unschedule(): void {
    clearTimeout(this.paceTimer);
    this.paceTimer = undefined;
    this.scheduled = false;
  }

  /** Nothing queued, scheduled or being written: the drain waiters are answered and `onIdle` told. */
  private idleIfDone(): void {
    if (this.queue.length > 0 || this.inFlight > 0 || this.scheduled || this.retryTimer) return;
    for (const w of this.idleWaiters.splice(0)) w();
    this.opts.onIdle?.();
  }

  /**
   * Hands what arrived since the last turn to the store as one batch, without waiting for the batches
   * before it (the store answers them in order; its writer takes batches that queue up together).
   */
  private flush(): void {
    if (this.retryTimer) return;
    // While failing, one batch at a time probes the storage.
    const most = this.unavailable ? 1 : this.maxInFlight;
    while (this.queue.length > 0 && this.inFlight < most) {
      this.send(this.queue.splice(0, this.maxBatch));
    }
  }

  private send(batch: Pending[], urgent = false): void {
    const records = batch.map((p) => p.record);
    // DEV-12: the records' own row changes go with them. An urgent record goes alone: the other pending
    // row changes wait for the next ordinary batch (or their own flush).
    const own = batch.flatMap((p) => (p.update ? [p.update] : []));
    const taken = urgent ? [] : (this.opts.takePresence?.() ?? []);
    const presence = [...taken, ...own];
    // The write's latency on the machine (a metric of the disk), not domain time: monotonic, not the clock,
    // which a demo may run faster than real time.
    const started = performance.now();
    if (!urgent) this.lastSent = started;
    this.inFlight++;
    this.inFlightRecords += batch.length;
    const settled = () => {
      this.inFlight--;
      this.inFlightRecords -= batch.length;
      this.opts.onBatchSettled?.();
      if (this.queue.length > 0) this.schedule();
      else this.idleIfDone();
    };
    this.opts.store.appendEvents(records, presence, urgent ? { urgent } : undefined).then(
      (outcomes) => {
        try {
          if (this.unavailable) {
            this.unavailable = null;
            this.retryMs = 0;
            this.opts.onAvailable?.();
          }
          this.opts.onWriteLatency?.(performance.now() - started, batch.length);
          for (const [i, p] of batch.entries()) p.resolve(outcomes[i]!);
          this.opts.onCommitted?.(records, outcomes);
        } finally {
          settled();
        }
      },
      (e: unknown) => {
        try {
          // The records' own row changes stay with them: held and retried, or dropped with the refusal.
          if (taken.length) this.opts.onPresenceFailed?.(taken);
          if (storageUnavailable(e)) this.holdForRetry(batch, e);
          else for (const p of batch) p.reject(e);
        } finally {
          settled();
        }
      },
    );
  }

  /** Back into the queue in arrival order, unanswered; the next try after a back-off. */
  private holdForRetry(batch: Pending[], e: unknown): void {
    this.queue = batch.concat(this.queue).sort((a, b) => a.n - b.n);
    if (!this.unavailable) {
      this.unavailable = { reason: e instanceof Error ? e.message : String(e) };
      this.opts.onUnavailable?.(this.unavailable.reason);
    }
    if (this.retryTimer) return;
    this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs ? this.retryMs * 2 : RETRY_FIRST_MS);
    // A retry pace for the storage (EDGE-04), not domain time: a real timer, whatever the service clock does.
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
    }, this.retryMs);
  }

  /** Stops retrying: what is still held is answered with the storage's error (shutdown). */
  abandon(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.unavailable) return;
    const e = new Error(`event log cannot write: ${this.unavailable.reason}`);
    for (const p of this.queue.splice(0)) p.reject(e);
    for (const w of this.idleWaiters.splice(0)) w();
  }
}
