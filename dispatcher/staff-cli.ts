/**
 * Resets a staff member's password from the machine the service runs on (SPEC §2: nobody is locked out of
 * their own service), an entry file like main.ts:
 *
 *   npm run staff:reset-password -- <username>                     a new password, printed once
 *   printf '%s\n' 'chosen-password' | npm run staff:reset-password -- <username> --password-stdin
 *
 * It works on the data folder (DATA_DIR, or DATABASE_URL) whether or not the service is running: the new
 * password is stored as a salted hash, every session of that person ends (their next request is refused,
 * and a running service ends their open console pages and staff app connections within 10 s: it checks
 * them against their sessions), and the reset is in the audit log (`staff.password_reset` by `cli`).
 * Whoever can run this can already read the data folder; the password never goes to a log.
 */
import { pathToFileURL } from 'node:url';
import { hashPassword, newSecret } from '../gateway/secrets.ts';
import { type Clock, SystemClock } from '../kernel/clock.ts';
import { ConfigError, loadConfig } from './config.ts';
import { openStore } from './store/open.ts';
import type { Store } from './store/store.ts';

export const MIN_PASSWORD = 8;

export type ResetResult =
  | {
      ok: true;
      staffId: string;
      password: string;
      generated: boolean;
      sessionsEnded: number;
      disabled: boolean;
    }
  | { ok: false; problem: string };

/** Sets a new password for `username` (generated when `password` is null), ends their sessions, audits. */
export async function resetStaffPassword(
  store: Store,
  username: string,
  password: string | null,
  clock: Clock,
): Promise<ResetResult> {
  const staff = await store.getStaffByUsername(username);
  if (!staff) return { ok: false, problem: `no staff member with username "${username}"` };
  if (password !== null && password.length < MIN_PASSWORD)
    return { ok: false, problem: `the password must have at least ${MIN_PASSWORD} characters` };
  const chosen = password ?? newSecret().slice(0, 16);
  await store.updateStaff(staff.id, { passwordHash: await hashPassword(chosen) });
  const sessionsEnded = await store.deleteStaffSessions(staff.id);
  await store.audit({
    at: clock.now(),
    actor: 'cli',
    action: 'staff.password_reset',
    target: staff.id,
    detail: { generated: password === null, sessionsEnded },
  });
  return {
    ok: true,
    staffId: staff.id,
    password: chosen,
    generated: password === null,
    sessionsEnded,
    disabled: staff.disabled,
  };
}

async function readStdinLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text.split(/\r?\n/)[0] ?? '';
}

const USAGE = 'usage: npm run staff:reset-password -- <username> [--password-stdin]\n';

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const fromStdin = args.includes('--password-stdin');
  const rest = args.filter((a) => a !== '--password-stdin');
  if (rest.length !== 1 || rest[0]!.startsWith('-')) {
    process.stderr.write(USAGE);
    return 2;
  }
  const username = rest[0]!;
  const password = fromStdin ? await readStdinLine() : null;
  const config = loadConfig(process.env);
  const store = await openStore(config);
  try {
    await store.migrate();
    const r = await resetStaffPassword(store, username, password, new SystemClock());
    if (!r.ok) {
      process.stderr.write(`nothing changed: ${r.problem}\n`);
      return 1;
    }
    const where = config.DATABASE_URL ? 'the database' : config.DATA_DIR;
    process.stderr.write(
      `password of ${username} reset in ${where}; ${r.sessionsEnded} session(s) ended; audited as staff.password_reset\n`,
    );
    if (r.disabled)
      process.stderr.write(`note: the account ${username} is disabled; an admin can enable it\n`);
    // Shown this once, alone on standard output so it can be piped; a chosen password is not echoed.
    if (r.generated) process.stdout.write(`${r.password}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${e instanceof ConfigError ? e.problems.join('\n') : String(e)}\n`);
      process.exit(1);
    },
  );
}
