import type { AccountRegistry } from './accounts/registry.js';
import type { Config } from './config/resolve.js';
import type { ListenerChanges, ListenerSet } from './listener-set.js';
import type { Logger } from './log.js';
import { fingerprint } from './tokens/account-fingerprint.js';
import type { TokenManager } from './tokens/types.js';

export interface ReloadTargets {
  accounts: AccountRegistry;
  tokens: TokenManager;
  listeners: ListenerSet;
  log: Logger;
}

/** Settings that are built once at start; a change to them waits for a restart. */
const FIXED: [string, (c: Config) => unknown][] = [
  ['token_store', (c) => c.tokenStore],
  ['admin', (c) => c.admin],
  ['login_throttle', (c) => c.loginThrottle],
  ['hooks', (c) => c.hooks],
];

/**
 * SIGHUP (SPEC section 6): applies a changed config without dropping a session. The token
 * manager learns new accounts before the registry lets anyone log in to them; listeners are
 * diffed (listener-set.ts); the log level follows at once. One `config.reload` line says what
 * changed, and a warning names whatever still needs a restart.
 */
export async function reloadApp(previous: Config, next: Config, t: ReloadTargets): Promise<void> {
  const accounts = await t.tokens.replaceAccounts(next.accounts);
  t.accounts.replace(next.accounts);
  const listeners = await t.listeners.apply(next.listeners);
  if (next.log.level !== previous.log.level) t.log.level = next.log.level;
  const passwords = localPasswordChanges(previous, next);
  // A listener that could not start is a reload that did not fully happen: not an info line.
  const level = listeners.failed.length > 0 ? 'warn' : 'info';
  t.log[level]({ event: 'config.reload', accounts, passwords, listeners }, describeChanges(accounts, passwords, listeners));
  const needRestart = FIXED.filter(([, get]) => fingerprint(get(previous)) !== fingerprint(get(next))).map(([key]) => key);
  if (needRestart.length > 0) {
    t.log.warn({ event: 'config.reload_partial', needRestart }, `changes to ${needRestart.join(', ')} take effect at the next restart`);
  }
}

/**
 * Accounts kept across the reload whose local password changed. The token manager does not see
 * these (a new local password keeps the cached token), so the reload line names them itself.
 */
export function localPasswordChanges(previous: Config, next: Config): string[] {
  const before = new Map(previous.accounts.map((a) => [a.username.toLowerCase(), fingerprint(a.localPassword)]));
  return next.accounts
    .filter((a) => {
      const old = before.get(a.username.toLowerCase());
      return old !== undefined && old !== fingerprint(a.localPassword);
    })
    .map((a) => a.username);
}

function describeChanges(
  a: { added: string[]; removed: string[]; changed: string[] },
  passwords: string[],
  l: ListenerChanges,
): string {
  const newPasswords = passwords.length ? `, ${passwords.length} with a new local password` : '';
  const accounts = `accounts: ${a.added.length} added, ${a.removed.length} removed, ${a.changed.length} changed${newPasswords}`;
  const renewed = l.renewed.length ? `, ${l.renewed.length} certificate${l.renewed.length === 1 ? '' : 's'} renewed` : '';
  const listeners = `listeners: ${l.kept} kept, ${l.started.length} started, ${l.stopped.length} stopped${renewed}${failures(l)}`;
  return `config reloaded (${accounts}; ${listeners})`;
}

function failures(l: ListenerChanges): string {
  if (l.failed.length === 0) return '';
  const retained = l.retained.length ? ` (still serving as before: ${l.retained.join(', ')})` : '';
  return `, ${l.failed.length} FAILED: ${l.failed.join(', ')}${retained}`;
}
