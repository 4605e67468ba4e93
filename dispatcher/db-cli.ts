/**
 * Database chores, an entry file like main.ts:
 *
 *   npm run db -- copy --from ./data --to postgres://user:password@host/db
 *       Moves an embedded deployment to PostgreSQL (service stopped): creates the schema in the empty
 *       database, copies the SQLite data folder (or file) into it and verifies every table's count.
 *   npm run db -- backup --to ./backup.sqlite [--from ./data]
 *       An online backup of the SQLite file while the service runs (VACUUM INTO: one consistent snapshot
 *       of everything committed, acknowledged events included); the backup opens as a data file of its own.
 *
 * PostgreSQL is backed up with its own tools (README: pg_dump / pg_restore).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { copySqliteToPostgres } from './store/copy.ts';
import { PostgresStore } from './store/postgres.ts';

const SQLITE_FILE = 'guardian365.sqlite';

/** A data folder or a SQLite file. */
function sqliteFileOf(from: string): string {
  const p = resolve(from);
  if (existsSync(p) && statSync(p).isDirectory()) return join(p, SQLITE_FILE);
  return p;
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

/** VACUUM INTO from a connection of its own: a read snapshot, so the service keeps writing meanwhile. */
export function backupSqlite(file: string, to: string): void {
  if (existsSync(to)) throw new Error(`${to} exists already: give a new file`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    db.prepare('VACUUM INTO ?').run(to);
  } finally {
    db.close();
  }
}

async function main(args: string[]): Promise<number> {
  const [command] = args;
  if (command === 'copy') {
    const from = arg(args, '--from') ?? process.env.DATA_DIR ?? './data';
    const to = arg(args, '--to') ?? process.env.DATABASE_URL;
    if (!to?.startsWith('postgres')) {
      console.error('db copy: give the PostgreSQL database with --to postgres://… (or DATABASE_URL)');
      return 2;
    }
    const file = sqliteFileOf(from);
    if (!existsSync(file)) {
      console.error(`db copy: no SQLite data file at ${file}`);
      return 2;
    }
    const target = new PostgresStore({ url: to, statementTimeoutMs: 600_000 });
    try {
      await target.migrate();
      const report = await copySqliteToPostgres(file, target, (line) => console.log(`copied ${line}`));
      for (const t of report.tables)
        console.log(
          `${t.source === t.copied ? 'ok ' : 'BAD'} ${t.table.padEnd(18)} ${t.source} → ${t.copied}`,
        );
      console.log(report.ok ? 'copy verified: every count matches' : 'copy FAILED verification');
      return report.ok ? 0 : 1;
    } finally {
      await target.close();
    }
  }
  if (command === 'backup') {
    const to = arg(args, '--to');
    if (!to) {
      console.error('db backup: give the backup file with --to <file>');
      return 2;
    }
    const file = sqliteFileOf(arg(args, '--from') ?? process.env.DATA_DIR ?? './data');
    backupSqlite(file, resolve(to));
    console.log(`backup of ${file} written to ${resolve(to)}`);
    return 0;
  }
  console.error(
    'usage: npm run db -- copy --from <data folder> --to postgres://…\n       npm run db -- backup --to <file> [--from <data folder>]',
  );
  return 2;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(`db ${process.argv[2] ?? ''}: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
