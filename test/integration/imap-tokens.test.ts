import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMessage } from '../../src/demo/imap-server.js';
import { WireClient } from '../fakes/imap-wire-client.js';
import { parsePrometheusText } from '../fakes/prometheus.js';
import {
  CLIENT_SECRET, LOCAL_PASSWORD, TOKEN_PATTERN, USER, readStore, runCli, seedStore, startProxy, startUpstreams,
  writeProxyConfig, type ProxyRun, type Upstreams,
} from './harness.js';

/** The token manager's contract (SPEC section 2) and the token store (section 3), end to end. */

let up: Upstreams;
const runs: ProxyRun[] = [];
const HOUR = 3_600_000;

async function proxyWith(seed?: { accessToken?: string; expiresInMs?: number; refreshToken?: string }, idpRefreshToken?: string): Promise<ProxyRun> {
  const refreshToken = idpRefreshToken ?? up.idp.issueRefreshToken(USER);
  const { dir, configPath } = writeProxyConfig(up, { refreshToken });
  if (seed) {
    const { createHash } = await import('node:crypto');
    await seedStore(dir, {
      refreshToken: seed.refreshToken ?? refreshToken,
      accessToken: seed.accessToken,
      accessTokenExpiresAt: seed.expiresInMs === undefined ? undefined : Date.now() + seed.expiresInMs,
      // The store grew from this seed, so the configured seed does not replace it.
      seedDigest: createHash('sha256').update(refreshToken).digest('hex'),
    });
  }
  const run = await startProxy(configPath, dir);
  runs.push(run);
  return run;
}

async function login(run: ProxyRun, tag = 'a1'): Promise<string> {
  const c = await WireClient.connect({ port: run.port });
  try {
    await c.readLine();
    const lines = await c.command(tag, `LOGIN ${USER} {${Buffer.byteLength(LOCAL_PASSWORD)}+}\r\n${LOCAL_PASSWORD}`);
    return lines.at(-1) ?? '';
  } finally {
    c.close();
  }
}

beforeAll(async () => {
  up = await startUpstreams({ rotateRefreshTokens: false });
  up.imap.deliver(USER, buildMessage({ subject: 'hi' }));
});

afterAll(async () => {
  for (const run of runs) await run.stop();
  await up.close();
  const logs = runs.flatMap((r) => r.logs).join('\n');
  expect(logs).not.toMatch(TOKEN_PATTERN);
  expect(logs).not.toContain(LOCAL_PASSWORD);
  expect(logs).not.toContain(CLIENT_SECRET);
});

describe('token manager through the built proxy', () => {
  it('an expired access token: the client logs in without noticing, after exactly one refresh', async () => {
    const stale = up.idp.issueAccessToken(USER, 1);
    const run = await proxyWith({ accessToken: stale, expiresInMs: -60_000 });
    up.idp.resetRequests();
    expect(await login(run)).toMatch(/^a1 OK \[CAPABILITY /);
    expect(up.idp.count('token', 'refresh_token')).toBe(1);
    expect(await login(run, 'a2')).toMatch(/^a2 OK/);
    expect(up.idp.count('token', 'refresh_token')).toBe(1);
  });

  it('20 clients logging in at once with an expired token cause exactly one refresh', async () => {
    const run = await proxyWith({ accessToken: 'at_expired_expired_expired_x', expiresInMs: -1 });
    up.idp.resetRequests();
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => login(run, `c${i}`)));
    replies.forEach((r, i) => expect(r).toMatch(new RegExp(`^c${i} OK`)));
    expect(up.idp.count('token', 'refresh_token')).toBe(1);
  });

  it('a token the server rejects although it looked valid: one forced refresh, one retry, login succeeds', async () => {
    const revoked = up.idp.issueAccessToken(USER, 3600);
    up.idp.revoke(revoked);
    const run = await proxyWith({ accessToken: revoked, expiresInMs: HOUR });
    up.idp.resetRequests();
    const before = up.imap.stats.authentications.length;
    expect(await login(run)).toMatch(/^a1 OK/);
    expect(up.idp.count('token', 'refresh_token')).toBe(1);
    const attempts = up.imap.stats.authentications.slice(before);
    expect(attempts.map((a) => a.ok)).toEqual([false, true]);
  });

  it('identity provider answering 500 or dropping: NO [UNAVAILABLE], the stored refresh token unchanged', async () => {
    const rt = up.idp.issueRefreshToken(USER);
    const run = await proxyWith({ accessToken: 'at_expired_expired_expired_y', expiresInMs: -1, refreshToken: rt }, rt);
    for (const mode of ['http500', 'drop', 'html'] as const) {
      up.idp.failMode = mode;
      expect(await login(run)).toMatch(/^a1 NO \[UNAVAILABLE\]/);
    }
    up.idp.failMode = 'none';
    expect((await readStore(run.dir))?.refreshToken).toBe(rt);
    // Once the provider is back, the same refresh token works.
    expect(await login(run, 'a9')).toMatch(/^a9 OK/);
  });

  it('invalid_grant: an authentication failure that says the account needs authorization, and a log line', async () => {
    const rt = up.idp.issueRefreshToken(USER);
    const run = await proxyWith({ accessToken: 'at_expired_expired_expired_z', expiresInMs: -1, refreshToken: rt }, rt);
    up.idp.revoke(rt);
    const reply = await login(run);
    expect(reply).toMatch(/^a1 NO \[AUTHENTICATIONFAILED\] .*needs authorization/i);
    await run.waitForEvent('token.needs_authorization');
    // Later logins fail fast without asking the identity provider again.
    up.idp.resetRequests();
    expect(await login(run, 'a2')).toMatch(/needs authorization/i);
    expect(up.idp.count('token')).toBe(0);
  });
});

describe('token store through the built proxy', () => {
  it('keeps a rotated refresh token on disk before the login completes, and no token in clear text', async () => {
    const rotating = await startUpstreams({ rotateRefreshTokens: true });
    try {
      const first = rotating.idp.issueRefreshToken(USER);
      const { dir, configPath } = writeProxyConfig(rotating, { refreshToken: first });
      const run = await startProxy(configPath, dir);
      runs.push(run);
      expect(await login(run)).toMatch(/^a1 OK/);
      const stored = await readStore(dir);
      expect(stored?.refreshToken).toBeDefined();
      expect(stored?.refreshToken).not.toBe(first);
      expect(rotating.idp.isRefreshTokenActive(stored!.refreshToken!)).toBe(true);
      expect(rotating.idp.isRefreshTokenActive(first)).toBe(false);
      const raw = readFileSync(run.storePath);
      expect(raw.toString('latin1')).not.toMatch(TOKEN_PATTERN);
      expect(raw.includes(Buffer.from(stored!.refreshToken!))).toBe(false);
      // A restart keeps using the rotated token, not the spent seed in the config.
      await run.stop();
      const again = await startProxy(configPath, dir);
      runs.push(again);
      expect(await login(again, 'b1')).toMatch(/^b1 OK/);
    } finally {
      await rotating.close();
    }
  });

  it('after a restart, the status page and accounts{state="ok"} show the stored token as ok, refreshed by the last run', async () => {
    const { dir, configPath } = writeProxyConfig(up, { extraYaml: 'admin: { listen: 127.0.0.1:0 }' });
    const first = await startProxy(configPath, dir);
    runs.push(first);
    expect(await login(first)).toMatch(/^a1 OK/);
    await first.stop();
    const { accessTokenObtainedAt } = (await readStore(dir))!;
    expect(accessTokenObtainedAt).toEqual(expect.any(Number));
    up.idp.resetRequests();
    const again = await startProxy(configPath, dir);
    runs.push(again);
    const admin = `http://127.0.0.1:${Number((await again.waitForEvent('admin.start')).port)}/`;
    const row = async () => ((await (await fetch(`${admin}api/status`)).json()) as { accounts: Record<string, unknown>[] }).accounts[0]!;
    const okAccounts = async () => parsePrometheusText(await (await fetch(`${admin}metrics`)).text()).sum('oauth_mail_proxy_accounts', { state: 'ok' });
    await expect.poll(async () => (await row()).state).toBe('ok');
    expect(await row()).toMatchObject({ lastRefreshAt: accessTokenObtainedAt, lastRefresh: expect.stringMatching(/ ago$/) });
    expect(await okAccounts()).toBe(1);
    expect(await login(again, 'b1')).toMatch(/^b1 OK/);
    expect(up.idp.count('token')).toBe(0); // the stored token served the login
    expect(await row()).toMatchObject({ state: 'ok', lastRefreshAt: accessTokenObtainedAt });
    expect(await okAccounts()).toBe(1);
  });

  it('a tampered or truncated store stops the proxy at start with a clear error', async () => {
    const run = await proxyWith({ accessToken: 'at_x_x_x_x_x_x_x_x_x_x_x_x_x_x', expiresInMs: HOUR });
    await run.stop();
    const original = readFileSync(run.storePath);
    const tampered = Buffer.from(original);
    tampered[tampered.length - 5] = tampered[tampered.length - 5]! ^ 0x01;
    for (const bytes of [tampered, original.subarray(0, original.length - 7)]) {
      writeFileSync(run.storePath, bytes);
      const result = await runCli(['serve', '-c', run.configPath]);
      expect(result.code).not.toBe(0);
      expect(result.stderr + result.stdout).toMatch(/token store/i);
    }
  });
});
