import { afterEach, describe, expect, it } from 'vitest';
import { startMockIdp, type MockIdp } from '../../../src/demo/mock-idp.js';
import { isProxyError, type ErrorCode } from '../../../src/errors.js';
import { Secret } from '../../../src/secret.js';
import { startBrowserSignIn, type BrowserSignIn } from '../../../src/tokens/browser-flow.js';
import { startRedirectListener } from '../../../src/tokens/loopback-redirect.js';
import { createOAuthClient, type OAuthClient } from '../../../src/tokens/oauth-client.js';
import { CLIENT_ID, CLIENT_SECRET } from '../../fakes/token-fixtures.js';

/** The authorization code grant with PKCE and state, against the mock identity provider's consent page. */

const USER = 'alice@example.com';
const REDIRECT = 'http://127.0.0.1:8025/oauth/callback';
let idp: MockIdp | undefined;

afterEach(async () => {
  await idp?.close();
  idp = undefined;
});

async function setup(): Promise<{ idp: MockIdp; client: OAuthClient; settings: Parameters<typeof startBrowserSignIn>[1] }> {
  idp = await startMockIdp({ users: [{ username: USER, password: 'pw' }] });
  const settings = { tokenUrl: idp.tokenUrl, authorizeUrl: idp.authorizeUrl, clientId: CLIENT_ID, clientSecret: new Secret(CLIENT_SECRET), scope: 'mail' };
  return { idp, client: createOAuthClient(settings), settings };
}

/** What the consent page's button does: POST the form, and the redirect it answers with. */
async function decide(signIn: BrowserSignIn, decision: 'approve' | 'deny', username = USER): Promise<URLSearchParams> {
  const page = await fetch(signIn.authorizeUrl);
  expect(page.status).toBe(200);
  expect(await page.text()).toMatch(/<button[^>]*value="approve"/);
  const form = new URLSearchParams(new URL(signIn.authorizeUrl).searchParams);
  form.set('decision', decision);
  form.set('username', username);
  const res = await fetch(idp!.authorizeUrl, { method: 'POST', body: form, redirect: 'manual' });
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get('location')!);
  expect(`${location.origin}${location.pathname}`).toBe(signIn.redirectUri);
  return location.searchParams;
}

async function rejection(promise: Promise<unknown>, code: ErrorCode): Promise<Error> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(isProxyError(err, code), `expected ${code}, got ${String(err)}`).toBe(true);
  return err as Error;
}

describe('authorization code grant with PKCE (RFC 6749 4.1, RFC 7636)', () => {
  it('sends S256 PKCE and state, and exchanges the approved code for a refresh token', async () => {
    const { idp, client, settings } = await setup();
    const signIn = await startBrowserSignIn(client, settings, REDIRECT, USER);
    const url = new URL(signIn.authorizeUrl);
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT, scope: 'mail', state: signIn.state, code_challenge_method: 'S256', login_hint: USER,
    });
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(signIn.authorizeUrl).not.toContain('code_verifier');
    const callback = await decide(signIn, 'approve');
    expect(callback.get('state')).toBe(signIn.state);
    const grant = await signIn.complete(callback, AbortSignal.timeout(5000));
    expect(idp.validateAccessToken(grant.accessToken.reveal())).toBe(USER);
    expect(grant.refreshToken && idp.isRefreshTokenActive(grant.refreshToken.reveal())).toBe(true);
    // A code is single use.
    await rejection(signIn.complete(callback, AbortSignal.timeout(5000)), 'needs_authorization');
  });

  it('a code redeemed with another sign-in\'s verifier is refused by the identity provider', async () => {
    const { idp, client, settings } = await setup();
    const victim = await startBrowserSignIn(client, settings, REDIRECT);
    const attacker = await startBrowserSignIn(client, settings, REDIRECT);
    const stolen = await decide(victim, 'approve');
    // The injected code arrives at the other sign-in with that sign-in's own state.
    stolen.set('state', attacker.state);
    const err = await rejection(attacker.complete(stolen, AbortSignal.timeout(5000)), 'needs_authorization');
    expect(err.message).toMatch(/PKCE verification failed/);
    expect(idp.requests.filter((r) => r.grantType === 'authorization_code').map((r) => r.error)).toEqual(['invalid_grant']);
  });

  it('refuses an answer whose state does not match, without calling the token endpoint', async () => {
    const { idp, client, settings } = await setup();
    const signIn = await startBrowserSignIn(client, settings, REDIRECT);
    const callback = await decide(signIn, 'approve');
    for (const state of ['forged-state', '', undefined]) {
      const tampered = new URLSearchParams(callback);
      if (state === undefined) tampered.delete('state');
      else tampered.set('state', state);
      const err = await rejection(signIn.complete(tampered, AbortSignal.timeout(5000)), 'bad_input');
      expect(err.message).toMatch(/state mismatch/);
    }
    expect(idp.count('token')).toBe(0);
    // The genuine answer still works afterwards.
    await signIn.complete(callback, AbortSignal.timeout(5000));
  });

  it('says "declined" when the person denies on the consent page', async () => {
    const { client, settings } = await setup();
    const signIn = await startBrowserSignIn(client, settings, REDIRECT);
    const callback = await decide(signIn, 'deny');
    expect(callback.get('error')).toBe('access_denied');
    const err = await rejection(signIn.complete(callback, AbortSignal.timeout(5000)), 'needs_authorization');
    expect(err.message).toMatch(/declined/);
  });

  it('the identity provider binds the code to its redirect_uri', async () => {
    const { idp, client, settings } = await setup();
    const signIn = await startBrowserSignIn(client, settings, REDIRECT);
    const callback = await decide(signIn, 'approve');
    const res = await fetch(idp.tokenUrl, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.get('code')!, redirect_uri: 'http://127.0.0.1:1/elsewhere', code_verifier: 'x'.repeat(43), client_id: CLIENT_ID, client_secret: CLIENT_SECRET }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/redirect_uri/) });
  });

  it('the consent page refuses a request without PKCE S256', async () => {
    const { idp } = await setup();
    const url = new URL(idp.authorizeUrl);
    url.search = new URLSearchParams({ response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT, state: 's', code_challenge: 'abc', code_challenge_method: 'plain' }).toString();
    const res = await fetch(url, { redirect: 'manual' });
    expect(res.status).toBe(302);
    const back = new URL(res.headers.get('location')!).searchParams;
    expect(back.get('error')).toBe('invalid_request');
    expect(back.get('state')).toBe('s');
  });

  it('a loopback redirect listener (RFC 8252) hands the callback over and shows the answer', async () => {
    const seen: URLSearchParams[] = [];
    const listener = await startRedirectListener({
      handle: async (params) => {
        seen.push(params);
        return { status: 200, html: '<p>done</p>' };
      },
    });
    try {
      expect(listener.redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/oauth\/callback$/);
      const res = await fetch(`${listener.redirectUri}?code=c1&state=s1`);
      expect(await res.text()).toBe('<p>done</p>');
      expect((await fetch(listener.redirectUri.replace('/oauth/callback', '/other'))).status).toBe(404);
      expect(seen.map((p) => p.get('code'))).toEqual(['c1']);
    } finally {
      await listener.close();
    }
  });
});
