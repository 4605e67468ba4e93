/**
 * Re-hashing legacy device secrets (SEC-05): a device whose stored hash is still scrypt gets the fast
 * format after its first good login, the standard "needs rehash" step. Each upgrade is conditional on the
 * row still holding the hash the secret was verified against, so a rotation in between wins.
 *
 * Upgrades arriving close together are written in one transaction (after a fleet's first reconnect with
 * a new version every device upgrades once; on SQLite each transaction is an fsync on the event loop).
 * Transport concern, not domain time: a real timer.
 */
import type { GatewayStore, SecretHashUpgrade } from './ports.ts';

/** How long an upgrade waits for others to share its transaction. */
const BATCH_MS = 100;

interface Pending extends SecretHashUpgrade {
  settle: (changed: boolean) => void;
  fail: (e: unknown) => void;
}

export class SecretRehash {
  /** Upgrades written (rows changed). */
  upgraded = 0;
  private pending: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly store: Pick<GatewayStore, 'upgradeDeviceSecretHashes'>) {}

  /** Whether the row changed (false: it no longer holds `from`); rejects when the store failed. */
  upgrade(u: SecretHashUpgrade): Promise<boolean> {
    return new Promise((settle, fail) => {
      this.pending.push({ ...u, settle, fail });
      this.timer ??= setTimeout(() => void this.flush(), BATCH_MS);
    });
  }

  /** Writes what waits now (also at stop) and resolves when every write so far is done. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (batch.length > 0) this.writing = this.writing.then(() => this.write(batch));
    return this.writing;
  }

  private async write(batch: Pending[]): Promise<void> {
    try {
      const changed = await this.store.upgradeDeviceSecretHashes(
        batch.map(({ deviceId, from, to }) => ({ deviceId, from, to })),
      );
      batch.forEach((p, i) => {
        if (changed[i]) this.upgraded++;
        p.settle(changed[i] === true);
      });
    } catch (e) {
      for (const p of batch) p.fail(e);
    }
  }
}
