import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { AccountSettings } from '../config/resolve.js';
import type { Flow } from '../config/schema.js';
import { Secret } from '../secret.js';
import type { StoredTokens } from '../store/token-store.js';
import type { AccountState, AccountTokenStatus, TokenProvider } from './types.js';

/**
 * What the token manager knows about one account, and how that maps to and from the store.
 * The manager's logic (single flight, margins, timers) is in manager.ts.
 */

/** Flows whose grant is a stored refresh token that only a person can renew: their "needs authorization" survives a restart. */
const PERSISTENT_GRANT_FLOWS: ReadonlySet<Flow> = new Set(['refresh_token', 'device_code', 'authorization_code']);
/** Flows that keep a refresh token (background refresh needs one). */
export const REFRESH_TOKEN_FLOWS: ReadonlySet<Flow> = new Set(['refresh_token', 'device_code', 'authorization_code', 'password']);

export interface Inflight {
  promise: Promise<Secret>;
  /** Set when this refresh checks a new ROPC password with the identity provider. */
  passwordDigest?: Buffer | undefined;
}

export interface AccountEntry {
  readonly account: AccountSettings;
  readonly provider: TokenProvider;
  /** sha256 (hex) of the configured refresh-token seed, if any. */
  readonly configSeedDigest?: string | undefined;
  loading?: Promise<void> | undefined;
  /** A store write of a dirty entry that concurrent callers share. */
  flushing?: Promise<void> | undefined;
  accessToken?: Secret | undefined;
  expiresAt?: number | undefined;
  /** When the cached access token was obtained (its lifetime bounds the margin). */
  obtainedAt?: number | undefined;
  refreshToken?: Secret | undefined;
  /** Digest of the seed the current refresh token grew from. */
  seedDigest?: string | undefined;
  needsAuth?: { since: number; reason: string } | undefined;
  state: AccountState;
  lastError?: string | undefined;
  /** When the access token in memory was obtained, if known (a store written by older versions did not say). */
  lastRefreshAt?: number | undefined;
  /** The access token in memory came from the store: obtained before this process started. */
  fromStore: boolean;
  /** Bumped on every change worth storing; `dirty` until that generation is durable. */
  generation: number;
  dirty: boolean;
  inflight?: Inflight | undefined;
  timer?: NodeJS.Timeout | undefined;
  retryDelayMs: number;
  /** A client or CLI asked for a token (client_credentials and command accounts refresh in the background only then). */
  used: boolean;
  /** ROPC: keyed digest of the last password the identity provider accepted. */
  verifier?: Buffer | undefined;
}

export function sha256Hex(value: Secret): string {
  return createHash('sha256').update(value.reveal(), 'utf8').digest('hex');
}

export function createEntry(account: AccountSettings, provider: TokenProvider): AccountEntry {
  return {
    account,
    provider,
    configSeedDigest: account.refreshTokenSeed ? sha256Hex(account.refreshTokenSeed) : undefined,
    state: 'unknown',
    generation: 0,
    dirty: false,
    retryDelayMs: 0,
    used: false,
    fromStore: false,
  };
}

export function isPersistentGrant(entry: AccountEntry): boolean {
  return PERSISTENT_GRANT_FLOWS.has(entry.account.flow);
}

/**
 * Takes the stored state, unless the config holds a refresh-token seed that the store has not
 * seen (no stored refresh token, or a different seed digest: the operator pasted a new one).
 * Returns true when the entry now differs from the store.
 */
export function applyStored(entry: AccountEntry, stored: StoredTokens | undefined, now: number): boolean {
  const seed = entry.account.refreshTokenSeed;
  if (seed && (!stored?.refreshToken || stored.seedDigest !== entry.configSeedDigest)) {
    entry.refreshToken = seed;
    entry.seedDigest = entry.configSeedDigest;
    entry.generation++;
    return true;
  }
  if (!stored) return false;
  entry.refreshToken = stored.refreshToken ? new Secret(stored.refreshToken) : undefined;
  entry.seedDigest = stored.seedDigest;
  if (stored.accessToken && stored.accessTokenExpiresAt !== undefined) applyStoredAccessToken(entry, stored, now);
  if (stored.needsAuthorization && isPersistentGrant(entry)) {
    entry.needsAuth = stored.needsAuthorization;
    entry.state = 'needs_authorization';
    entry.lastError = stored.needsAuthorization.reason;
  }
  return false;
}

/**
 * A stored access token that has not expired was obtained and stored by a refresh that worked,
 * so the account is ok, as it would be had this process made that refresh: the status page and
 * accounts{state="ok"} must not say "not used yet" because of a restart.
 */
function applyStoredAccessToken(entry: AccountEntry, stored: StoredTokens, now: number): void {
  entry.accessToken = new Secret(stored.accessToken!);
  entry.expiresAt = stored.accessTokenExpiresAt;
  // The write time bounds the token's age from above, which is what the refresh margin needs.
  entry.obtainedAt = stored.accessTokenObtainedAt ?? stored.updatedAt;
  entry.lastRefreshAt = stored.accessTokenObtainedAt; // only what the store knows; not the write time
  entry.fromStore = true;
  if (stored.accessTokenExpiresAt! > now) entry.state = 'ok';
}

export function toStored(entry: AccountEntry, now: number): StoredTokens {
  return {
    refreshToken: entry.refreshToken?.reveal(),
    accessToken: entry.accessToken?.reveal(),
    accessTokenExpiresAt: entry.accessToken ? entry.expiresAt : undefined,
    accessTokenObtainedAt: entry.accessToken ? entry.lastRefreshAt : undefined,
    seedDigest: entry.seedDigest,
    needsAuthorization: isPersistentGrant(entry) ? entry.needsAuth : undefined,
    updatedAt: now,
  };
}

export function toStatus(entry: AccountEntry): AccountTokenStatus {
  return {
    username: entry.account.username,
    flow: entry.account.flow,
    state: entry.state,
    expiresAt: entry.accessToken ? entry.expiresAt : undefined,
    lastRefreshAt: entry.lastRefreshAt,
    refreshedBeforeStart: entry.fromStore,
    lastError: entry.lastError,
    hasRefreshToken: entry.refreshToken !== undefined,
  };
}

/**
 * In-memory verifier of ROPC passwords (SPEC section 4): an HMAC under a random per-process
 * key, compared in constant time. Never stored; a restart sends the next login to the IdP.
 */
export function createPasswordVerifier(key: Buffer) {
  return {
    digest: (username: string, password: Secret): Buffer =>
      createHmac('sha256', key).update(username, 'utf8').update('\0').update(password.reveal(), 'utf8').digest(),
    same: (a: Buffer | undefined, b: Buffer | undefined): boolean =>
      a !== undefined && b !== undefined && a.length === b.length && timingSafeEqual(a, b),
  };
}
