// The log writer thread's entry: the thread has no TypeScript loader of its own (tests, tsx and the
// production image all start it the same way), so it registers tsx's and loads the writer.
import { register } from 'tsx/esm/api';

register();
await import('./log-writer.thread.ts');
