import { randomBytes } from 'node:crypto';
import type { CodeRegistry } from './mock-idp-codes.js';

/**
 * The mock identity provider's memory: clients, users, issued tokens, pending device codes,
 * and the grant logic of RFC 6749 section 4 / 6 and RFC 8628. No HTTP here (mock-idp.ts).
 * Dependency-free beyond node:* so that the demo can run it anywhere.
 */

export interface MockClient {
  clientId: string;
  /** Absent: a public client (client_id only, no authentication). */
  clientSecret?: string | undefined;
  /** Redirect URIs /authorize accepts; absent: any http(s) URL. */
  redirectUris?: string[] | undefined;
}

export interface MockUser {
  username: string;
  password: string;
}

/** An RFC 6749 section 5.1 / 5.2 answer. */
export interface OAuthReply {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string> | undefined;
}

/** Settings the grants read on every request, so a test can change them at runtime. */
export interface GrantSettings {
  accessTokenLifetimeSec: number;
  rotateRefreshTokens: boolean;
  /** Leave expires_in out of token responses (the client must assume a default). */
  omitExpiresIn: boolean;
  /**
   * Seconds a rotated-away refresh token keeps working (Okta's grace period, Auth0's reuse
   * interval; Microsoft keeps old ones valid until they expire). 0: it dies at once.
   */
  rotationGraceSec: number;
}

interface AccessTokenEntry {
  username: string;
  scope: string;
  clientId: string | undefined;
  expiresAt: number;
  issuedAt: number;
}

interface RefreshTokenEntry {
  username: string;
  scope: string;
  /** Bound to this client; undefined when minted directly by a test (any client may use it). */
  clientId: string | undefined;
  /** Rotated away: usable until then (the grace period), epoch ms. */
  graceUntil?: number | undefined;
}

interface DeviceEntry {
  clientId: string;
  scope: string;
  userCode: string;
  expiresAt: number;
  intervalSec: number;
  lastPollAt: number;
  outcome: 'pending' | 'denied' | { username: string };
}

export interface IdpStateOptions {
  users: MockUser[];
  /** Authorization codes for the authorization_code grant. */
  codes: CodeRegistry;
  defaultScope: string;
  deviceCodeLifetimeSec: number;
  deviceCodeIntervalSec: number;
  now: () => number;
}

export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

function randomToken(prefix: string): string {
  return `${prefix}${randomBytes(24).toString('base64url')}`;
}

/** RFC 8628 section 6.1: a short code from a set without vowels or look-alikes. */
function randomUserCode(): string {
  const alphabet = 'BCDFGHJKLMNPQRSTVWXZ';
  const bytes = randomBytes(8);
  const chars = Array.from(bytes, (b) => alphabet[b % alphabet.length]);
  return `${chars.slice(0, 4).join('')}-${chars.slice(4).join('')}`;
}

export function oauthError(status: number, error: string, description: string): OAuthReply {
  return { status, body: { error, error_description: description } };
}

export type IdpState = ReturnType<typeof createIdpState>;

export function createIdpState(options: IdpStateOptions, settings: GrantSettings) {
  const accessTokens = new Map<string, AccessTokenEntry>();
  const refreshTokens = new Map<string, RefreshTokenEntry>();
  const deviceCodes = new Map<string, DeviceEntry>();
  /** Each rotated refresh token and the one that replaced it (for tests that follow the chain). */
  const successors = new Map<string, string>();
  const { now } = options;

  /** The entry of a refresh token that may still be used, forgetting one whose grace has run out. */
  function usableRefreshToken(token: string): RefreshTokenEntry | undefined {
    const entry = refreshTokens.get(token);
    if (entry?.graceUntil !== undefined && now() >= entry.graceUntil) {
      refreshTokens.delete(token);
      return undefined;
    }
    return entry;
  }

  function issueAccessToken(username: string, scope: string, lifetimeSec: number, clientId?: string): string {
    const token = randomToken('at_');
    accessTokens.set(token, { username, scope, clientId, issuedAt: now(), expiresAt: now() + lifetimeSec * 1000 });
    return token;
  }

  function issueRefreshToken(username: string, scope: string, clientId?: string): string {
    const token = randomToken('rt_');
    refreshTokens.set(token, { username, scope, clientId });
    return token;
  }

  function tokenResponse(username: string, scope: string, clientId: string, refreshToken?: string): OAuthReply {
    const lifetime = settings.accessTokenLifetimeSec;
    const body: Record<string, unknown> = {
      access_token: issueAccessToken(username, scope, lifetime, clientId),
      token_type: 'Bearer',
      scope,
    };
    if (!settings.omitExpiresIn) body.expires_in = lifetime;
    if (refreshToken !== undefined) body.refresh_token = refreshToken;
    return { status: 200, body };
  }

  function refreshGrant(form: URLSearchParams, client: MockClient): OAuthReply {
    const presented = form.get('refresh_token');
    if (!presented) return oauthError(400, 'invalid_request', 'refresh_token is missing');
    const entry = usableRefreshToken(presented);
    if (!entry) return oauthError(400, 'invalid_grant', 'the refresh token is invalid, expired or revoked');
    if (entry.clientId !== undefined && entry.clientId !== client.clientId) {
      return oauthError(400, 'invalid_grant', 'the refresh token was issued to another client');
    }
    let next = presented;
    if (settings.rotateRefreshTokens) {
      next = issueRefreshToken(entry.username, entry.scope, entry.clientId);
      successors.set(presented, next);
      if (settings.rotationGraceSec > 0) entry.graceUntil ??= now() + settings.rotationGraceSec * 1000;
      else refreshTokens.delete(presented);
    }
    return tokenResponse(entry.username, entry.scope, client.clientId, settings.rotateRefreshTokens ? next : undefined);
  }

  function passwordGrant(form: URLSearchParams, client: MockClient): OAuthReply {
    const username = form.get('username');
    const password = form.get('password');
    if (!username || password === null) return oauthError(400, 'invalid_request', 'username and password are required');
    const user = options.users.find((u) => u.username === username);
    if (!user || user.password !== password) {
      return oauthError(400, 'invalid_grant', 'invalid username or password');
    }
    const scope = form.get('scope') ?? options.defaultScope;
    return tokenResponse(username, scope, client.clientId, issueRefreshToken(username, scope, client.clientId));
  }

  function clientCredentialsGrant(form: URLSearchParams, client: MockClient): OAuthReply {
    if (client.clientSecret === undefined) {
      return oauthError(400, 'unauthorized_client', 'client_credentials needs a confidential client');
    }
    return tokenResponse(client.clientId, form.get('scope') ?? options.defaultScope, client.clientId);
  }

  function deviceCodeGrant(form: URLSearchParams, client: MockClient): OAuthReply {
    const code = form.get('device_code');
    const entry = code ? deviceCodes.get(code) : undefined;
    if (!code || !entry || entry.clientId !== client.clientId) {
      return oauthError(400, 'invalid_grant', 'unknown device_code');
    }
    const t = now();
    if (t >= entry.expiresAt) {
      deviceCodes.delete(code);
      return oauthError(400, 'expired_token', 'the device code has expired');
    }
    if (entry.outcome === 'denied') {
      deviceCodes.delete(code);
      return oauthError(400, 'access_denied', 'the user denied the request');
    }
    if (entry.outcome === 'pending') {
      // RFC 8628 section 3.5: polling faster than the interval earns slow_down (+5 s).
      const tooSoon = t - entry.lastPollAt < entry.intervalSec * 1000;
      entry.lastPollAt = t;
      if (tooSoon) {
        entry.intervalSec += 5;
        return oauthError(400, 'slow_down', 'polling too fast');
      }
      return oauthError(400, 'authorization_pending', 'the user has not finished yet');
    }
    deviceCodes.delete(code);
    const { username } = entry.outcome;
    return tokenResponse(username, entry.scope, client.clientId, issueRefreshToken(username, entry.scope, client.clientId));
  }

  /** RFC 6749 section 4.1.3, with the PKCE and redirect_uri checks of mock-idp-codes.ts. */
  function authorizationCodeGrant(form: URLSearchParams, client: MockClient): OAuthReply {
    const redeemed = options.codes.redeem(form, client);
    if ('status' in redeemed) return redeemed;
    const { username, scope } = redeemed;
    return tokenResponse(username, scope, client.clientId, issueRefreshToken(username, scope, client.clientId));
  }

  /** Token endpoint dispatch by grant_type (RFC 6749 section 4). */
  function grant(form: URLSearchParams, client: MockClient): OAuthReply {
    switch (form.get('grant_type')) {
      case 'refresh_token':
        return refreshGrant(form, client);
      case 'password':
        return passwordGrant(form, client);
      case 'client_credentials':
        return clientCredentialsGrant(form, client);
      case DEVICE_CODE_GRANT:
        return deviceCodeGrant(form, client);
      case 'authorization_code':
        return authorizationCodeGrant(form, client);
      case null:
        return oauthError(400, 'invalid_request', 'grant_type is missing');
      default:
        return oauthError(400, 'unsupported_grant_type', 'this server does not support that grant_type');
    }
  }

  /** RFC 8628 section 3.1/3.2. `verificationUri` is where a person would type the code. */
  function authorizeDevice(form: URLSearchParams, client: MockClient, verificationUri: string): OAuthReply {
    const deviceCode = randomToken('dc_');
    const userCode = randomUserCode();
    const lifetime = options.deviceCodeLifetimeSec;
    deviceCodes.set(deviceCode, {
      clientId: client.clientId,
      scope: form.get('scope') ?? options.defaultScope,
      userCode,
      expiresAt: now() + lifetime * 1000,
      intervalSec: options.deviceCodeIntervalSec,
      lastPollAt: 0,
      outcome: 'pending',
    });
    return {
      status: 200,
      body: {
        device_code: deviceCode,
        user_code: userCode,
        verification_uri: verificationUri,
        verification_uri_complete: `${verificationUri}?user_code=${encodeURIComponent(userCode)}`,
        expires_in: lifetime,
        interval: options.deviceCodeIntervalSec,
      },
    };
  }

  function findDevice(userCode: string): DeviceEntry | undefined {
    const wanted = userCode.toUpperCase().replace(/[^A-Z]/g, '');
    for (const entry of deviceCodes.values()) {
      if (entry.userCode.replace('-', '') === wanted && entry.outcome === 'pending' && now() < entry.expiresAt) return entry;
    }
    return undefined;
  }

  function settleDevice(userCode: string, outcome: DeviceEntry['outcome']): boolean {
    const entry = findDevice(userCode);
    if (entry) entry.outcome = outcome;
    return entry !== undefined;
  }

  /** RFC 7662 section 2.2 fields, or undefined for an unknown, expired or revoked token. */
  function introspect(token: string): Record<string, unknown> | undefined {
    const entry = accessTokens.get(token);
    if (!entry) return undefined;
    if (now() >= entry.expiresAt) {
      accessTokens.delete(token);
      return undefined;
    }
    return {
      active: true,
      username: entry.username,
      // Dovecot's oauth2 passdb reads `email` by default (username_attribute).
      email: entry.username,
      sub: entry.username,
      scope: entry.scope,
      client_id: entry.clientId,
      token_type: 'Bearer',
      exp: Math.floor(entry.expiresAt / 1000),
      iat: Math.floor(entry.issuedAt / 1000),
    };
  }

  function revokeUser(username: string): number {
    let count = 0;
    for (const map of [refreshTokens, accessTokens] as Map<string, { username: string }>[]) {
      for (const [token, entry] of map) {
        if (entry.username === username) {
          map.delete(token);
          count++;
        }
      }
    }
    return count;
  }

  return {
    grant,
    authorizeDevice,
    approveDevice: (userCode: string, username: string) => settleDevice(userCode, { username }),
    denyDevice: (userCode: string) => settleDevice(userCode, 'denied'),
    introspect,
    validateAccessToken: (token: string) => introspect(token)?.username as string | undefined,
    issueAccessToken,
    issueRefreshToken,
    isRefreshTokenActive: (token: string) => usableRefreshToken(token) !== undefined,
    successorOf: (token: string) => successors.get(token),
    revoke: (token: string) => refreshTokens.delete(token) || accessTokens.delete(token),
    revokeUser,
  };
}
