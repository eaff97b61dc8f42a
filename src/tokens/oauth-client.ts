import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import * as oauth from 'oauth4webapi';
import type { OAuthClientSettings } from '../config/resolve.js';
import { isAllowedTokenUrl } from '../config/resolve.js';
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
}

type Send = (options: oauth.TokenEndpointRequestOptions) => Promise<Response>;
type Process = (response: Response) => Promise<oauth.TokenEndpointResponse>;

/** True for http on loopback (the mock identity provider); https is false; anything else is refused. */
function needsInsecureRequests(tokenUrl: string): boolean {
  if (!isAllowedTokenUrl(tokenUrl)) {
    throw new ProxyError('config_invalid', `token endpoint ${tokenUrl} must be https (plain http only on a loopback address)`);
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
  const timeoutMs = options.timeoutMs ?? TOKEN_REQUEST_TIMEOUT_MS;
  const now = options.now ?? Date.now;
  const insecure = needsInsecureRequests(settings.tokenUrl);
  const host = new URL(settings.tokenUrl).host;
  const as: oauth.AuthorizationServer = { issuer: new URL(settings.tokenUrl).origin, token_endpoint: settings.tokenUrl };
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

  /** One token endpoint round trip with a deadline; every failure classified. */
  async function exchange(signal: AbortSignal, send: Send, process: Process): Promise<TokenGrant> {
    if (signal.aborted) throw new ProxyError('aborted', `token request to ${host} aborted`, { cause: signal.reason });
    const nodeFetch = createNodeFetch({ ca: await loadCa(), maxBytes: MAX_TOKEN_RESPONSE_BYTES });
    const timeout = AbortSignal.timeout(timeoutMs);
    let status: number | undefined;
    const requestOptions: oauth.TokenEndpointRequestOptions = {
      signal: AbortSignal.any([signal, timeout]),
      [oauth.customFetch]: async (url: string, init: NodeFetchInit) => {
        const res = await nodeFetch(url, init);
        status = res.status;
        return res.status === 200 ? tidyTokenResponse(res) : res;
      },
      ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
    };
    try {
      return toGrant(await process(await send(requestOptions)), now());
    } catch (err) {
      throw await classifyTokenError(err, { host, status, timeoutMs, callerAborted: signal.aborted, timedOut: timeout.aborted });
    }
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
  };
}
