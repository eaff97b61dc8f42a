import type { Socket } from 'node:net';
import type { UpstreamServer } from '../config/resolve.js';
import type { SaslMechanism } from '../config/schema.js';
import { ProxyError, toProxyError } from '../errors.js';
import { UPSTREAM_LOGIN_TIMEOUT_MS } from '../limits.js';
import type { Logger } from '../log.js';
import { startDeadline } from '../net/deadline.js';
import { connectUpstream, hostPort, upgradeToTls } from '../net/upstream.js';
import { OAUTHBEARER_ERROR_ACK, encodeOAuthBearer } from '../sasl/oauthbearer.js';
import { describeOAuthErrorChallenge, encodeXOAuth2 } from '../sasl/xoauth2.js';
import type { Secret } from '../secret.js';
import { Pop3UpstreamIo, preview, replyStatus } from './upstream-io.js';

/** A logged-in connection to the mail server, ready to relay. */
export interface UpstreamPop3Session {
  socket: Socket;
  /** The server's +OK line for the login, CRLF included, byte for byte: the client gets it first. */
  reply: Buffer;
  /** Bytes the server sent after that line. */
  leftover: Buffer;
}

export interface UpstreamLoginOptions {
  log?: Logger | undefined;
}

const CRLF = Buffer.from('\r\n');

/**
 * Logs in to a POP3 server with an access token: greeting, STLS when configured (RFC 2595),
 * then AUTH XOAUTH2 or OAUTHBEARER (RFC 5034, RFC 7628). One deadline
 * (UPSTREAM_LOGIN_TIMEOUT_MS) covers the whole attempt. Errors: ProxyError `token_rejected`
 * when the server refuses the token (the token manager then refreshes and retries once),
 * `upstream_unavailable` for everything else.
 */
export async function loginPop3Upstream(
  server: UpstreamServer, user: string, token: Secret, mechanism: SaslMechanism, signal: AbortSignal, options: UpstreamLoginOptions = {},
): Promise<UpstreamPop3Session> {
  const where = hostPort(server);
  const deadline = startDeadline(UPSTREAM_LOGIN_TIMEOUT_MS, 'upstream_unavailable', `POP3 server ${where}: login timed out after ${UPSTREAM_LOGIN_TIMEOUT_MS / 1000} s`, signal);
  let io: Pop3UpstreamIo | undefined;
  try {
    io = new Pop3UpstreamIo(await connectUpstream(server, deadline.signal, options), where);
    const greeting = await io.readLine(deadline.signal);
    if (replyStatus(greeting.text) !== 'ok') throw io.fail(`refused the connection: ${preview(greeting.text)}`);
    if (server.tls === 'starttls') await startTls(io, server, deadline.signal, options);
    const payload = mechanism === 'oauthbearer'
      ? encodeOAuthBearer(user, token, { host: server.servername ?? server.host, port: server.port })
      : encodeXOAuth2(user, token);
    const reply = await authenticate(io, mechanism, payload, deadline.signal);
    return { socket: io.socket, reply: Buffer.concat([reply, CRLF]), leftover: io.reader.takeLeftover() };
  } catch (err) {
    io?.socket.destroy();
    throw toProxyError(err, 'upstream_unavailable', `POP3 server ${where}: login failed`);
  } finally {
    deadline.clear();
  }
}

/**
 * STLS (RFC 2595 section 4). Whatever the server sent after its +OK in plaintext is dropped
 * unread (response injection, CVE-2011-0411).
 */
async function startTls(io: Pop3UpstreamIo, server: UpstreamServer, signal: AbortSignal, options: UpstreamLoginOptions): Promise<void> {
  io.write('STLS');
  const reply = await io.readLine(signal);
  if (replyStatus(reply.text) !== 'ok') throw io.fail(`refused STLS: ${preview(reply.text)}`);
  const dropped = io.reader.discardAndDetach();
  if (dropped > 0) {
    options.log?.warn({ event: 'upstream.starttls_injection', server: io.where, bytes: dropped }, 'server sent plaintext after its STLS reply; dropped');
  }
  io.socket = await upgradeToTls(io.socket, server, signal, options);
  io.reader.attach(io.socket);
}

/**
 * AUTH in the two-step form: the mechanism alone, then the token after the server's "+ ".
 * Microsoft 365 refuses an initial response on the AUTH line, and a token would not fit the
 * 255-octet command line anyway (RFC 5034 section 4). A -ERR to the AUTH line itself means the
 * server does not take the mechanism: a configuration problem, not the token's. A refused
 * token comes back as -ERR, or first as an error challenge ("+ " base64 JSON, Gmail and RFC
 * 7628 section 3.2.2) that we answer as the mechanism requires (an empty line for XOAUTH2, ^A
 * for OAUTHBEARER) so that the server ends with its -ERR. Returns the +OK line.
 */
async function authenticate(io: Pop3UpstreamIo, mechanism: SaslMechanism, payload: string, signal: AbortSignal): Promise<Buffer> {
  const name = mechanism === 'oauthbearer' ? 'OAUTHBEARER' : 'XOAUTH2';
  io.write(`AUTH ${name}`);
  const ready = await io.readLine(signal);
  if (replyStatus(ready.text) !== 'continue') throw io.fail(`does not take AUTH ${name}: ${preview(ready.text)}`);
  io.write(payload);
  let answer = await io.readLine(signal);
  let challenge: string | undefined;
  if (replyStatus(answer.text) === 'continue') {
    challenge = describeOAuthErrorChallenge(answer.text.slice(1).trim());
    io.write(mechanism === 'oauthbearer' ? OAUTHBEARER_ERROR_ACK : '');
    answer = await io.readLine(signal);
  }
  const status = replyStatus(answer.text);
  if (status === 'ok' && challenge === undefined) return answer.raw;
  if (status === 'err') throw refused(io, name, answer.text, challenge);
  throw io.fail(`sent an unexpected reply to AUTH ${name}: ${preview(answer.text)}`);
}

/**
 * -ERR to the token. [SYS/TEMP], [SYS/PERM], [IN-USE] and [LOGIN-DELAY] (RFC 2449, RFC 3206)
 * say the token was fine and something else is wrong: a fresh token would not help. Anything
 * else, [AUTH] or no code, is a refused token: the manager refreshes it and retries once.
 */
function refused(io: Pop3UpstreamIo, mechanism: string, text: string, challenge: string | undefined): ProxyError {
  const details = challenge ? ` (${challenge})` : '';
  if (/^-ERR \[(SYS\/TEMP|SYS\/PERM|IN-USE|LOGIN-DELAY)\]/i.test(text)) {
    return io.fail(`refused the login: ${preview(text)}${details}`);
  }
  return new ProxyError('token_rejected', `POP3 server ${io.where} rejected the access token (AUTH ${mechanism}): ${preview(text)}${details}`);
}
