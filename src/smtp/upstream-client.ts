import { isIP } from 'node:net';
import type { UpstreamServer } from '../config/resolve.js';
import type { SaslMechanism } from '../config/schema.js';
import { ProxyError, toProxyError } from '../errors.js';
import {
  MAX_SMTP_COMMAND_LINE_BYTES, SMTP_UPSTREAM_DATA_END_TIMEOUT_MS, SMTP_UPSTREAM_STEP_TIMEOUT_MS, UPSTREAM_LOGIN_TIMEOUT_MS,
} from '../limits.js';
import type { Logger } from '../log.js';
import { startDeadline } from '../net/deadline.js';
import { connectUpstream, hostPort, upgradeToTls } from '../net/upstream.js';
import { OAUTHBEARER_ERROR_ACK, encodeOAuthBearer } from '../sasl/oauthbearer.js';
import { encodeXOAuth2, parseOAuthErrorChallenge } from '../sasl/xoauth2.js';
import type { Secret } from '../secret.js';
import { BodyWriter } from './body-writer.js';
import { SmtpUpstreamIo, describeReply, parseExtensions, type SmtpReply } from './upstream-io.js';

export type { SmtpReply } from './upstream-io.js';

export interface UpstreamSmtpOptions {
  log?: Logger | undefined;
  /** How long the server may take no message bytes before DATA fails; SMTP_UPSTREAM_STEP_TIMEOUT_MS unless a test needs less. */
  dataStallTimeoutMs?: number | undefined;
}

/**
 * Logs in to an SMTP submission server with an access token: greeting, EHLO, STARTTLS and EHLO
 * again when configured, then AUTH XOAUTH2 or OAUTHBEARER. One deadline
 * (UPSTREAM_LOGIN_TIMEOUT_MS) covers the whole attempt. Errors: ProxyError `token_rejected` when
 * the server refuses the token (the token manager then refreshes and retries once),
 * `upstream_unavailable` for everything else.
 */
export async function loginSmtpUpstream(
  server: UpstreamServer, user: string, token: Secret, mechanism: SaslMechanism, signal: AbortSignal, options: UpstreamSmtpOptions = {},
): Promise<UpstreamSmtpSession> {
  const where = hostPort(server);
  const deadline = startDeadline(UPSTREAM_LOGIN_TIMEOUT_MS, 'upstream_unavailable', `SMTP server ${where}: login timed out after ${UPSTREAM_LOGIN_TIMEOUT_MS / 1000} s`, signal);
  let io: SmtpUpstreamIo | undefined;
  try {
    io = new SmtpUpstreamIo(await connectUpstream(server, deadline.signal, options), where);
    const greeting = await io.readReply(deadline.signal);
    if (greeting.code !== 220) throw io.fail(`refused the connection: ${describeReply(greeting)}`);
    let extensions = await ehlo(io, deadline.signal);
    if (server.tls === 'starttls') extensions = await startTls(io, server, deadline.signal, options);
    const payload = mechanism === 'oauthbearer'
      ? encodeOAuthBearer(user, token, { host: server.servername ?? server.host, port: server.port })
      : encodeXOAuth2(user, token);
    await authenticate(io, mechanism, payload, deadline.signal);
    return new UpstreamSmtpSession(io, extensions, options.dataStallTimeoutMs ?? SMTP_UPSTREAM_STEP_TIMEOUT_MS);
  } catch (err) {
    io?.socket.destroy();
    throw toProxyError(err, 'upstream_unavailable', `SMTP server ${where}: login failed`);
  } finally {
    deadline.clear();
  }
}

/** EHLO with our address as an address literal (RFC 5321 section 4.1.3); SMTP servers that matter all speak ESMTP. */
async function ehlo(io: SmtpUpstreamIo, signal: AbortSignal): Promise<Map<string, string>> {
  const local = io.socket.localAddress ?? '127.0.0.1';
  const literal = isIP(local) === 6 ? `[IPv6:${local}]` : `[${local}]`;
  const reply = await io.command(`EHLO ${literal}`, signal);
  if (reply.code !== 250) throw io.fail(`refused EHLO: ${describeReply(reply)}`);
  return parseExtensions(reply);
}

/**
 * STARTTLS (RFC 3207). Bytes the server sent after its 220 in plaintext are dropped unread
 * (response injection, CVE-2011-0411), and everything learnt before TLS is forgotten: the
 * extensions are asked for again with a new EHLO (section 4.2).
 */
async function startTls(io: SmtpUpstreamIo, server: UpstreamServer, signal: AbortSignal, options: UpstreamSmtpOptions): Promise<Map<string, string>> {
  const reply = await io.command('STARTTLS', signal);
  if (reply.code !== 220) throw io.fail(`refused STARTTLS: ${describeReply(reply)}`);
  const dropped = io.reader.discardAndDetach();
  if (dropped > 0) {
    options.log?.warn({ event: 'upstream.starttls_injection', server: io.where, bytes: dropped }, 'server sent plaintext after its STARTTLS reply; dropped');
  }
  io.socket = await upgradeToTls(io.socket, server, signal, options);
  io.socket.on('error', () => undefined);
  io.reader.attach(io.socket);
  return ehlo(io, signal);
}

/**
 * AUTH with the token (RFC 4954). The initial response goes on the AUTH line unless that line
 * would exceed 512 octets (section 4: then the client MUST NOT use it), in which case it is
 * sent on its own line after the server's empty 334. An error challenge ("334 " base64 JSON)
 * is answered as the mechanism requires, an empty line for XOAUTH2 and ^A for OAUTHBEARER
 * (RFC 7628 section 3.2.3), and the server then ends with its 535.
 */
async function authenticate(io: SmtpUpstreamIo, mechanism: SaslMechanism, payload: string, signal: AbortSignal): Promise<void> {
  const name = mechanism === 'oauthbearer' ? 'OAUTHBEARER' : 'XOAUTH2';
  const oneLine = `AUTH ${name} ${payload}`;
  let reply: SmtpReply;
  if (Buffer.byteLength(oneLine) + 2 <= MAX_SMTP_COMMAND_LINE_BYTES) {
    reply = await io.command(oneLine, signal);
  } else {
    reply = await io.command(`AUTH ${name}`, signal);
    if (reply.code !== 334) throw refused(io, name, reply, undefined);
    reply = await io.command(payload, signal);
  }
  let challenge: string | undefined;
  if (reply.code === 334) {
    challenge = describeChallenge(reply.lines.join(''));
    reply = await io.command(mechanism === 'oauthbearer' ? OAUTHBEARER_ERROR_ACK : '', signal);
  }
  if (reply.code !== 235) throw refused(io, name, reply, challenge);
}

/**
 * 535 (and 534, "authentication mechanism is too weak" as Google words a policy refusal): the
 * token was refused, so the manager refreshes and retries once. Anything else (454 temporary
 * failure, 504 unknown mechanism, a 334 where none belongs) is the server's problem, not the token's.
 */
function refused(io: SmtpUpstreamIo, mechanism: string, reply: SmtpReply, challenge: string | undefined): ProxyError {
  const details = challenge ? ` (${challenge})` : '';
  if (reply.code === 535 || reply.code === 534) {
    return new ProxyError('token_rejected', `SMTP server ${io.where} rejected the access token: ${describeReply(reply)}${details}`);
  }
  return io.fail(`refused AUTH ${mechanism}: ${describeReply(reply)}${details}`);
}

/** The secret-free part of an error challenge, for the error message and the log. */
function describeChallenge(challenge: string): string {
  const parsed = parseOAuthErrorChallenge(challenge);
  if (!parsed) return 'challenge without details';
  const parts = Object.entries(parsed).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${v}`);
  return parts.length > 0 ? parts.join(', ') : 'challenge without details';
}

/**
 * A logged-in SMTP session upstream. Each step returns the server's reply as it is, for the
 * client to see; only a broken connection or a timeout throws (`upstream_unavailable`).
 */
export class UpstreamSmtpSession {
  readonly #io: SmtpUpstreamIo;
  /** EHLO keywords after login (upper case) with their parameters, e.g. SIZE 35882577. */
  readonly extensions: ReadonlyMap<string, string>;
  readonly #dataStallMs: number;
  /** The message body in progress: from the server's 354 to the end marker or destroy(). */
  #body: BodyWriter | undefined;

  constructor(io: SmtpUpstreamIo, extensions: Map<string, string>, dataStallMs: number) {
    this.#io = io;
    this.extensions = extensions;
    this.#dataStallMs = dataStallMs;
  }

  get where(): string {
    return this.#io.where;
  }

  /** False once the connection is closed or broken: the next transaction needs a new login. */
  get usable(): boolean {
    const socket = this.#io.socket;
    return !socket.destroyed && !socket.readableEnded && !socket.writableEnded;
  }

  mailFrom(address: string, params: readonly string[], signal: AbortSignal): Promise<SmtpReply> {
    return this.#step([`MAIL FROM:<${address}>`, ...params].join(' '), signal);
  }

  rcptTo(address: string, signal: AbortSignal): Promise<SmtpReply> {
    return this.#step(`RCPT TO:<${address}>`, signal);
  }

  /**
   * DATA; the caller sends the message only after a 354. From then until endData, `signal` also
   * aborts a body write that is waiting for the server.
   */
  async beginData(signal: AbortSignal): Promise<SmtpReply> {
    this.#endBody();
    const reply = await this.#step('DATA', signal);
    if (reply.code === 354) this.#body = new BodyWriter(this.#io, signal, this.#dataStallMs);
    return reply;
  }

  /**
   * Message bytes, dot-stuffed on the way, with backpressure. Returns undefined when the bytes
   * were taken at once (no promise per chunk on that path), else a promise to await before the
   * next chunk; it rejects (`upstream_unavailable`) when the connection closes or the server
   * takes nothing for the stall timeout.
   */
  writeBody(chunk: Buffer): Promise<void> | undefined {
    if (!this.#body) return Promise.reject(this.#io.fail('has no DATA in progress'));
    return this.#body.write(chunk);
  }

  /** The end-of-data marker (after a CRLF when the message did not end with one), and the server's verdict. */
  endData(signal: AbortSignal): Promise<SmtpReply> {
    const atLineStart = this.#body?.atLineStart ?? true;
    this.#endBody();
    return this.#step(atLineStart ? '.' : '\r\n.', signal, SMTP_UPSTREAM_DATA_END_TIMEOUT_MS);
  }

  /** RSET (RFC 5321 section 4.1.1.5): a clean slate for the next transaction. */
  reset(signal: AbortSignal): Promise<SmtpReply> {
    return this.#step('RSET', signal);
  }

  /** QUIT without waiting long for the 221; the socket is closed either way. */
  async quit(): Promise<void> {
    if (!this.usable) return this.destroy();
    try {
      await this.#step('QUIT', AbortSignal.timeout(2_000));
    } catch {
      // The server may close without a 221; nothing is lost.
    } finally {
      this.#io.socket.end();
      this.destroy();
    }
  }

  /** Drops the connection at once, e.g. in the middle of DATA, so the server discards the message. */
  destroy(): void {
    this.#endBody();
    this.#io.socket.destroy();
  }

  #endBody(): void {
    this.#body?.close();
    this.#body = undefined;
  }

  /** One command and its reply; a broken or timed-out exchange leaves the connection unusable, so it is closed. */
  async #step(line: string, signal: AbortSignal, timeoutMs = SMTP_UPSTREAM_STEP_TIMEOUT_MS): Promise<SmtpReply> {
    const deadline = startDeadline(timeoutMs, 'upstream_unavailable', `SMTP server ${this.where} did not answer within ${timeoutMs / 1000} s`, signal);
    try {
      return await this.#io.command(line, deadline.signal);
    } catch (err) {
      this.destroy();
      throw err;
    } finally {
      deadline.clear();
    }
  }
}
