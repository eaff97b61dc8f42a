import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AccountSettings } from '../../../src/config/resolve.js';
import { startMockIdp, type MockIdp, type MockIdpOptions } from '../../../src/demo/mock-idp.js';
import { isProxyError, ProxyError, type ErrorCode } from '../../../src/errors.js';
import { Secret } from '../../../src/secret.js';
import { openFileStore } from '../../../src/store/file-store.js';
import type { StoredTokens, TokenStore } from '../../../src/store/token-store.js';
import { sha256Hex } from '../../../src/tokens/account-entry.js';
import { createTokenManager, type TokenManagerOptions } from '../../../src/tokens/manager.js';
import type { TokenManager } from '../../../src/tokens/types.js';
import { accountFor, captureLogger, signal, sleep, tempDir, waitFor, type CapturedLog } from '../../fakes/token-fixtures.js';

const USER = 'alice@example.com';
const MINUTE = 60_000;

interface Setup {
  idp: MockIdp;
  store: TokenStore;
  manager: TokenManager;
  logs: CapturedLog;
  account: AccountSettings;
  /** Moves the manager's clock (not the IdP's). */
  advance(ms: number): void;
  /** The store as a fresh process would read it. */
  stored(): Promise<StoredTokens | undefined>;
  /** A second manager over the same store (a restart), with optional account changes. */
  restart(account?: Partial<AccountSettings>): Promise<TokenManager>;
}

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface SetupOptions {
  idp?: MockIdpOptions;
  account?: Partial<AccountSettings>;
  manager?: Partial<TokenManagerOptions>;
  /** Configured refresh token; default a fresh one from the IdP. 'none' for no seed. */
  seed?: string | 'none';
  /** What the store holds before the manager starts. */
  preload?: StoredTokens;
}

async function setup(options: SetupOptions = {}): Promise<Setup> {
  const idp = await startMockIdp({ users: [{ username: USER, password: 'right-pw' }], ...options.idp });
  cleanups.push(() => idp.close());
  const dir = await tempDir('omp-manager-');
  const storeOptions = { path: join(dir, 'tokens.enc'), keyFile: join(dir, 'tokens.key') };
  const store = await openFileStore(storeOptions, {});
  cleanups.push(() => store.close());
  if (options.preload) await store.put(USER, options.preload);
  const seed = options.seed === 'none' ? undefined : new Secret(options.seed ?? idp.issueRefreshToken(USER));
  const account = accountFor(idp.tokenUrl, { refreshTokenSeed: seed, ...options.account });
  const logs = captureLogger();
  let offset = 0;
  const make = (accounts: AccountSettings[]) => {
    const m = createTokenManager({ accounts, store, log: logs.log, now: () => Date.now() + offset, ...options.manager });
    cleanups.push(() => m.stop());
    return m;
  };
  return {
    idp, store, logs, account,
    manager: make([account]),
    advance: (ms) => void (offset += ms),
    stored: async () => {
      const fresh = await openFileStore(storeOptions, {});
      try {
        return await fresh.get(USER);
      } finally {
        await fresh.close();
      }
    },
    restart: async (changes = {}) => make([{ ...account, ...changes }]),
  };
}

async function failure(call: Promise<unknown>, code: ErrorCode): Promise<ProxyError> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(isProxyError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  return err as ProxyError;
}

/** No access or refresh token of the mock IdP (at_..., rt_...) in the logs. */
function expectNoTokens(logs: CapturedLog): void {
  expect(logs.text()).not.toMatch(/\b(at|rt)_[A-Za-z0-9_-]{20,}/);
}

describe('token manager: cache and margin', () => {
  it('uses the cached token while more than the margin is left, then refreshes exactly once', async () => {
    const s = await setup();
    const first = await s.manager.getToken(USER, { signal: signal() });
    expect(s.idp.validateAccessToken(first.reveal())).toBe(USER);
    expect(s.idp.count()).toBe(1);
    s.advance(60 * MINUTE - 5 * MINUTE - 1_000); // 5 min + 1 s left
    expect((await s.manager.getToken(USER, { signal: signal() })).reveal()).toBe(first.reveal());
    expect(s.idp.count()).toBe(1);
    s.advance(2_000); // inside the margin
    const second = await s.manager.getToken(USER, { signal: signal() });
    expect(second.reveal()).not.toBe(first.reveal());
    expect(await s.manager.getToken(USER, { signal: signal() })).toBe(second);
    expect(s.idp.count()).toBe(1 + 1);
    expectNoTokens(s.logs);
  });

  it('after expiry, exactly one refresh; the refresh is logged without a token', async () => {
    const s = await setup();
    await s.manager.getToken(USER, { signal: signal() });
    s.advance(2 * 60 * MINUTE);
    await s.manager.getToken(USER, { signal: signal() });
    await s.manager.getToken(USER, { signal: signal() });
    expect(s.idp.count()).toBe(2);
    const events = s.logs.events('token.refresh');
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ account: USER, flow: 'refresh_token', outcome: 'ok', trigger: 'login' });
    expect(typeof events[0]!.durationMs).toBe('number');
    expectNoTokens(s.logs);
  });

  it('20 simultaneous callers share one request to the identity provider', async () => {
    const s = await setup();
    const tokens = await Promise.all(Array.from({ length: 20 }, () => s.manager.getToken(USER, { signal: signal() })));
    expect(new Set(tokens.map((t) => t.reveal())).size).toBe(1);
    expect(s.idp.count()).toBe(1);
    s.advance(2 * 60 * MINUTE);
    await Promise.all(Array.from({ length: 20 }, () => s.manager.getToken(USER, { signal: signal() })));
    expect(s.idp.count()).toBe(2);
  });

  it('one caller aborting does not cancel the shared refresh for the others', async () => {
    const s = await setup({ idp: { users: [] } });
    s.idp.failMode = 'hang';
    const controller = new AbortController();
    const patient = s.manager.getToken(USER, { signal: signal() });
    const impatient = s.manager.getToken(USER, { signal: controller.signal });
    controller.abort();
    await failure(impatient, 'aborted');
    s.idp.failMode = 'none';
    // The hanging request is still the one in flight; closing the IdP ends it as a temporary failure.
    await s.idp.close();
    await failure(patient, 'idp_unavailable');
    expect(s.manager.status()[0]?.state).toBe('failing');
  });
});

describe('token manager: the store', () => {
  it('stores a rotated refresh token before the token is returned', async () => {
    const s = await setup({ idp: { rotateRefreshTokens: true } });
    const seed = s.account.refreshTokenSeed!.reveal();
    const token = await s.manager.getToken(USER, { signal: signal() });
    const stored = await s.stored();
    expect(stored?.refreshToken).toBeDefined();
    expect(stored?.refreshToken).not.toBe(seed);
    expect(s.idp.isRefreshTokenActive(stored!.refreshToken!)).toBe(true);
    expect(s.idp.isRefreshTokenActive(seed)).toBe(false);
    expect(stored?.accessToken).toBe(token.reveal());
    expect(stored?.seedDigest).toBe(sha256Hex(new Secret(seed)));
    // A restart continues from the stored, rotated token, not from the (now dead) seed.
    const again = await s.restart();
    s.advance(2 * 60 * MINUTE);
    await again.getToken(USER, { signal: signal() });
    expect(s.idp.count('token', 'refresh_token')).toBe(2);
  });

  it('reuses a stored access token after a restart without asking the IdP', async () => {
    const s = await setup();
    const token = await s.manager.getToken(USER, { signal: signal() });
    const again = await s.restart();
    expect((await again.getToken(USER, { signal: signal() })).reveal()).toBe(token.reveal());
    expect(s.idp.count()).toBe(1);
  });

  it('prefers a new configured seed over the stored refresh token', async () => {
    const s = await setup({ seed: 'none' });
    const oldRt = s.idp.issueRefreshToken(USER);
    const seedA = s.idp.issueRefreshToken(USER);
    await s.store.put(USER, { refreshToken: oldRt, seedDigest: sha256Hex(new Secret(seedA)), updatedAt: Date.now() });
    // Same seed as the store's digest: the stored token is used.
    const same = await s.restart({ refreshTokenSeed: new Secret(seedA) });
    await same.getToken(USER, { signal: signal() });
    s.idp.revoke(oldRt);
    // A different seed: it replaces the stored one (which is now revoked anyway).
    const seedB = s.idp.issueRefreshToken(USER);
    const pasted = await s.restart({ refreshTokenSeed: new Secret(seedB) });
    await pasted.getToken(USER, { signal: signal() });
    expect((await s.stored())?.seedDigest).toBe(sha256Hex(new Secret(seedB)));
    expect((await s.stored())?.refreshToken).toBe(seedB);
  });
});

describe('token manager: permanent and temporary failures', () => {
  it('invalid_grant marks needs_authorization, keeps the stored refresh token and then fails fast', async () => {
    const s = await setup();
    await s.manager.getToken(USER, { signal: signal() });
    const rt = (await s.stored())!.refreshToken!;
    s.idp.revokeUser(USER);
    s.advance(2 * 60 * MINUTE);
    const err = await failure(s.manager.getToken(USER, { signal: signal() }), 'needs_authorization');
    expect(err.message).toMatch(/invalid_grant.*put a new refresh_token/);
    const stored = await s.stored();
    expect(stored?.refreshToken).toBe(rt);
    expect(stored?.needsAuthorization?.reason).toBe(err.message);
    expect(s.manager.status()[0]).toMatchObject({ state: 'needs_authorization', lastError: err.message, hasRefreshToken: true });
    expect(s.logs.events('token.needs_authorization')).toEqual([expect.objectContaining({ account: USER, level: 40 })]);
    const requests = s.idp.count();
    await failure(s.manager.getToken(USER, { signal: signal() }), 'needs_authorization');
    await failure(s.manager.getToken(USER, { signal: signal(), force: true }), 'needs_authorization');
    expect(s.idp.count()).toBe(requests);
    // The flag survives a restart with the same config...
    const restarted = await s.restart();
    await failure(restarted.getToken(USER, { signal: signal() }), 'needs_authorization');
    expect(s.idp.count()).toBe(requests);
    // ...until the operator pastes a new refresh token.
    const fixed = await s.restart({ refreshTokenSeed: new Secret(s.idp.issueRefreshToken(USER)) });
    await fixed.getToken(USER, { signal: signal() });
    expect((await s.stored())?.needsAuthorization).toBeUndefined();
    expectNoTokens(s.logs);
  });

  for (const mode of ['http500', 'drop'] as const) {
    it(`IdP ${mode}: idp_unavailable, state failing, every token kept`, async () => {
      const s = await setup({ idp: { rotateRefreshTokens: true } });
      await s.manager.getToken(USER, { signal: signal() });
      const before = await s.stored();
      s.idp.failMode = mode;
      s.advance(2 * 60 * MINUTE);
      await failure(s.manager.getToken(USER, { signal: signal() }), 'idp_unavailable');
      expect((await s.stored())?.refreshToken).toBe(before?.refreshToken);
      expect(s.manager.status()[0]).toMatchObject({ state: 'failing', hasRefreshToken: true });
      expect(s.manager.status()[0]?.lastError).toMatch(/500|cannot reach/);
      s.idp.failMode = 'none';
      await s.manager.getToken(USER, { signal: signal() });
      expect(s.manager.status()[0]).toMatchObject({ state: 'ok', lastError: undefined });
    });
  }

  it('IdP down while the token is inside the margin but not expired: the cached token is still used', async () => {
    const s = await setup();
    const token = await s.manager.getToken(USER, { signal: signal() });
    s.idp.failMode = 'http500';
    s.advance(58 * MINUTE);
    expect((await s.manager.getToken(USER, { signal: signal() })).reveal()).toBe(token.reveal());
    expect(s.manager.status()[0]?.state).toBe('failing');
  });

  it('a refresh-token account without any refresh token is needs_authorization at start', async () => {
    const s = await setup({ seed: 'none' });
    s.manager.start();
    await waitFor(() => s.manager.status()[0]?.state === 'needs_authorization');
    expect(s.manager.status()[0]?.lastError).toMatch(/no refresh token yet/);
    expect(s.logs.events('token.needs_authorization')).toHaveLength(1);
    await failure(s.manager.getToken(USER, { signal: signal() }), 'needs_authorization');
    expect(s.idp.count()).toBe(0);
  });
});

describe('token manager: withFreshToken', () => {
  it('forces one refresh and retries once when the mail server rejects the token', async () => {
    const s = await setup();
    const seen: string[] = [];
    const result = await s.manager.withFreshToken(USER, { signal: signal() }, async (token) => {
      seen.push(token.reveal());
      if (seen.length === 1) throw new ProxyError('token_rejected', 'AUTHENTICATE failed');
      return 'logged in';
    });
    expect(result).toBe('logged in');
    expect(seen).toHaveLength(2);
    expect(seen[1]).not.toBe(seen[0]);
    expect(s.idp.count()).toBe(2);
    expect(s.logs.events('token.rejected')).toHaveLength(1);
    expect(s.logs.events('token.refresh').map((e) => e.trigger)).toEqual(['login', 'forced']);
  });

  it('gives up after the one retry, and passes other errors through untouched', async () => {
    const s = await setup();
    let calls = 0;
    await failure(s.manager.withFreshToken(USER, { signal: signal() }, async () => {
      calls++;
      throw new ProxyError('token_rejected', 'still no');
    }), 'token_rejected');
    expect(calls).toBe(2);
    await failure(s.manager.withFreshToken(USER, { signal: signal() }, async () => {
      throw new ProxyError('upstream_unavailable', 'down');
    }), 'upstream_unavailable');
  });

  it('two sessions rejected at once cause one refresh, not two', async () => {
    const s = await setup();
    const stale = await s.manager.getToken(USER, { signal: signal() });
    const use = async (token: Secret) => {
      if (token.reveal() === stale.reveal()) throw new ProxyError('token_rejected', 'expired upstream');
      return token.reveal();
    };
    const [a, b] = await Promise.all([
      s.manager.withFreshToken(USER, { signal: signal() }, use),
      s.manager.withFreshToken(USER, { signal: signal() }, use),
    ]);
    expect(a).toBe(b);
    expect(s.idp.count()).toBe(2);
  });

  it('a rejected static token becomes token_expired with a clear message', async () => {
    const s = await setup({ account: { flow: 'static', staticToken: { value: new Secret('at_static_value_xxxxxxxxxxxx') } } });
    const err = await failure(s.manager.withFreshToken(USER, { signal: signal() }, async () => {
      throw new ProxyError('token_rejected', 'NO');
    }), 'token_expired');
    expect(err.message).toMatch(/refused the static access token .*configure a new access_token/);
    expect(s.manager.status()[0]).toMatchObject({ state: 'needs_authorization', lastError: err.message });
    expect(s.idp.count()).toBe(0);
  });
});

describe('token manager: background refresh', () => {
  it('refreshes before expiry, so a login never waits on the IdP', async () => {
    const s = await setup({
      idp: { accessTokenLifetimeSec: 1, rotateRefreshTokens: true },
      manager: { marginMs: 200, timing: { leadMs: 0, minDelayMs: 50, retryMinMs: 50, retryMaxMs: 100 } },
    });
    s.manager.start();
    const first = await s.manager.getToken(USER, { signal: signal() });
    await waitFor(() => s.idp.count() >= 2, 3_000);
    await waitFor(() => s.manager.status()[0]?.state === 'ok');
    const count = s.idp.count();
    const second = await s.manager.getToken(USER, { signal: signal() });
    expect(second.reveal()).not.toBe(first.reveal());
    expect(s.idp.count()).toBe(count);
    expect(s.logs.events('token.refresh').some((e) => e.trigger === 'background')).toBe(true);
    expect(s.idp.isRefreshTokenActive((await s.stored())!.refreshToken!)).toBe(true);
  });

  it('backs off on temporary failures and recovers', async () => {
    const s = await setup({
      idp: { accessTokenLifetimeSec: 1 },
      manager: { marginMs: 200, timing: { leadMs: 0, minDelayMs: 50, retryMinMs: 50, retryMaxMs: 100 } },
    });
    s.manager.start();
    await s.manager.getToken(USER, { signal: signal() });
    s.idp.failMode = 'http500';
    // Between retries the state is failing; at the moment a retry is counted it may still read refreshing.
    await waitFor(() => s.idp.count() >= 4 && s.manager.status()[0]?.state === 'failing', 3_000);
    expect(s.manager.status()[0]?.state).toBe('failing');
    s.idp.failMode = 'none';
    await waitFor(() => s.manager.status()[0]?.state === 'ok', 3_000);
    await s.manager.stop();
    const after = s.idp.count();
    await sleep(300);
    expect(s.idp.count()).toBe(after); // stop() ends the timers
  });
});

describe('token manager: ROPC (flow password)', () => {
  const ropc: Partial<AccountSettings> = { flow: 'password', localPassword: { kind: 'provider' }, refreshTokenSeed: undefined };

  it('refuses a wrong password every time and never lets it use the cache', async () => {
    const s = await setup({ account: ropc, seed: 'none' });
    const good = await s.manager.getToken(USER, { signal: signal(), password: new Secret('right-pw') });
    expect(s.idp.count('token', 'password')).toBe(1);
    for (let i = 0; i < 3; i++) {
      await failure(s.manager.getToken(USER, { signal: signal(), password: new Secret('wrong-pw') }), 'auth_failed');
    }
    expect(s.idp.count('token', 'password')).toBe(4);
    expect((await s.manager.getToken(USER, { signal: signal(), password: new Secret('right-pw') })).reveal()).toBe(good.reveal());
    expect(s.idp.count()).toBe(4);
    expect(s.manager.status()[0]).toMatchObject({ state: 'ok', lastError: undefined, hasRefreshToken: true });
    expect(s.logs.text()).not.toMatch(/right-pw|wrong-pw/);
  });

  it('concurrent logins with the same new password share one IdP request', async () => {
    const s = await setup({ account: ropc, seed: 'none' });
    const results = await Promise.allSettled([
      ...Array.from({ length: 10 }, () => s.manager.getToken(USER, { signal: signal(), password: new Secret('right-pw') })),
      s.manager.getToken(USER, { signal: signal(), password: new Secret('wrong-pw') }),
    ]);
    expect(results.slice(0, 10).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(results[10]?.status).toBe('rejected');
    expect(s.idp.count('token', 'password')).toBe(2);
  });

  it('without a password (the token CLI) it uses the stored refresh token', async () => {
    const s = await setup({ account: ropc, seed: 'none' });
    await failure(s.manager.getToken(USER, { signal: signal() }), 'needs_authorization');
    await s.manager.getToken(USER, { signal: signal(), password: new Secret('right-pw') });
    const cli = await s.restart();
    s.advance(2 * 60 * MINUTE);
    const token = await cli.getToken(USER, { signal: signal() });
    expect(s.idp.validateAccessToken(token.reveal())).toBe(USER);
    expect(s.idp.count('token', 'refresh_token')).toBe(1);
    // After a restart the verifier is gone: the first login with a password goes to the IdP.
    await failure(cli.getToken(USER, { signal: signal(), password: new Secret('wrong-pw') }), 'auth_failed');
  });
});

describe('token manager: other flows and status', () => {
  it('caches command tokens and reports status rows without tokens', async () => {
    const dir = await tempDir();
    const counter = join(dir, 'runs');
    const s = await setup({
      seed: 'none',
      account: { flow: 'command', command: `echo run >> '${counter}'; echo '{"access_token":"at_cmd_token_value_xxxxxxxxx","expires_in":3600}'` },
    });
    expect(s.manager.status()).toEqual([{ username: USER, flow: 'command', state: 'unknown', hasRefreshToken: false, expiresAt: undefined, lastRefreshAt: undefined, refreshedBeforeStart: false, lastError: undefined }]);
    await s.manager.getToken(USER, { signal: signal() });
    await s.manager.getToken(USER, { signal: signal() });
    expect((await readFile(counter, 'utf8')).trim().split('\n')).toHaveLength(1);
    const row = s.manager.status()[0]!;
    expect(row.state).toBe('ok');
    expect(row.expiresAt).toBeGreaterThan(Date.now());
    expect(JSON.stringify(s.manager.status())).not.toContain('at_cmd');
  });

  it('after a restart, a valid token from the store is ok with its refresh time, a login through it keeps it so, a refresh dates it anew', async () => {
    const s = await setup();
    await s.manager.getToken(USER, { signal: signal() });
    const before = s.manager.status()[0]!;
    expect(before).toMatchObject({ state: 'ok', refreshedBeforeStart: false });
    s.advance(10 * MINUTE);
    const restarted = await s.restart();
    restarted.start();
    await waitFor(() => restarted.status()[0]?.state === 'ok');
    expect(restarted.status()[0]).toMatchObject({ state: 'ok', lastRefreshAt: before.lastRefreshAt, expiresAt: before.expiresAt, refreshedBeforeStart: true });
    await restarted.getToken(USER, { signal: signal() });
    expect(s.idp.count()).toBe(1); // the cached token served it
    expect(restarted.status()[0]).toMatchObject({ state: 'ok', lastRefreshAt: before.lastRefreshAt, refreshedBeforeStart: true });
    await restarted.getToken(USER, { signal: signal(), force: true });
    const refreshed = restarted.status()[0]!;
    expect(refreshed).toMatchObject({ state: 'ok', refreshedBeforeStart: false });
    expect(refreshed.lastRefreshAt).toBeGreaterThanOrEqual(before.lastRefreshAt! + 10 * MINUTE);
  });

  it('a stored token whose store did not record when it was obtained: ok, last refresh unknown; an expired one is not ok', async () => {
    const stored = (expiresInMs: number): StoredTokens => ({
      refreshToken: 'rt_stored_before_the_upgrade_xxxxxx', accessToken: 'at_stored_before_the_upgrade_xxxxxx', accessTokenExpiresAt: Date.now() + expiresInMs, updatedAt: Date.now() - 10 * MINUTE,
    });
    const valid = await setup({ seed: 'none', preload: stored(50 * MINUTE) });
    valid.manager.start();
    await waitFor(() => valid.manager.status()[0]?.state === 'ok');
    expect(valid.manager.status()[0]).toMatchObject({ lastRefreshAt: undefined, refreshedBeforeStart: true });
    const expired = await setup({ seed: 'none', preload: stored(-MINUTE) });
    expired.manager.start();
    await waitFor(() => expired.manager.status()[0]?.expiresAt !== undefined); // loaded
    expect(expired.manager.status()[0]).toMatchObject({ state: 'unknown', refreshedBeforeStart: true });
  });

  it('refuses an unknown account', async () => {
    const s = await setup();
    await failure(s.manager.getToken('mallory@example.com', { signal: signal() }), 'config_invalid');
  });
});
