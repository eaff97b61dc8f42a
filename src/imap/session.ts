import type { Socket } from 'node:net';
import type { Authenticator, ClientInfo } from '../accounts/types.js';
import type { AccountSettings, UpstreamServer } from '../config/resolve.js';
import { ProxyError } from '../errors.js';
import { RELAY_IDLE_TIMEOUT_MS } from '../limits.js';
import type { LocalTlsSource } from '../net/local-tls.js';
import { checkLocalLogin, loginUpstreamAs } from '../net/login-steps.js';
import {
  answerFailure, openSessionFrame, relayToEnd, runSession, serveUntilLogin, type CommandStep, type SessionFrame, type SessionFrameDeps,
} from '../net/session-frame.js';
import type { TokenManager } from '../tokens/types.js';
import { readCommand } from './command-reader.js';
import { PRELOGIN_COMMANDS, preLoginCapabilities, type LoginRequest } from './commands.js';
import { preLoginContext } from './context.js';
import { IMAP_REPLIES, imapErrorReply } from './replies.js';
import { loginImapUpstream, type UpstreamImapSession } from './upstream-login.js';

/** What an IMAP session needs; built once per listener by the composition root. */
export interface ImapSessionDeps extends SessionFrameDeps {
  accounts: Authenticator;
  tokens: TokenManager;
  /** Required for STARTTLS listeners (implicit TLS is handled by the listener); read at each STARTTLS. */
  tls?: LocalTlsSource | undefined;
  /** Where an account's sessions are relayed to; default `account.servers.imap`. */
  findServer?: ((account: AccountSettings) => UpstreamServer | undefined) | undefined;
  /** Silence after which a relayed session is closed; default RELAY_IDLE_TIMEOUT_MS. */
  relayIdleTimeoutMs?: number | undefined;
}

/** One connection's state: the story below reads and updates it. */
export interface ImapSession extends SessionFrame {
  readonly deps: ImapSessionDeps;
}

interface LoggedIn {
  /** Only what the reply needs: the password is not kept for the life of the session. */
  request: Pick<LoginRequest, 'tag' | 'method'>;
  upstream: UpstreamImapSession;
}

type Step = CommandStep<LoggedIn>;

/**
 * An IMAP connection, told once: greet, answer pre-login commands locally, check the login,
 * get a token, log in upstream, reply with the server's capabilities, then relay bytes until
 * either side closes. The upstream connection is opened only after the local login succeeded.
 * Ends with exactly one `session.end` log line.
 */
export function handleImapConnection(socket: Socket, client: ClientInfo, deps: ImapSessionDeps): Promise<void> {
  const s: ImapSession = openSessionFrame('imap', socket, client, deps);
  // Returned, not awaited, here and below: see relayToEnd.
  return runSession(s, 'IMAP', async () => {
    const greeting = `* OK [CAPABILITY ${preLoginCapabilities(preLoginContext(s, s.loginDeadline.signal))}] oauth-mail-proxy ready`;
    const loggedIn = await serveUntilLogin(s, greeting, (signal) => nextCommand(s, signal), (err) => imapErrorReply(undefined, err).lines);
    s.loginDeadline.clear();
    if (loggedIn) return relayLoggedIn(s, loggedIn);
  });
}

/** Reads one command and runs it from the table. Throws only what ends the session. */
async function nextCommand(s: ImapSession, signal: AbortSignal): Promise<Step> {
  const read = await readCommand(s.conn, signal);
  if (read.kind === 'eof') return 'close';
  if (read.kind === 'error') return refuse(s, read.tag, read.error);
  const { command } = read;
  const spec = PRELOGIN_COMMANDS.get(command.name);
  if (!spec?.states.includes('not_authenticated')) {
    return refuse(s, command.tag, new ProxyError('bad_input', 'Unknown command or not valid before login'));
  }
  const ctx = preLoginContext(s, signal);
  if (spec.privacy === 'required' && ctx.loginDisabled) {
    await s.conn.send(IMAP_REPLIES.privacyRequired(command.tag), signal);
    return 'continue';
  }
  if (spec.privacy === 'before_tls' && !ctx.canStartTls) {
    return refuse(s, command.tag, new ProxyError('bad_input', ctx.isTls ? 'TLS is already active' : 'STARTTLS is not offered on this port'));
  }
  let result;
  try {
    result = await spec.handle(ctx, command);
  } catch (err) {
    if (!(err instanceof ProxyError) || !['bad_input', 'auth_failed', 'limit_exceeded'].includes(err.code)) throw err;
    if (err.code === 'auth_failed') {
      s.log.info({ event: 'auth.fail', method: command.name, reason: err.message }, 'login refused');
      // A refusal before any password check (an authorization identity) counts like a wrong password.
      await s.deps.accounts.settleLogin(s.client, false);
    }
    return refuse(s, command.tag, err);
  }
  if (result.kind === 'continue') return 'continue';
  if (result.kind === 'close') {
    s.end.outcome = result.outcome;
    return 'close';
  }
  return attemptLogin(s, result);
}

/** Answers a failed command (net/session-frame.ts counts the bad ones and hangs up after a few). */
function refuse(s: ImapSession, tag: string | undefined, err: unknown): Promise<Step> {
  return answerFailure(s, err, imapErrorReply(tag, err), IMAP_REPLIES.tooManyBadCommands);
}

/** The local login, then token and upstream login. A failure is answered and the client may retry. */
async function attemptLogin(s: ImapSession, request: LoginRequest): Promise<Step> {
  try {
    const account = await checkLocalLogin(s, s.deps.accounts, request);
    s.end.account = account.username;
    const upstream = await loginUpstreamAs(s, account, request.password, {
      tokens: s.deps.tokens,
      accounts: s.deps.accounts,
      server: (s.deps.findServer ?? ((a) => a.servers.imap))(account),
      protocol: 'IMAP',
      login: loginImapUpstream,
      clientGone: s.conn.closed,
      shutdown: s.deps.shutdown,
    });
    return { request: { tag: request.tag, method: request.method }, upstream };
  } catch (err) {
    if (s.conn.closed.aborted) return 'close';
    return refuse(s, request.tag, err);
  }
}

/**
 * The tagged OK with the server's capabilities, then pure relay, until a shutdown's deadline
 * ends it with an untagged BYE (RFC 3501 section 7.1.5: the server is closing the connection).
 */
async function relayLoggedIn(s: ImapSession, { request, upstream }: LoggedIn): Promise<void> {
  const verb = request.method === 'LOGIN' ? 'LOGIN' : 'AUTHENTICATE';
  await s.conn.send(`${request.tag} OK [CAPABILITY ${upstream.capabilities}] ${verb} completed`);
  return relayToEnd(s, upstream.socket, {
    upstreamLeftover: upstream.leftover,
    idleTimeoutMs: s.deps.relayIdleTimeoutMs ?? RELAY_IDLE_TIMEOUT_MS,
    signal: s.deps.deadline,
    goodbye: IMAP_REPLIES.shuttingDown,
  });
}
