/**
 * CLU-03: the shared event log as every community pipeline of one dispatcher instance reads it. Each of
 * those pipelines reads the whole log (the other communities' events pass by), and they are woken together
 * by the same new events, so every page was read, and every row parsed, once per community held here. A
 * page another pipeline read, or is reading, is handed over instead of read again.
 *
 * Why that is the log: its positions become visible in order (one lock per append transaction, held until
 * it commits), so a page read earlier is a true prefix of what follows its start, possibly shorter than the
 * log is now; the pipeline's next read finds the rest. An empty page is never handed over: events may have
 * been written since it was read, and a pipeline that took it would stop short of them until its next
 * wake-up.
 */
import type { LoggedEvent } from '../../gateway/ports.ts';

/** Pages kept (newest last); a pipeline is at most a page or two behind another. */
const PAGES = 8;

interface Page {
  after: number;
  limit: number;
  read: Promise<LoggedEvent[]>;
  /** Once answered with events. */
  events?: LoggedEvent[];
}

export class SharedLogReader {
  /** Reads that went to the store (for tests and curiosity). */
  reads = 0;
  private pages: Page[] = [];

  constructor(private readonly readEvents: (after: number, limit: number) => Promise<LoggedEvent[]>) {}

  /** Up to `limit` accepted events after position `after`, in log order (as Store.readEvents). */
  async read(after: number, limit: number): Promise<LoggedEvent[]> {
    for (let i = this.pages.length - 1; i >= 0; i--) {
      const p = this.pages[i]!;
      if (p.after === after && p.limit === limit) {
        // The same read, perhaps still in flight; an empty answer is not taken (read again below).
        const events = await p.read.catch(() => []);
        if (events.length > 0) return events;
        break;
      }
      const events = p.events;
      if (!events || p.after > after || events.at(-1)!.seq <= after) continue;
      const from = events.findIndex((e) => e.seq > after);
      return events.slice(from, from + limit);
    }
    const page: Page = { after, limit, read: this.readEvents(after, limit) };
    this.reads++;
    this.pages.push(page);
    if (this.pages.length > PAGES) this.pages.shift();
    try {
      const events = await page.read;
      if (events.length > 0) page.events = events;
      else this.forget(page);
      return events;
    } catch (e) {
      this.forget(page);
      throw e;
    }
  }

  private forget(page: Page): void {
    this.pages = this.pages.filter((p) => p !== page);
  }
}
