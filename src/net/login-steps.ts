import type { Authenticator, ClientInfo } from '../accounts/types.js';
import type { AccountSettings, UpstreamServer } from '../config/resolve.js';
import type { SaslMechanism } from '../config/schema.js';
import { describeError, isProxyError, ProxyError } from '../errors.js';
import { BACKEND_LOGIN_TIMEOUT_MS, MAX_LOGGED_USERNAME_CHARS } from '../limits.js';
import type { Logger } from '../log.js';
import type { SessionRecorder } from '../metrics.js';
import type { Secret } from '../secret.js';
import type { TokenManager } from '../tokens/types.js';
import { startDeadline } from './deadline.js';
import { outcomeOf } from './session-frame.js';
import { hostPort } from './upstream.js';

/**
 * The two login steps every protocol takes, IMAP, POP3 and SMTP alike, with their log lines
 * written once: the local login (`auth.ok`, `auth.fail`), then a fresh token and the login to
 * the mail server (`upstream.connect`, `login.fail`). What the client is answered stays with
 * each protocol.
 */

/** What both steps use of a session. */
export interface LoginStepSession {
  readonly log: Logger;
  readonly client: ClientInfo;
  readonly metrics: SessionRecorder;
}

/** A login as the client typed it; `method` is for the log (LOGIN, AUTH PLAIN, USER/PASS...). */
export interface LocalLogin {
  username: string;
  password: Secret;
  method: string;
}

/**
 * The local login (SPEC section 4): the account, or what `authenticate` threw (`auth_failed`
 * for a wrong password or an unknown user), after its log line. Neither line holds the password.
 */
export async function checkLocalLogin(s: LoginStepSession, accounts: Authenticator, login: LocalLogin): Promise<AccountSettings> {
  let account: AccountSettings;
  try {
    account = await accounts.authenticate(login.username, login.password, s.client);
  } catch (err) {
    s.log.info({ event: 'auth.fail', username: loggedUsername(login.username), method: login.method, reason: describeError(err) }, 'local login refused');
    throw err;
  }
  const judge = account.flow === 'password' ? 'password passed on to the identity provider' : 'local login accepted';
  s.log.info({ event: 'auth.ok', account: account.username, method: login.method }, judge);
  return account;
}

/** A client's user name as the log keeps it: cut at MAX_LOGGED_USERNAME_CHARS, and said so. */
export function loggedUsername(username: string): string {
  if (username.length <= MAX_LOGGED_USERNAME_CHARS) return username;
  return `${username.slice(0, MAX_LOGGED_USERNAME_CHARS)}… (${username.length} characters)`;
}

/** A protocol's login to its server with an access token (loginImapUpstream and its kin). */
export type UpstreamLogin<U> = (
  server: UpstreamServer, user: string, token: Secret, mechanism: SaslMechanism, signal: AbortSignal, options: { log: Logger },
) => Promise<U>;

/** Where and how `loginUpstreamAs` logs in. */
export interface UpstreamLoginPlan<U> {
  tokens: TokenManager;
  /** Told the identity provider's verdict on a flow "password" login (the throttle counts it). */
  accounts: Authenticator;
  /** The account's server for this protocol; undefined when none is configured. */
  server: UpstreamServer | undefined;
  /** The protocol's name for the error when there is no server ("IMAP"). */
  protocol: string;
  login: UpstreamLogin<U>;
  /** Aborted when the client has gone: the attempt ends, and no `login.fail` is logged. */
  clientGone: AbortSignal;
  /** Aborted when the proxy shuts down: the attempt ends. */
  shutdown?: AbortSignal | undefined;
}

/**
 * A fresh token and the login to the mail server, within BACKEND_LOGIN_TIMEOUT_MS, retried once
 * by the token manager when the server rejects the token (SPEC section 2). `password` reaches
 * the token manager only for flow "password" (ROPC), where the identity provider's verdict on it
 * goes to the throttle like a local check's (`auth.fail` when it refuses). Any other failure is
 * logged as `login.fail`, unless the client has gone (the session's end line says so), and thrown.
 */
export async function loginUpstreamAs<U>(s: LoginStepSession, account: AccountSettings, password: Secret | undefined, plan: UpstreamLoginPlan<U>): Promise<U> {
  const { server } = plan;
  const parents = plan.shutdown ? [plan.clientGone, plan.shutdown] : [plan.clientGone];
  const deadline = startDeadline(BACKEND_LOGIN_TIMEOUT_MS, 'upstream_unavailable', 'Login to the mail server took too long', parents);
  const { signal } = deadline;
  try {
    if (!server) throw new ProxyError('config_invalid', `No ${plan.protocol} server is configured for this account`);
    const options = { signal, password: account.flow === 'password' ? password : undefined };
    const upstream = await plan.tokens.withFreshToken(account.username, options, (token) =>
      s.metrics.upstreamLogin(() => plan.login(server, account.upstreamUsername, token, account.saslMechanism, signal, { log: s.log })));
    if (account.flow === 'password') await plan.accounts.settleLogin(s.client, true);
    s.log.info({ event: 'upstream.connect', account: account.username, server: hostPort(server), tls: server.tls }, 'logged in upstream');
    return upstream;
  } catch (err) {
    if (account.flow === 'password' && isProxyError(err, 'auth_failed')) {
      s.log.info({ event: 'auth.fail', username: account.username, method: 'identity provider', reason: describeError(err) }, 'the identity provider refused the password');
      await plan.accounts.settleLogin(s.client, false);
    } else if (!plan.clientGone.aborted) {
      s.log.warn({ event: 'login.fail', account: account.username, code: outcomeOf(err), reason: describeError(err) }, 'upstream login failed');
    }
    throw err;
  } finally {
    deadline.clear();
  }
}
