/**
 * Configuration from environment variables (SPEC §2), validated at start. Every problem is reported at
 * once, each naming the variable and what is expected. Only the entry file calls `loadConfig(process.env)`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { passwordProblem } from './passwords.ts';
import { rulesConfigInput } from './rules/settings.ts';

const port = z.coerce.number().int().min(0).max(65535);
const hhmm = z.string().regex(/^([01]\d|2[0-3]):([0-5]\d)$/, 'expected a time of day HH:MM');

function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** DEV-12: a separate gateway's commit pace for ordinary events when `LOG_COMMIT_MS` is unset, in ms. */
export const LOG_COMMIT_GATEWAY_MS = 20;

export const configSchema = z.object({
  /**
   * Which part of the service this process runs (CLU-01): `all` (one process, the default), `gateway` (the
   * MQTT edge, with its own small HTTP port for /healthz, /readyz and /metrics) or `dispatcher` (rules,
   * alerts, routing, escalation, notifications, API, live updates and console). Separate roles share one
   * PostgreSQL database.
   */
  ROLE: z.enum(['all', 'gateway', 'dispatcher']).default('all'),
  /**
   * Separate roles: how often a dispatcher looks at the event log when no wake-up came (PostgreSQL
   * LISTEN/NOTIFY wakes it at once; this is the floor when a notification was missed), in ms.
   */
  CLUSTER_POLL_MS: z.coerce.number().int().min(50).max(60_000).default(1_000),
  /**
   * Separate roles (RULE-16): the rules' ordered pass reads the log at most this often after it caught up;
   * falls and help buttons do not wait for it (the urgent lane). 0: at every wake-up.
   */
  RULES_BATCH_MS: z.coerce.number().int().min(0).max(5_000).default(200),
  /**
   * Separate roles (CLU-02): a gateway wakes the rules for what it wrote at most this often, in ms (falls
   * and help buttons go at once, RULE-16). 0: after every commit.
   */
  EVENTS_WAKE_MS: z.coerce.number().int().min(0).max(5_000).default(100),
  /**
   * DEV-12: a gateway commits ordinary events at most this often, in ms: what arrives meanwhile waits for
   * company (one transaction and one fsync for all of it; falls and help buttons go at once, RULE-16).
   * 0: at the end of every turn of the event loop. Unset: `LOG_COMMIT_GATEWAY_MS` for `ROLE=gateway`, 0 in
   * one process.
   */
  LOG_COMMIT_MS: z.coerce.number().int().min(0).max(1_000).optional(),
  /**
   * CLU-12: this process's CPU priority, as a nice value (-20 highest, 19 lowest). Unset: 10 for
   * `ROLE=gateway` (ingestion yields the processor to alerting on a shared machine; the nice it was started
   * with if that is higher), as started otherwise.
   */
  PROCESS_NICE: z.coerce.number().int().min(-20).max(19).optional(),
  /**
   * DEV-01: how often a gateway checks the devices connected to it against their rows, in ms, so a device
   * disabled or re-keyed without its revocation reaching the gateway is disconnected within that time.
   * 0: never (revocations and the re-check after a lost notification link only).
   */
  DEVICE_RECHECK_MS: z.coerce.number().int().min(0).max(86_400_000).default(300_000),
  /**
   * Separate dispatchers (CLU-03): a community lease lasts LEASE_TTL_MS unless renewed, and is renewed every
   * LEASE_RENEW_MS (real time, judged by the database's clock). A dead instance's communities are taken
   * within TTL + one renewal.
   */
  LEASE_TTL_MS: z.coerce.number().int().min(500).max(600_000).default(6_000),
  LEASE_RENEW_MS: z.coerce.number().int().min(100).max(300_000).default(2_000),
  /** This instance's name in the lease table (default: the host name), for operators reading it. */
  INSTANCE_ID: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected [A-Za-z0-9_.-]{1,64}')
    .optional(),
  /**
   * Redis (redis://host:port): live updates reach a page whichever dispatcher instance it is connected to
   * (socket.io's Redis adapter). Unset: live updates stay on the instance where they happen.
   */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'expected a redis:// URL')
    .optional(),
  MQTT_PORT: port.default(1883),
  MQTT_HOST: z.string().default('0.0.0.0'),
  /** MQTT over TLS (EDGE-05): enabled when the port, certificate and key (PEM files) are all set. */
  MQTT_TLS_PORT: port.optional(),
  MQTT_TLS_CERT: z.string().min(1).optional(),
  MQTT_TLS_KEY: z.string().min(1).optional(),
  /** MQTT over WebSocket: enabled when set. */
  MQTT_WS_PORT: port.optional(),
  /** Per-device publish limit (messages per second, sustained); a flood is throttled and counted. */
  MQTT_DEVICE_RATE: z.coerce.number().positive().default(50),
  HTTP_PORT: port.default(8080),
  HTTP_HOST: z.string().default('0.0.0.0'),
  /**
   * The console's address as people reach it, e.g. https://guardian.example.org (comma-separated for several;
   * the first is the one links in SMS and push notices use; default http://localhost:HTTP_PORT). Cookie-
   * authenticated writes and live connections must come from one of them; unset: from the origin of the
   * request's own Host header (api/origin.ts).
   */
  PUBLIC_ORIGIN: z
    .string()
    .transform((s) => s.split(',').map((o) => o.trim().replace(/\/$/, '').toLowerCase()))
    .pipe(
      z.array(
        z
          .string()
          .regex(
            /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/,
            'expected origins such as https://guardian.example.org',
          ),
      ),
    )
    .default([]),
  /**
   * Trust X-Forwarded-For / X-Forwarded-Proto from a reverse proxy: `true`, or the proxy's addresses (a
   * comma-separated list of IPs, CIDRs, or loopback/linklocal/uniquelocal). Unset: trust nothing, so a
   * client cannot fake its address (login limits) or claim TLS.
   */
  TRUST_PROXY: z
    .string()
    .transform((s): boolean | string =>
      /^(true|1|yes)$/i.test(s) ? true : /^(false|0|no)$/i.test(s) ? false : s,
    )
    .default(false),
  DATA_DIR: z.string().min(1).default('./data'),
  /**
   * Free space on DATA_DIR's filesystem below which the dispatch screen warns (and /metrics shows
   * g365_disk_low), in MB: before the disk is full and the event log has to hold the devices.
   */
  DISK_LOW_MB: z.coerce.number().nonnegative().default(1024),
  /** How often free space, the event log and the other edge faults are checked for the dispatch screen. */
  HEALTH_CHECK_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  DATABASE_URL: z
    .string()
    .regex(/^(postgres(ql)?:\/\/|sqlite:)/, 'expected a postgres:// URL or sqlite:<file>')
    .optional(),
  /** PostgreSQL: connections in the pool (each process; the server's max_connections bounds them all). */
  PG_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(10),
  /** PostgreSQL: longest a statement may run before the server cancels it. */
  PG_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  INFLUX_URL: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' }).optional(),
  INFLUX_TOKEN: z.string().optional(),
  INFLUX_ORG: z.string().optional(),
  INFLUX_BUCKET: z.string().optional(),
  TZ_COMMUNITY: z
    .string()
    .default('Asia/Shanghai')
    .refine(validZone, 'expected an IANA time zone such as Asia/Shanghai'),
  DAY_SHIFT_START: hhmm.default('08:00'),
  NIGHT_SHIFT_START: hhmm.default('20:00'),
  /** SPEC §4: minutes before a shift starts at which grids with nobody on duty are flagged. */
  DUTY_WARN_MINUTES: z.coerce.number().int().min(0).max(600).default(30),
  /** SPEC §8: an admin's password, so the rule of every admin account (passwords.ts). */
  ADMIN_PASSWORD: z
    .string()
    .superRefine((p, ctx) => {
      const problem = passwordProblem(p, ['admin']);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  WEBHOOK_URL: z.url({ protocol: /^https?$/, message: 'expected an http(s) URL' }).optional(),
  WEBHOOK_SECRET: z.string().min(16, 'expected at least 16 characters').optional(),
  /** VAPID contact for the push services' operators (NOTIFY-03): a mailto: or https: URL. */
  PUSH_SUBJECT: z
    .string()
    .regex(/^(mailto:\S+@\S+|https:\/\/\S+)$/, 'expected a mailto: address or an https: URL')
    .default('mailto:guardian365@localhost.invalid'),
  /** Extra CA certificate (PEM file) trusted for push services: a private push relay. */
  PUSH_CA_FILE: z.string().min(1).optional(),
  /** Language of SMS texts and family updates when the recipient's is not known (zh or en). */
  NOTICE_LANG: z.enum(['zh', 'en']).default('zh'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SESSION_HOURS: z.coerce.number().positive().default(12),
  /**
   * Simulated time, for demos and simulations only (SIM-03): the service clock runs CLOCK_SPEED times
   * faster than real time, starting at CLOCK_START (RFC 3339; default: now). 1 and unset: the system clock.
   */
  CLOCK_SPEED: z.coerce.number().positive().max(100_000, 'expected at most 100000').default(1),
  CLOCK_START: z.iso
    .datetime({ offset: true, message: 'expected an RFC 3339 date-time such as 2026-03-10T06:00:00+08:00' })
    .optional(),
  /**
   * With CLOCK_START: the real instant (epoch ms) at which the simulated clock reads CLOCK_START (default: the
   * process's start), so the processes of one simulation run on one clock (CLU-01, SIM-03).
   */
  CLOCK_ANCHOR_MS: z.coerce.number().int().nonnegative().optional(),
  CONFIG_FILE: z.string().optional(),
  /** Rule thresholds in minutes by rule id (SPEC §5), e.g. {"thresholds":{"INACTIVITY":180}}: JSON or a config-file object. */
  RULES: rulesConfigInput.default({ thresholds: {} }),
});

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

/**
 * Reads the optional JSON config file (CONFIG_FILE), overlays the environment (the environment wins) and
 * validates the result.
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  let fromFile: Record<string, unknown> = {};
  if (env.CONFIG_FILE) {
    try {
      fromFile = JSON.parse(readFileSync(env.CONFIG_FILE, 'utf8'));
    } catch (e) {
      throw new ConfigError([
        `CONFIG_FILE: cannot read ${env.CONFIG_FILE} as JSON (${(e as Error).message})`,
      ]);
    }
  }
  const merged: Record<string, unknown> = { ...fromFile };
  for (const key of Object.keys(configSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') merged[key] = v;
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map(
        (i) =>
          `${i.path.join('.') || 'config'}=${shown(String(i.path[0]), merged[String(i.path[0])])}: ${i.message}`,
      ),
    );
  }
  const c = parsed.data;
  const influx = [c.INFLUX_URL, c.INFLUX_TOKEN, c.INFLUX_ORG, c.INFLUX_BUCKET];
  if (influx.some(Boolean) && !influx.every(Boolean)) {
    throw new ConfigError([
      'INFLUX_URL, INFLUX_TOKEN, INFLUX_ORG and INFLUX_BUCKET: set all four to enable InfluxDB, or none',
    ]);
  }
  const tls = [c.MQTT_TLS_PORT, c.MQTT_TLS_CERT, c.MQTT_TLS_KEY];
  if (tls.some((v) => v !== undefined) && !tls.every((v) => v !== undefined)) {
    throw new ConfigError([
      'MQTT_TLS_PORT, MQTT_TLS_CERT and MQTT_TLS_KEY: set all three to enable MQTT over TLS, or none',
    ]);
  }
  // CLU-01: separate processes share their state through PostgreSQL; an embedded SQLite file is one process's.
  if (c.ROLE !== 'all' && !c.DATABASE_URL?.startsWith('postgres'))
    throw new ConfigError([
      `ROLE=${c.ROLE}: separate gateway and dispatcher processes share one PostgreSQL database; set DATABASE_URL to a postgres:// URL (or use ROLE=all for the embedded SQLite store)`,
    ]);
  if (c.LEASE_RENEW_MS * 2 > c.LEASE_TTL_MS)
    throw new ConfigError([
      `LEASE_RENEW_MS=${c.LEASE_RENEW_MS}, LEASE_TTL_MS=${c.LEASE_TTL_MS}: a lease must be renewed at least twice within its TTL`,
    ]);
  if (c.WEBHOOK_URL && !c.WEBHOOK_SECRET)
    throw new ConfigError(['WEBHOOK_SECRET: required when WEBHOOK_URL is set (signs each call)']);
  // Swapped or equal boundaries would make every hour the night shift and the day roster never used.
  if (c.DAY_SHIFT_START >= c.NIGHT_SHIFT_START) {
    throw new ConfigError([
      `DAY_SHIFT_START=${c.DAY_SHIFT_START}, NIGHT_SHIFT_START=${c.NIGHT_SHIFT_START}: the day shift must start before the night shift (local time)`,
    ]);
  }
  return c;
}

/** A value as it may appear in an error message: secrets and credentials are never echoed. */
function shown(key: string, value: unknown): string {
  if (/PASSWORD|SECRET|TOKEN|DATABASE_URL/.test(key)) return value === undefined ? '""' : '"(hidden)"';
  return JSON.stringify(value ?? '');
}

/** The file the demo leaves in its DATA_DIR (simulators/demo.ts, its devices' secrets): the folder was demo-seeded. */
export const DEMO_MARKER_FILE = 'demo-devices.json';

/** Whether a listen address reaches this machine only. */
export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
