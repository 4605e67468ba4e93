/**
 * Bulk device provisioning from CSV (DEV-01), an entry file like main.ts:
 *
 *   npm run devices:import -- devices.csv [--out secrets.csv]
 *
 * The CSV has a header `id,homeId,kind,room` (any column order, more columns ignored). `room` is a room of the
 * SPEC §3 vocabulary, by id or by a common name (卫生间, 浴室, 厕所 → bathroom; 主卧 → bedroom; 玄关 → entrance;
 * see dispatcher/rooms.ts); any other name is refused. Every row is checked first (id format,
 * kind, room, household exists, id not taken, no id twice in the file); if any row is wrong, nothing is
 * created and each problem is printed with its line number. Otherwise every device is created with a new
 * random secret, stored only as a salted hash (SPEC §3), and `id,secret` lines are written once — to the
 * `--out` file (mode 0600) or to standard output. Each device is audited as `device.provision` by `cli`.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parse } from 'csv-parse/sync';
import { hashDeviceSecret, newSecret } from '../gateway/secrets.ts';
import { type Clock, SystemClock } from '../kernel/clock.ts';
import { announceRegistryChange } from './cluster/signals.ts';
import { ConfigError, loadConfig } from './config.ts';
import { type DeviceInput, deviceInput } from './registry.ts';
import { ROOMS_HINT, roomFromText } from './rooms.ts';
import { openStore } from './store/open.ts';
import { PostgresStore } from './store/postgres.ts';
import type { Store } from './store/store.ts';

export type ImportResult =
  | { ok: true; created: { id: string; secret: string }[] }
  | { ok: false; problems: string[] };

export async function importDevicesCsv(store: Store, csv: string, clock: Clock): Promise<ImportResult> {
  let header: string[] = [];
  let records: { record: Record<string, string>; info: { lines: number } }[];
  try {
    records = parse(csv, {
      bom: true,
      columns: (h: string[]) => {
        header = h.map((c) => c.trim());
        return header;
      },
      skip_empty_lines: true,
      trim: true,
      info: true,
    });
  } catch (e) {
    return { ok: false, problems: [`not a readable CSV file: ${(e as Error).message}`] };
  }
  const missing = ['id', 'homeId', 'kind', 'room'].filter((c) => !header.includes(c));
  if (missing.length) return { ok: false, problems: [`line 1: missing column(s) ${missing.join(', ')}`] };

  const problems: string[] = [];
  const rows: DeviceInput[] = [];
  const seen = new Set<string>();
  const homes = new Map<string, boolean>();
  for (const { record: f, info } of records) {
    const line = info.lines;
    const room = roomFromText(f.room ?? '');
    if (room === null) {
      problems.push(`line ${line}: room: "${f.room ?? ''}" is not a room we know; ${ROOMS_HINT}`);
      continue;
    }
    const parsed = deviceInput.safeParse({ id: f.id, homeId: f.homeId, kind: f.kind, room });
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      problems.push(`line ${line}: ${issue.path.join('.') || 'row'}: ${issue.message}`);
      continue;
    }
    const d = parsed.data;
    if (seen.has(d.id)) problems.push(`line ${line}: device ${d.id} appears twice in the file`);
    seen.add(d.id);
    if (!homes.has(d.homeId)) homes.set(d.homeId, (await store.getHousehold(d.homeId)) !== null);
    if (!homes.get(d.homeId)) problems.push(`line ${line}: no household ${d.homeId}`);
    if (await store.getDeviceState(d.id)) problems.push(`line ${line}: device ${d.id} exists already`);
    rows.push(d);
  }
  if (problems.length) return { ok: false, problems };

  const created: { id: string; secret: string }[] = [];
  for (const d of rows) {
    const secret = newSecret();
    await store.createDevice({ ...d, secretHash: hashDeviceSecret(secret), createdAt: clock.now() });
    await store.audit({
      at: clock.now(),
      actor: 'cli',
      action: 'device.provision',
      target: d.id,
      detail: { bulk: true },
    });
    created.push({ id: d.id, secret });
  }
  return { ok: true, created };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const outAt = args.indexOf('--out');
  const out = outAt >= 0 ? args[outAt + 1] : undefined;
  const file = args.find((a, i) => !a.startsWith('--') && (outAt < 0 || i !== outAt + 1));
  if (!file || (outAt >= 0 && !out)) {
    process.stderr.write('usage: npm run devices:import -- <devices.csv> [--out <secrets.csv>]\n');
    return 2;
  }
  const config = loadConfig(process.env);
  const store = await openStore(config);
  try {
    await store.migrate();
    const result = await importDevicesCsv(store, await readFile(file, 'utf8'), new SystemClock());
    if (!result.ok) {
      process.stderr.write(`nothing imported; fix these rows:\n${result.problems.join('\n')}\n`);
      return 1;
    }
    // CLU-11: running dispatchers place the new devices' events in their rooms from now on.
    if (store instanceof PostgresStore)
      await announceRegistryChange(store.pool, { homeId: null }, 'devices-cli').catch((e: unknown) =>
        process.stderr.write(
          `imported, but the running dispatchers could not be told (${(e as Error).message}): restart them\n`,
        ),
      );
    const text = `id,secret\n${result.created.map((c) => `${c.id},${c.secret}`).join('\n')}\n`;
    // The secrets are shown this once; a file keeps them readable only by the one who ran the import.
    if (out) writeFileSync(out, text, { mode: 0o600 });
    else process.stdout.write(text);
    process.stderr.write(`imported ${result.created.length} device(s)${out ? `; secrets in ${out}` : ''}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`${e instanceof ConfigError ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
