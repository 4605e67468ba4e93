/**
 * Configuration from environment variables (SPEC §2), validated at start. Every problem is reported at
 * once, each naming the variable and what is expected. Only the entry file calls `loadConfig(process.env)`.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

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

export const configSchema = z.object({
  MQTT_PORT: port.default(1883),
  MQTT_HOST: z.string().default('0.0.0.0'),
  HTTP_PORT: port.default(8080),
  HTTP_HOST: z.string().default('0.0.0.0'),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^(postgres(ql)?:\/\/|sqlite:)/, 'expected a postgres:// URL or sqlite:<file>')
    .optional(),
  INFLUX_URL: z.url({ message: 'expected an http(s) URL' }).optional(),
  INFLUX_TOKEN: z.string().optional(),
  INFLUX_ORG: z.string().optional(),
  INFLUX_BUCKET: z.string().optional(),
  TZ_COMMUNITY: z
    .string()
    .default('Asia/Shanghai')
    .refine(validZone, 'expected an IANA time zone such as Asia/Shanghai'),
  DAY_SHIFT_START: hhmm.default('08:00'),
  NIGHT_SHIFT_START: hhmm.default('20:00'),
  ADMIN_PASSWORD: z.string().min(8, 'expected at least 8 characters').optional(),
  WEBHOOK_URL: z.url({ message: 'expected an http(s) URL' }).optional(),
  WEBHOOK_SECRET: z.string().min(16, 'expected at least 16 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SESSION_HOURS: z.coerce.number().positive().default(12),
  CONFIG_FILE: z.string().optional(),
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
          `${i.path.join('.') || 'config'}=${JSON.stringify(merged[String(i.path[0])] ?? '')}: ${i.message}`,
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
  if (c.WEBHOOK_URL && !c.WEBHOOK_SECRET)
    throw new ConfigError(['WEBHOOK_SECRET: required when WEBHOOK_URL is set (signs each call)']);
  return c;
}
