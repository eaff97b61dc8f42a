import { randomBytes } from 'node:crypto';
import type { AccountSettings } from '../config/resolve.js';
import { describeError, isProxyError, ProxyError, toProxyError } from '../errors.js';
import {
  BACKGROUND_REFRESH_LEAD_MS, BACKGROUND_REFRESH_MIN_DELAY_MS, BACKGROUND_RETRY_MAX_MS, BACKGROUND_RETRY_MIN_MS,
  DEFAULT_TOKEN_LIFETIME_MS, TOKEN_REFRESH_MARGIN_MS, TOKEN_STOP_GRACE_MS,
} from '../limits.js';
import type { Logger } from '../log.js';
import type { Secret } from '../secret.js';
import type { TokenStore } from '../store/token-store.js';
import {
  createEntry, createPasswordVerifier, isPersistentGrant, REFRESH_TOKEN_FLOWS, toStatus, type AccountEntry,
} from './account-entry.js';
import { accountFingerprint } from './account-fingerprint.js';
import { createEntryStore } from './entry-store.js';
import { createTokenProvider, noRefreshToken, staticTokenRejected } from './providers/index.js';
import { backgroundDelay, isFresh, nextRetryDelay, type RefreshTiming } from './refresh-timing.js';
import { raceSignal } from './wait.js';
import type {
  AccountChanges, ObtainContext, TokenEvents, TokenGrant, TokenManager, TokenProviderFactory, TokenRequestOptions,
} from './types.js';

/**
 * The SPEC section 2 contract, written once for every flow: cache with a margin, one refresh
 * at a time per account, rotated refresh tokens stored before use, background refresh, forced
 * refresh and one retry when the mail server rejects a token, and the split between permanent
 * failures ("needs authorization", remembered) and temporary ones (every token kept).
 */

export interface TokenManagerOptions {
  accounts: AccountSettings[];
  store: TokenStore;
  log: Logger;
  providerFactory?: TokenProviderFactory | undefined;
  now?: (() => number) | undefined;
  marginMs?: number | undefined;
  /** Background refresh knobs (tests shorten them); default from limits.ts. */
  timing?: Partial<Omit<RefreshTiming, 'marginMs'>> | undefined;
  stopGraceMs?: number | undefined;
  /** Metrics and the needs-authorization hook listen here. */
  events?: TokenEvents | undefined;
}

type Trigger = 'login' | 'forced' | 'background';
type RefreshContext = Omit<ObtainContext, 'signal'>;
/** `force`: skip the cache; a Secret: skip the cache only while it still holds that (rejected) token. */
type Skip = 'force' | Secret | undefined;

export function createTokenManager(options: TokenManagerOptions): TokenManager {
  const { store, log } = options;
  const now = options.now ?? Date.now;
  const timing: RefreshTiming = {
    marginMs: options.marginMs ?? TOKEN_REFRESH_MARGIN_MS,
    leadMs: options.timing?.leadMs ?? BACKGROUND_REFRESH_LEAD_MS,
    retryMinMs: options.timing?.retryMinMs ?? BACKGROUND_RETRY_MIN_MS,
    retryMaxMs: options.timing?.retryMaxMs ?? BACKGROUND_RETRY_MAX_MS,
    minDelayMs: options.timing?.minDelayMs ?? BACKGROUND_REFRESH_MIN_DELAY_MS,
  };
  // One clock: the default providers compute expiry with the manager's `now`.
  const factory = options.providerFactory ?? ((account: AccountSettings) => createTokenProvider(account, { now }));
  const verifier = createPasswordVerifier(randomBytes(32));
  const shutdown = new AbortController();
  const { ready, persist, markChanged, settled } = createEntryStore(store, now);
  const entries = new Map<string, AccountEntry>();
  for (const account of options.accounts) entries.set(account.username.toLowerCase(), createEntry(account, factory(account)));
  let started = false;
  let stopping = false;

  function lookup(username: string): AccountEntry {
    const entry = entries.get(username.toLowerCase());
    if (!entry) throw new ProxyError('config_invalid', `no account "${username}" in the config`);
    return entry;
  }

  // --- ROPC passwords ----------------------------------------------------------------------

  function passwordOk(entry: AccountEntry, digest: Buffer | undefined): boolean {
    if (entry.account.flow !== 'password' || digest === undefined) return true;
    return verifier.same(entry.verifier, digest);
  }

  function contextFor(entry: AccountEntry, password: Secret | undefined, digest: Buffer | undefined): RefreshContext {
    if (entry.account.flow !== 'password') return { refreshToken: entry.refreshToken };
    if (password && passwordOk(entry, digest)) return { refreshToken: entry.refreshToken, password };
    if (password) return { password }; // a password the IdP has not accepted yet goes to the IdP
    if (entry.refreshToken) return { refreshToken: entry.refreshToken };
    throw new ProxyError('needs_authorization', `account ${entry.account.username} has no refresh token yet and no password was given: log in through the proxy once`);
  }

  // --- the cache ---------------------------------------------------------------------------

  function cached(entry: AccountEntry, digest: Buffer | undefined, skip: Skip): Secret | undefined {
    const { accessToken, expiresAt } = entry;
    if (!accessToken || expiresAt === undefined || entry.needsAuth || skip === 'force') return undefined;
    if (skip !== undefined && skip.reveal() === accessToken.reveal()) return undefined;
    if (!passwordOk(entry, digest)) return undefined;
    return isFresh(timing, now(), expiresAt, entry.obtainedAt) ? accessToken : undefined;
  }

  /** After a temporary failure, a token that has not expired yet still beats an error. */
  function stillValid(entry: AccountEntry, digest: Buffer | undefined, skip: Skip, err: unknown): Secret | undefined {
    if (!isProxyError(err, 'idp_unavailable') || skip !== undefined || entry.needsAuth) return undefined;
    if (!entry.accessToken || entry.expiresAt === undefined || now() >= entry.expiresAt) return undefined;
    return passwordOk(entry, digest) ? entry.accessToken : undefined;
  }

  // --- refreshing ----------------------------------------------------------------------------

  function logRefresh(entry: AccountEntry, trigger: Trigger, startedAt: number, err?: ProxyError): void {
    const fields = { event: 'token.refresh', account: entry.account.username, flow: entry.account.flow, trigger, durationMs: now() - startedAt };
    notify(() => options.events?.refreshed?.({ account: fields.account, flow: fields.flow, trigger, outcome: err?.code ?? 'ok', durationMs: fields.durationMs }));
    if (!err) log.info({ ...fields, outcome: 'ok', expiresAt: entry.expiresAt }, 'access token refreshed');
    else if (err.code === 'auth_failed' || err.code === 'aborted') log.info({ ...fields, outcome: err.code }, err.message);
    else log.warn({ ...fields, outcome: err.code, error: describeError(err) }, 'access token refresh failed');
  }

  async function accept(entry: AccountEntry, grant: TokenGrant, ctx: RefreshContext): Promise<void> {
    const at = now();
    entry.accessToken = grant.accessToken;
    entry.expiresAt = grant.expiresAt ?? at + DEFAULT_TOKEN_LIFETIME_MS;
    entry.obtainedAt = at;
    if (grant.refreshToken) entry.refreshToken = grant.refreshToken; // rotation
    if (ctx.password) entry.verifier = verifier.digest(entry.account.username, ctx.password);
    entry.needsAuth = undefined;
    entry.state = 'ok';
    entry.lastError = undefined;
    entry.lastRefreshAt = at;
    entry.fromStore = false;
    entry.retryDelayMs = 0;
    markChanged(entry);
    await persist(entry); // before the token is handed out: a rotated refresh token is never lost
  }

  async function markNeedsAuthorization(entry: AccountEntry, err: ProxyError): Promise<void> {
    const first = entry.needsAuth === undefined && entry.lastError !== err.message;
    entry.state = 'needs_authorization';
    entry.lastError = err.message;
    if (first) {
      log.warn({ event: 'token.needs_authorization', account: entry.account.username, flow: entry.account.flow, reason: err.message }, err.message);
      notify(() => options.events?.needsAuthorization?.({ account: entry.account.username, flow: entry.account.flow, reason: err.message }));
    }
    if (err.code === 'token_expired') return; // static: nothing to remember, the config is the fix
    entry.needsAuth = { since: now(), reason: err.message };
    if (!isPersistentGrant(entry)) return;
    markChanged(entry);
    await persist(entry).catch((storeErr: unknown) =>
      log.error({ event: 'token.store_failed', account: entry.account.username, error: describeError(storeErr) }, 'cannot store the needs-authorization flag'),
    );
  }

  async function fail(entry: AccountEntry, err: ProxyError, previous: AccountEntry['state']): Promise<void> {
    switch (err.code) {
      case 'needs_authorization':
      case 'token_expired':
        clearTimeout(entry.timer);
        await markNeedsAuthorization(entry, err);
        return;
      case 'auth_failed': // a wrong ROPC password says nothing about the account's health
      case 'aborted':
        entry.state = previous;
        return;
      default:
        entry.state = 'failing';
        entry.lastError = err.message;
        entry.retryDelayMs = nextRetryDelay(timing, entry.retryDelayMs);
        schedule(entry);
    }
  }

  async function runRefresh(entry: AccountEntry, ctx: RefreshContext, trigger: Trigger): Promise<Secret> {
    const startedAt = now();
    const previous = entry.state === 'refreshing' ? 'unknown' : entry.state;
    const grantBefore = entry.refreshToken;
    entry.state = 'refreshing';
    try {
      const grant = await entry.provider.obtain({ ...ctx, signal: shutdown.signal });
      await accept(entry, grant, ctx);
      logRefresh(entry, trigger, startedAt);
      schedule(entry);
      return grant.accessToken;
    } catch (caught) {
      const err = toProxyError(caught, 'idp_unavailable', `token refresh for ${entry.account.username} failed`);
      // A sign-in that completed meanwhile brought a new grant: the old one failing says nothing.
      if (entry.refreshToken === grantBefore) await fail(entry, err, previous);
      logRefresh(entry, trigger, startedAt, err);
      throw err;
    }
  }

  /** Starts the account's one refresh; everyone who needs it waits for this promise. */
  function startRefresh(entry: AccountEntry, ctx: RefreshContext, trigger: Trigger, digest?: Buffer): Promise<Secret> {
    const checksNewPassword = ctx.password !== undefined && ctx.refreshToken === undefined;
    const promise = runRefresh(entry, ctx, trigger).finally(() => {
      if (entry.inflight?.promise === promise) entry.inflight = undefined;
    });
    entry.inflight = { promise, passwordDigest: checksNewPassword ? digest : undefined };
    promise.catch(() => undefined); // a background refresh may have no one waiting on it
    return promise;
  }

  function failFast(entry: AccountEntry, password: Secret | undefined): void {
    if (!entry.needsAuth) return;
    if (entry.account.flow === 'password' && password) return; // a password may buy a new grant
    throw new ProxyError('needs_authorization', entry.needsAuth.reason);
  }

  function canShare(entry: AccountEntry, digest: Buffer | undefined): boolean {
    const inflight = entry.inflight;
    if (!inflight) return false;
    if (inflight.passwordDigest) return verifier.same(inflight.passwordDigest, digest);
    return passwordOk(entry, digest);
  }

  async function tokenFor(entry: AccountEntry, options: TokenRequestOptions, skip: Skip, trigger: Trigger): Promise<Secret> {
    await raceSignal(ready(entry), options.signal);
    entry.used = true;
    const password = entry.account.flow === 'password' ? options.password : undefined;
    const digest = password ? verifier.digest(entry.account.username, password) : undefined;
    for (;;) {
      const hit = cached(entry, digest, skip);
      if (hit) return hit;
      failFast(entry, password);
      if (entry.inflight && !canShare(entry, digest)) {
        // Another password is being checked: wait for that answer, then look again.
        await raceSignal(entry.inflight.promise.catch(() => undefined), options.signal);
        continue;
      }
      const pending = entry.inflight?.promise ?? startRefresh(entry, contextFor(entry, password, digest), trigger, digest);
      try {
        return await raceSignal(pending, options.signal);
      } catch (err) {
        const fallback = stillValid(entry, digest, skip, err);
        if (fallback) return fallback;
        throw err;
      }
    }
  }

  // --- background ------------------------------------------------------------------------------

  function wantsBackground(entry: AccountEntry): boolean {
    if (!started || stopping || entry.needsAuth || entry.state === 'needs_authorization') return false;
    const { flow } = entry.account;
    if (REFRESH_TOKEN_FLOWS.has(flow)) return entry.refreshToken !== undefined;
    return (flow === 'client_credentials' || flow === 'command') && entry.used;
  }

  function schedule(entry: AccountEntry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    if (!wantsBackground(entry)) return;
    const delay = entry.retryDelayMs > 0 ? entry.retryDelayMs : backgroundDelay(timing, now(), entry.expiresAt, entry.obtainedAt);
    entry.timer = setTimeout(() => backgroundRefresh(entry), delay);
    entry.timer.unref();
  }

  function backgroundRefresh(entry: AccountEntry): void {
    entry.timer = undefined;
    if (entry.inflight || !wantsBackground(entry)) return; // the running refresh reschedules
    void ready(entry)
      .then(() => entry.inflight?.promise ?? startRefresh(entry, contextFor(entry, undefined, undefined), 'background'))
      .catch(() => undefined); // logged by runRefresh; `fail` rescheduled it
  }

  /** Metrics and hooks must never break a refresh. */
  function notify(call: () => void): void {
    try {
      call();
    } catch (err) {
      log.error({ event: 'token.event_failed', error: describeError(err) }, 'a token event listener failed');
    }
  }

  async function authorize(username: string, grant: TokenGrant): Promise<void> {
    const entry = lookup(username);
    await ready(entry);
    const { flow } = entry.account;
    if (REFRESH_TOKEN_FLOWS.has(flow) && !grant.refreshToken) {
      throw new ProxyError('needs_authorization', `the identity provider gave ${entry.account.username} no refresh token: ask for offline access (Microsoft: add offline_access to the scope)`);
    }
    clearTimeout(entry.timer);
    entry.retryDelayMs = 0;
    await accept(entry, grant, {});
    log.info({ event: 'token.authorized', account: entry.account.username, flow, expiresAt: entry.expiresAt }, 'account authorized: new grant stored');
    notify(() => options.events?.authorized?.({ account: entry.account.username, flow }));
    schedule(entry);
  }

  /** A refresh-token account with no token at all: say so at start, loudly, not at the first login. */
  function needsFirstGrant(entry: AccountEntry): boolean {
    return isPersistentGrant(entry) && entry.refreshToken === undefined && entry.needsAuth === undefined;
  }

  /** Loads the entry and starts its background refresh, or says at once that it needs a first grant. */
  function activate(entry: AccountEntry): void {
    ready(entry).then(
      () => (needsFirstGrant(entry) ? markNeedsAuthorization(entry, noRefreshToken(entry.account)) : schedule(entry)),
      (err: unknown) => log.error({ event: 'token.store_failed', account: entry.account.username, error: describeError(err) }, 'cannot load stored tokens'),
    );
  }

  /**
   * A reloaded account list. Unchanged accounts keep their entry (cached token, timer); removed
   * ones lose theirs, their stored tokens stay; new and changed ones start from the store, after
   * any refresh of the old entry has finished and been written, so that none reads a refresh
   * token that is about to be rotated away.
   */
  async function replaceAccounts(accounts: AccountSettings[]): Promise<AccountChanges> {
    const next = new Map(accounts.map((a) => [a.username.toLowerCase(), a]));
    const changes: AccountChanges = { added: [], removed: [], changed: [] };
    for (const [key, entry] of entries) {
      if (next.has(key)) continue;
      clearTimeout(entry.timer);
      entries.delete(key);
      changes.removed.push(entry.account.username);
    }
    for (const [key, account] of next) {
      const old = entries.get(key);
      if (old && accountFingerprint(old.account) === accountFingerprint(account)) continue;
      if (old) {
        clearTimeout(old.timer);
        await old.inflight?.promise.catch(() => undefined);
        await settled();
      }
      const entry = createEntry(account, factory(account));
      entries.set(key, entry);
      (old ? changes.changed : changes.added).push(account.username);
      if (started && !stopping) activate(entry);
    }
    return changes;
  }

  // --- the contract ------------------------------------------------------------------------------

  return {
    getToken: async (username, { force, ...options }) =>
      tokenFor(lookup(username), options, force ? 'force' : undefined, force ? 'forced' : 'login'),

    async withFreshToken(username, options, use) {
      const entry = lookup(username);
      const token = await tokenFor(entry, options, undefined, 'login');
      try {
        return await use(token);
      } catch (err) {
        if (!isProxyError(err, 'token_rejected')) throw err;
        if (entry.account.flow === 'static') {
          const expired = staticTokenRejected(entry.account, err);
          await markNeedsAuthorization(entry, expired);
          throw expired;
        }
        log.info({ event: 'token.rejected', account: entry.account.username, flow: entry.account.flow }, 'mail server rejected the access token; refreshing once');
        return use(await tokenFor(entry, options, token, 'forced'));
      }
    },

    status: () => [...entries.values()].map(toStatus),

    authorize,

    start() {
      if (started) return;
      started = true;
      for (const entry of entries.values()) activate(entry);
    },

    replaceAccounts,

    async stop() {
      stopping = true;
      for (const entry of entries.values()) clearTimeout(entry.timer);
      const running = () => Promise.allSettled([...entries.values()].map((e) => e.inflight?.promise));
      const grace = new Promise<void>((resolve) => setTimeout(resolve, options.stopGraceMs ?? TOKEN_STOP_GRACE_MS).unref());
      await Promise.race([running(), grace]);
      shutdown.abort(new ProxyError('aborted', 'the token manager is stopping'));
      await running();
      await settled();
    },
  };
}
