import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { oauthError, type MockClient, type OAuthReply } from './mock-idp-state.js';

/**
 * The mock identity provider's authorization codes (RFC 6749 section 4.1) with PKCE (RFC 7636):
 * checking an authorization request, issuing a code bound to its client, redirect URI and
 * S256 challenge, and redeeming it once at the token endpoint.
 */

/** RFC 6749 section 4.1.2: codes should live at most 10 minutes. */
const CODE_LIFETIME_MS = 10 * 60_000;

export interface AuthorizationRequest {
  clientId: string;
  redirectUri: string;
  state?: string | undefined;
  scope: string;
  codeChallenge: string;
  loginHint?: string | undefined;
}

interface CodeEntry extends AuthorizationRequest {
  username: string;
  expiresAt: number;
}

/** Why a request cannot even be answered with a redirect (RFC 6749 section 4.1.2.1: no redirect then). */
export interface RequestRefusal {
  kind: 'page';
  message: string;
}

/** An error that goes back to the client's redirect URI. */
export interface RedirectError {
  kind: 'redirect';
  redirectUri: string;
  error: string;
  description: string;
  state?: string | undefined;
}

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hash === '';
  } catch {
    return false;
  }
}

/** RFC 7636 section 4.2: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge. */
export function s256Matches(verifier: string, challenge: string): boolean {
  const computed = Buffer.from(createHash('sha256').update(verifier, 'ascii').digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}

export function createCodeRegistry(clients: MockClient[], defaultScope: string, now: () => number) {
  const codes = new Map<string, CodeEntry>();

  /** Validates /authorize parameters: the request, or why it is refused. */
  function check(params: URLSearchParams): AuthorizationRequest | RequestRefusal | RedirectError {
    const clientId = params.get('client_id') ?? '';
    const client = clients.find((c) => c.clientId === clientId);
    if (!client) return { kind: 'page', message: `unknown client_id "${clientId}"` };
    const redirectUri = params.get('redirect_uri') ?? '';
    if (!isHttpUrl(redirectUri)) return { kind: 'page', message: 'redirect_uri is missing or not an absolute http(s) URL' };
    if (client.redirectUris && !client.redirectUris.includes(redirectUri)) {
      return { kind: 'page', message: `redirect_uri ${redirectUri} is not registered for this client` };
    }
    const state = params.get('state') ?? undefined;
    const fail = (error: string, description: string): RedirectError => ({ kind: 'redirect', redirectUri, error, description, state });
    if (params.get('response_type') !== 'code') return fail('unsupported_response_type', 'only response_type=code');
    const codeChallenge = params.get('code_challenge');
    if (!codeChallenge || params.get('code_challenge_method') !== 'S256') {
      return fail('invalid_request', 'PKCE with code_challenge_method=S256 is required');
    }
    return { clientId, redirectUri, state, codeChallenge, scope: params.get('scope') ?? defaultScope, loginHint: params.get('login_hint') ?? undefined };
  }

  function issue(request: AuthorizationRequest, username: string): string {
    const code = `ac_${randomBytes(24).toString('base64url')}`;
    codes.set(code, { ...request, username, expiresAt: now() + CODE_LIFETIME_MS });
    return code;
  }

  /** The authorization_code grant's checks; the code's user and scope, or the error to answer. */
  function redeem(form: URLSearchParams, client: MockClient): { username: string; scope: string } | OAuthReply {
    const code = form.get('code');
    const entry = code ? codes.get(code) : undefined;
    if (!code || !entry) return oauthError(400, 'invalid_grant', 'the authorization code is invalid, expired or used');
    codes.delete(code); // single use (RFC 6749 section 4.1.2)
    if (now() >= entry.expiresAt) return oauthError(400, 'invalid_grant', 'the authorization code has expired');
    if (entry.clientId !== client.clientId) return oauthError(400, 'invalid_grant', 'the code was issued to another client');
    if (form.get('redirect_uri') !== entry.redirectUri) return oauthError(400, 'invalid_grant', 'redirect_uri does not match the authorization request');
    const verifier = form.get('code_verifier');
    if (!verifier) return oauthError(400, 'invalid_request', 'code_verifier is missing');
    if (!s256Matches(verifier, entry.codeChallenge)) return oauthError(400, 'invalid_grant', 'PKCE verification failed');
    return { username: entry.username, scope: entry.scope };
  }

  return { check, issue, redeem };
}

export type CodeRegistry = ReturnType<typeof createCodeRegistry>;
