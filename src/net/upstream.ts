import { readFile } from 'node:fs/promises';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, rootCertificates, type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';
import type { UpstreamServer } from '../config/resolve.js';
import { ProxyError, describeError } from '../errors.js';
import { UPSTREAM_CA_FILE_RECHECK_MS, UPSTREAM_CONNECT_TIMEOUT_MS } from '../limits.js';
import type { Logger } from '../log.js';
import { abortReason, startDeadline } from './deadline.js';
import { TlsSessionCache, tlsSessionKey, type TlsSessionKey } from './tls-sessions.js';

export interface UpstreamConnectOptions {
  /** Receives the loud warning when certificate verification is off. */
  log?: Logger | undefined;
}

/**
 * Opens the connection to a mail server: implicit TLS (verified, with SNI), or plain TCP for
 * a STARTTLS server (then `upgradeToTls`). IPv4 and IPv6; UPSTREAM_CONNECT_TIMEOUT_MS. Every
 * failure is a ProxyError `upstream_unavailable` whose message names host:port and the reason.
 */
export async function connectUpstream(server: UpstreamServer, signal: AbortSignal, options: UpstreamConnectOptions = {}): Promise<Socket> {
  const host = bareHost(server.host);
  const where = hostPort(server);
  const deadline = startDeadline(UPSTREAM_CONNECT_TIMEOUT_MS, 'upstream_unavailable', `${where}: connection timed out after ${UPSTREAM_CONNECT_TIMEOUT_MS / 1000} s`, signal);
  try {
    if (server.tls === 'starttls') {
      return await settle(netConnect({ host, port: server.port, noDelay: true }), 'connect', where, deadline.signal);
    }
    const tls = await upstreamTls(server, options.log);
    return await settle(resumable(withNoDelay(tlsConnect({ ...tls.options, host, port: server.port })), tls), 'secureConnect', where, deadline.signal);
  } finally {
    deadline.clear();
  }
}

/**
 * Commands and replies are short lines: each one goes out at once rather than waiting, under
 * Nagle's algorithm, for the server to acknowledge what is in flight (the client's own socket
 * has TCP_NODELAY from the listener).
 */
function withNoDelay<T extends Socket>(socket: T): T {
  socket.setNoDelay(true);
  return socket;
}

/** Client side of STARTTLS on a connected socket, verified like implicit TLS. */
export async function upgradeToTls(socket: Socket, server: UpstreamServer, signal: AbortSignal, options: UpstreamConnectOptions = {}): Promise<TLSSocket> {
  const where = hostPort(server);
  const deadline = startDeadline(UPSTREAM_CONNECT_TIMEOUT_MS, 'upstream_unavailable', `${where}: TLS handshake timed out after ${UPSTREAM_CONNECT_TIMEOUT_MS / 1000} s`, signal);
  try {
    const tls = await upstreamTls(server, options.log);
    // `host` names the server for the certificate check when no servername is configured.
    return await settle(resumable(tlsConnect({ ...tls.options, host: bareHost(server.host), socket }), tls), 'secureConnect', where, deadline.signal);
  } finally {
    deadline.clear();
  }
}

interface UpstreamTls {
  options: ConnectionOptions;
  context: SecureContext;
  sessionKey: TlsSessionKey;
}

const sessions = new TlsSessionCache();

/**
 * Verified TLS: system roots plus the configured CA file (added, not replacing them), SNI with
 * the server name unless it is an IP address (RFC 6066 section 3 forbids literal addresses).
 * The certificate is checked against `servername` when set, else against the host. The last
 * session this server gave us under the same trust is offered for resumption.
 */
async function upstreamTls(server: UpstreamServer, log: Logger | undefined): Promise<UpstreamTls> {
  const name = server.servername ?? bareHost(server.host);
  let context: SecureContext;
  try {
    context = await sharedSecureContext(server.caFile);
  } catch (err) {
    throw new ProxyError('upstream_unavailable', `${hostPort(server)}: cannot read ca_file ${server.caFile}: ${describeError(err)}`, { cause: err });
  }
  const sessionKey = tlsSessionKey(bareHost(server.host), server.port, name, !server.insecureSkipVerify);
  const session = sessions.get(context, sessionKey);
  const options: ConnectionOptions = {
    secureContext: context,
    rejectUnauthorized: !server.insecureSkipVerify,
    ...(isIP(name) ? {} : { servername: name }),
    ...(session ? { session } : {}),
  };
  if (server.insecureSkipVerify) {
    log?.warn({ event: 'upstream.tls_insecure', server: hostPort(server) },
      `TLS CERTIFICATE VERIFICATION IS OFF for ${hostPort(server)} (tls_insecure_skip_verify): anyone on the network path can read this session, its token included`);
  }
  return { options, context, sessionKey };
}

function resumable(socket: TLSSocket, tls: UpstreamTls): TLSSocket {
  sessions.remember(socket, tls.context, tls.sessionKey, tls.options.session !== undefined);
  return socket;
}

/** The client SecureContext in use per CA file ('' for the system roots alone): the file's text, when it was read. */
const secureContexts = new Map<string, { pem: string; readAt: number; context: SecureContext }>();

/**
 * One client SecureContext per CA file, shared by every upstream connection that trusts it.
 * Passing `ca` to tls.connect instead builds a fresh context per connection, parsing the ~140
 * system roots plus the file into a new X509 store each time: bench/ measured ~50 ms of CPU per
 * login and ~1 MB of memory held by every relayed session. The file is read again at most every
 * UPSTREAM_CA_FILE_RECHECK_MS, and a changed file gets a new context.
 */
async function sharedSecureContext(caFile: string | undefined): Promise<SecureContext> {
  const key = caFile ?? '';
  const cached = secureContexts.get(key);
  const now = Date.now();
  if (cached && (!caFile || now - cached.readAt < UPSTREAM_CA_FILE_RECHECK_MS)) return cached.context;
  const pem = caFile ? await readFile(caFile, 'utf8') : '';
  if (cached?.pem === pem) {
    cached.readAt = now;
    return cached.context;
  }
  // Added to the system roots, not replacing them (a server may move to a public CA).
  const context = createSecureContext({ minVersion: 'TLSv1.2', ...(caFile ? { ca: [...rootCertificates, pem] } : {}) });
  secureContexts.set(key, { pem, readAt: now, context });
  return context;
}

/** Waits for the socket to be ready; destroys it and explains why when it is not. */
function settle<T extends Socket>(socket: T, ready: 'connect' | 'secureConnect', where: string, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanup = (): void => {
      socket.off(ready, onReady);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (err: ProxyError): void => {
      cleanup();
      socket.on('error', () => undefined);
      socket.destroy();
      reject(err);
    };
    const onReady = (): void => {
      cleanup();
      resolve(socket);
    };
    const onError = (err: Error): void => fail(new ProxyError('upstream_unavailable', `${where}: ${explainConnectError(err)}`, { cause: err }));
    const onClose = (): void => fail(new ProxyError('upstream_unavailable', `${where}: the server closed the connection during connect`));
    const onAbort = (): void => {
      const reason = abortReason(signal);
      const keep = reason.code === 'aborted' || reason.code === 'upstream_unavailable';
      fail(keep ? reason : new ProxyError('upstream_unavailable', `${where}: ${reason.message}`, { cause: reason }));
    };
    socket.once(ready, onReady);
    socket.once('error', onError);
    socket.once('close', onClose);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}

const EXPLANATIONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (nothing listens on that port)',
  ENOTFOUND: 'host name not found (DNS)',
  EAI_AGAIN: 'host name lookup failed temporarily (DNS)',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ECONNRESET: 'connection reset by the server',
  EPIPE: 'connection closed by the server',
  CERT_HAS_EXPIRED: "certificate verification failed: the server's certificate has expired",
  CERT_NOT_YET_VALID: "certificate verification failed: the server's certificate is not valid yet (check the clock)",
  DEPTH_ZERO_SELF_SIGNED_CERT: "certificate verification failed: the server's certificate is self-signed (add it with ca_file)",
  SELF_SIGNED_CERT_IN_CHAIN: 'certificate verification failed: the chain ends in an untrusted self-signed CA (add it with ca_file)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "certificate verification failed: the server's CA is not trusted (add it with ca_file)",
  UNABLE_TO_GET_ISSUER_CERT: "certificate verification failed: the server's CA is not trusted (add it with ca_file)",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'certificate verification failed: incomplete chain or untrusted CA (add the CA with ca_file)',
  ERR_TLS_CERT_ALTNAME_INVALID: "certificate verification failed: the certificate does not name this host (set servername if it should)",
  ERR_SSL_WRONG_VERSION_NUMBER: 'TLS handshake failed: the port does not speak TLS (implicit vs starttls?)',
};

/** Spells out the usual network and certificate failures. */
export function explainConnectError(err: Error): string {
  const code = (err as { code?: unknown }).code;
  const known = typeof code === 'string' ? EXPLANATIONS[code] : undefined;
  if (known) return code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? `${known}: ${err.message}` : known;
  return describeError(err);
}

/** "host:port", with brackets around an IPv6 address. */
export function hostPort(server: Pick<UpstreamServer, 'host' | 'port'>): string {
  const host = bareHost(server.host);
  return isIP(host) === 6 ? `[${host}]:${server.port}` : `${host}:${server.port}`;
}

function bareHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
