import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { hashPassword } from '../../../src/accounts/password.js';
import { LoginThrottle } from '../../../src/accounts/throttle.js';
import { createProxyMetrics, type ProxyMetrics } from '../../../src/admin/metrics.js';
import { startAdminServer, type AdminServer } from '../../../src/admin/server.js';
import type { AccountSettings, AdminSettings } from '../../../src/config/resolve.js';
import { parseConfig } from '../../../src/config/load.js';
import { startMockIdp, type MockIdp } from '../../../src/demo/mock-idp.js';
import { isProxyError } from '../../../src/errors.js';
import { Secret } from '../../../src/secret.js';
import { openFileStore } from '../../../src/store/file-store.js';
import type { StoredTokens, TokenStore } from '../../../src/store/token-store.js';
import { defaultSleep } from '../../../src/tokens/device-flow.js';
import { createTokenManager } from '../../../src/tokens/manager.js';
import type { TokenManager } from '../../../src/tokens/types.js';
import { parsePrometheusText } from '../../fakes/prometheus.js';
import { accountFor, captureLogger, tempDir, waitFor } from '../../fakes/token-fixtures.js';

const USER = 'alice@example.com';

interface Rig {
  idp: MockIdp;
  admin: AdminServer;
  tokens: TokenManager;
  metrics: ProxyMetrics;
  store: TokenStore;
  account: AccountSettings;
  close(): Promise<void>;
}

const rigs: Rig[] = [];
afterEach(async () => {
  for (const rig of rigs.splice(0)) await rig.close();
});

interface RigExtras {
  throttle?: LoginThrottle;
  /** What an earlier run left in the token store (this rig is then a restart). */
  stored?: StoredTokens;
}

async function startRig(settings: Partial<AdminSettings> = {}, flow: AccountSettings['flow'] = 'authorization_code', { throttle, stored }: RigExtras = {}): Promise<Rig> {
  // The device flow's waits move the mock's clock instead of taking seconds.
  let skipped = 0;
  const idp = await startMockIdp({ users: [{ username: USER, password: 'pw' }], now: () => Date.now() + skipped });
  const dir = await tempDir();
  const store = await openFileStore({ path: join(dir, 'tokens.enc'), keyFile: join(dir, 'tokens.key') }, {});
  if (stored) await store.put(USER, stored);
  const account = accountFor(idp.tokenUrl, { flow });
  account.oauth = { ...account.oauth, authorizeUrl: idp.authorizeUrl, deviceAuthorizationUrl: idp.deviceAuthorizationUrl };
  const { log } = captureLogger();
  let tokens: TokenManager | undefined;
  const metrics = createProxyMetrics({ accounts: () => tokens?.status() ?? [], defaultMetrics: false });
  tokens = createTokenManager({ accounts: [account], store, log, events: metrics });
  tokens.start();
  const admin = await startAdminServer({
    settings: { listen: '127.0.0.1:0', username: 'admin', ...settings },
    accounts: () => [account],
    tokens,
    metrics,
    log,
    healthy: () => true,
    throttle,
    device: {
      sleep: (ms, signal) => {
        skipped += ms;
        return defaultSleep(20, signal);
      },
    },
  });
  const rig: Rig = {
    idp, admin, tokens, metrics, store, account,
    async close() {
      await admin.close();
      await tokens!.stop();
      await store.close();
      await idp.close();
    },
  };
  rigs.push(rig);
  return rig;
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

interface RawAnswer {
  status: number;
  location?: string | undefined;
  body: string;
}

/** node:http, because fetch will not send a Host header other than the URL's: what a rebinding browser sends. */
function requestWithHost(url: string, host: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: { ...options.headers, host }, signal: AbortSignal.timeout(5000) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

async function statusOf(rig: Rig, headers: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const res = await fetch(`${rig.admin.url}api/status`, { headers });
  const body = (await res.json()) as { accounts: Record<string, unknown>[] };
  return body.accounts[0]!;
}

describe('admin listener: who may use it', () => {
  it('refuses to listen on a non-loopback address without credentials', async () => {
    const { log } = captureLogger();
    const metrics = createProxyMetrics({ accounts: () => [], defaultMetrics: false });
    const tokens = createTokenManager({ accounts: [], store: { get: async () => undefined, put: async () => {}, delete: async () => {}, close: async () => {} }, log });
    for (const listen of ['0.0.0.0:0', '[::]:0']) {
      const err = await startAdminServer({ settings: { listen, username: 'admin' }, accounts: () => [], tokens, metrics, log, healthy: () => true }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isProxyError(err, 'config_invalid'), String(err)).toBe(true);
      expect((err as Error).message).toMatch(/reachable from other machines: set admin\.password .* admin\.bearer_token/);
    }
    // The config file says so too, naming the key.
    expect(() => parseConfig('listeners: [{protocol: imap, listen: "127.0.0.1:1143"}]\nadmin: { listen: "0.0.0.0:8025" }\n')).toThrow(/admin\.listen: 0\.0\.0\.0:8025 is reachable from other machines/);
    expect(() => parseConfig('listeners: [{protocol: imap, listen: "127.0.0.1:1143"}]\nadmin: { listen: "0.0.0.0:8025", password: pw }\n')).not.toThrow();
  });

  it('with a password set, refuses requests without it (401 with a Basic challenge), except /healthz', async () => {
    const rig = await startRig({ password: new Secret('s3cret') });
    for (const path of ['', 'metrics', 'api/status']) {
      const none = await fetch(`${rig.admin.url}${path}`);
      expect(none.status, path).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      expect((await fetch(`${rig.admin.url}${path}`, { headers: { authorization: basic('admin', 'wrong') } })).status).toBe(401);
      expect((await fetch(`${rig.admin.url}${path}`, { headers: { authorization: basic('root', 's3cret') } })).status).toBe(401);
      expect((await fetch(`${rig.admin.url}${path}`, { headers: { authorization: basic('admin', 's3cret') } })).status).toBe(200);
    }
    const signIn = await fetch(`${rig.admin.url}sign-in`, { method: 'POST', body: new URLSearchParams({ account: USER }), redirect: 'manual' });
    expect(signIn.status).toBe(401);
    expect(rig.idp.requests).toHaveLength(0);
    expect((await fetch(`${rig.admin.url}healthz`)).status).toBe(200);
  });

  it('slows down wrong admin passwords from one address, then refuses it for the lockout (429), right password or not', async () => {
    const throttle = new LoginThrottle({ freeFailures: 2, baseDelayMs: 150, maxDelayMs: 150, lockoutAfter: 4, lockoutMs: 60_000 });
    const rig = await startRig({ password: new Secret('s3cret') }, 'authorization_code', { throttle });
    const get = (headers: Record<string, string> = {}) => fetch(`${rig.admin.url}api/status`, { headers });
    // No credentials at all is a browser's first visit: the challenge, not a failure.
    for (let i = 0; i < 5; i++) expect((await get()).status).toBe(401);
    const timings: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      expect((await get({ authorization: basic('admin', `guess ${i}`) })).status).toBe(401);
      timings.push(Date.now() - started);
    }
    expect(timings[2]).toBeGreaterThanOrEqual(140); // the third failure waits
    expect((await get({ authorization: basic('admin', 's3cret') })).status).toBe(200); // success clears the count
    for (let i = 0; i < 4; i++) expect((await get({ authorization: basic('admin', `guess ${i}`) })).status).toBe(401);
    const locked = await get({ authorization: basic('admin', 's3cret') });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(50);
    expect((await fetch(`${rig.admin.url}healthz`)).status).toBe(200);
  });

  it('accepts a password_hash and a bearer token', async () => {
    const rig = await startRig({ passwordHash: await hashPassword(new Secret('hashed pw'), 10), bearerToken: new Secret('t'.repeat(32)) });
    expect((await fetch(`${rig.admin.url}metrics`, { headers: { authorization: basic('admin', 'hashed pw') } })).status).toBe(200);
    expect((await fetch(`${rig.admin.url}metrics`, { headers: { authorization: basic('admin', 'hashed pW') } })).status).toBe(401);
    expect((await fetch(`${rig.admin.url}metrics`, { headers: { authorization: `Bearer ${'t'.repeat(32)}` } })).status).toBe(200);
    expect((await fetch(`${rig.admin.url}metrics`, { headers: { authorization: `Bearer ${'t'.repeat(31)}u` } })).status).toBe(401);
  });

  it('refuses a sign-in form posted from another site', async () => {
    const rig = await startRig();
    const res = await fetch(`${rig.admin.url}sign-in`, {
      method: 'POST', body: new URLSearchParams({ account: USER }), redirect: 'manual', headers: { 'sec-fetch-site': 'cross-site' },
    });
    expect(res.status).toBe(403);
    expect(rig.idp.requests).toHaveLength(0);
  });
});

describe('admin listener: Host header (DNS rebinding)', () => {
  it('refuses a host name it does not answer to with 421, before credentials, routes or the identity provider', async () => {
    const rig = await startRig();
    const evil = `evil.example:${rig.admin.port}`;
    for (const path of ['', 'api/status', 'metrics', 'no-such-page']) {
      const res = await requestWithHost(`${rig.admin.url}${path}`, evil);
      expect(res.status, path).toBe(421);
      expect(res.body).not.toContain(USER);
    }
    const form = new URLSearchParams({ account: USER, method: 'browser' }).toString();
    const signIn = await requestWithHost(`${rig.admin.url}sign-in`, evil, {
      method: 'POST', body: form, headers: { origin: `http://${evil}`, 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(signIn.status).toBe(421);
    expect(signIn.location).toBeUndefined();
    expect(rig.idp.requests).toHaveLength(0);
  });

  it('answers IP literals and localhost with or without a port, and builds the redirect URI from that name', async () => {
    const rig = await startRig();
    const port = rig.admin.port;
    for (const host of ['127.0.0.1', `127.0.0.1:${port}`, 'localhost', `localhost:${port}`, `status.localhost:${port}`, `[::1]:${port}`]) {
      const res = await requestWithHost(`${rig.admin.url}api/status`, host);
      expect(res.status, host).toBe(200);
      expect(res.body).toContain(USER);
    }
    const form = new URLSearchParams({ account: USER, method: 'browser' }).toString();
    const signIn = await requestWithHost(`${rig.admin.url}sign-in`, `localhost:${port}`, {
      method: 'POST', body: form, headers: { origin: `http://localhost:${port}`, 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(signIn.status).toBe(303);
    expect(new URL(signIn.location!).searchParams.get('redirect_uri')).toBe(`http://localhost:${port}/oauth/callback`);
  });

  it('answers the names in admin.allowed_hosts, and the host of public_url, which then makes the redirect URI', async () => {
    const rig = await startRig({ allowedHosts: ['mail-proxy.lan'], publicUrl: 'https://proxy.corp.test/admin' });
    expect((await requestWithHost(`${rig.admin.url}api/status`, `mail-proxy.lan:${rig.admin.port}`)).status).toBe(200);
    expect((await requestWithHost(`${rig.admin.url}api/status`, 'proxy.corp.test')).status).toBe(200);
    expect((await requestWithHost(`${rig.admin.url}api/status`, 'other.lan')).status).toBe(421);
    const signIn = await requestWithHost(`${rig.admin.url}sign-in`, 'mail-proxy.lan', {
      method: 'POST', body: new URLSearchParams({ account: USER }).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(new URL(signIn.location!).searchParams.get('redirect_uri')).toBe('https://proxy.corp.test/admin/oauth/callback');
  });

  it('/healthz answers any host name, and the container HEALTHCHECK script passes against it', async () => {
    const rig = await startRig({ password: new Secret('s3cret') });
    expect((await requestWithHost(`${rig.admin.url}healthz`, 'oauth-mail-proxy:8025')).status).toBe(200);
    const script = resolve(import.meta.dirname, '../../../scripts/container/healthcheck.mjs');
    // Asynchronously: this process is the server the script asks. A non-zero exit rejects.
    const run = await promisify(execFile)(process.execPath, [script], { env: { ...process.env, HEALTHCHECK_URL: `${rig.admin.url}healthz` }, timeout: 10_000 });
    expect(run.stderr).toBe('');
  });
});

describe('admin listener: metrics and status', () => {
  it('/metrics is Prometheus text format and moves with sessions and refreshes', async () => {
    const rig = await startRig();
    const before = parsePrometheusText(await (await fetch(`${rig.admin.url}metrics`)).text());
    expect(before.types.get('oauth_mail_proxy_sessions_total')).toBe('counter');
    expect(before.types.get('oauth_mail_proxy_upstream_login_duration_seconds')).toBe('histogram');
    expect(before.sum('oauth_mail_proxy_accounts_needing_authorization')).toBe(1); // no grant yet
    const session = rig.metrics.openSession('imap');
    await session.upstreamLogin(async () => 'logged in');
    session.relaying(USER);
    expect(((await statusOf(rig)).activeSessions)).toBe(1);
    session.ended({ account: USER, outcome: 'relayed', bytesFromClient: 120, bytesFromServer: 4567 });
    const after = parsePrometheusText(await (await fetch(`${rig.admin.url}metrics`)).text());
    expect(after.sum('oauth_mail_proxy_sessions_total', { protocol: 'imap', outcome: 'relayed' })).toBe(1);
    expect(after.sum('oauth_mail_proxy_relayed_bytes_total', { direction: 'from_server' })).toBe(4567);
    expect(after.sum('oauth_mail_proxy_upstream_login_duration_seconds_count', { outcome: 'ok' })).toBe(1);
    expect(((await statusOf(rig)).activeSessions)).toBe(0);
  });

  it('after a restart, a token from the store is ok on the page, in /api/status and in accounts{state="ok"}, and stays ok when used', async () => {
    const obtainedAt = Date.now() - 10 * 60_000;
    const rig = await startRig({}, 'authorization_code', {
      stored: { refreshToken: 'rt_from_the_last_run_xxxxxxxxxxxx', accessToken: 'at_from_the_last_run_xxxxxxxxxxxx', accessTokenExpiresAt: obtainedAt + 3_600_000, accessTokenObtainedAt: obtainedAt, updatedAt: obtainedAt },
    });
    await waitFor(() => rig.tokens.status()[0]?.state === 'ok');
    const okAccounts = async () => parsePrometheusText(await (await fetch(`${rig.admin.url}metrics`)).text()).sum('oauth_mail_proxy_accounts', { state: 'ok' });
    expect(await statusOf(rig)).toMatchObject({ state: 'ok', stateLabel: 'ok', lastRefresh: '10 min ago', lastRefreshAt: obtainedAt, expires: 'in 50 min' });
    expect(await (await fetch(rig.admin.url)).text()).toMatch(/<span class="badge s-ok">ok<\/span>/);
    expect(await okAccounts()).toBe(1);
    expect((await rig.tokens.getToken(USER, { signal: AbortSignal.timeout(5000) })).reveal()).toBe('at_from_the_last_run_xxxxxxxxxxxx');
    expect(rig.idp.requests).toHaveLength(0);
    expect(await statusOf(rig)).toMatchObject({ state: 'ok', lastRefresh: '10 min ago' });
    expect(await okAccounts()).toBe(1);
  });

  it('a browser sign-in from the status page: redirect to the identity provider, callback, state ok', async () => {
    const rig = await startRig();
    expect(await statusOf(rig)).toMatchObject({ state: 'needs_authorization', signInMethods: ['browser', 'device'] });
    const page = await (await fetch(rig.admin.url)).text();
    expect(page).toMatch(/needs authorization/);
    expect(page).toMatch(/<button class="primary" type="submit">Sign in<\/button>/);
    const started = await fetch(`${rig.admin.url}sign-in`, { method: 'POST', body: new URLSearchParams({ account: USER }), redirect: 'manual' });
    expect(started.status).toBe(303);
    const authorize = new URL(started.headers.get('location')!);
    expect(authorize.origin + authorize.pathname).toBe(rig.idp.authorizeUrl);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${rig.admin.url}oauth/callback`);
    const form = new URLSearchParams(authorize.searchParams);
    form.set('decision', 'approve');
    const approved = await fetch(rig.idp.authorizeUrl, { method: 'POST', body: form, redirect: 'manual' });
    const callback = approved.headers.get('location')!;
    // A forged answer is refused and changes nothing.
    const forged = await fetch(callback.replace(/state=[^&]+/, 'state=forged'), { redirect: 'manual' });
    expect(forged.status).toBe(400);
    expect(await forged.text()).toMatch(/no sign-in in progress/);
    const back = await fetch(callback, { redirect: 'manual' });
    expect(back.status).toBe(303);
    expect(await statusOf(rig)).toMatchObject({ state: 'ok', lastError: '' });
    expect(rig.idp.validateAccessToken((await rig.tokens.getToken(USER, { signal: AbortSignal.timeout(5000) })).reveal())).toBe(USER);
    expect((await rig.store.get(USER))?.needsAuthorization).toBeUndefined();
  });

  it('a device sign-in shows the code on the page and turns ok once approved', async () => {
    const rig = await startRig({}, 'device_code');
    expect(await statusOf(rig)).toMatchObject({ signInMethods: ['device', 'browser'] });
    const started = await fetch(`${rig.admin.url}sign-in`, { method: 'POST', body: new URLSearchParams({ account: USER, method: 'device' }), redirect: 'manual' });
    expect(started.status).toBe(303);
    const row = await statusOf(rig);
    const device = row.device as { userCode: string; verificationUri: string };
    expect(device.verificationUri).toBe(rig.idp.verificationUrl);
    expect(await (await fetch(rig.admin.url)).text()).toContain(device.userCode);
    const approved = await fetch(rig.idp.verificationUrl, { method: 'POST', body: new URLSearchParams({ user_code: device.userCode, username: USER, decision: 'approve' }) });
    expect(approved.status).toBe(200);
    await waitFor(() => rig.tokens.status()[0]?.state === 'ok');
    expect((await statusOf(rig)).state).toBe('ok');
    expect((await statusOf(rig)).device).toBeUndefined();
  });

  it('a denied device sign-in is shown in plain words', async () => {
    const rig = await startRig({}, 'device_code');
    await fetch(`${rig.admin.url}sign-in`, { method: 'POST', body: new URLSearchParams({ account: USER }), redirect: 'manual' });
    const device = (await statusOf(rig)).device as { userCode: string };
    rig.idp.denyDevice(device.userCode);
    let row: Record<string, unknown> = {};
    for (let i = 0; i < 100 && !row.lastError?.toString().includes('declined'); i++) {
      await new Promise((r) => setTimeout(r, 20));
      row = await statusOf(rig);
    }
    expect(row).toMatchObject({ state: 'needs_authorization', lastError: expect.stringMatching(/^Sign-in: the sign-in was declined/) });
  });
});
