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
import { PRELOGIN_COMMANDS, type LoginRequest } from './commands.js';
import { preLoginContext } from './context.js';
import { POP3_REPLIES, pop3ErrorReply } from './replies.js';
import { lineTooLongError, parseCommandLine } from './syntax.js';
import { loginPop3Upstream, type UpstreamPop3Session } from './upstream-login.js';

/** What a POP3 session needs; built once per listener by the composition root. */
export interface Pop3SessionDeps extends SessionFrameDeps {
  accounts: Authenticator;
  tokens: TokenManager;
  /** Required for STARTTLS listeners (implicit TLS is handled by the listener); read at each STARTTLS. */
  tls?: LocalTlsSource | undefined;
  /** Where an account's sessions are relayed to; default `account.servers.pop3`. */
  findServer?: ((account: AccountSettings) => UpstreamServer | undefined) | undefined;
  /** Silence after which a relayed session is closed; default RELAY_IDLE_TIMEOUT_MS. */
  relayIdleTimeoutMs?: number | undefined;
}

/** One connection's state: the story below reads and updates it. */
export interface Pop3Session extends SessionFrame {
  readonly deps: Pop3SessionDeps;
  /** The name given by USER, waiting for PASS. */
  pendingUser?: string | undefined;
}

type Step = CommandStep<UpstreamPop3Session>;

/**
 * A POP3 connection, told once: greet, answer pre-login commands locally, check the login,
 * get a token, log in upstream, then relay bytes (the server's own +OK for the login first)
 * until either side closes. The upstream connection is opened only after the local login
 * succeeded. Ends with exactly one `session.end` log line.
 */
export function handlePop3Connection(socket: Socket, client: ClientInfo, deps: Pop3SessionDeps): Promise<void> {
  const s: Pop3Session = openSessionFrame('pop3', socket, client, deps);
  // Returned, not awaited, here and below: see relayToEnd.
  return runSession(s, 'POP3', async () => {
    const upstream = await serveUntilLogin(s, POP3_REPLIES.greeting, (signal) => nextCommand(s, signal), (err) => pop3ErrorReply(err).line);
    s.loginDeadline.clear();
    if (upstream) return relayLoggedIn(s, upstream);
  });
}

/** Reads one command and runs it from the table. Throws only what ends the session. */
async function nextCommand(s: Pop3Session, signal: AbortSignal): Promise<Step> {
  const read = await s.conn.reader.readLine(signal);
  if (read.kind === 'eof') return 'close';
  // The reader skips the rest of an over-long line by itself: answer and go on.
  if (read.kind === 'too_long') return refuse(s, lineTooLongError());
  const parsed = parseCommandLine(read.line);
  if (!parsed.ok) return refuse(s, parsed.error);
  const { command } = parsed;
  const spec = PRELOGIN_COMMANDS.get(command.verb);
  if (!spec) return refuse(s, new ProxyError('bad_input', 'Unknown command'));
  if (!spec.states.includes(s.pendingUser === undefined ? 'authorization' : 'user_given')) {
    return refuse(s, new ProxyError('bad_input', spec.wrongState ?? `${command.verb} is not valid now`));
  }
  const ctx = preLoginContext(s, signal);
  if (spec.privacy === 'required' && ctx.plaintextRefused) {
    await s.conn.send(POP3_REPLIES.plaintextRefused, signal);
    return 'continue';
  }
  if (spec.privacy === 'before_tls' && !ctx.canStartTls) {
    return refuse(s, new ProxyError('bad_input', ctx.isTls ? 'TLS is already active' : 'STLS is not offered on this port'));
  }
  let result;
  try {
    result = await spec.handle(ctx, command);
  } catch (err) {
    if (!(err instanceof ProxyError) || !['bad_input', 'auth_failed'].includes(err.code)) throw err;
    if (err.code === 'auth_failed') {
      s.log.info({ event: 'auth.fail', method: `AUTH ${command.args[0] ?? ''}`.trim(), reason: err.message }, 'login refused');
      // A refusal before any password check (an authorization identity) counts like a wrong password.
      await s.deps.accounts.settleLogin(s.client, false);
    }
    return refuse(s, err);
  }
  if (result.kind === 'continue') return 'continue';
  if (result.kind === 'close') {
    s.end.outcome = result.outcome;
    return 'close';
  }
  return attemptLogin(s, result);
}

/** Answers a failed command (net/session-frame.ts counts the bad ones and hangs up after a few). */
function refuse(s: Pop3Session, err: unknown): Promise<Step> {
  const reply = pop3ErrorReply(err);
  return answerFailure(s, err, { lines: reply.line, close: reply.close }, POP3_REPLIES.tooManyBadCommands);
}

/** The local login, then token and upstream login. A failure is answered and the client may retry. */
async function attemptLogin(s: Pop3Session, request: LoginRequest): Promise<Step> {
  try {
    const account = await checkLocalLogin(s, s.deps.accounts, request);
    s.end.account = account.username;
    return await loginUpstreamAs(s, account, request.password, {
      tokens: s.deps.tokens,
      accounts: s.deps.accounts,
      server: (s.deps.findServer ?? ((a) => a.servers.pop3))(account),
      protocol: 'POP3',
      login: loginPop3Upstream,
      clientGone: s.conn.closed,
      shutdown: s.deps.shutdown,
    });
  } catch (err) {
    if (s.conn.closed.aborted) return 'close';
    return refuse(s, err);
  }
}

/**
 * Pure relay, starting with the server's own +OK for the login, byte for byte, until a
 * shutdown's deadline ends it with `-ERR [SYS/TEMP]` (docs/decisions.md: POP3 has no
 * unsolicited responses, so the client reads it as the answer to its next command).
 */
function relayLoggedIn(s: Pop3Session, upstream: UpstreamPop3Session): Promise<void> {
  return relayToEnd(s, upstream.socket, {
    upstreamLeftover: Buffer.concat([upstream.reply, upstream.leftover]),
    idleTimeoutMs: s.deps.relayIdleTimeoutMs ?? RELAY_IDLE_TIMEOUT_MS,
    signal: s.deps.deadline,
    goodbye: POP3_REPLIES.shuttingDown,
  });
}
