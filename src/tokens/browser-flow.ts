import { timingSafeEqual } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { isAllowedTokenUrl } from '../config/endpoint-url.js';
import type { OAuthClientSettings } from '../config/resolve.js';
import { ProxyError } from '../errors.js';
import { Secret } from '../secret.js';
import { shortDescription } from './oauth-errors.js';
import { oauthErrorCode, oauthErrorText, type OAuthClient } from './oauth-client.js';
import type { TokenGrant } from './types.js';

/**
 * RFC 6749 section 4.1, the authorization code grant, with PKCE S256 (RFC 7636) and `state`:
 * send the person's browser to the authorize URL; the identity provider sends it back to the
 * redirect URI with a code, which is exchanged (with the verifier only we know) for tokens.
 * The redirect URI is the admin listener's /oauth/callback, or a loopback port of the `auth`
 * command's own (RFC 8252 section 7.3).
 */

/** A sign-in waiting for the browser to come back. */
export interface BrowserSignIn {
  /** Where to send the browser. */
  authorizeUrl: string;
  /** The value that binds the answer to this sign-in (RFC 6749 section 10.12). */
  state: string;
  redirectUri: string;
  /** Checks the callback's query (state, error) and exchanges its code for tokens. */
  complete(callback: URLSearchParams, signal: AbortSignal): Promise<TokenGrant>;
}

/**
 * Google issues a refresh token only with access_type=offline, and on a repeated consent only
 * with prompt=consent. Other servers ignore unknown parameters (RFC 6749 section 3.1).
 */
function providerExtras(authorizeUrl: URL): Record<string, string> {
  return authorizeUrl.hostname === 'accounts.google.com' ? { access_type: 'offline', prompt: 'consent' } : {};
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `loginHint` (OIDC login_hint, honoured by Google and Microsoft) preselects the mailbox's account. */
export async function startBrowserSignIn(
  client: OAuthClient,
  settings: OAuthClientSettings,
  redirectUri: string,
  loginHint?: string,
): Promise<BrowserSignIn> {
  if (!settings.authorizeUrl) throw new ProxyError('config_invalid', 'no authorize_url configured for this provider');
  if (!isAllowedTokenUrl(settings.authorizeUrl)) {
    throw new ProxyError('config_invalid', `authorize_url ${settings.authorizeUrl} must be https (plain http only on a loopback address)`);
  }
  if (!settings.clientId) throw new ProxyError('config_invalid', 'no client_id configured for this provider');
  const verifier = new Secret(oauth.generateRandomCodeVerifier());
  const state = oauth.generateRandomState();
  const url = new URL(settings.authorizeUrl);
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: settings.clientId,
    redirect_uri: redirectUri,
    state,
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier.reveal()),
    code_challenge_method: 'S256',
    ...(settings.scope ? { scope: settings.scope } : {}),
    ...(loginHint ? { login_hint: loginHint } : {}),
    ...providerExtras(url),
  };
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  return {
    authorizeUrl: url.href,
    state,
    redirectUri,
    complete: (callback, signal) => exchangeCallback(client, callback, { state, verifier, redirectUri }, signal),
  };
}

interface Pending {
  state: string;
  verifier: Secret;
  redirectUri: string;
}

async function exchangeCallback(client: OAuthClient, callback: URLSearchParams, pending: Pending, signal: AbortSignal): Promise<TokenGrant> {
  const returned = callback.get('state');
  if (returned === null || !sameText(returned, pending.state)) {
    throw new ProxyError('bad_input', 'the sign-in answer does not belong to this sign-in (state mismatch); start the sign-in again');
  }
  const error = callback.get('error');
  if (error !== null) {
    const said = shortDescription(callback.get('error_description')) ?? error;
    const declined = error === 'access_denied' ? 'the sign-in was declined at the identity provider' : `the identity provider refused the sign-in (${error})`;
    throw new ProxyError('needs_authorization', `${declined}: ${said}; start it again to retry`);
  }
  if (!callback.get('code')) throw new ProxyError('bad_input', 'the sign-in answer carries no authorization code');
  const checked = client.checkAuthorizationResponse(callback, pending.state);
  try {
    return await client.authorizationCodeGrant(checked, pending.redirectUri, pending.verifier, signal);
  } catch (err) {
    if (oauthErrorCode(err) !== 'invalid_grant') throw err;
    // A used, expired or foreign code, a wrong verifier or redirect URI: a new sign-in is the fix.
    throw new ProxyError('needs_authorization', `the identity provider refused the authorization code (${oauthErrorText(err) ?? 'invalid_grant'}); start the sign-in again`, { cause: err });
  }
}
