import { afterAll, beforeAll, describe, expect } from 'vitest';
import { ALICE, CAROL, proxyRow } from './lib/accounts.js';
import { e2eEnv, idpControl } from './lib/env.js';
import { matrixIt } from './lib/matrix.js';
import { startProxy, TOKEN_PATTERN, type E2eProxy } from './lib/proxy.js';
import { runPython } from './lib/run.js';

/**
 * Tokens under way, against the real Dovecot: access tokens that live a few seconds while a
 * client logs in again and again for a full minute (every login must succeed, the identity
 * provider must see refreshes but never one per login), and a revoked refresh token, which
 * the client must see as "needs authorization".
 */

const FILE = import.meta.filename;
const LIFETIME_SEC = 5;
const LOOP_SEC = 60;
const INTERVAL_SEC = 0.5;

interface LoopResult {
  ok: boolean;
  error?: string;
  logins: number;
  failures: number;
  errors: string[];
}

interface PyImap {
  ok: boolean;
  error?: string;
  messages?: number;
}

describe('IMAP: access tokens that expire during the test', () => {
  const env = e2eEnv();
  let proxy: E2eProxy;
  let previousLifetime = 3600;

  beforeAll(async () => {
    previousLifetime = (await idpControl.settings()).accessTokenLifetimeSec;
    await idpControl.setSettings({ accessTokenLifetimeSec: LIFETIME_SEC });
    proxy = await startProxy({
      name: 'expiry',
      listeners: [{ protocol: 'imap', tls: 'none' }],
      accounts: [{ ...ALICE, refreshToken: await idpControl.refreshToken(ALICE.username) }],
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await idpControl.setSettings({ accessTokenLifetimeSec: previousLifetime });
  });

  const row = proxyRow('IMAP', 'python3 imaplib', 'LOGIN, again and again', 'none', ALICE,
    `${LOOP_SEC} s of logins with ${LIFETIME_SEC} s tokens: all OK, refreshes << logins`);

  matrixIt(FILE, row, async () => {
    const started = Date.now();
    const r = await runPython<LoopResult>('imap_client.py', {
      host: '127.0.0.1', port: proxy.port('imap', 'none'), tls: 'none', ca: env.caFile,
      user: ALICE.username, password: ALICE.password, method: 'login', loop: { seconds: LOOP_SEC, interval: INTERVAL_SEC },
    }, (LOOP_SEC + 60) * 1000);
    const ended = Date.now();
    expect(r.error).toBeUndefined();
    expect(r.failures, r.errors.join('\n')).toBe(0);
    expect(r.logins).toBeGreaterThanOrEqual(LOOP_SEC / INTERVAL_SEC / 2);

    const refreshes = (await idpControl.requests()).filter(
      (q) => q.endpoint === 'token' && q.grantType === 'refresh_token' && q.at >= started && q.at <= ended,
    );
    const upstreamLogins = proxy.events('upstream.connect').length;
    process.stdout.write(`expiry: ${r.logins} logins in ${LOOP_SEC} s with ${LIFETIME_SEC} s tokens, ${refreshes.length} refreshes, ${upstreamLogins} upstream logins\n`);
    expect(refreshes.every((q) => q.status === 200), JSON.stringify(refreshes)).toBe(true);
    // Every token dies after LIFETIME_SEC, and Dovecot checks each login's token: a minute of
    // successful logins needs at least one new token per lifetime...
    expect(refreshes.length).toBeGreaterThanOrEqual(Math.floor(LOOP_SEC / LIFETIME_SEC) - 1);
    // ...but the proxy reuses a token while it is fresh: far fewer refreshes than logins.
    expect(refreshes.length).toBeLessThan(r.logins / 3);
    // Each login went to Dovecot (one upstream login per client login).
    expect(upstreamLogins).toBeGreaterThanOrEqual(r.logins);
  }, (LOOP_SEC + 90) * 1000);
});

describe('IMAP: a revoked refresh token', () => {
  const env = e2eEnv();
  let proxy: E2eProxy;
  const login = () => runPython<PyImap>('imap_client.py', {
    host: '127.0.0.1', port: proxy.port('imap', 'none'), tls: 'none', ca: env.caFile,
    user: CAROL.username, password: CAROL.password, method: 'login',
  });

  beforeAll(async () => {
    proxy = await startProxy({
      name: 'revoked',
      listeners: [{ protocol: 'imap', tls: 'none' }],
      accounts: [{ ...CAROL, refreshToken: await idpControl.refreshToken(CAROL.username) }],
    });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  const row = proxyRow('IMAP', 'python3 imaplib', 'LOGIN', 'none', CAROL, 'revoked refresh token: NO "needs authorization"');

  matrixIt(FILE, row, async () => {
    const first = await login();
    expect(first.error).toBeUndefined();
    expect(first.messages).toBeGreaterThanOrEqual(3);

    // Revokes the refresh token and the access token the proxy holds: Dovecot refuses the
    // cached token, the proxy's one forced refresh gets invalid_grant.
    expect(await idpControl.revokeUser(CAROL.username)).toBeGreaterThanOrEqual(2);
    const second = await login();
    expect(second.ok).toBe(false);
    expect(second.error).toMatch(/AUTHENTICATIONFAILED/);
    expect(second.error).toMatch(/needs authorization/i);
    await proxy.waitForEvent('token.needs_authorization');

    // It stays that way, without asking the identity provider on every login.
    const before = (await idpControl.requests()).filter((q) => q.endpoint === 'token').length;
    const third = await login();
    expect(third.error).toMatch(/needs authorization/i);
    const after = (await idpControl.requests()).filter((q) => q.endpoint === 'token').length;
    expect(after).toBe(before);
    expect(proxy.logs.filter((l) => TOKEN_PATTERN.test(l))).toEqual([]);
  });
});
