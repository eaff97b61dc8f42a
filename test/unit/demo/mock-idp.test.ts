import { afterEach, describe, expect, it } from 'vitest';
import { startMockIdp, DEVICE_CODE_GRANT, type MockIdp, type MockIdpOptions } from '../../../src/demo/mock-idp.js';

const USERS = [{ username: 'alice@example.com', password: 'alice-pw' }];
let idp: MockIdp | undefined;

async function start(options: MockIdpOptions = {}): Promise<MockIdp> {
  idp = await startMockIdp({ users: USERS, ...options });
  return idp;
}

afterEach(async () => {
  await idp?.close();
  idp = undefined;
});

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

async function post(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

const postAuth = { client_id: 'proxy', client_secret: 'proxy-secret' };

describe('mock identity provider: token endpoint', () => {
  it('refreshes with client_secret_post and with client_secret_basic', async () => {
    const p = await start();
    const rt = p.issueRefreshToken('alice@example.com');
    const viaPost = await post(p.tokenUrl, { grant_type: 'refresh_token', refresh_token: rt, ...postAuth });
    expect(viaPost.status).toBe(200);
    expect(viaPost.body).toMatchObject({ token_type: 'Bearer', expires_in: 3600, scope: 'mail' });
    expect(viaPost.body.refresh_token).toBeUndefined(); // no rotation by default
    expect(viaPost.headers.get('cache-control')).toBe('no-store');
    const viaBasic = await post(p.tokenUrl, { grant_type: 'refresh_token', refresh_token: rt }, { authorization: basic('proxy', 'proxy-secret') });
    expect(viaBasic.status).toBe(200);
    expect(p.validateAccessToken(viaBasic.body.access_token as string)).toBe('alice@example.com');
  });

  it('refuses bad client authentication with 401 invalid_client and a Basic challenge', async () => {
    const p = await start();
    const bad = await post(p.tokenUrl, { grant_type: 'client_credentials' }, { authorization: basic('proxy', 'wrong') });
    expect(bad.status).toBe(401);
    expect(bad.body.error).toBe('invalid_client');
    expect(bad.headers.get('www-authenticate')).toMatch(/^Basic/);
    const both = await post(p.tokenUrl, { grant_type: 'client_credentials', client_secret: 'proxy-secret' }, { authorization: basic('proxy', 'proxy-secret') });
    expect(both.body.error).toBe('invalid_request');
  });

  it('rotates refresh tokens when asked; the old one then gives invalid_grant', async () => {
    const p = await start({ rotateRefreshTokens: true });
    const rt = p.issueRefreshToken('alice@example.com');
    const first = await post(p.tokenUrl, { grant_type: 'refresh_token', refresh_token: rt, ...postAuth });
    const next = first.body.refresh_token as string;
    expect(next).toBeTruthy();
    expect(next).not.toBe(rt);
    expect(p.isRefreshTokenActive(rt)).toBe(false);
    const again = await post(p.tokenUrl, { grant_type: 'refresh_token', refresh_token: rt, ...postAuth });
    expect(again.status).toBe(400);
    expect(again.body).toMatchObject({ error: 'invalid_grant' });
    expect((await post(p.tokenUrl, { grant_type: 'refresh_token', refresh_token: next, ...postAuth })).status).toBe(200);
  });

  it('checks passwords in the password grant and issues a refresh token', async () => {
    const p = await start();
    const ok = await post(p.tokenUrl, { grant_type: 'password', username: 'alice@example.com', password: 'alice-pw', ...postAuth });
    expect(ok.status).toBe(200);
    expect(ok.body.refresh_token).toBeTruthy();
    const wrong = await post(p.tokenUrl, { grant_type: 'password', username: 'alice@example.com', password: 'nope', ...postAuth });
    expect(wrong.body.error).toBe('invalid_grant');
  });

  it('issues client_credentials tokens to confidential clients only', async () => {
    const p = await start({ clients: [{ clientId: 'proxy', clientSecret: 'proxy-secret' }, { clientId: 'public' }] });
    const ok = await post(p.tokenUrl, { grant_type: 'client_credentials', scope: 'https://outlook.office365.com/.default', ...postAuth });
    expect(ok.body).toMatchObject({ scope: 'https://outlook.office365.com/.default' });
    expect(p.validateAccessToken(ok.body.access_token as string)).toBe('proxy');
    const pub = await post(p.tokenUrl, { grant_type: 'client_credentials', client_id: 'public' });
    expect(pub.body.error).toBe('unauthorized_client');
  });

  it('revokes one token or everything of a user', async () => {
    const p = await start();
    const rt1 = p.issueRefreshToken('alice@example.com');
    const rt2 = p.issueRefreshToken('alice@example.com');
    const at = p.issueAccessToken('alice@example.com');
    expect(p.revoke(rt1)).toBe(true);
    expect((await post(p.tokenUrl, { grant_type: 'refresh_token', refresh_token: rt1, ...postAuth })).body.error).toBe('invalid_grant');
    expect(p.revokeUser('alice@example.com')).toBe(2);
    expect(p.isRefreshTokenActive(rt2)).toBe(false);
    expect(p.validateAccessToken(at)).toBeUndefined();
  });

  it('lets access tokens expire after their lifetime', async () => {
    let clock = Date.now();
    const p = await start({ now: () => clock });
    const at = p.issueAccessToken('alice@example.com', 10);
    expect(p.validateAccessToken(at)).toBe('alice@example.com');
    clock += 10_000;
    expect(p.validateAccessToken(at)).toBeUndefined();
  });

  it('leaves out expires_in when asked', async () => {
    const p = await start({ omitExpiresIn: true });
    const res = await post(p.tokenUrl, { grant_type: 'client_credentials', ...postAuth });
    expect(res.body.expires_in).toBeUndefined();
  });
});

describe('mock identity provider: device flow (RFC 8628)', () => {
  it('is pending until approved, then issues tokens once', async () => {
    const p = await start({ deviceCodeIntervalSec: 0 });
    const auth = await post(p.deviceAuthorizationUrl, { client_id: 'proxy', client_secret: 'proxy-secret', scope: 'mail' });
    expect(auth.body).toMatchObject({ verification_uri: p.verificationUrl, interval: 0 });
    const poll = () => post(p.tokenUrl, { grant_type: DEVICE_CODE_GRANT, device_code: auth.body.device_code as string, ...postAuth });
    expect((await poll()).body.error).toBe('authorization_pending');
    expect(p.approveDevice(auth.body.user_code as string)).toBe(true);
    const done = await poll();
    expect(done.status).toBe(200);
    expect(p.validateAccessToken(done.body.access_token as string)).toBe('alice@example.com');
    expect((await poll()).body.error).toBe('invalid_grant');
  });

  it('answers slow_down when polled faster than the interval, and access_denied when denied', async () => {
    const p = await start({ deviceCodeIntervalSec: 5 });
    const auth = await post(p.deviceAuthorizationUrl, postAuth);
    const poll = () => post(p.tokenUrl, { grant_type: DEVICE_CODE_GRANT, device_code: auth.body.device_code as string, ...postAuth });
    expect((await poll()).body.error).toBe('authorization_pending');
    expect((await poll()).body.error).toBe('slow_down');
    expect(p.denyDevice((auth.body.user_code as string).toLowerCase())).toBe(true);
    expect((await poll()).body.error).toBe('access_denied');
  });
});

describe('mock identity provider: introspection (RFC 7662)', () => {
  it('answers active tokens with their claims and anything else with active:false', async () => {
    const p = await start();
    const at = p.issueAccessToken('alice@example.com', 60);
    const active = await post(p.introspectionUrl, { token: at });
    expect(active.body).toMatchObject({ active: true, username: 'alice@example.com', email: 'alice@example.com', scope: 'mail' });
    expect(typeof active.body.exp).toBe('number');
    expect((await post(p.introspectionUrl, { token: 'nope' })).body).toEqual({ active: false });
    const viaBearer = await fetch(p.introspectionUrl, { headers: { authorization: `Bearer ${at}` } });
    expect(await viaBearer.json()).toMatchObject({ active: true });
    const badClient = await post(p.introspectionUrl, { token: at, client_id: 'proxy', client_secret: 'wrong' });
    expect(badClient.status).toBe(401);
  });
});

describe('mock identity provider: test controls', () => {
  it('logs requests per endpoint with grant type and never a secret', async () => {
    const p = await start();
    const rt = p.issueRefreshToken('alice@example.com');
    await post(p.tokenUrl, { grant_type: 'refresh_token', refresh_token: rt, ...postAuth });
    await post(p.tokenUrl, { grant_type: 'client_credentials', ...postAuth });
    await post(p.introspectionUrl, { token: 'x' });
    expect(p.count()).toBe(2);
    expect(p.count('token', 'refresh_token')).toBe(1);
    expect(p.count('introspect')).toBe(1);
    expect(p.requests[0]).toMatchObject({ endpoint: 'token', grantType: 'refresh_token', clientId: 'proxy', status: 200 });
    const logged = JSON.stringify(p.requests);
    expect(logged).not.toContain(rt);
    expect(logged).not.toContain('proxy-secret');
    p.resetRequests();
    expect(p.requests).toHaveLength(0);
  });

  it('fails on demand: http500, html, invalid_grant, drop, hang', async () => {
    const p = await start();
    const form = { grant_type: 'client_credentials', ...postAuth };
    p.failMode = 'http500';
    expect((await fetch(p.tokenUrl, { method: 'POST', body: new URLSearchParams(form) })).status).toBe(500);
    p.failMode = 'html';
    const html = await fetch(p.tokenUrl, { method: 'POST', body: new URLSearchParams(form) });
    expect(html.headers.get('content-type')).toBe('text/html');
    p.failMode = 'invalid_grant';
    expect((await post(p.tokenUrl, form)).body.error).toBe('invalid_grant');
    p.failMode = 'drop';
    await expect(post(p.tokenUrl, form)).rejects.toThrow();
    p.failMode = 'hang';
    await expect(fetch(p.tokenUrl, { method: 'POST', body: new URLSearchParams(form), signal: AbortSignal.timeout(200) })).rejects.toThrow();
    expect(p.requests.map((r) => r.status)).toEqual([500, 200, 400, 0, 0]);
    // close() ends even with a hanging request open.
    const hanging = fetch(p.tokenUrl, { method: 'POST', body: new URLSearchParams(form) }).catch(() => 'closed');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await p.close();
    expect(await hanging).toBe('closed');
    idp = undefined;
  });
});
