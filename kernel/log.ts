import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Personal data and secrets never reach the logs (SPEC §9). Log objects carry ids, never names, phones,
 * addresses or access notes; these paths are redacted in case one slips in.
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'secret',
  '*.secret',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'phone',
  '*.phone',
  'name',
  '*.name',
  'address',
  '*.address',
  'accessNotes',
  '*.accessNotes',
  'residents',
  '*.residents',
  'contacts',
  '*.contacts',
];

export interface LogOptions {
  level?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read what was logged. */
  destination?: pino.DestinationStream;
  pretty?: boolean;
}

export function createLogger(opts: LogOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { svc: 'guardian365' },
    },
    opts.destination ?? pino.destination({ sync: false }),
  );
}

/** A logger that drops everything: for tests that do not read logs. */
export const silentLogger = (): Logger => pino({ level: 'silent' });
