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
  return pino(base);
}
