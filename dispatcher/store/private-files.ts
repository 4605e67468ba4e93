/**
 * The data folder holds personal data and password hashes (SPEC §4, §9): the folder is 0700 and every file
 * of the store 0600, whoever's umask started the service. SQLite creates a database's -wal and -shm files
 * with the database file's own mode, so each database file is created 0600 before SQLite opens it; files
 * made by an earlier version (0644) are narrowed at start.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates a folder for private data (0700), or narrows an existing one that is the store's own: empty or
 * already holding a database file of ours. A shared folder given by mistake (a sticky /tmp, a home folder)
 * is left as it is; the files in it are 0600 anyway.
 */
export function privateDir(dir: string, ownFile = 'guardian365.sqlite'): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    chmodSync(dir, PRIVATE_DIR_MODE);
    return;
  }
  const st = statSync(dir);
  const sticky = (st.mode & 0o1000) !== 0;
  const ours = readdirSync(dir).length === 0 || existsSync(join(dir, ownFile));
  if (st.isDirectory() && !sticky && ours && (st.mode & 0o777) !== PRIVATE_DIR_MODE)
    chmodSync(dir, PRIVATE_DIR_MODE);
}

/** Each database file 0600 (created empty if missing: SQLite takes an empty file as a new database), its -wal and -shm too. */
export function privateDatabaseFiles(...files: string[]): void {
  for (const file of files) {
    if (!existsSync(file)) closeSync(openSync(file, 'a', PRIVATE_FILE_MODE));
    for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`])
      if (existsSync(f)) chmodSync(f, PRIVATE_FILE_MODE);
  }
}

/** The folder of a database file, private (see privateDir). */
export const privateDirOf = (file: string): void => privateDir(dirname(file), basename(file));
