import type { AccountSettings } from '../config/resolve.js';
import { signInMethods, type SignInMethod } from '../tokens/sign-in-method.js';
import type { AccountState, AccountTokenStatus } from '../tokens/types.js';
import type { SignInView } from './sign-in.js';

/**
 * One status page row per account, as the HTML page renders it and /api/status serves it:
 * state, expiry and last refresh in words, the last error, active sessions and how to sign in.
 * Never a token.
 */

export interface AccountRow {
  account: string;
  flow: string;
  state: AccountState;
  stateLabel: string;
  expiresAt?: number | undefined;
  expires: string;
  lastRefreshAt?: number | undefined;
  lastRefresh: string;
  lastError: string;
  activeSessions: number;
  signInMethods: SignInMethod[];
  device?: SignInView['device'];
}

export interface StatusSources {
  accounts: readonly AccountSettings[];
  status: () => AccountTokenStatus[];
  activeSessions: (account: string) => number;
  signIn: (account: string) => SignInView;
  now: () => number;
}

const STATE_LABELS: Record<AccountState, string> = {
  ok: 'ok',
  refreshing: 'refreshing',
  needs_authorization: 'needs authorization',
  failing: 'failing',
  unknown: 'not used yet',
};

const MAX_ERROR_CHARS = 400;

/** "in 52 min", "3 h ago": coarse on purpose, the exact time is in the title attribute. */
export function relativeTime(at: number, now: number): string {
  const diff = at - now;
  const abs = Math.abs(diff);
  const minutes = Math.round(abs / 60_000);
  let span: string;
  if (abs < 60_000) span = `${Math.max(1, Math.round(abs / 1000))} s`;
  else if (minutes < 120) span = `${minutes} min`;
  else if (minutes < 48 * 60) span = `${Math.round(minutes / 60)} h`;
  else span = `${Math.round(minutes / 1440)} days`;
  return diff >= 0 ? `in ${span}` : `${span} ago`;
}

function expiryText(status: AccountTokenStatus, now: number): string {
  if (status.expiresAt === undefined) return status.hasRefreshToken ? 'no access token yet' : '—';
  return status.expiresAt <= now ? `expired ${relativeTime(status.expiresAt, now)}` : relativeTime(status.expiresAt, now);
}

/** A token from the store was refreshed by an earlier run; the store may not say when. */
function lastRefreshText(status: AccountTokenStatus, now: number): string {
  if (status.lastRefreshAt !== undefined) return relativeTime(status.lastRefreshAt, now);
  return status.refreshedBeforeStart ? 'before restart' : 'never';
}

export function accountRows(sources: StatusSources): AccountRow[] {
  const now = sources.now();
  const byName = new Map(sources.accounts.map((a) => [a.username.toLowerCase(), a]));
  return sources.status().map((status) => {
    const account = byName.get(status.username.toLowerCase());
    const signIn = sources.signIn(status.username);
    const error = signIn.lastError ? `Sign-in: ${signIn.lastError}` : (status.lastError ?? '');
    return {
      account: status.username,
      flow: status.flow,
      state: status.state,
      stateLabel: STATE_LABELS[status.state],
      expiresAt: status.expiresAt,
      expires: expiryText(status, now),
      lastRefreshAt: status.lastRefreshAt,
      lastRefresh: lastRefreshText(status, now),
      lastError: error.length > MAX_ERROR_CHARS ? `${error.slice(0, MAX_ERROR_CHARS)}…` : error,
      activeSessions: sources.activeSessions(status.username),
      signInMethods: account ? signInMethods(account) : [],
      device: signIn.device,
    };
  });
}
