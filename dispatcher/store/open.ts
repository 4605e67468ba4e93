import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config.ts';
import { lockDataFolder } from './folder-lock.ts';
import { PostgresStore } from './postgres.ts';
import { privateDir } from './private-files.ts';
import { SqliteStore } from './sqlite.ts';
import type { Store } from './store.ts';

/** Opens the configured store: SQLite under DATA_DIR by default, or the DATABASE_URL given. */
export async function openStore(cfg: {
  DATA_DIR: string;
  DATABASE_URL?: string | undefined;
  PG_POOL_SIZE?: number;
  PG_STATEMENT_TIMEOUT_MS?: number;
  /** The process's role: its connections are named `guardian365-<role>` (pg_stat_activity, logs). */
  ROLE?: string;
  onConnectionError?: (e: Error) => void;
  onWarning?: (message: string) => void;
  /** SQLite: take the data folder's one-instance lock (the service does; tools beside it do not). */
  lockFolder?: boolean;
}): Promise<Store> {
  const url = cfg.DATABASE_URL;
  if (url?.startsWith('postgres')) {
    // SPEC §2, §9: PostgreSQL for production, the same contract as the embedded store.
    return new PostgresStore({
      url,
      poolSize: cfg.PG_POOL_SIZE,
      statementTimeoutMs: cfg.PG_STATEMENT_TIMEOUT_MS,
      applicationName: cfg.ROLE ? `guardian365-${cfg.ROLE}` : undefined,
      onConnectionError: cfg.onConnectionError,
      onWarning: cfg.onWarning,
    });
  }
  const file = url?.startsWith('sqlite:')
    ? url.slice('sqlite:'.length)
    : join(cfg.DATA_DIR, 'guardian365.sqlite');
  const dir = url?.startsWith('sqlite:') ? join(file, '..') : cfg.DATA_DIR;
  try {
    privateDir(dir);
    accessSync(dir, constants.W_OK);
  } catch (e) {
    // A full disk is not a configuration mistake: the caller names it (DiskFullError).
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw e;
    throw new ConfigError([
      `DATA_DIR=${dir}: the data directory cannot be created or written (${(e as NodeJS.ErrnoException).code}); point DATA_DIR at a writable folder`,
    ]);
  }
  // One service per embedded data folder, for the process's life (released by close, or by its end).
  const lock = cfg.lockFolder ? lockDataFolder(dir) : undefined;
  try {
    return new SqliteStore(file, { folderLock: lock });
  } catch (e) {
    lock?.release();
    throw e;
  }
}
