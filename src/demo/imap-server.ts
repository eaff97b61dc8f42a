import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type SecureContext } from 'node:tls';
import { ImapConnection } from './imap-connection.js';
import { DemoMailStore, buildMessage, type DemoMailbox, type DemoMessageFields, type StoredMessage } from './imap-mailbox.js';
import { runSession } from './imap-session.js';
import {
  DEFAULT_CAPABILITIES_AFTER_LOGIN, type DemoImapServerOptions, type DemoImapStats, type DemoMechanism, type ServerContext,
} from './imap-state.js';
import { listenTracked, type TrackedListener } from './tracked-listener.js';

/**
 * A small IMAP4rev1 server (RFC 3501) that accepts only OAuth 2.0 bearer tokens (XOAUTH2 and
 * OAUTHBEARER) over TLS or STARTTLS and serves in-memory INBOXes. It is the demo's "real
 * server" and the fake upstream of the integration tests; it depends on node:* only.
 */

export { buildMessage, type DemoImapServerOptions, type DemoImapStats, type DemoMechanism, type DemoMessageFields };
export { DEFAULT_CAPABILITIES_AFTER_LOGIN, type DemoMailbox, type DemoMailStore, type StoredMessage };

export interface DemoImapServer extends TrackedListener {
  /** Live counters; read them after the client has seen the reply you are asserting on. */
  readonly stats: DemoImapStats;
  /** The users' mailboxes, for direct inspection. */
  readonly store: DemoMailStore;
  /** Adds a message to the user's INBOX as new mail; selected and idling sessions get `* n EXISTS`. */
  deliver(user: string, message: Buffer | string): StoredMessage;
  /** Refuses the next `count` token validations whatever validateToken would say. */
  failNextLogins(count: number): void;
}

export async function startDemoImapServer(options: DemoImapServerOptions): Promise<DemoImapServer> {
  const ctx = createContext(options);
  const listener = await listenTracked(listen(ctx, options), options, () => ctx.stats.connections++);
  return {
    ...listener,
    stats: ctx.stats,
    store: ctx.store,
    deliver: (user, message) => ctx.store.deliver(user, message),
    failNextLogins: (count) => {
      ctx.failNext = count;
    },
  };
}

function createContext(options: DemoImapServerOptions): ServerContext {
  const store = new DemoMailStore();
  for (const [user, messages] of Object.entries(options.mailboxes ?? {})) {
    for (const message of messages) store.deliver(user, message);
  }
  return {
    options,
    mechanisms: options.mechanisms ?? ['XOAUTH2', 'OAUTHBEARER'],
    capabilitiesAfterLogin: options.capabilitiesAfterLogin ?? DEFAULT_CAPABILITIES_AFTER_LOGIN,
    secureContext: secureContextOf(options),
    stats: {
      connections: 0,
      openConnections: 0,
      successfulLogins: 0,
      failedLogins: 0,
      lastUser: undefined,
      lastMechanism: undefined,
      authentications: [],
      commands: [],
      starttlsDiscardedBytes: 0,
    },
    store,
    failNext: 0,
  };
}

function secureContextOf(options: DemoImapServerOptions): SecureContext | undefined {
  if (options.tls === 'none') return undefined;
  if (!options.cert || !options.key) throw new Error(`demo IMAP server: tls '${options.tls}' needs cert and key`);
  return createSecureContext({ cert: options.cert, key: options.key });
}

/** A TLS server for implicit TLS, a TCP server otherwise; each accepted socket runs one session. */
function listen(ctx: ServerContext, options: DemoImapServerOptions): Server {
  const start = (socket: Socket, secure: boolean): void => {
    void serve(ctx, new ImapConnection(socket, secure));
  };
  if (options.tls !== 'implicit') return createTcpServer((socket) => start(socket, false));
  const server = createTlsServer({ cert: options.cert, key: options.key }, (socket) => start(socket, true));
  // A client that refuses our certificate ends the handshake; that is a test outcome, not a crash.
  server.on('tlsClientError', () => undefined);
  return server;
}

async function serve(ctx: ServerContext, conn: ImapConnection): Promise<void> {
  ctx.stats.openConnections++;
  try {
    await runSession(ctx, conn);
    conn.socket.end();
  } catch {
    conn.close();
  } finally {
    ctx.stats.openConnections--;
  }
}

/** Seeds a user's INBOX with generated messages (see buildMessage); returns what was stored. */
export function seedMailbox(server: DemoImapServer, user: string, messages: Array<DemoMessageFields | Buffer>): StoredMessage[] {
  return messages.map((message) => server.deliver(user, Buffer.isBuffer(message) ? message : buildMessage(message)));
}
