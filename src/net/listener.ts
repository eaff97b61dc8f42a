import { BlockList, createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import { setMaxListeners } from 'node:events';
import type { ClientInfo } from '../accounts/types.js';
import { parseCidr } from '../config/cidr.js';
import { parseListen } from '../config/listen-address.js';
import type { ListenerConfig } from '../config/schema.js';
import { ProxyError, describeError } from '../errors.js';
import { CLOSE_LINGER_MS } from '../limits.js';
import type { Logger } from '../log.js';
import { ignoreError } from './client-connection.js';
import { acceptTls, type LocalTlsSource } from './local-tls.js';

/**
 * Runs one protocol dialogue on an accepted connection. `shutdown` aborts when the listener
 * closes, so a session that has not logged in yet can say goodbye at once; `deadline` when the
 * grace period `close` gives the others is over, so a relayed session can say goodbye too. The
 * socket is half-open: the client's FIN ('end') leaves our side open, and the handler ends it
 * once it has answered (or sets `allowHalfOpen` false, as the SMTP handler does).
 */
export type ConnectionHandler = (socket: Socket, client: ClientInfo, shutdown: AbortSignal, deadline: AbortSignal) => Promise<void>;

export interface ListenerOptions {
  log: Logger;
  /** Required when the listener's tls is `implicit`; its context is read at each handshake. */
  tls?: LocalTlsSource | undefined;
  /**
   * The protocol's refusal greeting (without CRLF) for a connection over `max_connections` or
   * `max_connections_per_address`; without it such a connection is closed without a word.
   */
  busyGreeting?: string | undefined;
}

export interface Listener {
  address(): { host: string; port: number };
  /**
   * Stops accepting, waits up to `deadlineMs` for sessions to end, then has the rest say
   * goodbye (up to CLOSE_LINGER_MS more) and cuts off what is still left.
   */
  close(deadlineMs: number): Promise<void>;
  /**
   * Stops accepting and frees the port, and leaves every session running to its natural end
   * (a reload that removes or changes this listener); `close` still ends them later.
   */
  stopAccepting(): Promise<void>;
  activeSessions(): number;
}

interface Session {
  raw: Socket;
  socket: Socket;
  done: Promise<void>;
}

/**
 * A TCP server on `config.listen` (IPv4 or IPv6). Each connection is checked against the
 * allowlist and the connection caps before any TLS or protocol work, then (implicit TLS)
 * handshaken, then handed to `handle`. A refused connection never reaches the protocol
 * handler; it is logged, and told why only when it is over a cap (see `refuse`).
 * Nothing a session throws escapes: it is caught and logged here.
 */
export async function startListener(config: ListenerConfig, handle: ConnectionHandler, options: ListenerOptions): Promise<Listener> {
  if (config.tls === 'implicit' && !options.tls) {
    throw new ProxyError('config_invalid', `listener ${config.listen}: tls implicit needs a TLS context`);
  }
  const { host, port } = parseListen(config.listen);
  const listener = new TcpListener(config, handle, options);
  await listener.listen(host, port);
  return listener;
}

class TcpListener implements Listener {
  readonly #config: ListenerConfig;
  readonly #handle: ConnectionHandler;
  readonly #tls: LocalTlsSource | undefined;
  readonly #log: Logger;
  readonly #allow: BlockList | undefined;
  readonly #sessions = new Set<Session>();
  readonly #perAddress = new Map<string, number>();
  readonly #shutdown = new AbortController();
  readonly #deadline = new AbortController();
  readonly #busyGreeting: string | undefined;
  readonly #server: Server;
  #stopped: Promise<void> | undefined;

  constructor(config: ListenerConfig, handle: ConnectionHandler, options: ListenerOptions) {
    this.#config = config;
    this.#handle = handle;
    this.#tls = options.tls;
    // Implicit TLS: a refused client gets no handshake, so it cannot be told anything (see refuse).
    this.#busyGreeting = config.tls === 'implicit' ? undefined : options.busyGreeting;
    this.#log = options.log.child({ listener: config.listen, protocol: config.protocol });
    this.#allow = allowList(config.allow);
    // Every session listens for shutdown: hundreds of listeners on these signals are by design.
    setMaxListeners(0, this.#shutdown.signal, this.#deadline.signal);
    // Half-open: a client's FIN ends what it sends, not what it reads (RFC 9293 section 3.6).
    // `printf '...' | nc -N` sends its commands and its FIN at once; Node's default would end
    // our side at that FIN and close the socket, and the replies to those commands, which
    // take an upstream login to write, would have nowhere to go (SPEC section 5: never a
    // silent disconnect). IMAP and POP3 end our side themselves once everything sent before
    // the FIN is answered (the line reader's end of input, then the relay); SMTP opts out
    // (src/smtp/server.ts). A TLS socket inherits this from the socket it wraps.
    this.#server = createServer({ noDelay: true, allowHalfOpen: true }, (raw) => this.#accept(raw));
  }

  listen(host: string, port: number): Promise<void> {
    return listen(this.#server, host, port, this.#config.listen);
  }

  address(): { host: string; port: number } {
    const info = this.#server.address() as AddressInfo;
    return { host: info.address, port: info.port };
  }

  activeSessions(): number {
    return this.#sessions.size;
  }

  close(deadlineMs: number): Promise<void> {
    return closeListener(this.#stopServer(), this.#sessions, { shutdown: this.#shutdown, deadline: this.#deadline }, deadlineMs);
  }

  stopAccepting(): Promise<void> {
    void this.#stopServer();
    // server.close's callback waits for every connection; the port is free once it is not listening.
    return new Promise((resolve) => {
      const check = (): void => (this.#server.listening ? void setImmediate(check) : resolve());
      check();
    });
  }

  /** Closes the server once; resolves when it has closed and every connection has ended. */
  #stopServer(): Promise<void> {
    this.#stopped ??= new Promise<void>((resolve) => this.#server.close(() => resolve()));
    return this.#stopped;
  }

  /** Why a connection is refused, and whether it is over a cap (and so may be told). */
  #refusal(address: string): { reason: string; busy: boolean } | undefined {
    const config = this.#config;
    if (this.#shutdown.signal.aborted) return { reason: 'listener is closing', busy: false };
    if (this.#allow && !this.#allow.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4')) return { reason: 'address not in allow list', busy: false };
    if (this.#sessions.size >= config.max_connections) return { reason: `listener is at max_connections (${config.max_connections})`, busy: true };
    if ((this.#perAddress.get(address) ?? 0) >= config.max_connections_per_address) {
      return { reason: `address is at max_connections_per_address (${config.max_connections_per_address})`, busy: true };
    }
    return undefined;
  }

  #accept(raw: Socket): void {
    raw.on('error', ignoreError);
    const client: ClientInfo = { address: unwrapMapped(raw.remoteAddress ?? ''), port: raw.remotePort ?? 0, protocol: this.#config.protocol };
    const refused = this.#refusal(client.address);
    if (refused) {
      const { reason, busy } = refused;
      this.#log.warn({ event: 'listener.refused', client: client.address, reason }, `connection from ${client.address} refused: ${reason}`);
      refuse(raw, busy ? this.#busyGreeting : undefined);
      return;
    }
    this.#perAddress.set(client.address, (this.#perAddress.get(client.address) ?? 0) + 1);
    const session: Session = { raw, socket: raw, done: Promise.resolve() };
    this.#sessions.add(session);
    session.done = this.#run(session, client);
  }

  /**
   * TLS for implicit listeners, then the protocol's handler; never rejects. A promise chain, not
   * an async function awaiting the handler: that frame would be held for the whole session.
   */
  #run(session: Session, client: ClientInfo): Promise<void> {
    return this.#secure(session, client)
      .then((secured) => (secured ? this.#handle(session.socket, client, this.#shutdown.signal, this.#deadline.signal) : undefined))
      .catch((err: unknown) => {
        this.#log.warn({ event: 'session.error', client: client.address, err: describeError(err) }, 'session ended with an error');
      })
      .finally(() => this.#ended(session, client));
  }

  #ended(session: Session, client: ClientInfo): void {
    session.socket.destroy();
    session.raw.destroy();
    this.#sessions.delete(session);
    const left = (this.#perAddress.get(client.address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(client.address, left);
    else this.#perAddress.delete(client.address);
  }

  /** The implicit-TLS handshake; false (logged) when it fails. */
  async #secure(session: Session, client: ClientInfo): Promise<boolean> {
    if (this.#config.tls !== 'implicit' || !this.#tls) return true;
    try {
      session.socket = await acceptTls(session.raw, this.#tls.context, this.#shutdown.signal);
      return true;
    } catch (err) {
      this.#log.info({ event: 'listener.tls_failed', client: client.address, reason: describeError(err) }, 'TLS handshake with a client failed');
      return false;
    }
  }
}

/**
 * Ends a connection refused before its session. One over a cap hears the protocol's own
 * refusal greeting (SPEC section 5: never a silent disconnect), written without waiting for
 * the client; what the client sends meanwhile is read and dropped, so that no reset destroys
 * the line in flight, and after CLOSE_LINGER_MS it is cut off. No `greeting` means no word, on
 * purpose: an address outside `allow` is a stranger and learns nothing, not even the protocol;
 * on an implicit-TLS listener a word would need a handshake (work, and our certificate shown)
 * for a client we refuse; a closing listener has stopped accepting already.
 */
function refuse(raw: Socket, greeting: string | undefined): void {
  if (greeting === undefined) {
    raw.destroy();
    return;
  }
  const timer = setTimeout(() => raw.destroy(), CLOSE_LINGER_MS).unref();
  raw.once('close', () => clearTimeout(timer));
  raw.resume();
  raw.end(`${greeting}\r\n`);
}

async function closeListener(stopped: Promise<void>, sessions: Set<Session>, signals: { shutdown: AbortController; deadline: AbortController }, deadlineMs: number): Promise<void> {
  signals.shutdown.abort(new ProxyError('aborted', 'Server shutting down'));
  await settle(sessions, deadlineMs);
  // Relayed sessions say goodbye and close within CLOSE_LINGER_MS (src/net/relay.ts).
  if (sessions.size > 0) {
    signals.deadline.abort(new ProxyError('aborted', 'Server shutting down'));
    await settle(sessions, CLOSE_LINGER_MS);
  }
  for (const session of sessions) {
    session.socket.destroy();
    session.raw.destroy();
  }
  await Promise.allSettled([...sessions].map((s) => s.done));
  await stopped;
}

/** Waits until every session has ended, or `ms` have passed. */
async function settle(sessions: Set<Session>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled([...sessions].map((s) => s.done)), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function listen(server: Server, host: string, port: number, where: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new ProxyError('config_invalid', `cannot listen on ${where}: ${describeError(err)}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** "::ffff:10.0.0.5" (an IPv4 client on a dual-stack socket) becomes "10.0.0.5". */
export function unwrapMapped(address: string): string {
  const match = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return match?.[1] ?? address;
}

/** The allowlist as a BlockList (used as an allow set); undefined when everyone may connect. */
export function allowList(cidrs: readonly string[] | undefined): BlockList | undefined {
  if (!cidrs || cidrs.length === 0) return undefined;
  const list = new BlockList();
  for (const text of cidrs) {
    // The config's own parser: the schema accepted these, and the list must mean what it checked.
    const cidr = parseCidr(text);
    if (!cidr) throw new ProxyError('config_invalid', `allow: "${text}" is not an IP address or CIDR`);
    list.addSubnet(cidr.host, cidr.prefix, cidr.family === 6 ? 'ipv6' : 'ipv4');
  }
  return list;
}
