import type { Socket } from 'node:net';
import type { UpstreamServer } from '../config/resolve.js';
import type { SaslMechanism } from '../config/schema.js';
import { ProxyError, toProxyError } from '../errors.js';
import { MAX_UPSTREAM_UNTAGGED_LINES, UPSTREAM_LOGIN_TIMEOUT_MS } from '../limits.js';
import type { Logger } from '../log.js';
import { startDeadline } from '../net/deadline.js';
import { connectUpstream, hostPort, upgradeToTls } from '../net/upstream.js';
import { OAUTHBEARER_ERROR_ACK, encodeOAuthBearer } from '../sasl/oauthbearer.js';
import { encodeXOAuth2, parseOAuthErrorChallenge } from '../sasl/xoauth2.js';
import type { Secret } from '../secret.js';
import { UpstreamIo, findCapabilities, hasCapability, parseTagged, preview, type TaggedReply } from './upstream-io.js';

/** A logged-in connection to the mail server, ready to relay. */
export interface UpstreamImapSession {
  socket: Socket;
  /** The server's capabilities after login, e.g. "IMAP4rev1 IDLE MOVE ...". */
  capabilities: string;
  /** Bytes the server sent after its login reply; they go to the client first. */
  leftover: Buffer;
}

export interface UpstreamLoginOptions {
  log?: Logger | undefined;
}

/**
 * Logs in to an IMAP server with an access token: greeting, STARTTLS when configured (then
 * CAPABILITY again), AUTHENTICATE XOAUTH2 or OAUTHBEARER (with SASL-IR when offered), and the
 * post-login capabilities. One deadline (UPSTREAM_LOGIN_TIMEOUT_MS) covers the whole attempt.
 * Errors: ProxyError `token_rejected` when the server refuses the token (the token manager
 * then refreshes and retries once), `upstream_unavailable` for everything else.
 */
export async function loginImapUpstream(
  server: UpstreamServer, user: string, token: Secret, mechanism: SaslMechanism, signal: AbortSignal, options: UpstreamLoginOptions = {},
): Promise<UpstreamImapSession> {
  const where = hostPort(server);
  const deadline = startDeadline(UPSTREAM_LOGIN_TIMEOUT_MS, 'upstream_unavailable', `IMAP server ${where}: login timed out after ${UPSTREAM_LOGIN_TIMEOUT_MS / 1000} s`, signal);
  let io: UpstreamIo | undefined;
  try {
    io = new UpstreamIo(await connectUpstream(server, deadline.signal, options), where);
    let capabilities = await readGreeting(io, deadline.signal);
    if (server.tls === 'starttls') capabilities = await startTls(io, server, deadline.signal, options);
    capabilities ??= await fetchCapabilities(io, deadline.signal);
    const payload = mechanism === 'oauthbearer'
      ? encodeOAuthBearer(user, token, { host: server.servername ?? server.host, port: server.port })
      : encodeXOAuth2(user, token);
    const reply = await authenticate(io, mechanism, payload, hasCapability(capabilities, 'SASL-IR'), deadline.signal);
    const after = findCapabilities([reply.text, ...reply.untagged]) ?? await fetchCapabilities(io, deadline.signal);
    return { socket: io.socket, capabilities: after, leftover: io.reader.takeLeftover() };
  } catch (err) {
    io?.socket.destroy();
    throw toProxyError(err, 'upstream_unavailable', `IMAP server ${where}: login failed`);
  } finally {
    deadline.clear();
  }
}

/** "* OK" (with capabilities, maybe); "* BYE" or anything else ends the attempt. */
async function readGreeting(io: UpstreamIo, signal: AbortSignal): Promise<string | undefined> {
  const greeting = await io.readLine(signal);
  if (/^\* OK\b/i.test(greeting)) return findCapabilities([greeting]);
  if (/^\* BYE\b/i.test(greeting)) throw io.fail(`refused the connection: ${preview(greeting)}`);
  throw io.fail(`sent an unexpected greeting: ${preview(greeting)}`);
}

/**
 * STARTTLS (RFC 3501 section 6.2.1). Whatever the server sent after its OK in plaintext is
 * dropped unread (response injection, CVE-2011-0411), and capabilities learnt before TLS are
 * forgotten: they must be asked for again.
 */
async function startTls(io: UpstreamIo, server: UpstreamServer, signal: AbortSignal, options: UpstreamLoginOptions): Promise<undefined> {
  const reply = await io.readTagged(io.command('STARTTLS'), signal);
  if (reply.status !== 'OK') throw io.fail(`refused STARTTLS: ${preview(reply.text)}`);
  const dropped = io.reader.discardAndDetach();
  if (dropped > 0) {
    options.log?.warn({ event: 'upstream.starttls_injection', server: io.where, bytes: dropped }, 'server sent plaintext after its STARTTLS reply; dropped');
  }
  io.socket = await upgradeToTls(io.socket, server, signal, options);
  io.reader.attach(io.socket);
  return undefined;
}

async function fetchCapabilities(io: UpstreamIo, signal: AbortSignal): Promise<string> {
  const reply = await io.readTagged(io.command('CAPABILITY'), signal);
  const capabilities = findCapabilities([...reply.untagged, reply.text]);
  if (reply.status !== 'OK' || !capabilities) throw io.fail(`did not answer CAPABILITY: ${preview(reply.text)}`);
  return capabilities;
}

/**
 * AUTHENTICATE with the token. An error challenge ("+ " base64 JSON) is answered as the
 * mechanism requires, an empty line for XOAUTH2 and ^A for OAUTHBEARER (RFC 7628 section
 * 3.2.3), and the server then ends with its tagged NO.
 */
async function authenticate(io: UpstreamIo, mechanism: SaslMechanism, payload: string, saslIr: boolean, signal: AbortSignal): Promise<TaggedReply> {
  const name = mechanism === 'oauthbearer' ? 'OAUTHBEARER' : 'XOAUTH2';
  const tag = io.command(saslIr ? `AUTHENTICATE ${name} ${payload}` : `AUTHENTICATE ${name}`);
  const untagged: string[] = [];
  let sent = saslIr;
  let challenge: string | undefined;
  for (;;) {
    const line = await io.readLine(signal);
    const tagged = parseTagged(line, tag);
    if (tagged?.status === 'OK') return { ...tagged, untagged };
    if (tagged) throw refused(io, name, tagged.status, tagged.text, challenge);
    if (line.startsWith('* ')) {
      if (untagged.push(line) > MAX_UPSTREAM_UNTAGGED_LINES) throw io.fail('sent too many untagged lines during login');
    } else if (line.startsWith('+') && challenge === undefined) {
      if (sent) challenge = describeChallenge(line.slice(1).trim());
      io.write(sent ? (mechanism === 'oauthbearer' ? OAUTHBEARER_ERROR_ACK : '') : payload);
      sent = true;
    } else {
      throw io.fail(`sent an unexpected line during AUTHENTICATE: ${preview(line)}`);
    }
  }
}

/** NO: the token was refused (the manager refreshes and retries once). BAD: a protocol problem. */
function refused(io: UpstreamIo, mechanism: string, status: 'NO' | 'BAD', text: string, challenge: string | undefined): ProxyError {
  const details = challenge ? ` (${challenge})` : '';
  if (status === 'BAD') return io.fail(`rejected AUTHENTICATE ${mechanism}: ${preview(text)}${details}`);
  return new ProxyError('token_rejected', `IMAP server ${io.where} rejected the access token: ${preview(text)}${details}`);
}

/** The secret-free part of an error challenge, for the error message and the log. */
function describeChallenge(challenge: string): string {
  const parsed = parseOAuthErrorChallenge(challenge);
  if (!parsed) return 'challenge without details';
  const parts = Object.entries(parsed).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${v}`);
  return parts.length > 0 ? parts.join(', ') : 'challenge without details';
}
