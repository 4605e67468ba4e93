/**
 * CLU-03: the community pipelines of one dispatcher instance share their reads of the event log (a real
 * SQLite store): a page is read from the store once whoever asks, a later start inside it is served from
 * it, and an empty answer is never handed to a pipeline that asked after it.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SharedLogReader } from '../../dispatcher/cluster/shared-log.ts';
import { SqliteStore } from '../../dispatcher/store/sqlite.ts';
import { tempDir } from '../helpers.ts';

const open: { store: SqliteStore; remove: () => void }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.store.close();
    o.remove();
  }
});

async function rig() {
  const tmp = tempDir('g365-shared-log-');
  const store = new SqliteStore(join(tmp.path, 'guardian365.sqlite'));
  await store.migrate();
  open.push({ store, remove: () => tmp.remove() });
  let n = 0;
  /** Appends `count` heartbeats of one device; returns their log positions. */
  const append = async (count: number) => {
    const out = await store.appendEvents(
      Array.from({ length: count }, () => {
        const ts = 1_770_000_000_000 + ++n;
        return {
          deviceId: 'd1',
          homeId: 'h1',
          receivedAt: ts,
          topic: 'g365/v1/homes/h1/devices/d1/events',
          status: 'accepted' as const,
          ts,
          type: 'heartbeat',
          deviceSeq: n,
          body: JSON.stringify({ type: 'heartbeat', ts, seq: n }),
          reason: null,
          flags: [],
        };
      }),
    );
    return out.map((o) => o.seq!);
  };
  const reader = new SharedLogReader((after, limit) => store.readEvents(after, limit));
  return { store, append, reader };
}

describe('shared log reader', () => {
  it('reads a page once for pipelines that ask for it together, and serves a later start from it', async () => {
    const { append, reader } = await rig();
    const seqs = await append(5);
    const [a, b] = await Promise.all([reader.read(0, 1000), reader.read(0, 1000)]);
    expect(a.map((e) => e.seq)).toEqual(seqs);
    expect(b).toEqual(a);
    expect(reader.reads).toBe(1);
    // A pipeline further on: the rest of the page it starts inside, with no read.
    const rest = await reader.read(seqs[2]!, 1000);
    expect(rest.map((e) => e.seq)).toEqual(seqs.slice(3));
    expect(reader.reads).toBe(1);
    // Its limit holds.
    expect((await reader.read(seqs[0]!, 2)).map((e) => e.seq)).toEqual(seqs.slice(1, 3));
  });

  it('never hands over an empty page: what was written after it is read', async () => {
    const { append, reader } = await rig();
    const first = await append(2);
    await reader.read(0, 1000);
    // Caught up: empty, from the store each time.
    expect(await reader.read(first[1]!, 1000)).toEqual([]);
    const reads = reader.reads;
    const later = await append(3);
    expect((await reader.read(first[1]!, 1000)).map((e) => e.seq)).toEqual(later);
    expect(reader.reads).toBe(reads + 1);
    // A page that ended before the new events serves none of them: the next start is past its end.
    expect((await reader.read(first[0]!, 1000)).map((e) => e.seq)).toEqual([first[1]]);
  });

  it('reads again for a pipeline whose twin read came back empty while events arrived', async () => {
    const { append, reader } = await rig();
    const first = await append(1);
    await reader.read(0, 1000);
    // One pipeline's read of an empty log is in flight when new events land and the other asks.
    const early = reader.read(first[0]!, 1000);
    const later = await append(2);
    const [a, b] = await Promise.all([early, reader.read(first[0]!, 1000)]);
    // Whatever the first saw, the second sees the new events.
    expect(b.map((e) => e.seq)).toEqual(later);
    expect(a.length === 0 || a.length === 2).toBe(true);
  });
});
