import { createServer, connect, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { SecureContext } from 'node:tls';
import pino, { type Logger } from 'pino';
import { AccountRegistry } from '../../src/accounts/registry.js';
import { LoginThrottle } from '../../src/accounts/throttle.js';
import type { Authenticator, ClientInfo } from '../../src/accounts/types.js';
import type { AccountSettings, UpstreamServer } from '../../src/config/resolve.js';
import { listenerSchema, type ListenerConfig, type Protocol } from '../../src/config/schema.js';
import { MAX_PRELOGIN_LINE_BYTES } from '../../src/limits.js';
import { Secret } from '../../src/secret.js';
import type { TokenManager, TokenRequestOptions } from '../../src/tokens/types.js';

/**
 * Runs one protocol's real session handler, in process, over loopback sockets, against a real
 * AccountRegistry (plain local password, no throttle delays) and a token manager that records
 * every call. The account's mail server is a TCP port that counts connections and hangs up,
 * so a session that gets as far as the upstream login fails there, visibly.
 *
 * The checks every fuzz case shares (`checkTranscript`): the handler never rejects, nothing is
 * logged at error level, the session ends within its bound, the token manager is asked only
 * after a local login with the right password, the mail server is reached only after that,
 * and neither the password nor the token ever goes back to the client or into the log.
 */

export const FUZZ_USER = 'fuzz@example.com';
/** Contains a space and a quote, so it can never be a tag or atom echoed back innocently. */
export const FUZZ_PASSWORD = 'Fz "pw" \\ sécret';
export const FUZZ_TOKEN = 'at_fuzz_token_never_shown_to_clients';

export interface FuzzServices {
  listener: ListenerConfig;
  accounts: Authenticator;
  tokens: TokenManager;
  log: Logger;
  shutdown: AbortSignal;
  tlsContext?: SecureContext | undefined;
}

/** One protocol as the fuzzer sees it. */
export interface FuzzTarget {
  protocol: Protocol;
  /** Runs one session on an accepted socket (the protocol's connection handler). */
  serve(socket: Socket, client: ClientInfo, services: FuzzServices): Promise<void>;
  /** True when the server's lines include the protocol's goodbye (IMAP `* BYE`, POP3 `-ERR`/`+OK` at QUIT, SMTP 421/221). */
  saidGoodbye(lines: readonly string[]): boolean;
}

export type EndMode = 'end' | 'destroy' | 'stay';

export interface Transcript {
  /** Every byte the server sent. */
  received: Buffer;
  lines: string[];
  /** The handler's promise: undefined when it resolved. */
  rejected?: unknown;
  /** From the client's last write to the server's close (ms). */
  closeMs: number;
  closedByServer: boolean;
  authCalls: { username: string; password: string; ok: boolean }[];
  tokenCalls: { username: string; password?: string | undefined }[];
  /**
   * Connections the mail server accepted and token requests made, since the rig started. Counted
   * cumulatively because an accept can lag behind an aborted session into the next case; the
   * totals are exact: the first can never exceed the second.
   */
  upstreamConnectionsTotal: number;
  tokenCallsTotal: number;
  logRecords: Record<string, unknown>[];
  logText: string;
}

export interface RigOptions {
  listener?: Partial<ListenerConfig>;
  tlsContext?: SecureContext;
}

/** Records the registry's decisions; the registry is the real one. */
class RecordingAuthenticator implements Authenticator {
  calls: Transcript['authCalls'] = [];
  constructor(private readonly inner: AccountRegistry) {}
  /** The SMTP relay account is looked up by name. */
  find(username: string): AccountSettings | undefined {
    return this.inner.find(username);
  }
  async authenticate(username: string, password: Secret, client: ClientInfo): Promise<AccountSettings> {
    const call = { username, password: password.reveal(), ok: false };
    this.calls.push(call);
    const account = await this.inner.authenticate(username, password, client);
    call.ok = true;
    return account;
  }
}

class RecordingTokenManager implements TokenManager {
  calls: Transcript['tokenCalls'] = [];
  /** Counted when asked, before any upstream connection can follow. */
  constructor(private readonly total: { tokenCalls: number } = { tokenCalls: 0 }) {}
  async getToken(username: string, options: TokenRequestOptions): Promise<Secret> {
    this.calls.push({ username, password: options.password?.reveal() });
    this.total.tokenCalls++;
    return new Secret(FUZZ_TOKEN);
  }
  async withFreshToken<T>(username: string, options: TokenRequestOptions, use: (token: Secret) => Promise<T>): Promise<T> {
    return use(await this.getToken(username, options));
  }
  status() {
    return [];
  }
  async authorize(): Promise<void> {}
  async replaceAccounts() {
    return { added: [], removed: [], changed: [] };
  }
  start(): void {}
  async stop(): Promise<void> {}
}

function memoryLog(): { log: Logger; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { log: pino({ level: 'debug' }, stream), text: () => text };
}

/** A listener with the schema's defaults (so new keys need no change here) and short timeouts. */
export function fuzzListener(protocol: Protocol, overrides: Partial<ListenerConfig> = {}): ListenerConfig {
  return listenerSchema.parse({
    protocol, listen: '127.0.0.1:0', max_connections: 100, max_connections_per_address: 100, login_timeout: 5, idle_timeout: 2, ...overrides,
  });
}

export function fuzzAccount(servers: Partial<Record<Protocol, UpstreamServer>>): AccountSettings {
  return {
    username: FUZZ_USER, upstreamUsername: FUZZ_USER, providerName: 'corp', flow: 'refresh_token',
    localPassword: { kind: 'plain', value: new Secret(FUZZ_PASSWORD) }, oauth: { tokenUrl: 'http://127.0.0.1:1/token' },
    saslMechanism: 'xoauth2', servers,
  };
}

export interface SessionRig {
  runCase(chunks: readonly Buffer[], end: EndMode, boundMs: number): Promise<Transcript>;
  readonly listener: ListenerConfig;
  /** Where connections outside runCase are served (with the `ambient` services). */
  readonly port: number;
  readonly ambient: {
    authCalls(): Transcript['authCalls'];
    tokenCalls(): Transcript['tokenCalls'];
    logText(): string;
    /** Resolves when every ambient session has ended. */
    settled(): Promise<void>;
  };
  close(): Promise<void>;
}

export async function startSessionRig(target: FuzzTarget, options: RigOptions = {}): Promise<SessionRig> {
  const upstream = await startCountingUpstream();
  const server: UpstreamServer = { host: '127.0.0.1', port: upstream.port, tls: 'starttls', insecureSkipVerify: false };
  const listener = fuzzListener(target.protocol, options.listener);
  const noThrottle = new LoginThrottle({ freeFailures: Number.MAX_SAFE_INTEGER, lockoutAfter: Number.MAX_SAFE_INTEGER });
  // One registry for the whole run: building one costs a key derivation (its dummy hash).
  const registry = new AccountRegistry([fuzzAccount({ [target.protocol]: server })], pino({ level: 'silent' }), noThrottle);
  const shutdown = new AbortController();
  const totals = { tokenCalls: 0 };
  const running = new Set<Promise<unknown>>();
  /** Cases run concurrently: each claims its accepted socket by the client's port. */
  const waiting = new Map<number, (socket: Socket) => void>();
  const early = new Map<number, Socket>();
  const proxy: Server = createServer({ noDelay: true }, (socket) => {
    const claim = waiting.get(socket.remotePort ?? -1);
    if (claim) claim(socket);
    else early.set(socket.remotePort ?? -1, socket);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const casePort = (proxy.address() as { port: number }).port;
  /** Connections made outside runCase (floods) come in here. */
  const ambientServer: Server = createServer({ noDelay: true }, (socket) => serveAmbient(socket));
  await new Promise<void>((resolve) => ambientServer.listen(0, '127.0.0.1', resolve));
  const port = (ambientServer.address() as { port: number }).port;

  /** Connections to the ambient port get services that record into `ambient`. */
  const ambient = { authenticator: new RecordingAuthenticator(registry), tokens: new RecordingTokenManager(totals), log: memoryLog(), sessions: new Set<Promise<void>>() };
  function serveAmbient(socket: Socket): void {
    socket.on('error', () => undefined);
    const services: FuzzServices = {
      listener, accounts: ambient.authenticator, tokens: ambient.tokens, log: ambient.log.log, shutdown: shutdown.signal, tlsContext: options.tlsContext,
    };
    const client: ClientInfo = { address: '127.0.0.1', port: socket.remotePort ?? 0, protocol: target.protocol };
    const session = target.serve(socket, client, services).catch((err: unknown) => ambient.log.log.error({ err }, 'handler rejected')).finally(() => {
      socket.destroy();
      ambient.sessions.delete(session);
    });
    ambient.sessions.add(session);
  }

  /** The server side of the connection from `clientPort`, whichever came first. */
  function accept(clientPort: number): Promise<Socket> {
    const ready = early.get(clientPort);
    if (ready) {
      early.delete(clientPort);
      return Promise.resolve(ready);
    }
    return new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(clientPort);
        reject(new Error('the listener did not accept within 5 s'));
      }, 5000);
      waiting.set(clientPort, (socket) => {
        clearTimeout(timer);
        waiting.delete(clientPort);
        resolve(socket);
      });
    });
  }

  async function runCase(chunks: readonly Buffer[], end: EndMode, boundMs: number): Promise<Transcript> {
    const log = memoryLog();
    const services: FuzzServices = {
      listener, accounts: new RecordingAuthenticator(registry), tokens: new RecordingTokenManager(totals), log: log.log,
      shutdown: shutdown.signal, tlsContext: options.tlsContext,
    };
    const client = connect({ host: '127.0.0.1', port: casePort, noDelay: true });
    client.on('error', () => undefined);
    await new Promise((resolve) => client.once('connect', resolve));
    const socket = await accept(client.localPort ?? 0);
    const clientInfo: ClientInfo = { address: '127.0.0.1', port: socket.remotePort ?? 0, protocol: target.protocol };
    const handled = target.serve(socket, clientInfo, services).then(() => undefined, (err: unknown) => ({ err }));
    running.add(handled);
    void handled.finally(() => running.delete(handled));
    const received: Buffer[] = [];
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    // Like a real client, wait for the greeting: smtp-server hangs up on a client that talks first.
    const greeted = new Promise<void>((resolve) => client.once('data', () => resolve()));
    client.on('data', (d: Buffer) => received.push(d));
    await Promise.race([greeted, closed, new Promise((resolve) => setTimeout(resolve, 2000))]);
    const { closedEarly, lastWrite } = await writeChunks(client, chunks, closed);
    if (end === 'end') client.end();
    if (end === 'destroy') client.resetAndDestroy();
    const bound = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), boundMs).unref());
    const outcome = await Promise.race([Promise.all([closed, handled]).then(() => 'done' as const), bound]);
    const closeMs = Date.now() - lastWrite;
    if (outcome === 'timeout') client.destroy();
    const settled = await Promise.race([handled, new Promise<{ err: unknown }>((resolve) => setTimeout(() => resolve({ err: new Error(`session still running ${boundMs} ms after the client's last byte`) }), 3000).unref())]);
    socket.destroy();
    const logText = log.text();
    const bytes = Buffer.concat(received);
    return {
      received: bytes,
      lines: bytes.toString('latin1').split('\r\n').filter((l, i, all) => l !== '' || i < all.length - 1),
      rejected: outcome === 'timeout' ? new Error(`no close within ${boundMs} ms (end mode ${end})`) : settled?.err,
      closeMs,
      closedByServer: end === 'stay' || closedEarly,
      authCalls: (services.accounts as RecordingAuthenticator).calls,
      tokenCalls: (services.tokens as unknown as RecordingTokenManager).calls,
      upstreamConnectionsTotal: upstream.connections,
      tokenCallsTotal: totals.tokenCalls,
      logRecords: logText.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
      logText,
    };
  }

  return {
    runCase,
    listener,
    port,
    ambient: {
      authCalls: () => ambient.authenticator.calls,
      tokenCalls: () => ambient.tokens.calls,
      logText: () => ambient.log.text(),
      settled: async () => void (await Promise.all([...ambient.sessions])),
    },
    async close() {
      shutdown.abort();
      await Promise.all([...running]);
      await Promise.all([...ambient.sessions]);
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await new Promise<void>((resolve) => ambientServer.close(() => resolve()));
      await upstream.close();
    },
  };
}

/** Writes each chunk as its own segment (a turn of the event loop between them). */
async function writeChunks(client: Socket, chunks: readonly Buffer[], closed: Promise<void>): Promise<{ closedEarly: boolean; lastWrite: number }> {
  let closedEarly = false;
  void closed.then(() => (closedEarly = true));
  for (const chunk of chunks) {
    if (closedEarly || client.destroyed) break;
    client.write(chunk);
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { closedEarly, lastWrite: Date.now() };
}

/** A mail server that takes connections, counts them and hangs up at once. */
async function startCountingUpstream(): Promise<{ port: number; connections: number; close(): Promise<void> }> {
  const state = { port: 0, connections: 0, close: async (): Promise<void> => undefined };
  const server = createServer((socket) => {
    state.connections++;
    socket.on('error', () => undefined);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as { port: number }).port;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}

/** Why a transcript breaks one of the shared properties, or undefined when it holds them all. */
export function checkTranscript(t: Transcript, target: FuzzTarget, end: EndMode): string | undefined {
  if (t.rejected !== undefined) return `session handler failed: ${String((t.rejected as Error)?.stack ?? t.rejected)}`;
  const errors = t.logRecords.filter((r) => typeof r.level === 'number' && r.level >= 50);
  if (errors.length > 0) return `logged at error level: ${JSON.stringify(errors[0])}`;
  const rightLogins = t.authCalls.filter((c) => c.ok);
  for (const c of rightLogins) {
    if (c.username.toLowerCase() !== FUZZ_USER || c.password !== FUZZ_PASSWORD) return `a wrong login was accepted: ${JSON.stringify(c)}`;
  }
  if (t.tokenCalls.length > rightLogins.length) return `token manager asked ${t.tokenCalls.length} times after ${rightLogins.length} right logins`;
  if (t.upstreamConnectionsTotal > t.tokenCallsTotal) return `mail server reached ${t.upstreamConnectionsTotal} times after ${t.tokenCallsTotal} token requests`;
  for (const secret of [FUZZ_PASSWORD, FUZZ_TOKEN]) {
    if (t.received.includes(Buffer.from(secret, 'utf8')) || t.received.includes(Buffer.from(secret, 'latin1'))) return 'a secret went back to the client';
    if (t.logText.includes(secret)) return 'a secret reached the log';
  }
  // A reply may echo a client's tag, so a line may be as long as the longest line we read.
  const bad = t.lines.find((l) => !/^[\x20-\x7e]*$/.test(l) || l.length > MAX_PRELOGIN_LINE_BYTES + 400);
  if (bad !== undefined) return `unframed or unprintable reply line: ${JSON.stringify(bad.slice(0, 120))}`;
  if (end === 'stay' && !target.saidGoodbye(t.lines)) return `closed a silent client without a goodbye: ${JSON.stringify(t.lines.slice(-3))}`;
  const ends = t.logRecords.filter((r) => r.event === 'session.end').length;
  if (ends !== 1) return `${ends} session.end log lines`;
  return undefined;
}
