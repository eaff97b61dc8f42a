import { execFile } from 'node:child_process';
import type { AccountSettings } from '../../config/resolve.js';
import { ProxyError } from '../../errors.js';
import { MAX_TOKEN_COMMAND_OUTPUT_BYTES, TOKEN_COMMAND_TIMEOUT_MS } from '../../limits.js';
import { Secret } from '../../secret.js';
import type { TokenGrant, TokenProvider } from '../types.js';

/**
 * Runs a configured command that prints a token (oama, pizauth, mailctl, a vault CLI). An argv
 * runs directly; a string runs through /bin/sh -c. Stdout, trimmed, is the token, or a JSON
 * object {access_token, expires_in | expires_at}. Stdout never appears in an error; stderr's
 * first line does (with the token cut out, should a tool echo it there).
 */

export interface CommandProviderOptions {
  timeoutMs?: number | undefined;
  maxOutputBytes?: number | undefined;
  now?: (() => number) | undefined;
}

interface RunResult {
  stdout: string;
  stderr: string;
  error: (Error & { code?: unknown; signal?: unknown }) | null;
  timedOut: boolean;
}

const MAX_STDERR_LINE_CHARS = 200;
const MAXBUFFER = 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER';

function run(argv: string[], signal: AbortSignal, timeoutMs: number, maxBytes: number): Promise<RunResult> {
  const [file, ...args] = argv as [string, ...string[]];
  return new Promise((resolve) => {
    const options = { encoding: 'utf8', maxBuffer: maxBytes, timeout: timeoutMs, killSignal: 'SIGKILL', signal, windowsHide: true } as const;
    const child = execFile(file, args, options, (error, stdout, stderr) => {
      // execFile marks a timeout kill as `killed`; an abort comes back as AbortError.
      const timedOut = error !== null && (error as { killed?: boolean }).killed === true && !signal.aborted && error.code !== MAXBUFFER;
      resolve({ stdout, stderr, error, timedOut });
    });
    child.stdin?.end(); // a command that prompts gets end-of-file, not a hang
  });
}

function firstLine(text: string, hide: string): string {
  let line = text.split(/\r?\n/).find((l) => l.trim() !== '')?.trim() ?? '';
  if (hide.length >= 8) line = line.split(hide).join('[redacted]');
  return line.length > MAX_STDERR_LINE_CHARS ? `${line.slice(0, MAX_STDERR_LINE_CHARS)}…` : line;
}

function expiryFrom(record: Record<string, unknown>, now: number): number | undefined {
  const { expires_in: expiresIn, expires_at: expiresAt } = record;
  if (typeof expiresIn === 'number' || (typeof expiresIn === 'string' && expiresIn.trim() !== '')) {
    const seconds = Number(expiresIn);
    return Number.isFinite(seconds) ? now + seconds * 1000 : undefined;
  }
  // expires_at: epoch seconds (or milliseconds, if that large), or an ISO 8601 date.
  if (typeof expiresAt === 'number') return expiresAt > 1e12 ? expiresAt : expiresAt * 1000;
  if (typeof expiresAt === 'string') {
    const parsed = Date.parse(expiresAt);
    return Number.isNaN(parsed) ? undefined : parsed;
  }
  return undefined;
}

/** Stdout to a grant, or the reason (a phrase) why it is not usable. */
export function parseCommandOutput(stdout: string, now: number): TokenGrant | string {
  const text = stdout.trim();
  if (!text) return 'printed nothing on stdout';
  if (text.startsWith('{')) {
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch {
      return 'printed something that looks like JSON but is not';
    }
    const fields = (typeof record === 'object' && record !== null ? record : {}) as Record<string, unknown>;
    const token = fields.access_token;
    if (typeof token !== 'string' || !token.trim()) return 'printed JSON without an access_token';
    return { accessToken: new Secret(token.trim()), expiresAt: expiryFrom(fields, now) };
  }
  if (/\s/.test(text)) return 'printed more than one word; expected the token alone (or JSON)';
  return { accessToken: new Secret(text) };
}

function failure(account: AccountSettings, result: RunResult, timeoutMs: number): ProxyError {
  const who = `token command of ${account.username}`;
  const { error } = result;
  const printed = parseCommandOutput(result.stdout, 0);
  const detail = firstLine(result.stderr, typeof printed === 'string' ? result.stdout.trim() : printed.accessToken.reveal());
  const said = detail ? `: ${detail}` : '';
  // Not execFile's own message: it starts with the whole command line, which may hold a secret.
  const cause = error ? new Error(`execFile: code ${String(error.code)}, signal ${String(error.signal ?? 'none')}`) : null;
  if (result.timedOut) return new ProxyError('idp_unavailable', `${who} did not finish within ${timeoutMs / 1000} s`, { cause });
  if (error?.code === MAXBUFFER) {
    return new ProxyError('idp_unavailable', `${who} printed too much output`, { cause });
  }
  if (typeof error?.code === 'string') {
    return new ProxyError('idp_unavailable', `${who} could not be started (${error.code})${said}`, { cause });
  }
  const how = typeof error?.code === 'number' ? `exit ${error.code}` : `signal ${String(error?.signal)}`;
  return new ProxyError('idp_unavailable', `${who} failed (${how})${said}`, { cause });
}

export function createCommandProvider(account: AccountSettings, options: CommandProviderOptions = {}): TokenProvider {
  const timeoutMs = options.timeoutMs ?? TOKEN_COMMAND_TIMEOUT_MS;
  const maxBytes = options.maxOutputBytes ?? MAX_TOKEN_COMMAND_OUTPUT_BYTES;
  const now = options.now ?? Date.now;
  const command = account.command;
  return {
    flow: 'command',
    obtain: async ({ signal }) => {
      if (command === undefined || command.length === 0) {
        throw new ProxyError('config_invalid', `account ${account.username} has flow "command" but no command`);
      }
      if (signal.aborted) throw new ProxyError('aborted', `token command of ${account.username} aborted`, { cause: signal.reason });
      const argv = typeof command === 'string' ? ['/bin/sh', '-c', command] : command;
      const result = await run(argv, signal, timeoutMs, maxBytes);
      if (signal.aborted) throw new ProxyError('aborted', `token command of ${account.username} aborted`, { cause: signal.reason });
      if (result.error) throw failure(account, result, timeoutMs);
      const grant = parseCommandOutput(result.stdout, now());
      if (typeof grant === 'string') throw new ProxyError('idp_unavailable', `token command of ${account.username} ${grant}`);
      return grant;
    },
  };
}
