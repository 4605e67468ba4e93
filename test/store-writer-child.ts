/**
 * A writer in its own process for the contract's kill -9 case (store.contract.ts): opens the store at
 * `<backend> <where>`, appends batches of events of device `<device>` (seqs 1, 2, 3, …) as fast as they are
 * answered, each batch from several concurrent appends, and prints each acknowledged device seq on a line
 * of its own. It is killed with SIGKILL mid-batch, never stopped.
 */
import type { EventRecord } from '../gateway/ports.ts';
import { type Backend, storeAt } from './store-factory.ts';

const [backend, where, device] = process.argv.slice(2) as [Backend, string, string];
const store = storeAt({ backend, where });
const T = Date.UTC(2026, 2, 10, 2, 0);
const record = (seq: number): EventRecord => ({
  deviceId: device,
  homeId: 'h1',
  receivedAt: T,
  topic: 't',
  status: 'accepted',
  ts: T + seq,
  type: 'motion',
  deviceSeq: seq,
  body: JSON.stringify({ type: 'motion', ts: T + seq, seq, state: 'active', room: 'living' }),
  reason: null,
  flags: [],
});
let next = 1;
process.stdout.write('ready\n');
const lane = async () => {
  for (;;) {
    const seqs = Array.from({ length: 50 }, () => next++);
    const out = await store.appendEvents(seqs.map(record));
    process.stdout.write(`${seqs.filter((_, i) => !out[i]!.duplicate).join('\n')}\n`);
  }
};
await Promise.all([lane(), lane(), lane(), lane()]);
