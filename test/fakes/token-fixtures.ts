import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { AccountSettings } from '../../src/config/resolve.js';
import type { Logger } from '../../src/log.js';
import { Secret } from '../../src/secret.js';

/** Shared fixtures for the token, store and manager unit tests. */

export const CLIENT_ID = 'proxy';
export const CLIENT_SECRET = 'proxy-secret';

export function accountFor(tokenUrl: string, overrides: Partial<AccountSettings> = {}): AccountSettings {
  return {
    username: 'alice@example.com',
    upstreamUsername: 'alice@example.com',
    providerName: 'mock',
    flow: 'refresh_token',
    localPassword: { kind: 'plain', value: new Secret('local') },
    oauth: { tokenUrl, clientId: CLIENT_ID, clientSecret: new Secret(CLIENT_SECRET), scope: 'mail' },
    saslMechanism: 'xoauth2',
    servers: {},
    ...overrides,
  };
}

export interface CapturedLog {
  log: Logger;
  records: Record<string, unknown>[];
  /** Everything logged, as text, to scan for leaked secrets. */
  text(): string;
  events(event: string): Record<string, unknown>[];
}

export function captureLogger(): CapturedLog {
  const lines: string[] = [];
  const records: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, {
    write(line: string) {
      lines.push(line);
      records.push(JSON.parse(line) as Record<string, unknown>);
    },
  });
  return {
    log,
    records,
    text: () => lines.join(''),
    events: (event) => records.filter((r) => r.event === event),
  };
}

export function tempDir(prefix = 'omp-unit-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export function signal(ms = 5_000): AbortSignal {
  return AbortSignal.timeout(ms);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` is true or the deadline passes. */
export async function waitFor(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}
