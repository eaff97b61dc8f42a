import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { LoginThrottle } from '../accounts/throttle.js';
import { parseListen } from '../config/listen-address.js';
import { isLoopbackListen, type AccountSettings, type AdminSettings } from '../config/resolve.js';
import { describeError, isProxyError, ProxyError } from '../errors.js';
import { ADMIN_REQUEST_TIMEOUT_MS, MAX_ADMIN_BODY_BYTES } from '../limits.js';
import type { Logger } from '../log.js';
import type { DeviceFlowOptions } from '../tokens/device-flow.js';
import { CALLBACK_PATH } from '../tokens/loopback-redirect.js';
import type { OAuthClientOptions } from '../tokens/oauth-client.js';
import type { SignInMethod } from '../tokens/sign-in-method.js';
import type { TokenManager } from '../tokens/types.js';
import { createAccessCheck, type AccessCheck } from './access.js';
import { createHostCheck, type HostCheck } from './host-check.js';
import type { ProxyMetrics } from './metrics.js';
import { createSignInService, type SignInService } from './sign-in.js';
import { accountRows } from './status-model.js';
import { renderMessagePage, renderStatusPage } from './status-page.js';

/**
 * The admin HTTP listener (SPEC section 6): /healthz, /metrics (Prometheus), the status page,
 * /api/status (what the page polls), POST /sign-in and the OAuth redirect /oauth/callback.
 * Loopback unless credentials are configured; see access.ts for who may use it.
 */

export interface AdminServerOptions {
  settings: AdminSettings;
  /** The accounts of the config in force: read per request, so a SIGHUP reload shows at once. */
  accounts: () => readonly AccountSettings[];
  tokens: TokenManager;
  metrics: ProxyMetrics;
  log: Logger;
  /** True while the mail listeners are up. */
  healthy: () => boolean;
  now?: (() => number) | undefined;
  oauth?: OAuthClientOptions | undefined;
  device?: DeviceFlowOptions | undefined;
  /** Wrong admin credentials count per client address here (a throttle of its own, not the mail logins'). */
  throttle?: LoginThrottle | undefined;
}

export interface AdminServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

type Route = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

interface Ctx extends AdminServerOptions {
  signIn: SignInService;
  now: () => number;
  hostAllowed: HostCheck;
}

/** Paths anyone may call: health reveals one word, and the callback is bound to a `state` only we handed out. */
const OPEN_PATHS = new Set(['/healthz', CALLBACK_PATH]);
/**
 * Answered whatever the Host header says (host-check.ts): it reveals no more to a rebinding page
 * than to anyone who can connect, and probes from other containers name the service
 * (http://oauth-mail-proxy:8025/healthz), not an address.
 */
const ANY_HOST_PATHS = new Set(['/healthz']);

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(303, { location, 'cache-control': 'no-store' }).end();
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ADMIN_BODY_BYTES) throw new ProxyError('limit_exceeded', 'request body too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Forms may only be posted by our own page (a cross-site form could otherwise start sign-ins). */
function sameOrigin(req: IncomingMessage, publicUrl: string | undefined): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin' || site === 'none';
  const origin = req.headers.origin;
  if (origin === undefined) return true; // not a browser, or one too old to say: credentials still apply
  if (origin === 'null') return false;
  const host = new URL(origin).host;
  return host === req.headers.host || (publicUrl !== undefined && host === new URL(publicUrl).host);
}

/**
 * Where the identity provider sends the browser back: public_url, else the address the browser
 * used, checked here again rather than trusted to the handler: a code must never be sent to a
 * name an attacker chose.
 */
function redirectUriFor(ctx: Ctx, req: IncomingMessage, fallbackHost: string): string {
  if (ctx.settings.publicUrl) return `${ctx.settings.publicUrl}${CALLBACK_PATH}`;
  const host = req.headers.host;
  return `http://${host !== undefined && ctx.hostAllowed(host) ? host : fallbackHost}${CALLBACK_PATH}`;
}

function routes(ctx: Ctx, host: () => string): Record<string, Route> {
  const rows = () => accountRows({ accounts: ctx.accounts(), status: ctx.tokens.status, activeSessions: ctx.metrics.activeSessions, signIn: ctx.signIn.view, now: ctx.now });
  return {
    'GET /healthz': (_req, res) => (ctx.healthy() ? send(res, 200, 'text/plain', 'ok\n') : send(res, 503, 'text/plain', 'listeners down\n')),
    'GET /metrics': async (_req, res) => send(res, 200, ctx.metrics.contentType, await ctx.metrics.render()),
    'GET /api/status': (_req, res) => send(res, 200, 'application/json', JSON.stringify({ accounts: rows() })),
    'GET /': (_req, res) => {
      const nonce = randomBytes(16).toString('base64');
      const csp = `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'`;
      send(res, 200, 'text/html; charset=utf-8', renderStatusPage(rows(), nonce, ctx.now()), { 'content-security-policy': csp });
    },
    'POST /sign-in': async (req, res) => {
      if (!sameOrigin(req, ctx.settings.publicUrl)) return send(res, 403, 'text/plain', 'cross-site form refused\n');
      const form = await readForm(req);
      const method = form.get('method');
      const started = await ctx.signIn.start(form.get('account') ?? '', redirectUriFor(ctx, req, host()), (method ?? undefined) as SignInMethod | undefined);
      redirect(res, started.method === 'browser' ? started.authorizeUrl : './');
    },
    [`GET ${CALLBACK_PATH}`]: async (_req, res, url) => {
      try {
        await ctx.signIn.callback(url.searchParams);
        redirect(res, '../');
      } catch (err) {
        const text = isProxyError(err) ? err.message : 'the sign-in failed; see the log';
        send(res, 400, 'text/html; charset=utf-8', renderMessagePage('Sign-in did not complete', text));
      }
    },
  };
}

/**
 * Whether the request may go on; answers it when not. Wrong credentials count against the
 * client's address as wrong mail passwords do (accounts/throttle.ts): answers that wait longer
 * and longer, then 429 for the lockout, so an admin port on a LAN cannot be guessed at speed.
 * A request with no credentials at all (a browser's first visit) only gets the challenge.
 */
async function admitted(req: IncomingMessage, res: ServerResponse, access: AccessCheck, throttle: LoginThrottle, log: Logger): Promise<boolean> {
  const address = req.socket.remoteAddress ?? '';
  const lockedUntil = throttle.lockedUntil(address);
  if (lockedUntil !== undefined) {
    send(res, 429, 'text/plain', 'too many failed logins from this address; try again later\n', { 'retry-after': String(Math.max(1, Math.ceil((lockedUntil - Date.now()) / 1000))) });
    return false;
  }
  if (await access.allows(req)) {
    if (access.required) throttle.recordSuccess(address);
    return true;
  }
  if (req.headers.authorization !== undefined) {
    const delayMs = throttle.recordFailure(address);
    log.warn({ event: 'admin.auth_fail', client: address, delayMs, lockedOut: throttle.isLockedOut(address) }, 'admin login refused: wrong credentials');
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
  send(res, 401, 'text/plain', 'authentication required\n', { 'www-authenticate': access.challenge });
  return false;
}

/** Refuses a Host this listener does not answer to (RFC 9110 section 15.5.20: 421 Misdirected Request). */
function hostRefused(req: IncomingMessage, res: ServerResponse, url: URL, hostAllowed: HostCheck, log: Logger): boolean {
  if (ANY_HOST_PATHS.has(url.pathname) || hostAllowed(req.headers.host)) return false;
  const host = String(req.headers.host).slice(0, 100);
  log.warn({ event: 'admin.host_refused', client: req.socket.remoteAddress, host, path: url.pathname }, 'admin request for another host name refused (DNS rebinding?); add the name to admin.allowed_hosts if it is yours');
  send(res, 421, 'text/plain', 'this listener does not answer to that host name; see admin.allowed_hosts\n');
  return true;
}

/** Host, credentials, then the route; every failure answered in one place. */
function handler(ctx: Ctx, table: Record<string, Route>, access: AccessCheck, throttle: LoginThrottle) {
  const { log } = ctx;
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    const route = table[`${req.method} ${url.pathname}`];
    if (hostRefused(req, res, url, ctx.hostAllowed, log)) return;
    void (async () => {
      if (!OPEN_PATHS.has(url.pathname) && !(await admitted(req, res, access, throttle, log))) return;
      if (!route) return send(res, 404, 'text/plain', 'not found\n');
      await route(req, res, url);
    })().catch((err: unknown) => {
      const status = isProxyError(err, 'bad_input') || isProxyError(err, 'limit_exceeded') ? 400 : isProxyError(err, 'config_invalid') ? 409 : 502;
      log.warn({ event: 'admin.error', path: url.pathname, error: describeError(err) }, 'admin request failed');
      if (!res.headersSent) send(res, status, 'text/html; charset=utf-8', renderMessagePage('Request failed', isProxyError(err) ? err.message : 'internal error'));
      else res.destroy();
    });
  };
}

function listen(server: Server, hostPort: string): Promise<AddressInfo> {
  const { host, port } = parseListen(hostPort);
  return new Promise((resolve, reject) => {
    server.once('error', (err) => reject(new ProxyError('config_invalid', `admin listener cannot listen on ${hostPort}`, { cause: err })));
    server.listen(port, host, () => resolve(server.address() as AddressInfo));
  });
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const { settings, log } = options;
  const access = createAccessCheck(settings);
  if (!isLoopbackListen(settings.listen) && !access.required) {
    throw new ProxyError('config_invalid', `admin.listen ${settings.listen} is reachable from other machines: set admin.password (or password_hash) or admin.bearer_token first`);
  }
  const ctx: Ctx = { ...options, now: options.now ?? Date.now, signIn: createSignInService({ ...options, now: options.now }), hostAllowed: createHostCheck(settings) };
  let hostHeader = settings.listen;
  const table = routes(ctx, () => hostHeader);
  const sockets = new Set<Socket>();

  const server = createServer(handler(ctx, table, access, options.throttle ?? new LoginThrottle()));
  server.requestTimeout = ADMIN_REQUEST_TIMEOUT_MS;
  server.headersTimeout = ADMIN_REQUEST_TIMEOUT_MS;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const address = await listen(server, settings.listen);
  hostHeader = `${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  const url = `http://${hostHeader}/`;
  log.info({ event: 'admin.start', host: address.address, port: address.port, authentication: access.required }, `admin listening on ${url}`);
  return {
    url,
    port: address.port,
    close: async () => {
      ctx.signIn.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
