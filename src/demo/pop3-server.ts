import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type SecureContext } from 'node:tls';
import { ImapConnection } from './imap-connection.js';
import { DemoMailStore, type StoredMessage } from './imap-mailbox.js';
import type { DemoMechanism } from './imap-state.js';
import { runPop3Session } from './pop3-session.js';
import { listenTracked, type TrackedListener } from './tracked-listener.js';

/**
 * A small POP3 server (RFC 1939, RFC 2449 CAPA, RFC 5034 AUTH, RFC 2595 STLS) that accepts
 * only OAuth 2.0 bearer tokens, XOAUTH2 and OAUTHBEARER in the two-step form that Microsoft 365
 * requires, over TLS or STLS, and serves in-memory INBOXes. It is the fake upstream of the POP3
 * tests and the demo's POP3 server; it depends on node:* only. The mail store may be shared
 * with the demo IMAP server, so that both protocols see the same mail.
 */

export interface DemoPop3ServerOptions {
  /** `implicit`: TLS from the first byte (port 995). `starttls`: STLS first. `none`: plaintext, tests only. */
  tls: 'implicit' | 'starttls' | 'none';
  /** PEM certificate chain and key; required unless `tls` is `none`. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Default 127.0.0.1 and an ephemeral port. */
  host?: string;
  port?: number;
  /** Decides whether `token` is a valid access token for `username`. A throw counts as a refusal. */
  validateToken: (username: string, token: string) => Promise<boolean> | boolean;
  /** Offered SASL mechanisms, default both. */
  mechanisms?: DemoMechanism[];
  /** Initial INBOX content per user, as raw RFC 5322 messages. */
  mailboxes?: Record<string, Array<Buffer | string>>;
  /** A store to serve from, e.g. the demo IMAP server's; default a new one. */
  store?: DemoMailStore;
  /**
   * How a refused token is answered: `challenge` (default, Gmail's way: "+ " and a base64 JSON
   * error, then -ERR once the client answered) or `err` (Microsoft 365's way: -ERR at once).
   */
  refusal?: 'challenge' | 'err';
}

/** What the server has seen, for assertions in tests. Never holds a token or a password. */
export interface DemoPop3Stats {
  /** TCP connections accepted, including those whose TLS handshake failed. */
  connections: number;
  openConnections: number;
  successfulLogins: number;
  /** Refused AUTH exchanges and password attempts. */
  failedLogins: number;
  lastUser: string | undefined;
  lastMechanism: string | undefined;
  /** Every AUTH with an OAuth mechanism: as typed, the user, outcome, and the form used. */
  authentications: Array<{ mechanism: string; user: string | undefined; ok: boolean; form: 'two-step' | 'one-line' }>;
  /** True once any client tried a password: PASS, APOP, or AUTH with a password mechanism. */
  passwordSeen: boolean;
  /** Command keywords in arrival order over all sessions (SASL response lines excluded). */
  commands: string[];
  /** Bytes pipelined behind STLS and thrown away (RFC 2595 section 4). */
  starttlsDiscardedBytes: number;
}

/** Shared by all sessions of one server. */
export interface DemoPop3Context {
  readonly options: DemoPop3ServerOptions;
  readonly mechanisms: readonly DemoMechanism[];
  readonly secureContext: SecureContext | undefined;
  readonly stats: DemoPop3Stats;
  readonly store: DemoMailStore;
  /** Token validations still to be refused regardless of validateToken. */
  failNext: number;
}

export interface DemoPop3Server extends TrackedListener {
  readonly tls: DemoPop3ServerOptions['tls'];
  /** Live counters; read them after the client has seen the reply you are asserting on. */
  readonly stats: DemoPop3Stats;
  readonly store: DemoMailStore;
  /** Adds a message to the user's INBOX; sessions already logged in see it next time. */
  deliver(user: string, message: Buffer | string): StoredMessage;
  /** Refuses the next `count` token validations whatever validateToken would say. */
  failNextLogins(count: number): void;
}

export async function startDemoPop3Server(options: DemoPop3ServerOptions): Promise<DemoPop3Server> {
  const ctx = createContext(options);
  const listener = await listenTracked(listen(ctx, options), options, () => ctx.stats.connections++);
  return {
    ...listener,
    tls: options.tls,
    stats: ctx.stats,
    store: ctx.store,
    deliver: (user, message) => ctx.store.deliver(user, message),
    failNextLogins: (count) => {
      ctx.failNext = count;
    },
  };
}

function createContext(options: DemoPop3ServerOptions): DemoPop3Context {
  const store = options.store ?? new DemoMailStore();
  for (const [user, messages] of Object.entries(options.mailboxes ?? {})) {
    for (const message of messages) store.deliver(user, message);
  }
  if (options.tls !== 'none' && (!options.cert || !options.key)) throw new Error(`demo POP3 server: tls '${options.tls}' needs cert and key`);
  return {
    options,
    mechanisms: options.mechanisms ?? ['XOAUTH2', 'OAUTHBEARER'],
    secureContext: options.tls === 'none' ? undefined : createSecureContext({ cert: options.cert, key: options.key }),
    stats: {
      connections: 0, openConnections: 0, successfulLogins: 0, failedLogins: 0, lastUser: undefined, lastMechanism: undefined,
      authentications: [], passwordSeen: false, commands: [], starttlsDiscardedBytes: 0,
    },
    store,
    failNext: 0,
  };
}

/** A TLS server for implicit TLS, a TCP server otherwise; each accepted socket runs one session. */
function listen(ctx: DemoPop3Context, options: DemoPop3ServerOptions): Server {
  const start = (socket: Socket, secure: boolean): void => {
    void serve(ctx, new ImapConnection(socket, secure));
  };
  if (options.tls !== 'implicit') return createTcpServer((socket) => start(socket, false));
  const server = createTlsServer({ cert: options.cert, key: options.key }, (socket) => start(socket, true));
  server.on('tlsClientError', () => undefined);
  return server;
}

/** One session; the connection is the demo IMAP server's, which is protocol-neutral for lines. */
async function serve(ctx: DemoPop3Context, conn: ImapConnection): Promise<void> {
  ctx.stats.openConnections++;
  try {
    await runPop3Session(ctx, conn);
    conn.socket.end();
  } catch {
    conn.close();
  } finally {
    ctx.stats.openConnections--;
  }
}
