import { isIP } from 'node:net';
import type { Authenticator, ClientInfo } from '../accounts/types.js';
import type { AccountSettings, UpstreamServer } from '../config/resolve.js';
import type { ListenerConfig } from '../config/schema.js';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { NO_METRICS, type SessionMetrics, type SessionRecorder } from '../metrics.js';
import { allowList } from '../net/listener.js';
import type { LocalTlsSource } from '../net/local-tls.js';
import { checkLocalLogin, loggedUsername, loginUpstreamAs } from '../net/login-steps.js';
import { actsAsItself } from '../sasl/plain.js';
import type { Secret } from '../secret.js';
import type { TokenManager } from '../tokens/types.js';
import { loginSmtpUpstream, type UpstreamSmtpSession } from './upstream-client.js';

/** What an SMTP listener needs; built once per listener by the composition root. */
export interface SmtpSessionDeps {
  listener: ListenerConfig;
  /** Local logins, and the relay account by name (looked up per use, so a reload takes effect). */
  accounts: Authenticator & { find(username: string): AccountSettings | undefined };
  tokens: TokenManager;
  log: Logger;
  /** Required for STARTTLS and implicit TLS listeners; read at each handshake. */
  tls?: LocalTlsSource | undefined;
  /** Where an account's mail is sent; default `account.servers.smtp`. */
  findServer?: ((account: AccountSettings) => UpstreamServer | undefined) | undefined;
  /** Sessions, bytes and upstream login times for /metrics and the status page. */
  metrics?: SessionMetrics | undefined;
}

/** One client connection's state, read and updated by the hooks in transaction.ts and server.ts. */
export interface SmtpSession {
  readonly id: string;
  readonly deps: SmtpSessionDeps;
  readonly client: ClientInfo;
  readonly log: Logger;
  /** Aborts when the client connection has closed. */
  readonly gone: AbortController;
  readonly metrics: SessionRecorder;
  /** The account mail is sent as: set by AUTH, or by MAIL from a relay network. */
  account?: AccountSettings | undefined;
  /** flow "password" only: the typed password, needed again when the upstream must be logged in anew. */
  password?: Secret | undefined;
  upstream?: UpstreamSmtpSession | undefined;
  /** True while the upstream holds a transaction (MAIL sent) that a next MAIL must RSET first. */
  upstreamDirty: boolean;
  /** The transaction in progress: whether the client asked for SMTPUTF8, recipients the server took. */
  smtpUtf8: boolean;
  recipients: number;
  readonly end: SessionSummary;
}

export interface SessionSummary {
  account?: string | undefined;
  method?: string | undefined;
  messages: number;
  recipients: number;
  bytes: number;
  outcome: string;
}

export function openSmtpSession(id: string, client: ClientInfo, deps: SmtpSessionDeps): SmtpSession {
  return {
    id,
    deps,
    client,
    log: deps.log.child({ session: id, protocol: 'smtp', client: client.address }),
    gone: new AbortController(),
    metrics: (deps.metrics ?? NO_METRICS).openSession('smtp'),
    upstreamDirty: false,
    smtpUtf8: false,
    recipients: 0,
    end: { messages: 0, recipients: 0, bytes: 0, outcome: 'no_mail' },
  };
}

/**
 * Relay mode (SPEC section 4): the relay account, when this client may send without AUTH
 * (the listener has `relay_account` and the client's address is in its `allow` networks).
 */
export function relayAccountFor(s: SmtpSession): AccountSettings | undefined {
  const { listener, accounts } = s.deps;
  if (!listener.relay_account) return undefined;
  const networks = allowList(listener.allow);
  // No networks means no relay: resolve.ts refuses such a config, this is the second lock.
  if (!networks?.check(s.client.address, isIP(s.client.address) === 6 ? 'ipv6' : 'ipv4')) return undefined;
  return accounts.find(listener.relay_account);
}

/** AUTH as smtp-server hands it to onAuth; `authzid` is PLAIN's authorization identity. */
export interface ClientLogin {
  username: string;
  password: Secret;
  method: string;
  authzid?: string | undefined;
}

/** The local login (AUTH PLAIN or LOGIN), then the upstream login. Throws what the client is told. */
export async function authenticateClient(s: SmtpSession, login: ClientLogin): Promise<void> {
  const { username, password, method } = login;
  let account: AccountSettings;
  try {
    if (!actsAsItself(login.authzid, username)) await refuseAuthzid(s, login);
    account = await checkLocalLogin(s, s.deps.accounts, { username, password, method });
  } catch (err) {
    s.end.outcome = 'auth_failed';
    throw err;
  }
  const keep = account.flow === 'password' ? password : undefined;
  await connectAs(s, account, keep);
  Object.assign(s.end, { account: account.username, method });
}

/**
 * RFC 4616 section 2: PLAIN with an authorization identity other than the user is refused,
 * whatever the password, and counts as a failed login from this address (delay, lockout,
 * metrics) just as a wrong password does.
 */
async function refuseAuthzid(s: SmtpSession, login: ClientLogin): Promise<never> {
  await s.deps.accounts.settleLogin(s.client, false);
  const reason = 'PLAIN authorization identity differs from the user name';
  s.log.info({ event: 'auth.fail', username: loggedUsername(login.username), method: login.method, reason }, 'local login refused');
  throw new ProxyError('auth_failed', reason);
}

/**
 * Opens (or reopens) the upstream session as `account`: a fresh token and the upstream login,
 * retried once by the token manager when the server rejects the token.
 */
export async function connectAs(s: SmtpSession, account: AccountSettings, password?: Secret): Promise<UpstreamSmtpSession> {
  await dropUpstream(s);
  try {
    const upstream = await loginUpstreamAs(s, account, password, {
      tokens: s.deps.tokens,
      accounts: s.deps.accounts,
      server: (s.deps.findServer ?? ((a) => a.servers.smtp))(account),
      protocol: 'SMTP',
      login: loginSmtpUpstream,
      clientGone: s.gone.signal,
    });
    Object.assign(s, { account, password, upstream, upstreamDirty: false });
    s.metrics.relaying(account.username);
    return upstream;
  } catch (err) {
    s.end.outcome = err instanceof ProxyError ? err.code : 'error';
    throw err;
  }
}

/** Forgets the account and closes the upstream session (STARTTLS, RFC 3207 section 4.2, and the end). */
export async function dropUpstream(s: SmtpSession, forgetAccount = false): Promise<void> {
  const upstream = s.upstream;
  s.upstream = undefined;
  if (forgetAccount) Object.assign(s, { account: undefined, password: undefined });
  await upstream?.quit();
}
