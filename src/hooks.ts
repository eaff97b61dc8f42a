import { execFile } from 'node:child_process';
import type { HookTarget } from './config/resolve.js';
import { describeError } from './errors.js';
import { HOOK_TIMEOUT_MS } from './limits.js';
import type { Logger } from './log.js';
import type { TokenEvents } from './tokens/types.js';

/**
 * The "needs authorization" hook (SPEC section 2): so that operators learn before their users
 * do, a configured command and/or webhook is told once per transition, with the account and the
 * reason in plain words, never a token. It runs in the background; a failing hook is logged and
 * never holds up a login or a refresh.
 */

export interface HookEvent {
  event: 'needs_authorization';
  account: string;
  flow: string;
  reason: string;
  /** ISO 8601. */
  at: string;
}

/** Runs the command with the event in its environment (and as JSON on stdin). */
function runCommand(command: string | string[], event: HookEvent): Promise<void> {
  const argv = typeof command === 'string' ? ['/bin/sh', '-c', command] : command;
  const [file, ...args] = argv as [string, ...string[]];
  const env = {
    ...process.env,
    OAUTH_MAIL_PROXY_EVENT: event.event,
    OAUTH_MAIL_PROXY_ACCOUNT: event.account,
    OAUTH_MAIL_PROXY_FLOW: event.flow,
    OAUTH_MAIL_PROXY_REASON: event.reason,
  };
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { env, timeout: HOOK_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      const detail = stderr.trim().split('\n')[0]?.slice(0, 200);
      const how = typeof err.code === 'number' ? `exit ${err.code}` : err.killed ? 'timed out' : String(err.code ?? err.signal);
      reject(new Error(`hook command failed (${how})${detail ? `: ${detail}` : ''}`));
    });
    child.stdin?.on('error', () => undefined); // a command that does not read stdin closes it: EPIPE is no failure
    child.stdin?.end(`${JSON.stringify(event)}\n`);
  });
}

/** POSTs the event as JSON; any 2xx is success. */
async function postWebhook(url: string, event: HookEvent): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'oauth-mail-proxy' },
    body: JSON.stringify({ ...event, text: `oauth-mail-proxy: ${event.account} needs authorization: ${event.reason}` }),
    signal: AbortSignal.timeout(HOOK_TIMEOUT_MS),
  });
  await res.body?.cancel();
  if (res.status < 200 || res.status > 299) throw new Error(`webhook answered HTTP ${res.status}`);
}

/** Token events that call the needs-authorization hook; `settled()` waits for hooks in flight (tests, shutdown). */
export function createNeedsAuthorizationHook(target: HookTarget, log: Logger): TokenEvents & { settled(): Promise<void> } {
  const running = new Set<Promise<void>>();
  function fire(kind: 'command' | 'webhook', call: () => Promise<void>, event: HookEvent): void {
    const done = call().then(
      () => log.info({ event: 'hook.ok', hook: kind, account: event.account }, `needs-authorization ${kind} hook ran`),
      (err: unknown) => log.warn({ event: 'hook.failed', hook: kind, account: event.account, error: describeError(err) }, `needs-authorization ${kind} hook failed`),
    ).finally(() => running.delete(done));
    running.add(done);
  }
  return {
    needsAuthorization({ account, flow, reason }) {
      const event: HookEvent = { event: 'needs_authorization', account, flow, reason, at: new Date().toISOString() };
      const { command, url } = target;
      if (command !== undefined) fire('command', () => runCommand(command, event), event);
      if (url !== undefined) fire('webhook', () => postWebhook(url, event), event);
    },
    settled: async () => {
      await Promise.allSettled([...running]);
    },
  };
}

/** Several listeners as one (metrics and the hook both listen to the token manager). */
export function combineTokenEvents(...listeners: (TokenEvents | undefined)[]): TokenEvents {
  const all = listeners.filter((l): l is TokenEvents => l !== undefined);
  return {
    refreshed: (e) => all.forEach((l) => l.refreshed?.(e)),
    needsAuthorization: (e) => all.forEach((l) => l.needsAuthorization?.(e)),
    authorized: (e) => all.forEach((l) => l.authorized?.(e)),
  };
}
