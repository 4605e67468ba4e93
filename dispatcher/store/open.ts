import { accessSync, constants, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../config.ts';
import { SqliteStore } from './sqlite.ts';
import type { Store } from './store.ts';

/** Opens the configured store: SQLite under DATA_DIR by default, or the DATABASE_URL given. */
export async function openStore(cfg: {
  DATA_DIR: string;
  DATABASE_URL?: string | undefined;
}): Promise<Store> {
  const url = cfg.DATABASE_URL;
  if (url?.startsWith('postgres')) {
    // PostgreSQL (SPEC §9) lands as a second implementation of the same Store contract.
    throw new ConfigError([
      'DATABASE_URL: PostgreSQL support is not built yet; leave DATABASE_URL unset to use the embedded SQLite store',
    ]);
  }
  const file = url?.startsWith('sqlite:')
    ? url.slice('sqlite:'.length)
    : join(cfg.DATA_DIR, 'guardian365.sqlite');
  const dir = url?.startsWith('sqlite:') ? join(file, '..') : cfg.DATA_DIR;
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    // A full disk is not a configuration mistake: the caller names it (DiskFullError).
    if ((e as NodeJS.ErrnoException).code === 'ENOSPC') throw e;
    throw new ConfigError([
      `DATA_DIR=${dir}: the data directory cannot be created or written (${(e as NodeJS.ErrnoException).code}); point DATA_DIR at a writable folder`,
    ]);
  }
  return new SqliteStore(file);
}
