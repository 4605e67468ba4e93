/**
 * CLU-12: the CPU priority a process of the service runs at. A gateway process yields the processor to
 * alerting (the dispatcher, PostgreSQL, Redis) when they share a machine: it runs at nice 10 unless told
 * otherwise, so a fall's alert is never queued behind the ingestion of ordinary events. On a machine of its
 * own, this changes nothing. A process may always lower its own priority; raising it (a negative nice, below
 * the one it started with) needs CAP_SYS_NICE, and without it the process says so and runs as it was.
 */
import { readdirSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import type { Logger } from './log.ts';

/** CLU-12: a gateway's nice when `PROCESS_NICE` is unset. */
export const GATEWAY_NICE = 10;

/**
 * The nice a process of `role` runs at: `requested` (PROCESS_NICE), else the role's default, never above
 * the priority it was started with (null: as started).
 */
export function niceFor(
  role: 'all' | 'gateway' | 'dispatcher',
  requested: number | undefined,
): number | null {
  if (requested !== undefined) return requested;
  return role === 'gateway' ? Math.max(GATEWAY_NICE, getPriority()) : null;
}

/**
 * Sets this process's nice to `nice` (null: leaves it), in every thread: Linux keeps a nice per thread,
 * and V8's collector and compiler threads started before this ran (threads started later take the nice of
 * the thread that starts them). Returns the nice it runs at, and why not the one asked for when the system
 * refused (logged once, never fatal: the service runs either way).
 */
export function applyNice(nice: number | null, log: Logger): { nice: number; refused: string | null } {
  const before = getPriority();
  if (nice === null || nice === before) return { nice: before, refused: null };
  try {
    setPriority(nice);
    for (const tid of threads()) {
      try {
        setPriority(tid, nice);
      } catch {
        // A thread that ended meanwhile.
      }
    }
    log.info({ nice, before }, 'process priority set (PROCESS_NICE)');
    return { nice: getPriority(), refused: null };
  } catch (e) {
    // Node's SystemError carries the system's code (EACCES) in `info`.
    const code = (e as { info?: { code?: string } }).info?.code ?? (e as NodeJS.ErrnoException).code;
    const why = `${code ?? (e as Error).message}: a nice below ${before} needs CAP_SYS_NICE`;
    log.warn(
      { nice, before, err: (e as Error).message },
      'cannot set the process priority (PROCESS_NICE); running as started',
    );
    return { nice: before, refused: why };
  }
}

/** This process's threads (Linux: /proc/self/task); none where there is no /proc. */
function threads(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number);
  } catch {
    return [];
  }
}
