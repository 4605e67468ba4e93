/**
 * The V8 heap as the service runs it, set once at the start of the process (dispatcher/main.ts, and the
 * gateway benchmark's broker so that it measures the same thing).
 *
 * Allocation-site pretenuring is off. V8 allocates straight into the old generation from an allocation
 * site whose objects used to survive; here the same sites make both the long-lived objects of 10,000
 * connections and the per-message objects that die within milliseconds, so after a reconnect storm every
 * message became old-generation garbage. Measured with `npm run bench:gateway` (issue 7): 10,000 homes
 * sending 5,000 events/s peaked at 426–548 MB RSS with it and 303 MB without; sustained ingest rose from
 * ~67,000 to ~76,000 events/s.
 */
import { setFlagsFromString } from 'node:v8';

export function tuneHeap(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
}
