import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import * as oauth from 'oauth4webapi';
import type { OAuthClientSettings } from '../config/resolve.js';
import { isAllowedTokenUrl } from '../config/endpoint-url.js';
import { ProxyError } from '../errors.js';
import { DEFAULT_TOKEN_LIFETIME_MS, MAX_TOKEN_RESPONSE_BYTES, TOKEN_REQUEST_TIMEOUT_MS } from '../limits.js';
import { Secret } from '../secret.js';
import { classifyTokenError } from './oauth-errors.js';
import { createNodeFetch, type NodeFetchInit } from './node-fetch.js';
import type { TokenGrant } from './types.js';

export { oauthErrorCode, oauthErrorText } from './oauth-errors.js';

/**
 * Calls to a token endpoint (RFC 6749 sections 4.3, 4.4 and 6) through oauth4webapi, over
 * node:http(s) so that an extra CA file and the caller's AbortSignal apply. Every failure is a
 * ProxyError: `needs_authorization`, `idp_unavailable`, `aborted` or `config_invalid`.
 */

export interface OAuthClientOptions {
  /** Default TOKEN_REQUEST_TIMEOUT_MS. */
  timeoutMs?: number | undefined;
  now?: (() => number) | undefined;
  /** Default client_secret_post (the one every provider we met accepts). */
  clientAuthMethod?: 'client_secret_post' | 'client_secret_basic' | undefined;
}

export interface OAuthClient {
  readonly tokenUrl: string;
  refreshTokenGrant(refreshToken: Secret, signal: AbortSignal): Promise<TokenGrant>;
  /** RFC 6749 section 4.3 (Microsoft ROPC). */
  passwordGrant(username: string, password: Secret, signal: AbortSignal): Promise<TokenGrant>;
  clientCredentialsGrant(signal: AbortSignal): Promise<TokenGrant>;
  /** RFC 8628 section 3.1: asks for a device code and a user code. */
  deviceAuthorization(signal: AbortSignal): Promise<DeviceAuthorization>;
  /** RFC 8628 section 3.4: one poll. `authorization_pending` and friends come back as ProxyErrors (see oauthErrorCode). */
  deviceCodeGrant(deviceCode: Secret, signal: AbortSignal): Promise<TokenGrant>;
  /**
   * RFC 6749 section 4.1.3 with the RFC 7636 code_verifier. `callback` must have passed
   * `checkAuthorizationResponse` (state checked, no error).
   */
  authorizationCodeGrant(callback: URLSearchParams, redirectUri: string, codeVerifier: Secret, signal: AbortSignal): Promise<TokenGrant>;
  /** Brands a callback whose state and error the caller has checked, for `authorizationCodeGrant`. */
  checkAuthorizationResponse(callback: URLSearchParams, expectedState: string): URLSearchParams;
}

/** What a device authorization endpoint answered (RFC 8628 section 3.2). */
export interface DeviceAuthorization {
  deviceCode: Secret;
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string | undefined;
  /** Seconds the codes live. */
  expiresIn: number;
  /** Seconds between polls (default 5, RFC 8628 section 3.2). */
  interval: number;
}

type Send = (options: oauth.TokenEndpointRequestOptions) => Promise<Response>;
type Process = (response: Response) => Promise<oauth.TokenEndpointResponse>;

/** True for http on loopback (the mock identity provider); https is false; anything else is refused. */
function needsInsecureRequests(tokenUrl: string, what = 'token endpoint'): boolean {
  if (!isAllowedTokenUrl(tokenUrl)) {
    throw new ProxyError('config_invalid', `${what} ${tokenUrl} must be https (plain http only on a loopback address)`);
  }
  return new URL(tokenUrl).protocol === 'http:';
}

async function readCa(caFile: string | undefined): Promise<string[] | undefined> {
  if (!caFile) return undefined;
  try {
    return [...rootCertificates, await readFile(caFile, 'utf8')];
  } catch (err) {
    throw new ProxyError('config_invalid', `cannot read ca_file ${caFile}`, { cause: err });
  }
}

/**
 * We never use ID tokens, and oauth4webapi would validate one against issuer metadata we do not
 * have (no discovery): a failed check after a rotation would lose the new refresh token. So an
 * id_token is dropped, and a missing token_type (seen in the wild) is taken as Bearer.
 */
async function tidyTokenResponse(res: Response): Promise<Response> {
  const text = await res.text();
  const headers = new Headers(res.headers);
  headers.delete('content-length');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return new Response(text, { status: res.status, headers });
  }
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const record = json as Record<string, unknown>;
    delete record.id_token;
    if (record.token_type === undefined) record.token_type = 'Bearer';
  }
  return new Response(JSON.stringify(json), { status: res.status, headers });
}

function toGrant(body: oauth.TokenEndpointResponse, now: number): TokenGrant {
  const lifetimeMs = typeof body.expires_in === 'number' ? body.expires_in * 1000 : DEFAULT_TOKEN_LIFETIME_MS;
  return {
    accessToken: new Secret(body.access_token),
    expiresAt: now + lifetimeMs,
    refreshToken: body.refresh_token ? new Secret(body.refresh_token) : undefined,
  };
}

export function createOAuthClient(settings: OAuthClientSettings, options: OAuthClientOptions = {}): OAuthClient {
  const timeoutMs = options.timeoutMs ?? settings.timeoutMs ?? TOKEN_REQUEST_TIMEOUT_MS;
  const now = options.now ?? Date.now;
  const host = new URL(settings.tokenUrl).host;
  const token = { host, insecure: needsInsecureRequests(settings.tokenUrl) };
  const as: oauth.AuthorizationServer = {
    issuer: new URL(settings.tokenUrl).origin,
    token_endpoint: settings.tokenUrl,
    device_authorization_endpoint: settings.deviceAuthorizationUrl,
  };
  let caLoad: Promise<string[] | undefined> | undefined;

  function client(): oauth.Client {
    if (!settings.clientId) throw new ProxyError('config_invalid', `no client_id configured for token endpoint ${host}`);
    return { client_id: settings.clientId };
  }

  function clientAuth(): oauth.ClientAuth {
    const secret = settings.clientSecret?.reveal();
    if (secret === undefined) return oauth.None();
    return options.clientAuthMethod === 'client_secret_basic' ? oauth.ClientSecretBasic(secret) : oauth.ClientSecretPost(secret);
  }

  function scopeParameters(): Record<string, string> {
    return settings.scope ? { scope: settings.scope } : {};
  }

  async function loadCa(): Promise<string[] | undefined> {
    caLoad ??= readCa(settings.caFile);
    return caLoad.catch((err: unknown) => {
      caLoad = undefined; // a CA file fixed later is picked up on the next call
      throw err;
    });
  }

  /** One round trip to an endpoint of the identity provider with a deadline; every failure classified. */
  async function call<R>(signal: AbortSignal, send: Send, process: (res: Response) => Promise<R>, endpoint = token): Promise<R> {
    if (signal.aborted) throw new ProxyError('aborted', `token request to ${endpoint.host} aborted`, { cause: signal.reason });
    const nodeFetch = createNodeFetch({ ca: await loadCa(), maxBytes: MAX_TOKEN_RESPONSE_BYTES });
    const timeout = AbortSignal.timeout(timeoutMs);
    let status: number | undefined;
    const requestOptions: oauth.TokenEndpointRequestOptions = {
      signal: AbortSignal.any([signal, timeout]),
      [oauth.customFetch]: async (url: string, init: NodeFetchInit) => {
        const res = await nodeFetch(url, init);
        status = res.status;
        return res.status === 200 && endpoint === token ? tidyTokenResponse(res) : res;
      },
      ...(endpoint.insecure ? { [oauth.allowInsecureRequests]: true } : {}),
    };
    try {
      return await process(await send(requestOptions));
    } catch (err) {
      const info = { host: endpoint.host, status, timeoutMs, callerAborted: signal.aborted, timedOut: timeout.aborted };
      throw await classifyTokenError(err, info);
    }
  }

  async function exchange(signal: AbortSignal, send: Send, process: Process): Promise<TokenGrant> {
    return toGrant(await call(signal, send, process), now());
  }

  function deviceEndpoint(): { host: string; insecure: boolean } {
    const url = settings.deviceAuthorizationUrl;
    if (!url) throw new ProxyError('config_invalid', `no device_authorization_url configured for token endpoint ${host}`);
    return { host: new URL(url).host, insecure: needsInsecureRequests(url, 'device authorization endpoint') };
  }

  return {
    tokenUrl: settings.tokenUrl,
    refreshTokenGrant: async (refreshToken, signal) => {
      const c = client();
      return exchange(
        signal,
        (o) => oauth.refreshTokenGrantRequest(as, c, clientAuth(), refreshToken.reveal(), { ...o, additionalParameters: scopeParameters() }),
        (res) => oauth.processRefreshTokenResponse(as, c, res),
      );
    },
    passwordGrant: async (username, password, signal) => {
      const c = client();
      const parameters = { username, password: password.reveal(), ...scopeParameters() };
      return exchange(
        signal,
        (o) => oauth.genericTokenEndpointRequest(as, c, clientAuth(), 'password', parameters, o),
        (res) => oauth.processGenericTokenEndpointResponse(as, c, res),
      );
    },
    clientCredentialsGrant: async (signal) => {
      const c = client();
      return exchange(
        signal,
        (o) => oauth.clientCredentialsGrantRequest(as, c, clientAuth(), scopeParameters(), o),
        (res) => oauth.processClientCredentialsResponse(as, c, res),
      );
    },
    deviceAuthorization: async (signal) => {
      const c = client();
      const endpoint = deviceEndpoint();
      const body = await call(
        signal,
        (o) => oauth.deviceAuthorizationRequest(as, c, clientAuth(), scopeParameters(), o),
        (res) => oauth.processDeviceAuthorizationResponse(as, c, res),
        endpoint,
      );
      return toDeviceAuthorization(body);
    },
    deviceCodeGrant: async (deviceCode, signal) => {
      const c = client();
      return exchange(
        signal,
        (o) => oauth.deviceCodeGrantRequest(as, c, clientAuth(), deviceCode.reveal(), o),
        (res) => oauth.processDeviceCodeResponse(as, c, res),
      );
    },
    authorizationCodeGrant: async (callback, redirectUri, codeVerifier, signal) => {
      const c = client();
      return exchange(
        signal,
        (o) => oauth.authorizationCodeGrantRequest(as, c, clientAuth(), callback, redirectUri, codeVerifier.reveal(), o),
        (res) => oauth.processAuthorizationCodeResponse(as, c, res),
      );
    },
    checkAuthorizationResponse: (callback, expectedState) => {
      // RFC 9207 `iss` would be checked against issuer metadata we do not have (no discovery;
      // Google's `iss` is not its token endpoint's origin). Each sign-in talks to one identity
      // provider and binds its answer by `state`, which is what mix-up defence needs here.
      const params = new URLSearchParams(callback);
      params.delete('iss');
      return oauth.validateAuthResponse(as, client(), params, expectedState);
    },
  };
}

function toDeviceAuthorization(body: oauth.DeviceAuthorizationResponse): DeviceAuthorization {
  return {
    deviceCode: new Secret(body.device_code),
    userCode: body.user_code,
    verificationUri: body.verification_uri,
    verificationUriComplete: body.verification_uri_complete,
    expiresIn: body.expires_in,
    interval: typeof body.interval === 'number' && body.interval > 0 ? body.interval : 5,
  };
}
