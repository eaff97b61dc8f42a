import { createSecureContext, type SecureContext } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamServer } from '../../../src/config/resolve.js';
import type { ListenerConfig } from '../../../src/config/schema.js';
import { startDemoPop3Server, type DemoPop3Server } from '../../../src/demo/pop3-server.js';
import { ProxyError } from '../../../src/errors.js';
import { startListener, type Listener } from '../../../src/net/listener.js';
import { handlePop3Connection } from '../../../src/pop3/session.js';
import { encodePlain } from '../../../src/sasl/plain.js';
import { Secret } from '../../../src/secret.js';
import { getTestCertificates } from '../../fakes/certs.js';
import { FakeAuthenticator, FakeTokenManager, LineClient, accountSettings, captureLog, listenerConfig } from '../helpers/imap-kit.js';

/** The POP3 session's state machine over real sockets, with fake accounts and tokens and the demo POP3 server upstream. */

const USER = 'alice@example.com';
const PASSWORD = 'correct horse "battery" \\ staple';
const GOOD = 'good-token-1';
const MESSAGE = 'Subject: hi\r\n\r\n.dot line\r\nhello\r\n';
const certs = getTestCertificates();

let upstream: DemoPop3Server;
let pop3Server: UpstreamServer;
let tlsContext: SecureContext;
const open: Listener[] = [];
const clients: LineClient[] = [];

beforeAll(async () => {
  tlsContext = createSecureContext({ cert: certs.certPem, key: certs.keyPem });
  upstream = await startDemoPop3Server({
    tls: 'implicit', cert: certs.certPem, key: certs.keyPem,
    validateToken: (user, token) => user === USER && token === GOOD,
    mailboxes: { [USER]: [MESSAGE] },
  });
  pop3Server = { host: 'localhost', port: upstream.port, tls: 'implicit', caFile: certs.caFile, insecureSkipVerify: false };
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  await Promise.all(open.splice(0).map((l) => l.close(1000)));
});

afterAll(async () => {
  await upstream.close();
});

interface Harness {
  listener: Listener;
  accounts: FakeAuthenticator;
  tokens: FakeTokenManager;
  logs: ReturnType<typeof captureLog>;
  connect(): Promise<LineClient>;
}

async function harness(options: { listener?: Partial<ListenerConfig>; tokens?: string[] } = {}): Promise<Harness> {
  const config = listenerConfig({ protocol: 'pop3', ...options.listener });
  const account = accountSettings(USER, undefined, { servers: { pop3: pop3Server } });
  const accounts = new FakeAuthenticator(new Map([[USER, { password: PASSWORD, account }]]));
  const tokens = new FakeTokenManager((options.tokens ?? [GOOD]).map((t) => new Secret(t)));
  const logs = captureLog();
  const listener = await startListener(config, (socket, client, shutdown, deadline) =>
    handlePop3Connection(socket, client, { listener: config, accounts, tokens, log: logs.log, tls: { context: tlsContext }, shutdown, deadline }), { log: logs.log, tls: { context: tlsContext } });
  open.push(listener);
  const { port } = listener.address();
  return {
    listener, accounts, tokens, logs,
    async connect() {
      const client = await LineClient.connect(port, config.tls === 'implicit' ? { ca: certs.caPem } : undefined);
      clients.push(client);
      expect(await client.line()).toBe('+OK oauth-mail-proxy ready');
      return client;
    },
  };
}

async function cmd(c: LineClient, line: string): Promise<string> {
  c.send(`${line}\r\n`);
  return c.line();
}

async function multiline(c: LineClient, line: string): Promise<string[]> {
  c.send(`${line}\r\n`);
  const lines = [await c.line()];
  if (!lines[0]!.startsWith('+OK')) return lines;
  for (let l = await c.line(); l !== '.'; l = await c.line()) lines.push(l);
  return lines;
}

/** The session.end log line, written just after the socket closed. */
async function sessionEnd(h: Harness): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 100; i++) {
    const end = h.logs.lines.find((l) => l.event === 'session.end');
    if (end) return end;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('POP3 session before login', () => {
  it('answers CAPA and QUIT locally, without an upstream connection', async () => {
    const h = await harness();
    const before = upstream.stats.connections;
    const c = await h.connect();
    expect(await multiline(c, 'capa')).toEqual([
      '+OK Capability list follows', 'USER', 'SASL PLAIN LOGIN', 'TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'IMPLEMENTATION oauth-mail-proxy',
    ]);
    expect(await multiline(c, 'AUTH')).toEqual(['+OK Supported mechanisms follow', 'PLAIN', 'LOGIN']);
    expect(await cmd(c, 'QUIT')).toBe('+OK oauth-mail-proxy signing off');
    await c.closedByServer();
    expect(upstream.stats.connections).toBe(before);
  });

  it('USER then PASS with spaces in the password: the server\'s +OK, then the relayed session', async () => {
    const h = await harness();
    const c = await h.connect();
    expect(await cmd(c, `USER ${USER}`)).toBe('+OK Send your password');
    expect(await cmd(c, `PASS ${PASSWORD}`)).toMatch(/^\+OK alice@example\.com logged in/);
    expect(h.accounts.calls.map((call) => call.password)).toEqual([PASSWORD]);
    expect(await multiline(c, 'RETR 1')).toEqual(['+OK 33 octets', 'Subject: hi', '', '..dot line', 'hello']);
    expect((await multiline(c, 'CAPA')).join(' ')).toContain('X-DEMO-POSTLOGIN');
    expect(upstream.stats.authentications.at(-1)).toMatchObject({ mechanism: 'XOAUTH2', form: 'two-step', ok: true });
    expect(upstream.stats.passwordSeen).toBe(false);
    expect(await cmd(c, 'QUIT')).toMatch(/^\+OK Demo POP3 server signing off/);
    await c.closedByServer();
    expect(h.logs.raw()).not.toContain(PASSWORD);
    expect(h.logs.raw()).not.toContain(GOOD);
    expect(await sessionEnd(h)).toMatchObject({ outcome: 'relayed', account: USER });
  });

  it('a relayed session gets -ERR [SYS/TEMP] when the shutdown deadline comes, then the connection closes', async () => {
    const h = await harness();
    const c = await h.connect();
    c.send(`USER ${USER}\r\nPASS ${PASSWORD}\r\nSTAT\r\n`);
    expect(await c.line()).toMatch(/^\+OK Send/);
    expect(await c.line()).toMatch(/^\+OK .* logged in/);
    expect(await c.line()).toBe(`+OK 1 ${MESSAGE.length}`);
    const started = Date.now();
    await h.listener.close(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(await c.line()).toBe('-ERR [SYS/TEMP] Server shutting down');
    await c.closedByServer();
    expect(c.unread()).toBe('');
    expect(await sessionEnd(h)).toMatchObject({ outcome: 'relayed', relayEnd: 'shutdown' });
  });

  it('commands pipelined behind PASS reach the server after the login', async () => {
    const h = await harness();
    const c = await h.connect();
    c.send(`USER ${USER}\r\nPASS ${PASSWORD}\r\nSTAT\r\n`);
    expect(await c.line()).toMatch(/^\+OK Send/);
    expect(await c.line()).toMatch(/^\+OK .* logged in/);
    expect(await c.line()).toBe(`+OK 1 ${MESSAGE.length}`);
  });

  it('AUTH PLAIN with and without initial response, AUTH LOGIN with and without, "*" cancels', async () => {
    const h = await harness();
    const plain = encodePlain(USER, new Secret(PASSWORD));
    const dialogues: Array<(c: LineClient) => Promise<string>> = [
      (c) => cmd(c, `AUTH PLAIN ${plain}`),
      async (c) => { expect(await cmd(c, 'AUTH PLAIN')).toBe('+ '); return cmd(c, plain); },
      async (c) => { expect(await cmd(c, 'AUTH LOGIN')).toBe('+ VXNlcm5hbWU6'); expect(await cmd(c, b64(USER))).toBe('+ UGFzc3dvcmQ6'); return cmd(c, b64(PASSWORD)); },
      async (c) => { expect(await cmd(c, `AUTH LOGIN ${b64(USER)}`)).toBe('+ UGFzc3dvcmQ6'); return cmd(c, b64(PASSWORD)); },
    ];
    for (const dialogue of dialogues) {
      const c = await h.connect();
      expect(await dialogue(c)).toMatch(/^\+OK .* logged in/);
      c.socket.destroy();
    }
    const c = await h.connect();
    expect(await cmd(c, 'AUTH PLAIN')).toBe('+ ');
    expect(await cmd(c, '*')).toBe('-ERR AUTH cancelled');
    // "=" is an empty initial response (RFC 5034 section 4), which PLAIN cannot be.
    expect(await cmd(c, 'AUTH PLAIN =')).toMatch(/^-ERR Malformed PLAIN message/);
    expect(await cmd(c, 'AUTH CRAM-MD5')).toMatch(/^-ERR Unsupported authentication mechanism/);
    expect(await cmd(c, `AUTH PLAIN ${encodePlain(USER, new Secret(PASSWORD), 'bob@example.com')}`)).toMatch(/^-ERR \[AUTH\]/);
    expect(h.accounts.calls.map((call) => call.username)).toEqual(Array(4).fill(USER));
    // Acting as another user counts as a failed login for the throttle; one's own name, in any case, is no other user.
    expect(h.accounts.verdicts).toEqual([false]);
    expect(await cmd(c, `AUTH PLAIN ${encodePlain(USER, new Secret(PASSWORD), USER.toUpperCase())}`)).toMatch(/^\+OK .* logged in/);
  });

  it('commands out of order, unknown commands and bad base64 get -ERR; too many end the session', async () => {
    const h = await harness();
    const c = await h.connect();
    expect(await cmd(c, 'PASS whatever')).toBe('-ERR PASS must follow USER');
    expect(await cmd(c, 'RETR 1')).toBe('-ERR RETR needs a login first: USER and PASS, or AUTH');
    expect(await cmd(c, 'AUTH PLAIN !!notbase64!!')).toBe('-ERR Invalid base64 data');
    expect(await cmd(c, 'FROB')).toBe('-ERR Unknown command');
    expect(await cmd(c, 'STLS')).toBe('-ERR STLS is not offered on this port');
    expect(await c.line()).toBe('-ERR Too many invalid commands');
    await c.closedByServer();
    expect(h.accounts.calls).toHaveLength(0);
  });

  it('a line over 255 octets, and one over the reader\'s limit, get -ERR and the session goes on', async () => {
    const h = await harness();
    const c = await h.connect();
    expect(await cmd(c, `USER ${'a'.repeat(251)}`)).toMatch(/^-ERR Line too long: at most 255 octets/);
    expect(await cmd(c, `USER ${'b'.repeat(100_000)}`)).toMatch(/^-ERR Line too long/);
    expect(await cmd(c, `USER ${USER}`)).toMatch(/^\+OK/);
    expect(await cmd(c, `PASS ${PASSWORD}`)).toMatch(/^\+OK .* logged in/);
  });

  it('a wrong password: -ERR [AUTH], no upstream connection, and the client may try again', async () => {
    const h = await harness();
    const before = upstream.stats.connections;
    const c = await h.connect();
    await cmd(c, `USER ${USER}`);
    expect(await cmd(c, 'PASS wrong')).toBe('-ERR [AUTH] Invalid user name or password');
    expect(await cmd(c, 'PASS again')).toBe('-ERR PASS must follow USER');
    expect(upstream.stats.connections).toBe(before);
    await cmd(c, `USER ${USER}`);
    expect(await cmd(c, `PASS ${PASSWORD}`)).toMatch(/^\+OK/);
  });
});

describe('POP3 session: tokens and upstream failures', () => {
  it('a token the server rejects: one forced refresh and one retry, invisible to the client', async () => {
    const h = await harness({ tokens: ['stale-token', GOOD] });
    const before = upstream.stats.authentications.length;
    const c = await h.connect();
    expect(await cmd(c, `AUTH PLAIN ${encodePlain(USER, new Secret(PASSWORD))}`)).toMatch(/^\+OK/);
    expect(h.tokens.requests.map((r) => r.force)).toEqual([false, true]);
    expect(upstream.stats.authentications.slice(before).map((a) => a.ok)).toEqual([false, true]);
  });

  it('identity provider down: -ERR [SYS/TEMP]; needs authorization: -ERR [AUTH] with what to do', async () => {
    const h = await harness();
    const c = await h.connect();
    h.tokens.failWith = new ProxyError('idp_unavailable', 'token endpoint answered 500');
    await cmd(c, `USER ${USER}`);
    expect(await cmd(c, `PASS ${PASSWORD}`)).toBe('-ERR [SYS/TEMP] Identity provider unavailable, try again later');
    h.tokens.failWith = new ProxyError('needs_authorization', 'run oauth-mail-proxy auth alice@example.com');
    await cmd(c, `USER ${USER}`);
    expect(await cmd(c, `PASS ${PASSWORD}`)).toBe('-ERR [AUTH] Account needs authorization: run oauth-mail-proxy auth alice@example.com');
  });

  it('the server refusing the token twice: -ERR [AUTH]', async () => {
    const h = await harness({ tokens: ['bad-1', 'bad-2'] });
    const c = await h.connect();
    expect(await cmd(c, `AUTH PLAIN ${encodePlain(USER, new Secret(PASSWORD))}`)).toMatch(/^-ERR \[AUTH\] The mail server rejected the access token/);
  });
});

describe('POP3 session: TLS toward the client and timeouts', () => {
  it('STLS listener: no password before TLS, pipelined plaintext dropped, login after', async () => {
    const h = await harness({ listener: { tls: 'starttls' } });
    const c = await h.connect();
    const capa = await multiline(c, 'CAPA');
    expect(capa).toContain('STLS');
    expect(capa).not.toContain('USER');
    expect(await cmd(c, `USER ${USER}`)).toBe('-ERR [AUTH] Use STLS first; passwords are not accepted over plaintext');
    c.send(`STLS\r\nUSER ${USER}\r\n`);
    expect(await c.line()).toBe('+OK Begin TLS negotiation');
    await c.startTls(certs.caPem);
    const after = await multiline(c, 'CAPA');
    expect(after).toContain('USER');
    expect(after).not.toContain('STLS');
    expect(await cmd(c, `PASS ${PASSWORD}`)).toBe('-ERR PASS must follow USER');
    expect(await cmd(c, `USER ${USER}`)).toMatch(/^\+OK/);
    expect(await cmd(c, `PASS ${PASSWORD}`)).toMatch(/^\+OK .* logged in/);
    expect(h.logs.lines.some((l) => l.event === 'session.starttls_injection')).toBe(true);
  });

  it('implicit TLS listener', async () => {
    const h = await harness({ listener: { tls: 'implicit' } });
    const c = await h.connect();
    expect(await cmd(c, `AUTH PLAIN ${encodePlain(USER, new Secret(PASSWORD))}`)).toMatch(/^\+OK/);
    expect(await cmd(c, 'STAT')).toMatch(/^\+OK 1 /);
  });

  it('a client that keeps talking but never logs in is cut off at the login timeout', async () => {
    const h = await harness({ listener: { login_timeout: 0.5, idle_timeout: 30 } });
    const c = await h.connect();
    const started = Date.now();
    let last = '';
    while (!last.startsWith('-ERR')) {
      if (last === '' || last === '.') {
        await new Promise((r) => setTimeout(r, 20));
        c.send('CAPA\r\n');
      }
      last = await c.line();
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(last).toBe('-ERR Autologout; no login within 0.5 s');
    await c.closedByServer();
  });

  it('a silent client is told and disconnected after the idle timeout', async () => {
    const h = await harness({ listener: { idle_timeout: 0.3 } });
    const c = await h.connect();
    expect(await c.line(3000)).toBe('-ERR Autologout; no command for 0.3 s');
    await c.closedByServer();
    expect(await sessionEnd(h)).toMatchObject({ outcome: 'timeout' });
  });
});
