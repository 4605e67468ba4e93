/**
 * One instance per embedded data folder: a second process on the same DATA_DIR would write the same log
 * beside the first. The lock is SQLite's own exclusive lock on a small file of its own
 * (`guardian365.lock`), held by a connection for the process's life: the operating system drops it when
 * the process ends, however it ends (kill -9 included), so a crash never leaves a folder locked.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../config.ts';

export const LOCK_FILE = 'guardian365.lock';

export interface FolderLock {
  release(): void;
}

/** Takes the folder's lock, or refuses with a message naming the folder when another process holds it. */
export function lockDataFolder(dir: string): FolderLock {
  const db = new Database(join(dir, LOCK_FILE));
  try {
    db.pragma('busy_timeout = 0');
    db.pragma('locking_mode = EXCLUSIVE');
    // A write in exclusive locking mode keeps the file locked until the connection closes.
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER)');
    db.exec('BEGIN EXCLUSIVE');
    db.prepare('DELETE FROM holder').run();
    db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
    db.exec('COMMIT');
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code?.startsWith('SQLITE_BUSY'))
      throw new ConfigError([
        `DATA_DIR=${dir}: another Guardian 365 process is using this data folder; stop it first (one instance per data folder) or point DATA_DIR elsewhere`,
      ]);
    throw e;
  }
  return { release: () => db.open && db.close() };
}
