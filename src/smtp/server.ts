import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { describeError } from '../errors.js';
import type { ConnectionHandler } from '../net/listener.js';
import { Secret } from '../secret.js';
import { installFastDataScan } from './data-scan.js';
import { SMTP_REPLIES, smtpErrorReply, type SmtpReplyError } from './replies.js';
import { authenticateClient, dropUpstream, openSmtpSession, relayAccountFor, type SmtpSession, type SmtpSessionDeps } from './session.js';
import { installStreamBuffers } from './stream-buffers.js';
import { addRecipient, startMail, transferMessage } from './transaction.js';

/** smtp-server's per-connection object: we use its public `id`, `session` and `send`. */
type Connection = SMTPServer['connections'] extends Set<infer C> ? C : never;

/** A session with what server.ts needs besides: smtp-server's connection and the shutdown signal. */
interface Live {
  s: SmtpSession;
  connection?: Connection | undefined;
  shutdown: AbortSignal;
}

/**
 * An SMTP listener's protocol side, built on smtp-server (SPEC section 5). Our listener
 * (src/net/listener.ts) accepts the connection, applies the connection caps (and the allowlist,
 * except on a relay listener, see app.ts), does implicit TLS, and hands the socket over here
 * through smtp-server's public `connect(socket, options)`, the method its own listener ends in;
 * smtp-server's own TCP server is never started. smtp-server then owns the dialogue (EHLO/HELO,
 * STARTTLS with our TLS context, AUTH PLAIN and LOGIN, SIZE, 8BITMIME, SMTPUTF8, PIPELINING,
 * limits) and calls the hooks below, which tell the story in session.ts and transaction.ts.
 * The returned handler resolves when the connection has closed, after one `session.end` line.
 */
export function createSmtpHandler(deps: SmtpSessionDeps): ConnectionHandler {
  const live = new Map<string, Live>();
  if (!installFastDataScan()) {
    deps.log.debug({ event: 'smtp.data_scan' }, "smtp-server's DATA parser is not the release data-scan.ts was checked against; using it unchanged");
  }
  if (!installStreamBuffers()) {
    deps.log.debug({ event: 'smtp.stream_buffers' }, "smtp-server's streams are not made where stream-buffers.ts expects; using Node's default buffer sizes");
  }
  const server = new SMTPServer(serverOptions(deps, live));
  server.on('error', (err: Error) => deps.log.debug({ event: 'smtp.connection_error', reason: describeError(err) }, 'SMTP connection error'));
  const { tls } = deps;
  return (socket, client, shutdown) => {
    // Not half-open, unlike the IMAP and POP3 listeners (src/net/listener.ts): smtp-server
    // (3.21) writes a reply only while its socket's readyState is 'open', readable and
    // writable both, so after a client's FIN it would drop every reply without a word and
    // keep the socket until QUIT or the idle timeout. Ended at the FIN, as smtp-server
    // expects, the session at least ends at once. A TLS socket made after STARTTLS inherits this.
    socket.allowHalfOpen = false;
    // STARTTLS uses the '*' context: ours, with the listener's certificate and min_tls_version
    // (and the legacy ciphers TLS 1.0 needs), instead of smtp-server's built-in test
    // certificate. Set per connection, because a reload may have renewed the certificate.
    if (tls) server.secureContext.set('*', tls.context);
    return runConnection(server, live, openSmtpSession(newSessionId(), client, deps), socket, shutdown);
  };
}

function serverOptions(deps: SmtpSessionDeps, live: Map<string, Live>): SMTPServerOptions {
  const { listener } = deps;
  return {
    logger: false,
    banner: SMTP_REPLIES.banner,
    // Our listener did the TLS handshake of an implicit TLS port already; this tells smtp-server.
    secure: listener.tls === 'implicit',
    disabledCommands: disabledBeforeTls(listener.tls),
    authMethods: ['PLAIN', 'LOGIN'],
    // A relay listener lets MAIL through to our hook, which requires AUTH outside its networks.
    authOptional: listener.relay_account !== undefined,
    authRequiredMessage: SMTP_REPLIES.authRequiredText,
    size: listener.max_message_size,
    maxRecipients: listener.max_recipients,
    socketTimeout: listener.idle_timeout * 1000,
    disableReverseLookup: true,
    // Printers and appliances send addresses a strict RFC 5321 parser refuses; the server decides.
    lenientAddressParsing: true,
    ...hooks(live),
  };
}

/**
 * A plaintext port offers no STARTTLS, so AUTH is allowed without it (after HELO too). A
 * STARTTLS port takes no password before TLS (RFC 8314 section 3) and, like IMAP's
 * LOGINDISABLED and POP3's CAPA before STLS, does not offer AUTH in EHLO until then (RFC 4954
 * section 4 lets a server offer mechanisms only after TLS): a client that saw AUTH would send
 * its password and fail on 538 rather than do STARTTLS first. onSecure lifts the ban for the
 * session (smtp-server's documented per-session `disabledCommands`). MAIL without AUTH still
 * reaches our hook, which lets relay networks send and tells everyone else 530.
 */
function disabledBeforeTls(tls: SmtpSessionDeps['listener']['tls']): string[] {
  if (tls === 'none') return ['STARTTLS'];
  return tls === 'starttls' ? ['AUTH'] : [];
}

/** The smtp-server hooks: each finds its session and runs one step of session.ts or transaction.ts. */
function hooks(live: Map<string, Live>): Pick<SMTPServerOptions, 'onAuth' | 'onMailFrom' | 'onRcptTo' | 'onData' | 'onSecure' | 'onClose'> {
  const run = <T>(session: SMTPServerSession, name: string, step: (l: Live) => Promise<T>, done: (err: Error | null, value?: T) => void): void => {
    const l = live.get(session.id);
    if (!l) return done(SMTP_REPLIES.closing());
    step(l).then((value) => done(null, value), (err: unknown) => done(asReply(l.s, name, err)));
  };
  return {
    onAuth: (auth, session, callback) => run(session, 'auth', async ({ s }) => {
      try {
        const login = { username: auth.username ?? '', password: new Secret(auth.password ?? ''), method: auth.method, authzid: auth.authzid };
        await authenticateClient(s, login);
      } catch (err) {
        throw smtpErrorReply(err, 'login');
      }
      return s.account?.username;
    }, (err, user) => (err ? callback(err) : callback(null, { user }))),
    onMailFrom: (address, session, callback) => run(session, 'mail', async (l) => {
      if (l.shutdown.aborted) throw SMTP_REPLIES.closing();
      await startMail(l.s, address);
    }, (err) => callback(err)),
    onRcptTo: (address, session, callback) => run(session, 'rcpt', ({ s }) => addRecipient(s, address), (err) => callback(err)),
    onData: (stream, session, callback) => run(session, 'data', ({ s }) => transferMessage(s, stream), (err, text) => {
      callback(err, text);
      const l = live.get(session.id);
      // A shutdown during the transaction waited for it; smtp-server sends the verdict first.
      if (l?.shutdown.aborted) setImmediate(() => goodbye(l));
    }),
    // RFC 3207 section 4.2: after STARTTLS nothing learnt before it counts.
    onSecure: (_socket, session, callback) => {
      session.disabledCommands = [];
      const l = live.get(session.id);
      if (!l?.s.account) return callback();
      void dropUpstream(l.s, true).finally(() => callback());
    },
    onClose: (session) => live.get(session.id)?.s.gone.abort(),
  };
}

/**
 * Hooks throw the reply for the client; a client that hung up in the middle of its message is
 * its own doing (the partial message was not passed on: transaction.ts dropped the upstream);
 * anything else is a bug, logged and answered 451.
 */
function asReply(s: SmtpSession, step: string, err: unknown): SmtpReplyError {
  if (err instanceof Error && typeof (err as Partial<SmtpReplyError>).responseCode === 'number') {
    const reply = err as SmtpReplyError;
    if (s.end.outcome === 'no_mail') s.end.outcome = 'refused';
    s.log.info({ event: 'smtp.refused', step, code: reply.responseCode }, `${step} refused with ${reply.responseCode}`);
    return reply;
  }
  if (clientClosed(err)) {
    s.end.outcome = 'client_closed_in_data';
    s.log.info({ event: 'smtp.client_closed', step }, 'client closed the connection during DATA; the partial message was not delivered');
    return SMTP_REPLIES.closing();
  }
  s.log.error({ event: 'session.error', step, err: describeError(err) }, 'SMTP step failed');
  return smtpErrorReply(err, 'transaction');
}

/** smtp-server ends the DATA stream with this code when the client's connection closes under it. */
function clientClosed(err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'ECONNECTION';
}

async function runConnection(server: SMTPServer, live: Map<string, Live>, s: SmtpSession, socket: Socket, shutdown: AbortSignal): Promise<void> {
  const started = Date.now();
  const l: Live = { s, shutdown };
  live.set(s.id, l);
  s.log.info({ event: 'session.start', tls: s.deps.listener.tls === 'implicit', port: s.client.port }, 'SMTP session started');
  server.connect(socket, { id: s.id, remoteAddress: s.client.address, remotePort: s.client.port });
  l.connection = [...server.connections].find((c) => c.id === s.id);
  const stopWatching = watch(l);
  try {
    if (socket.destroyed) s.gone.abort();
    await new Promise<void>((resolve) => {
      if (s.gone.signal.aborted) resolve();
      else s.gone.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    stopWatching();
    live.delete(s.id);
    await dropUpstream(s).catch(() => undefined);
    const { account, method, messages, recipients, bytes, outcome } = s.end;
    s.log.info({ event: 'session.end', account, method, messages, recipients, bytes, outcome, durationMs: Date.now() - started }, `SMTP session ended: ${outcome}`);
    // Bytes from the client are the messages passed on; SMTP replies are not counted.
    s.metrics.ended({ account, outcome, bytesFromClient: bytes, bytesFromServer: 0 });
  }
}

function newSessionId(): string {
  return randomBytes(6).toString('base64url');
}

/**
 * The login timeout (from connect to AUTH; relay clients have no login) and shutdown: a session
 * that is not in a transaction is told 421 at once, one in a transaction after its verdict.
 */
function watch(l: Live): () => void {
  const { listener } = l.s.deps;
  const timer = setTimeout(() => {
    if (l.s.account || relayAccountFor(l.s)) return;
    const { code, text } = SMTP_REPLIES.loginTimeout(listener.login_timeout);
    l.s.end.outcome = 'timeout';
    l.connection?.send(code, text);
  }, listener.login_timeout * 1000);
  timer.unref();
  const onShutdown = (): void => {
    if (!l.connection?.session.envelope?.mailFrom) goodbye(l);
  };
  if (l.shutdown.aborted) onShutdown();
  else l.shutdown.addEventListener('abort', onShutdown, { once: true });
  return () => {
    clearTimeout(timer);
    l.shutdown.removeEventListener('abort', onShutdown);
  };
}

/** 421 (smtp-server closes the connection after sending it). */
function goodbye(l: Live): void {
  if (l.s.end.outcome === 'no_mail') l.s.end.outcome = 'shutdown';
  l.connection?.send(SMTP_REPLIES.shuttingDown.code, SMTP_REPLIES.shuttingDown.text);
}
