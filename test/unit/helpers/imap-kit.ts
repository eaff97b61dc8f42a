import { readFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { TLSSocket, connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import pino, { type Logger } from 'pino';
import type { Authenticator, ClientInfo } from '../../../src/accounts/types.js';
import type { AccountSettings, UpstreamServer } from '../../../src/config/resolve.js';
import { listenerSchema, type ListenerConfig } from '../../../src/config/schema.js';
import { ProxyError } from '../../../src/errors.js';
import { ensureSelfSignedCertificate } from '../../../src/net/local-tls.js';
import type { Secret } from '../../../src/secret.js';
import type { TokenManager, TokenRequestOptions } from '../../../src/tokens/types.js';

/** A throwaway localhost certificate made with the openssl CLI. */
export async function makeCertificate(dir: string): Promise<{ certFile: string; keyFile: string; cert: string; key: string }> {
  const files = await ensureSelfSignedCertificate(dir);
  return { ...files, cert: await readFile(files.certFile, 'utf8'), key: await readFile(files.keyFile, 'utf8') };
}

/** A listener as the config loader would produce it: the schema's defaults plus `overrides`. */
export function listenerConfig(overrides: Partial<ListenerConfig> = {}): ListenerConfig {
  return {
    ...listenerSchema.parse({ protocol: 'imap', listen: '127.0.0.1:0' }),
    max_connections: 100, max_connections_per_address: 100, login_timeout: 30, idle_timeout: 30, ...overrides,
  };
}

export function accountSettings(username: string, imap: UpstreamServer | undefined, overrides: Partial<AccountSettings> = {}): AccountSettings {
  return {
    username, upstreamUsername: username, providerName: 'corp', flow: 'refresh_token',
    localPassword: { kind: 'scrypt', hash: 'unused' }, oauth: { tokenUrl: 'http://127.0.0.1:1/token' },
    saslMechanism: 'xoauth2', servers: imap ? { imap } : {}, ...overrides,
  };
}

/** Local logins from a table of username to password. */
export class FakeAuthenticator implements Authenticator {
  readonly calls: { username: string; password: string; client: ClientInfo }[] = [];
  constructor(private readonly users: Map<string, { password: string; account: AccountSettings }>) {}

  async authenticate(username: string, password: Secret, client: ClientInfo): Promise<AccountSettings> {
    this.calls.push({ username, password: password.reveal(), client });
    const user = this.users.get(username);
    if (!user || user.password !== password.reveal()) throw new ProxyError('auth_failed', user ? 'wrong password' : 'unknown user');
    return user.account;
  }

  /** Logins judged outside authenticate (settleLogin), in order. */
  readonly verdicts: boolean[] = [];
  async settleLogin(_client: ClientInfo, accepted: boolean): Promise<void> {
    this.verdicts.push(accepted);
  }
}

/** Hands out tokens from a list: the first normally, the next one on each forced refresh. */
export class FakeTokenManager implements TokenManager {
  readonly requests: { username: string; force: boolean; password?: string | undefined }[] = [];
  #index = 0;
  failWith: ProxyError | undefined;
  constructor(private readonly tokens: Secret[]) {}

  async getToken(username: string, options: TokenRequestOptions & { force?: boolean }): Promise<Secret> {
    this.requests.push({ username, force: options.force === true, password: options.password?.reveal() });
    if (this.failWith) throw this.failWith;
    if (options.force) this.#index = Math.min(this.#index + 1, this.tokens.length - 1);
    return this.tokens[this.#index] as Secret;
  }

  async withFreshToken<T>(username: string, options: TokenRequestOptions, use: (token: Secret) => Promise<T>): Promise<T> {
    try {
      return await use(await this.getToken(username, options));
    } catch (err) {
      if (!(err instanceof ProxyError) || err.code !== 'token_rejected') throw err;
      return use(await this.getToken(username, { ...options, force: true }));
    }
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

/** A pino logger whose lines are kept as parsed objects (and as raw text, to grep for secrets). */
export function captureLog(): { log: Logger; lines: Record<string, unknown>[]; raw: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = pino({ level: 'debug' }, stream);
  return {
    log,
    get lines() {
      return chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    raw: () => chunks.join(''),
  };
}

/** A raw-socket IMAP client: send text, wait for lines. */
export class LineClient {
  #buffer = '';
  #waiters: (() => void)[] = [];
  closed = false;

  constructor(public socket: Socket) {
    this.#listen(socket);
  }

  static connect(port: number, tls?: { ca: string }): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const socket = tls
        ? tlsConnect({ host: '127.0.0.1', port, ca: tls.ca, servername: 'localhost' }, () => resolve(new LineClient(socket)))
        : netConnect({ host: '127.0.0.1', port }, () => resolve(new LineClient(socket)));
      socket.once('error', reject);
    });
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** The next line (without CRLF); fails after `timeoutMs`. */
  async line(timeoutMs = 5000): Promise<string> {
    const started = Date.now();
    for (;;) {
      const lf = this.#buffer.indexOf('\r\n');
      if (lf !== -1) {
        const line = this.#buffer.slice(0, lf);
        this.#buffer = this.#buffer.slice(lf + 2);
        return line;
      }
      if (this.closed) throw new Error(`connection closed; unread: ${JSON.stringify(this.#buffer)}`);
      if (Date.now() - started > timeoutMs) throw new Error(`no line within ${timeoutMs} ms; unread: ${JSON.stringify(this.#buffer)}`);
      await this.#wait(timeoutMs);
    }
  }

  /** Lines up to and including the one starting with `prefix` (a tag). */
  async until(prefix: string, timeoutMs = 5000): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.line(timeoutMs);
      lines.push(line);
      if (line.startsWith(prefix)) return lines;
    }
  }

  /** Resolves when the server has closed the connection. */
  async closedByServer(timeoutMs = 5000): Promise<void> {
    const started = Date.now();
    while (!this.closed) {
      if (Date.now() - started > timeoutMs) throw new Error('server did not close the connection');
      await this.#wait(timeoutMs);
    }
  }

  /** Client side of STARTTLS on this connection. */
  async startTls(ca: string): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure: TLSSocket = await new Promise((resolve, reject) => {
      const s = tlsConnect({ socket: plain, ca, servername: 'localhost' }, () => resolve(s));
      s.once('error', reject);
    });
    this.socket = secure;
    this.#buffer = '';
    this.#listen(secure);
  }

  unread(): string {
    return this.#buffer;
  }

  #listen(socket: Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      this.#wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

export interface ScriptedUpstreamOptions {
  cert: string;
  key: string;
  /** Tokens the server accepts. */
  acceptTokens: string[];
  /** Advertise SASL-IR (default true). */
  saslIr?: boolean;
  /** Put [CAPABILITY ...] in the tagged OK of AUTHENTICATE (default true). */
  capabilityInOk?: boolean;
  /** 'implicit' (default) or 'starttls'; with starttls, `inject` is sent in plaintext after the OK. */
  tls?: 'implicit' | 'starttls';
  inject?: string;
}

/** What the scripted server saw. */
export interface ScriptedUpstream {
  port: number;
  connections: number;
  /** Decoded SASL messages (XOAUTH2 or OAUTHBEARER). */
  authMessages: string[];
  /** Answers received after an error challenge. */
  challengeAnswers: string[];
  /** Every command line received after login. */
  afterLogin: string[];
  close(): Promise<void>;
}

/**
 * FETCH answers that never finish: the literal of a 100-byte BODY[] is opened and then the
 * server stalls, after no byte of it (message 1) or after part of a line of it (message 2).
 */
function fetchCut(write: (text: string) => void, message: string | undefined): void {
  write('* 1 FETCH (BODY[] {100}\r\n');
  if (message === '2') setTimeout(() => write('Subject: cut\r\n\r\nthe body'), 20);
}

/** A tiny IMAP server that logs in with XOAUTH2/OAUTHBEARER and answers a few commands after login. */
export async function startScriptedUpstream(options: ScriptedUpstreamOptions): Promise<ScriptedUpstream> {
  const state: ScriptedUpstream = { port: 0, connections: 0, authMessages: [], challengeAnswers: [], afterLogin: [], close: async () => undefined };
  const sockets = new Set<Socket>();
  const onConnection = (socket: Socket, secure: boolean): void => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    runScript(socket, secure, options, state);
  };
  const server: TlsServer | NetServer = options.tls === 'starttls'
    ? createNetServer((s) => onConnection(s, false))
    : createTlsServer({ cert: options.cert, key: options.key }, (s) => onConnection(s, true));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as { port: number }).port;
  state.close = () => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  return state;
}

function runScript(socket: Socket, secure: boolean, options: ScriptedUpstreamOptions, state: ScriptedUpstream): void {
  const caps = (): string => ['IMAP4rev1', ...(options.saslIr === false ? [] : ['SASL-IR']), 'AUTH=XOAUTH2', 'AUTH=OAUTHBEARER', ...(secure ? [] : ['STARTTLS'])].join(' ');
  let current = socket;
  let buffer = '';
  let loggedIn = false;
  let pendingAuth: { tag: string; stage: 'payload' | 'after_challenge' } | undefined;
  const write = (text: string) => current.write(text);
  const onLine = (line: string): void => {
    if (pendingAuth) return finishAuth(line);
    const [tag = '', verb = '', ...rest] = line.split(' ');
    const name = verb.toUpperCase();
    if (loggedIn) state.afterLogin.push(line);
    if (name === 'CAPABILITY') write(`* CAPABILITY ${loggedIn ? 'IMAP4rev1 IDLE MOVE' : caps()}\r\n${tag} OK done\r\n`);
    else if (name === 'STARTTLS' && !secure) upgrade(tag);
    else if (name === 'AUTHENTICATE') {
      if (rest[1]) return checkAuth(tag, rest[1]);
      pendingAuth = { tag, stage: 'payload' };
      write('+ \r\n');
    } else if (name === 'SELECT' && loggedIn) write(`* 3 EXISTS\r\n${tag} OK [READ-WRITE] SELECT completed\r\n`);
    else if (name === 'LIST' && loggedIn) write(`* LIST (\\Noselect) "/" ""\r\n${tag} OK LIST completed\r\n`);
    else if (name === 'FETCH' && loggedIn) fetchCut(write, rest[0]);
    else if (name === 'NOOP') write(`${tag} OK NOOP completed\r\n`);
    else if (name === 'LOGOUT') {
      write(`* BYE bye\r\n${tag} OK LOGOUT completed\r\n`);
      current.end();
    } else write(`${tag} BAD unknown\r\n`);
  };
  const checkAuth = (tag: string, payload: string): void => {
    const message = Buffer.from(payload, 'base64').toString();
    state.authMessages.push(message);
    const token = /auth=Bearer ([^\x01]+)/.exec(message)?.[1] ?? '';
    if (options.acceptTokens.includes(token)) {
      loggedIn = true;
      const code = options.capabilityInOk === false ? '' : '[CAPABILITY IMAP4rev1 IDLE MOVE] ';
      write(`${tag} OK ${code}Logged in\r\n`);
      return;
    }
    pendingAuth = { tag, stage: 'after_challenge' };
    const challenge = Buffer.from('{"status":"401","schemes":"bearer","scope":"https://mail.example.com/"}').toString('base64');
    write(`+ ${challenge}\r\n`);
  };
  const finishAuth = (line: string): void => {
    const auth = pendingAuth as { tag: string; stage: 'payload' | 'after_challenge' };
    pendingAuth = undefined;
    if (auth.stage === 'payload') return checkAuth(auth.tag, line);
    state.challengeAnswers.push(line);
    write(`${auth.tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n`);
  };
  const upgrade = (tag: string): void => {
    current.removeListener('data', onData);
    current.write(`${tag} OK Begin TLS\r\n${options.inject ?? ''}`);
    buffer = '';
    const tlsSocket = new TLSSocket(current, { isServer: true, cert: options.cert, key: options.key });
    tlsSocket.on('error', () => undefined);
    current = tlsSocket;
    secure = true;
    current.on('data', onData);
  };
  const onData = (chunk: Buffer): void => {
    buffer += chunk.toString('latin1');
    for (let lf = buffer.indexOf('\r\n'); lf !== -1; lf = buffer.indexOf('\r\n')) {
      const line = buffer.slice(0, lf);
      buffer = buffer.slice(lf + 2);
      onLine(line);
    }
  };
  socket.on('data', onData);
  write(`* OK [CAPABILITY ${caps()}] scripted ready\r\n`);
}
