// The store's threads' entry (the log writer, the household indexer): a thread has no TypeScript loader
// of its own (tests, tsx and the production image all start it the same way), so this registers tsx's and
// loads the thread's module, named relative to this file in `workerData.entry`.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(new URL(workerData.entry, import.meta.url).href);
