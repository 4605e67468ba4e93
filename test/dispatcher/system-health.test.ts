/**
 * The data folder's free space (SPEC §9): sampled every interval, and when it cannot be read (DATA_DIR is
 * not used by a PostgreSQL deployment and may not exist) the operator is told once, not at every sample;
 * told again when it becomes unreadable again after having been read. A real folder, a real pino logger.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Bus } from '../../dispatcher/bus.ts';
import { SystemHealth } from '../../dispatcher/system-health.ts';
import { ManualClock } from '../../kernel/clock.ts';
import { createLogger, silentLogger } from '../../kernel/log.ts';
import { tempDir } from '../helpers.ts';

describe('free space of the data folder', () => {
  it('says once that it is unknown, however often it is sampled, and again after it was known', async () => {
    const lines: { msg: string; path?: string }[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l));
        cb();
      },
    });
    const dir = tempDir();
    const dataDir = join(dir.path, 'data');
    const health = new SystemHealth({
      dataDir,
      lowBytes: 1,
      intervalMs: 60_000,
      clock: new ManualClock('2026-12-05T08:00:00Z'),
      log: createLogger({ level: 'info', destination }),
      bus: new Bus(silentLogger()),
      gateway: () => null,
    });
    const unknown = () => lines.filter((l) => l.msg === 'free space of the data folder unknown');
    try {
      for (let i = 0; i < 5; i++) await health.check();
      expect(health.freeBytes).toBeNull();
      expect(unknown()).toHaveLength(1);
      expect(unknown()[0]!.path).toBe(dataDir);

      mkdirSync(dataDir);
      await health.check();
      expect(health.freeBytes).toBeGreaterThan(0);
      expect(unknown()).toHaveLength(1);

      rmSync(dataDir, { recursive: true });
      for (let i = 0; i < 3; i++) await health.check();
      expect(unknown()).toHaveLength(2);
    } finally {
      health.stop();
      dir.remove();
    }
  });
});
