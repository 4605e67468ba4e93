/**
 * An fsync of the SQLite write-ahead log on libuv's thread pool, so the log writer thread commits the next
 * batches while the disk flushes (DEV-05, EDGE-03). The writer commits with synchronous=NORMAL (frames
 * written to the WAL, no fsync) and then waits here: once `sync()` resolves,
 * every frame written before the call is on disk, and SQLite's recovery replays committed WAL frames at
 * the next open. Concurrent callers share fsyncs (group commit): a caller waits for an fsync that
 * *started* after its call, never for one already running.
 */
import { closeSync, fsync, openSync, statSync } from 'node:fs';

export class WalSync {
  private fd: number | null = null;
  private ino = -1;
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(private readonly walPath: string) {}

  /** Resolves after an fsync of the WAL that started after this call. */
  sync(): Promise<void> {
    if (!this.running) return this.start();
    if (!this.queued) {
      const next = () => {
        this.queued = null;
        return this.start();
      };
      this.queued = this.running.then(next, next);
    }
    return this.queued;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private start(): Promise<void> {
    const p = new Promise<void>((resolve, reject) => {
      let fd: number;
      try {
        fd = this.file();
      } catch (e) {
        reject(e);
        return;
      }
      fsync(fd, (e) => (e ? reject(e) : resolve()));
    });
    this.running = p;
    const clear = () => {
      if (this.running === p) this.running = null;
    };
    p.then(clear, clear);
    return p;
  }

  /** The WAL's descriptor, reopened if SQLite replaced the file (a missing WAL is an error: nothing to sync). */
  private file(): number {
    const ino = statSync(this.walPath).ino;
    if (this.fd === null || ino !== this.ino) {
      this.close();
      this.fd = openSync(this.walPath, 'r');
      this.ino = ino;
    }
    return this.fd;
  }
}
