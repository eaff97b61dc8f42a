import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { authenticateClient, clientIdOf, isReply, presentedToken, readForm, sendReply } from './mock-idp-http.js';
import { createCodeRegistry } from './mock-idp-codes.js';
import { serveAuthorize, serveDevice } from './mock-idp-pages.js';
import {
  createIdpState, oauthError, DEVICE_CODE_GRANT, type GrantSettings, type MockClient, type MockUser, type OAuthReply,
} from './mock-idp-state.js';

/**
 * The project's mock OAuth 2.0 identity provider, for the demo, integration tests and the
 * Dovecot end-to-end tests: a token endpoint (authorization_code with PKCE, refresh_token,
 * password, client_credentials and device_code grants), a consent page (/authorize), an RFC 8628
 * device authorization endpoint and verification page (/device), an RFC 7662 introspection
 * endpoint, and test controls (request log, failure modes, minting and revoking tokens).
 * Plain node:http on 127.0.0.1, dependency-free beyond node:*.
 */

export { DEVICE_CODE_GRANT, type MockClient, type MockUser };

/**
 * How the token and device endpoints misbehave: `http500` answers 500, `html` answers 200 with an
 * HTML page, `hang` never answers (until close), `drop` destroys the socket, `invalid_grant`
 * answers every token request with RFC 6749 `invalid_grant`. Introspection is not affected.
 */
export type FailMode = 'none' | 'http500' | 'html' | 'hang' | 'drop' | 'invalid_grant';

export type MockEndpoint =
  | 'token' | 'device_authorization' | 'introspect' | 'metadata' | 'authorize' | 'device_verification' | 'other';

/** One request as the mock saw it. Never holds a secret. */
export interface MockIdpRequest {
  endpoint: MockEndpoint;
  grantType?: string | undefined;
  clientId?: string | undefined;
  /** Epoch ms. */
  at: number;
  /** HTTP status answered; 0 when the request was dropped or left hanging. */
  status: number;
  /** RFC 6749 error code of the answer, if any. */
  error?: string | undefined;
}

export interface MockIdpOptions {
  /** Default: one confidential client `proxy` / `proxy-secret`. */
  clients?: MockClient[];
  /** For the password grant and device approvals. */
  users?: MockUser[];
  /** Default 3600. */
  accessTokenLifetimeSec?: number;
  /** Default false: the refresh token stays the same. */
  rotateRefreshTokens?: boolean;
  /** Seconds a rotated-away refresh token keeps working; default 0. */
  rotationGraceSec?: number;
  omitExpiresIn?: boolean;
  /** Scope of tokens when a request names none. Default "mail". */
  defaultScope?: string;
  /** RFC 8628 device code lifetime (default 600) and polling interval (default 5). */
  deviceCodeLifetimeSec?: number;
  deviceCodeIntervalSec?: number;
  host?: string;
  port?: number;
  now?: () => number;
}

export interface MockIdp extends GrantSettings {
  readonly url: string;
  readonly tokenUrl: string;
  readonly introspectionUrl: string;
  readonly deviceAuthorizationUrl: string;
  /** The consent page of the authorization code flow (PKCE S256 required). */
  readonly authorizeUrl: string;
  /** Where a person types the device code (RFC 8628 section 3.3). */
  readonly verificationUrl: string;
  failMode: FailMode;
  /** Every request in arrival order. */
  readonly requests: MockIdpRequest[];
  /** Requests to `endpoint` (default token), optionally of one grant type. */
  count(endpoint?: MockEndpoint, grantType?: string): number;
  resetRequests(): void;
  issueRefreshToken(username: string, scope?: string): string;
  issueAccessToken(username: string, lifetimeSec?: number, scope?: string): string;
  /** The username the token belongs to, or undefined (unknown, expired or revoked). */
  validateAccessToken(token: string): string | undefined;
  isRefreshTokenActive(refreshToken: string): boolean;
  /** The refresh token that replaced this one at a rotation, if it was rotated. */
  successorOf(refreshToken: string): string | undefined;
  /** Revokes one refresh (or access) token; later use gives invalid_grant. */
  revoke(token: string): boolean;
  /** Revokes every refresh and access token of a user; returns how many. */
  revokeUser(username: string): number;
  /** Completes a pending device authorization as `username` (default: the first configured user). */
  approveDevice(userCode: string, username?: string): boolean;
  denyDevice(userCode: string): boolean;
  close(): Promise<void>;
}

const DEFAULT_CLIENTS: MockClient[] = [{ clientId: 'proxy', clientSecret: 'proxy-secret' }];

const ENDPOINTS: Record<string, MockEndpoint> = {
  '/token': 'token',
  '/device_authorization': 'device_authorization',
  '/introspect': 'introspect',
  '/.well-known/oauth-authorization-server': 'metadata',
  '/authorize': 'authorize',
  '/device': 'device_verification',
};

function listen(server: ReturnType<typeof createServer>, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startMockIdp(options: MockIdpOptions = {}): Promise<MockIdp> {
  const clients = options.clients ?? DEFAULT_CLIENTS;
  const users = options.users ?? [];
  const now = options.now ?? Date.now;
  const defaultScope = options.defaultScope ?? 'mail';
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => void handle(req, res));
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const address = await listen(server, options.host ?? '127.0.0.1', options.port ?? 0);
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  const idp: MockIdp = {
    url,
    tokenUrl: `${url}/token`,
    introspectionUrl: `${url}/introspect`,
    deviceAuthorizationUrl: `${url}/device_authorization`,
    authorizeUrl: `${url}/authorize`,
    verificationUrl: `${url}/device`,
    failMode: 'none',
    accessTokenLifetimeSec: options.accessTokenLifetimeSec ?? 3600,
    rotateRefreshTokens: options.rotateRefreshTokens ?? false,
    rotationGraceSec: options.rotationGraceSec ?? 0,
    omitExpiresIn: options.omitExpiresIn ?? false,
    requests: [],
    count: (endpoint = 'token', grantType) =>
      idp.requests.filter((r) => r.endpoint === endpoint && (grantType === undefined || r.grantType === grantType)).length,
    resetRequests: () => void idp.requests.splice(0),
    issueRefreshToken: (username, scope = defaultScope) => state.issueRefreshToken(username, scope),
    issueAccessToken: (username, lifetimeSec = idp.accessTokenLifetimeSec, scope = defaultScope) =>
      state.issueAccessToken(username, scope, lifetimeSec),
    validateAccessToken: (token) => state.validateAccessToken(token),
    isRefreshTokenActive: (token) => state.isRefreshTokenActive(token),
    successorOf: (token) => state.successorOf(token),
    revoke: (token) => state.revoke(token),
    revokeUser: (username) => state.revokeUser(username),
    approveDevice: (userCode, username = users[0]?.username) => {
      if (username === undefined) throw new Error('approveDevice: no username given and no users configured');
      return state.approveDevice(userCode, username);
    },
    denyDevice: (userCode) => state.denyDevice(userCode),
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };

  const codes = createCodeRegistry(clients, defaultScope, now);
  // The grants read their settings (lifetime, rotation) from `idp` on every request.
  const state = createIdpState(
    {
      users,
      codes,
      defaultScope,
      deviceCodeLifetimeSec: options.deviceCodeLifetimeSec ?? 600,
      deviceCodeIntervalSec: options.deviceCodeIntervalSec ?? 5,
      now,
    },
    idp,
  );

  const pageDeps = {
    codes,
    users,
    approveDevice: (userCode: string, username: string) => state.approveDevice(userCode, username),
    denyDevice: (userCode: string) => state.denyDevice(userCode),
  };

  /** Applies the failure mode; true when the request has been dealt with. */
  function misbehave(req: IncomingMessage, res: ServerResponse, record: MockIdpRequest): boolean {
    switch (idp.failMode) {
      case 'none':
      case 'invalid_grant':
        return false;
      case 'http500':
        record.status = 500;
        res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error"}');
        return true;
      case 'html':
        record.status = 200;
        res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Sign in</title><p>Captive portal</p>');
        return true;
      case 'hang':
        return true;
      case 'drop':
        req.socket.destroy();
        return true;
    }
  }

  function metadata(): OAuthReply {
    return {
      status: 200,
      body: {
        issuer: url,
        token_endpoint: idp.tokenUrl,
        device_authorization_endpoint: idp.deviceAuthorizationUrl,
        authorization_endpoint: idp.authorizeUrl,
        introspection_endpoint: idp.introspectionUrl,
        grant_types_supported: ['authorization_code', 'refresh_token', 'password', 'client_credentials', DEVICE_CODE_GRANT],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      },
    };
  }

  async function answer(req: IncomingMessage, endpoint: MockEndpoint, form: URLSearchParams, reqUrl: URL): Promise<OAuthReply> {
    if (endpoint === 'introspect') return introspect(req, form, reqUrl);
    const client = authenticateClient(req.headers.authorization, form, clients);
    if (isReply(client)) return client;
    if (endpoint === 'device_authorization') return state.authorizeDevice(form, client, idp.verificationUrl);
    if (idp.failMode === 'invalid_grant') return oauthError(400, 'invalid_grant', 'the grant was revoked (failMode)');
    return state.grant(form, client);
  }

  /** Checks method and body; the form, or the error to answer. */
  async function readRequest(req: IncomingMessage, endpoint: MockEndpoint): Promise<URLSearchParams | OAuthReply> {
    if (endpoint === 'metadata') return metadata();
    if (endpoint === 'other') return oauthError(404, 'invalid_request', 'no such endpoint');
    const allowed = endpoint === 'introspect' ? ['GET', 'POST'] : ['POST'];
    if (!allowed.includes(req.method ?? '')) return oauthError(405, 'invalid_request', 'method not allowed');
    return readForm(req);
  }

  /** RFC 7662: active tokens get their claims, anything else `{active:false}` with 200. */
  function introspect(req: IncomingMessage, form: URLSearchParams, reqUrl: URL): OAuthReply {
    const bearerUsed = /^Bearer\s/i.test(req.headers.authorization ?? '');
    const hasClientCredentials = !bearerUsed && (req.headers.authorization !== undefined || form.has('client_id'));
    if (hasClientCredentials) {
      const client = authenticateClient(req.headers.authorization, form, clients);
      if (isReply(client)) return client;
    }
    const token = presentedToken(req, form, reqUrl);
    return { status: 200, body: (token && state.introspect(token)) || { active: false } };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const reqUrl = new URL(req.url ?? '/', url);
    const endpoint = ENDPOINTS[reqUrl.pathname] ?? 'other';
    const record: MockIdpRequest = { endpoint, at: now(), status: 0 };
    idp.requests.push(record);
    try {
      if (endpoint === 'authorize' || endpoint === 'device_verification') {
        record.status = await (endpoint === 'authorize' ? serveAuthorize : serveDevice)(req, res, reqUrl, pageDeps);
        return;
      }
      const form = await readRequest(req, endpoint);
      if (!isReply(form)) {
        record.grantType = form.get('grant_type') ?? undefined;
        record.clientId = clientIdOf(req.headers.authorization, form);
      }
      const failing = endpoint === 'token' || endpoint === 'device_authorization';
      if (failing && misbehave(req, res, record)) return;
      const reply = isReply(form) ? form : await answer(req, endpoint, form, reqUrl);
      record.status = reply.status;
      record.error = typeof reply.body.error === 'string' ? reply.body.error : undefined;
      sendReply(res, reply);
    } catch {
      record.status = 500;
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    }
  }

  return idp;
}
