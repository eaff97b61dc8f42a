import { setMaxListeners } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import pino from 'pino';
import { AccountRegistry } from '../../src/accounts/registry.js';
import { LoginThrottle } from '../../src/accounts/throttle.js';
import type { ClientInfo } from '../../src/accounts/types.js';
import type { AccountSettings, UpstreamServer } from '../../src/config/resolve.js';
import { listenerSchema, type ListenerConfig, type Protocol } from '../../src/config/schema.js';
import { Secret } from '../../src/secret.js';
import { FUZZ_PASSWORD, FUZZ_USER, type EndMode, type FuzzServices, type FuzzTarget, type Transcript } from './fuzz-types.js';
import { RecordingAuthenticator, RecordingTokenManager, memoryLog } from './recorders.js';

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

export { FUZZ_PASSWORD, FUZZ_TOKEN, FUZZ_USER, type EndMode, type FuzzServices, type FuzzTarget, type Transcript } from './fuzz-types.js';
export { checkTranscript } from './checks.js';

export interface RigOptions {
  listener?: Partial<ListenerConfig>;
  tlsContext?: SecureContext;
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
  // One registry for the whole run.
  const registry = new AccountRegistry([fuzzAccount({ [target.protocol]: server })], pino({ level: 'silent' }), noThrottle);
  const shutdown = new AbortController();
  setMaxListeners(0, shutdown.signal); // as the real listener does: every session listens
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
