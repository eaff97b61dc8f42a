import type { AccountSettings } from '../config/resolve.js';
import type { Flow } from '../config/schema.js';
import type { Secret } from '../secret.js';

/** What a provider hands back from one call to the identity provider (or command, or config). */
export interface TokenGrant {
  accessToken: Secret;
  /** Epoch milliseconds; undefined when the provider did not say (treated as one hour). */
  expiresAt?: number | undefined;
  /** A new refresh token, when the identity provider rotated it. Stored before the token is used. */
  refreshToken?: Secret | undefined;
}

export interface ObtainContext {
  /** The current refresh token from the store (refresh_token, device_code, authorization_code, password flows). */
  refreshToken?: Secret | undefined;
  /** The password the client typed (password/ROPC flow only). */
  password?: Secret | undefined;
  signal: AbortSignal;
}

/**
 * One strategy per flow, made by a factory in tokens/providers/. It only talks to the
 * identity provider; caching, single-flight, margins, storage and retries live in the manager.
 * Errors: ProxyError `needs_authorization` (invalid_grant and friends), `auth_failed` (ROPC:
 * wrong password), `idp_unavailable` (network, 5xx, timeout, garbage), `token_expired` (static).
 */
export interface TokenProvider {
  readonly flow: Flow;
  obtain(ctx: ObtainContext): Promise<TokenGrant>;
}

export type TokenProviderFactory = (account: AccountSettings) => TokenProvider;

export type AccountState = 'ok' | 'refreshing' | 'needs_authorization' | 'failing' | 'unknown';

/** What the status page, `check` and the metrics show per account. Never a token. */
export interface AccountTokenStatus {
  username: string;
  flow: Flow;
  state: AccountState;
  /** Epoch ms of the cached access token's expiry. */
  expiresAt?: number | undefined;
  /** When the cached access token was obtained, when known. */
  lastRefreshAt?: number | undefined;
  /** The cached access token was obtained before this process started (read from the store). */
  refreshedBeforeStart: boolean;
  lastError?: string | undefined;
  hasRefreshToken: boolean;
}

export interface TokenRequestOptions {
  signal: AbortSignal;
  /** password flow: the password the client typed. */
  password?: Secret | undefined;
}

/** The SPEC section 2 contract, written once for every flow. */
export interface TokenManager {
  /**
   * A token with more than the margin left; refreshes when needed, one refresh at a time per
   * account (concurrent callers share it). `force` skips the cache (upstream rejected the token).
   */
  getToken(username: string, options: TokenRequestOptions & { force?: boolean }): Promise<Secret>;
  /**
   * Runs `use` with a fresh token. When `use` throws ProxyError `token_rejected`, forces one
   * refresh and runs `use` once more, invisibly to the client.
   */
  withFreshToken<T>(username: string, options: TokenRequestOptions, use: (token: Secret) => Promise<T>): Promise<T>;
  status(): AccountTokenStatus[];
  /**
   * Takes the grant of an interactive sign-in (device code or browser, see device-flow.ts and
   * browser-flow.ts): stores its refresh token, clears "needs authorization" in memory and in
   * the store, and schedules the background refresh. Throws ProxyError `needs_authorization`
   * when the grant has no refresh token for a flow that needs one.
   */
  authorize(username: string, grant: TokenGrant): Promise<void>;
  /**
   * Applies a reloaded account list (SIGHUP): unchanged accounts keep their cached tokens, new
   * and changed ones start from the store, removed ones are dropped (their stored tokens kept).
   */
  replaceAccounts(accounts: AccountSettings[]): Promise<AccountChanges>;
  /** Starts background refresh timers. */
  start(): void;
  /** Stops timers and waits for in-flight store writes. */
  stop(): Promise<void>;
}

/** One refresh, as the manager saw it (for metrics). */
export interface TokenRefreshEvent {
  account: string;
  flow: Flow;
  trigger: 'login' | 'forced' | 'background';
  /** `ok`, or the ProxyError code of the failure. */
  outcome: string;
  durationMs: number;
}

/** What the token manager tells the rest of the proxy (metrics, the needs-authorization hook). Never a token. */
export interface TokenEvents {
  refreshed?(event: TokenRefreshEvent): void;
  /** Called once per transition into "needs authorization", not once per login. */
  needsAuthorization?(event: { account: string; flow: Flow; reason: string }): void;
  /** An interactive sign-in gave the account a new grant. */
  authorized?(event: { account: string; flow: Flow }): void;
}

/** What a reload changed, by user name. */
export interface AccountChanges {
  added: string[];
  removed: string[];
  changed: string[];
}
