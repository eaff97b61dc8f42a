import pino, { type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * Second line of defence: secrets are `Secret` objects that print as "[redacted]"
 * (secret.ts); these paths catch a plain string that slipped through anyway.
 */
const REDACT_PATHS = [
  'password', 'pass', 'token', 'access_token', 'accessToken', 'refresh_token', 'refreshToken',
  'client_secret', 'clientSecret', 'authorization', 'payload', 'secret',
  '*.password', '*.pass', '*.token', '*.access_token', '*.accessToken', '*.refresh_token',
  '*.refreshToken', '*.client_secret', '*.clientSecret', '*.authorization', '*.payload', '*.secret',
  'req.headers.authorization',
];

export interface LogOptions {
  level: LevelWithSilent;
  /** json (default when not a terminal) or pretty (default on a terminal). */
  format?: 'json' | 'pretty' | undefined;
  /** Where to write; defaults to stdout. */
  destination?: pino.DestinationStream | undefined;
}

/**
 * JSON lines go to stdout with a synchronous write each: a line is in the file, pipe or journal
 * before the call returns, so the last lines before a crash are never lost, and a write costs
 * about 2 µs of CPU where pino's default (a write handed to libuv's thread pool) costs about
 * 38 µs, waking a second thread for every line (bench/: 0.3 to 0.6 ms of CPU per IMAP login,
 * docs/decisions.md). Node writes its own stdout to files and pipes synchronously on Linux too.
 */
export function createLogger(options: LogOptions): Logger {
  const pretty = options.format === 'pretty' || (options.format === undefined && process.stdout.isTTY === true);
  const base: pino.LoggerOptions = {
    level: options.level,
    base: { name: 'oauth-mail-proxy' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (options.destination) return pino(base, options.destination);
  if (pretty) {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:standard' } } });
  }
  return pino(base, pino.destination({ dest: 1, sync: true }));
}
