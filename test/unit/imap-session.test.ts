import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamServer } from '../../src/config/resolve.js';
import type { ListenerConfig } from '../../src/config/schema.js';
import { ProxyError } from '../../src/errors.js';
import { handleImapConnection, type ImapSessionDeps } from '../../src/imap/session.js';
import { startListener, type Listener } from '../../src/net/listener.js';
import { encodePlain } from '../../src/sasl/plain.js';
import { Secret } from '../../src/secret.js';
import {
  FakeAuthenticator, FakeTokenManager, LineClient, accountSettings, captureLog, listenerConfig, makeCertificate,
  startScriptedUpstream, type ScriptedUpstream,
} from './helpers/imap-kit.js';

const USER = 'alice@example.com';
const PASSWORD = 'p"w\\d';
const GOOD_TOKEN = 'good-token-1';

let dir: string;
let cert: { certFile: string; keyFile: string; cert: string; key: string };
let tlsContext: SecureContext;
let upstream: ScriptedUpstream;
let imapServer: UpstreamServer;
const open: Listener[] = [];
const clients: LineClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omp-imap-'));
  cert = await makeCertificate(dir);
  tlsContext = createSecureContext({ cert: cert.cert, key: cert.key });
  upstream = await startScriptedUpstream({ cert: cert.cert, key: cert.key, acceptTokens: [GOOD_TOKEN] });
  imapServer = { host: '127.0.0.1', port: upstream.port, tls: 'implicit', caFile: cert.certFile, servername: 'localhost', insecureSkipVerify: false };
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.socket.destroy();
  await Promise.all(open.splice(0).map((l) => l.close(1000)));
});

afterAll(async () => {
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
});

interface Harness {
  port: number;
  listener: Listener;
  accounts: FakeAuthenticator;
  tokens: FakeTokenManager;
  logs: ReturnType<typeof captureLog>;
  connect(): Promise<LineClient>;
}

async function harness(options: { listener?: Partial<ListenerConfig>; tokens?: string[]; server?: UpstreamServer | null } = {}): Promise<Harness> {
  const config = listenerConfig(options.listener);
  const server = options.server === null ? undefined : options.server ?? imapServer;
  const accounts = new FakeAuthenticator(new Map([[USER, { password: PASSWORD, account: accountSettings(USER, server) }]]));
  const tokens = new FakeTokenManager((options.tokens ?? [GOOD_TOKEN]).map((t) => new Secret(t)));
  const logs = captureLog();
  const deps: ImapSessionDeps = { listener: config, accounts, tokens, log: logs.log, tls: { context: tlsContext } };
  const listener = await startListener(config, (socket, client, shutdown, deadline) => handleImapConnection(socket, client, { ...deps, shutdown, deadline }), { log: logs.log, tls: { context: tlsContext } });
  open.push(listener);
  const port = listener.address().port;
  return {
    port, listener, accounts, tokens, logs,
    async connect() {
      const client = await LineClient.connect(port, config.tls === 'implicit' ? { ca: cert.cert } : undefined);
      clients.push(client);
      return client;
    },
  };
}

/** Connects and reads the greeting. */
async function greeted(h: Harness): Promise<LineClient> {
  const client = await h.connect();
  expect(await client.line()).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 LITERAL\+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN\] oauth-mail-proxy ready$/);
  return client;
}

async function expectRelayWorks(client: LineClient): Promise<void> {
  client.send('r1 SELECT INBOX\r\n');
  expect(await client.until('r1 ')).toEqual(['* 3 EXISTS', 'r1 OK [READ-WRITE] SELECT completed']);
}

/** Greets and logs in; the session is relayed from then on. */
async function loggedIn(h: Harness): Promise<LineClient> {
  const client = await greeted(h);
  client.send(`a1 LOGIN ${USER} {${PASSWORD.length}+}\r\n${PASSWORD}\r\n`);
  expect(await client.line()).toBe('a1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] LOGIN completed');
  return client;
}

/** The session.end log line, written just after the session closed. */
async function sessionEnd(h: Harness): Promise<Record<string, unknown> | undefined> {
  await waitFor(() => h.logs.lines.some((l) => l.event === 'session.end'));
  return h.logs.lines.find((l) => l.event === 'session.end');
}

async function waitFor(check: () => boolean, ms = 3000): Promise<void> {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > ms) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('IMAP session: local answers before login', () => {
  it('answers CAPABILITY, NOOP, ID and LOGOUT without touching the server', async () => {
    const h = await harness();
    const before = upstream.connections;
    const client = await greeted(h);
    client.send('a CAPABILITY\r\nb NOOP\r\nc ID ("name" "test" "version" "1")\r\nd ID NIL\r\n');
    expect(await client.until('a ')).toEqual(['* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN', 'a OK CAPABILITY completed']);
    expect(await client.line()).toBe('b OK NOOP completed');
    expect(await client.until('c ')).toEqual(['* ID ("name" "oauth-mail-proxy")', 'c OK ID completed']);
    expect(await client.until('d ')).toEqual(['* ID ("name" "oauth-mail-proxy")', 'd OK ID completed']);
    client.send('e LOGOUT\r\n');
    expect(await client.until('e ')).toEqual(['* BYE oauth-mail-proxy logging out', 'e OK LOGOUT completed']);
    await client.closedByServer();
    expect(upstream.connections).toBe(before);
    await waitFor(() => h.logs.lines.some((l) => l.event === 'session.end'));
    expect(h.logs.lines.find((l) => l.event === 'session.end')).toMatchObject({ outcome: 'logout', protocol: 'imap', client: '127.0.0.1' });
  });
});

describe('IMAP session: login and relay', () => {
  it('logs in with LOGIN and quoted strings with escapes, then relays', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send(`a1 LOGIN "${USER}" "p\\"w\\\\d"\r\n`);
    expect(await client.line()).toBe('a1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] LOGIN completed');
    expect(h.accounts.calls.at(-1)?.password).toBe(PASSWORD);
    expect(upstream.authMessages.at(-1)).toBe(`user=${USER}\x01auth=Bearer ${GOOD_TOKEN}\x01\x01`);
    await expectRelayWorks(client);
    client.send('z LOGOUT\r\n');
    expect(await client.until('z ')).toEqual(['* BYE bye', 'z OK LOGOUT completed']);
    await client.closedByServer();
    await waitFor(() => h.logs.lines.some((l) => l.event === 'session.end'));
    const end = h.logs.lines.find((l) => l.event === 'session.end');
    expect(end).toMatchObject({ outcome: 'relayed', account: USER, bytesFromClient: 'r1 SELECT INBOX\r\nz LOGOUT\r\n'.length });
    expect(end?.bytesFromServer).toBeGreaterThan(40);
    expect(typeof end?.durationMs).toBe('number');
    const events = h.logs.lines.map((l) => l.event);
    expect(events).toEqual(expect.arrayContaining(['session.start', 'auth.ok', 'upstream.connect', 'session.end']));
    expect(events.filter((e) => e === 'session.end')).toHaveLength(1);
    // Neither the password nor the token nor the SASL payload ever reaches the log.
    expect(h.logs.raw()).not.toContain('p\\"w');
    expect(h.logs.raw()).not.toContain(GOOD_TOKEN);
    expect(h.logs.raw()).not.toContain(Buffer.from(`user=${USER}`).toString('base64').slice(0, 12));
  });

  it('logs in with synchronising literals {n}, waiting for "+" each time', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send(`a2 LOGIN {${USER.length}}\r\n`);
    expect(await client.line()).toBe('+ Ready for literal data');
    client.send(`${USER} {${Buffer.byteLength(PASSWORD)}}\r\n`);
    expect(await client.line()).toBe('+ Ready for literal data');
    client.send(`${PASSWORD}\r\n`);
    expect(await client.line()).toBe('a2 OK [CAPABILITY IMAP4rev1 IDLE MOVE] LOGIN completed');
    await expectRelayWorks(client);
  });

  it('logs in with LITERAL+ {n+} in one write, and relays commands pipelined after LOGIN', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send(`a3 LOGIN {${USER.length}+}\r\n${USER} {${PASSWORD.length}+}\r\n${PASSWORD}\r\np1 SELECT INBOX\r\n`);
    expect(await client.line()).toBe('a3 OK [CAPABILITY IMAP4rev1 IDLE MOVE] LOGIN completed');
    expect(await client.until('p1 ')).toEqual(['* 3 EXISTS', 'p1 OK [READ-WRITE] SELECT completed']);
  });

  it('logs in with AUTHENTICATE PLAIN with an initial response (SASL-IR)', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send(`a4 AUTHENTICATE PLAIN ${encodePlain(USER, new Secret(PASSWORD))}\r\n`);
    expect(await client.line()).toBe('a4 OK [CAPABILITY IMAP4rev1 IDLE MOVE] AUTHENTICATE completed');
    await expectRelayWorks(client);
  });

  it('refuses AUTHENTICATE PLAIN acting as another user, counted as a failed login; its own name in any case passes', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send(`a8 AUTHENTICATE PLAIN ${encodePlain(USER, new Secret(PASSWORD), 'bob@example.com')}\r\n`);
    expect(await client.line()).toMatch(/^a8 NO \[AUTHENTICATIONFAILED\]/);
    expect(h.accounts.verdicts).toEqual([false]);
    expect(h.accounts.calls).toEqual([]);
    client.send(`a9 AUTHENTICATE PLAIN ${encodePlain(USER, new Secret(PASSWORD), USER.toUpperCase())}\r\n`);
    expect(await client.line()).toMatch(/^a9 OK /);
  });

  it('logs in with AUTHENTICATE PLAIN after an empty continuation', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send('a5 authenticate plain\r\n');
    expect(await client.line()).toBe('+ ');
    client.send(`${encodePlain(USER, new Secret(PASSWORD))}\r\n`);
    expect(await client.line()).toBe('a5 OK [CAPABILITY IMAP4rev1 IDLE MOVE] AUTHENTICATE completed');
  });

  it('logs in with AUTHENTICATE LOGIN prompts', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send('a6 AUTHENTICATE LOGIN\r\n');
    expect(await client.line()).toBe('+ VXNlcm5hbWU6');
    client.send(`${Buffer.from(USER).toString('base64')}\r\n`);
    expect(await client.line()).toBe('+ UGFzc3dvcmQ6');
    client.send(`${Buffer.from(PASSWORD).toString('base64')}\r\n`);
    expect(await client.line()).toBe('a6 OK [CAPABILITY IMAP4rev1 IDLE MOVE] AUTHENTICATE completed');
  });

  it('cancels AUTHENTICATE on "*" with BAD and goes on', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send('a7 AUTHENTICATE PLAIN\r\n');
    expect(await client.line()).toBe('+ ');
    client.send('*\r\n');
    expect(await client.line()).toBe('a7 BAD AUTHENTICATE cancelled');
    client.send('a8 NOOP\r\n');
    expect(await client.line()).toBe('a8 OK NOOP completed');
  });
});

describe('IMAP session: failures', () => {
  it('refuses a wrong password with AUTHENTICATIONFAILED and never connects upstream', async () => {
    const h = await harness();
    const before = upstream.connections;
    const client = await greeted(h);
    client.send(`b1 LOGIN ${USER} wrong\r\n`);
    expect(await client.line()).toBe('b1 NO [AUTHENTICATIONFAILED] Invalid credentials');
    client.send('b2 NOOP\r\n');
    expect(await client.line()).toBe('b2 OK NOOP completed');
    expect(upstream.connections).toBe(before);
    expect(h.tokens.requests).toHaveLength(0);
    const fail = h.logs.lines.find((l) => l.event === 'auth.fail');
    expect(fail).toMatchObject({ username: USER, reason: 'wrong password' });
    expect(h.logs.raw()).not.toContain('"wrong"');
    client.socket.end();
    await waitFor(() => h.logs.lines.some((l) => l.event === 'session.end'));
    const end = h.logs.lines.find((l) => l.event === 'session.end');
    expect(end).toMatchObject({ outcome: 'auth_failed' });
    expect(end).not.toHaveProperty('account');
  });

  it('answers the JSON error challenge with an empty line; a token refused twice is token_rejected', async () => {
    const h = await harness({ tokens: ['stale-token', 'still-bad-token'] });
    const answersBefore = upstream.challengeAnswers.length;
    const client = await greeted(h);
    client.send(`c1 LOGIN ${USER} "${PASSWORD.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\r\n`);
    expect(await client.line()).toMatch(/^c1 NO \[AUTHENTICATIONFAILED\] The mail server rejected the access token/);
    expect(upstream.challengeAnswers.slice(answersBefore)).toEqual(['', '']);
    expect(h.tokens.requests.map((r) => r.force)).toEqual([false, true]);
    const fail = h.logs.lines.find((l) => l.event === 'login.fail');
    expect(fail).toMatchObject({ code: 'token_rejected', account: USER });
    expect(String(fail?.reason)).toContain('status 401');
    expect(h.logs.raw()).not.toContain('stale-token');
  });

  it('retries once with a refreshed token, invisibly to the client', async () => {
    const h = await harness({ tokens: ['stale-token', GOOD_TOKEN] });
    const client = await greeted(h);
    client.send(`c2 AUTHENTICATE PLAIN ${encodePlain(USER, new Secret(PASSWORD))}\r\n`);
    expect(await client.line()).toBe('c2 OK [CAPABILITY IMAP4rev1 IDLE MOVE] AUTHENTICATE completed');
    expect(h.tokens.requests.map((r) => r.force)).toEqual([false, true]);
  });

  it('maps identity provider trouble to NO [UNAVAILABLE] and needs_authorization to a clear text', async () => {
    const h = await harness();
    const client = await greeted(h);
    h.tokens.failWith = new ProxyError('idp_unavailable', 'token endpoint returned 503');
    client.send(`d1 AUTHENTICATE PLAIN ${encodePlain(USER, new Secret(PASSWORD))}\r\n`);
    expect(await client.line()).toBe('d1 NO [UNAVAILABLE] Identity provider unavailable, try again later');
    h.tokens.failWith = new ProxyError('needs_authorization', 'run `oauth-mail-proxy auth alice@example.com`\r\n* injected');
    client.send(`d2 AUTHENTICATE PLAIN ${encodePlain(USER, new Secret(PASSWORD))}\r\n`);
    expect(await client.line()).toBe('d2 NO [AUTHENTICATIONFAILED] Account needs authorization: run `oauth-mail-proxy auth alice@example.com` * injected');
  });

  it('says NO [CANNOT] when the account has no IMAP server', async () => {
    const h = await harness({ server: null });
    const client = await greeted(h);
    client.send(`d3 AUTHENTICATE PLAIN ${encodePlain(USER, new Secret(PASSWORD))}\r\n`);
    expect(await client.line()).toBe('d3 NO [CANNOT] No IMAP server is configured for this account');
  });

  it('says NO [UNAVAILABLE] when the mail server cannot be reached', async () => {
    const h = await harness({ server: { ...imapServer, port: 1 } });
    const client = await greeted(h);
    client.send(`d4 AUTHENTICATE PLAIN ${encodePlain(USER, new Secret(PASSWORD))}\r\n`);
    expect(await client.line()).toBe('d4 NO [UNAVAILABLE] Mail server unavailable, try again later');
    expect(String(h.logs.lines.find((l) => l.event === 'login.fail')?.reason)).toContain('127.0.0.1:1: connection refused');
  });

  it('refuses invalid base64 with BAD', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send('e1 AUTHENTICATE PLAIN !!!!\r\n');
    expect(await client.line()).toBe('e1 BAD Invalid base64 data');
    client.send('e2 AUTHENTICATE PLAIN\r\n');
    expect(await client.line()).toBe('+ ');
    client.send('AGFsaWNlAHB3=\r\n');
    expect(await client.line()).toBe('e2 BAD Invalid base64 data');
  });

  it('refuses a literal announcing 2 GB with BAD without reading it, and goes on', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send('f1 LOGIN {2147483648}\r\n');
    expect(await client.line()).toBe('f1 BAD Literal too large (at most 8192 bytes before login)');
    client.send('f2 NOOP\r\n');
    expect(await client.line()).toBe('f2 OK NOOP completed');
  });

  it('hangs up on an oversized LITERAL+ (the bytes are already coming)', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send(`f3 LOGIN {100000+}\r\n${'x'.repeat(100000)}`);
    expect(await client.line()).toBe('f3 BAD Literal too large (at most 8192 bytes before login)');
    expect(await client.line()).toMatch(/^\* BYE /);
    await client.closedByServer();
  });

  it('answers a 100 kB line with BAD and BYE, and the listener still serves another client', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send(`g1 LOGIN ${'a'.repeat(100 * 1024)}\r\n`);
    expect(await client.line()).toBe('g1 BAD Line too long');
    expect(await client.line()).toBe('* BYE Line too long');
    await client.closedByServer();
    const other = await greeted(h);
    other.send('g2 NOOP\r\n');
    expect(await other.line()).toBe('g2 OK NOOP completed');
  });

  it('refuses NUL bytes and unknown commands, and hangs up after too many bad commands', async () => {
    const h = await harness();
    const client = await greeted(h);
    client.send('h1 LOGIN a\0b c\r\n');
    expect(await client.line()).toBe('h1 BAD NUL byte in command');
    client.send('h2 SELECT INBOX\r\n');
    expect(await client.line()).toBe('h2 BAD Unknown command or not valid before login');
    client.send('h3 STARTTLS\r\n');
    expect(await client.line()).toBe('h3 BAD STARTTLS is not offered on this port');
    client.send('\r\n');
    expect(await client.line()).toBe('* BAD Empty command line');
    client.send('h5 LOGIN onlyone\r\n');
    expect(await client.line()).toBe('h5 BAD LOGIN takes a user name and a password');
    expect(await client.line()).toBe('* BYE Too many invalid commands');
    await client.closedByServer();
    await waitFor(() => h.logs.lines.some((l) => l.event === 'session.end'));
    expect(h.logs.lines.find((l) => l.event === 'session.end')).toMatchObject({ outcome: 'too_many_bad_commands' });
  });

  it('says BYE to a silent client after the idle timeout', async () => {
    const h = await harness({ listener: { idle_timeout: 0.3 } });
    const client = await greeted(h);
    const started = Date.now();
    expect(await client.line()).toBe('* BYE Autologout; no command for 0.3 s');
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await client.closedByServer();
    await waitFor(() => h.logs.lines.some((l) => l.event === 'session.end'));
    expect(h.logs.lines.find((l) => l.event === 'session.end')).toMatchObject({ outcome: 'timeout' });
  });

  it('says BYE when no login happens within the login timeout, even with activity', async () => {
    const h = await harness({ listener: { login_timeout: 0.5, idle_timeout: 10 } });
    const client = await greeted(h);
    const timer = setInterval(() => client.send('n NOOP\r\n'), 100);
    try {
      const lines = await client.until('* BYE');
      expect(lines.at(-1)).toBe('* BYE Autologout; no login within 0.5 s');
    } finally {
      clearInterval(timer);
    }
  });
});

describe('IMAP session: TLS toward the client', () => {
  it('offers STARTTLS with LOGINDISABLED, refuses LOGIN before TLS, drops pipelined plaintext', async () => {
    const h = await harness({ listener: { tls: 'starttls' } });
    const client = await h.connect();
    expect(await client.line()).toBe('* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID STARTTLS LOGINDISABLED] oauth-mail-proxy ready');
    client.send(`s1 LOGIN ${USER} x\r\n`);
    expect(await client.line()).toBe('s1 NO [PRIVACYREQUIRED] Use STARTTLS first; passwords are not accepted over plaintext');
    expect(h.accounts.calls).toHaveLength(0);
    // A command pipelined after STARTTLS in plaintext must not run inside TLS (CVE-2011-0411).
    client.send('s2 STARTTLS\r\ns3 NOOP\r\n');
    expect(await client.line()).toBe('s2 OK Begin TLS negotiation now');
    await client.startTls(cert.cert);
    client.send('s4 CAPABILITY\r\n');
    expect(await client.until('s4 ')).toEqual(['* CAPABILITY IMAP4rev1 LITERAL+ SASL-IR ID AUTH=PLAIN AUTH=LOGIN', 's4 OK CAPABILITY completed']);
    client.send(`s5 AUTHENTICATE PLAIN ${encodePlain(USER, new Secret(PASSWORD))}\r\n`);
    expect(await client.line()).toBe('s5 OK [CAPABILITY IMAP4rev1 IDLE MOVE] AUTHENTICATE completed');
    await expectRelayWorks(client);
    expect(h.logs.lines.some((l) => l.event === 'session.starttls_injection')).toBe(true);
  });

  it('serves implicit TLS', async () => {
    const h = await harness({ listener: { tls: 'implicit' } });
    const client = await greeted(h);
    client.send(`t1 LOGIN ${USER} {${PASSWORD.length}+}\r\n${PASSWORD}\r\n`);
    expect(await client.line()).toBe('t1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] LOGIN completed');
    await expectRelayWorks(client);
  });

  it('says BYE to a relayed session when the shutdown deadline comes, then closes it', async () => {
    const h = await harness();
    const client = await loggedIn(h);
    await expectRelayWorks(client);
    const started = Date.now();
    await h.listener.close(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(await client.line()).toBe('* BYE Server shutting down');
    await client.closedByServer();
    expect(client.unread()).toBe('');
    expect(await sessionEnd(h)).toMatchObject({ outcome: 'relayed', relayEnd: 'shutdown' });
  });

  it('closes a relayed session without BYE when the deadline comes inside a literal', async () => {
    // Message 1: the server stalls right after `{100}` CRLF; message 2: in a line of the literal.
    for (const message of ['1', '2']) {
      const h = await harness();
      const client = await loggedIn(h);
      client.send(`f FETCH ${message} BODY[]\r\n`);
      expect(await client.line()).toBe('* 1 FETCH (BODY[] {100}');
      const rest = message === '1' ? '' : 'Subject: cut\r\n\r\nthe body';
      await waitFor(() => client.unread() === rest);
      await new Promise((r) => setTimeout(r, 50));
      await h.listener.close(100);
      await client.closedByServer();
      expect(client.unread()).toBe(rest);
      expect(await sessionEnd(h)).toMatchObject({ outcome: 'relayed', relayEnd: 'shutdown' });
    }
  });

  it('says BYE to sessions not yet logged in when the listener closes', async () => {
    const h = await harness();
    const client = await greeted(h);
    const closing = h.listener.close(2000);
    expect(await client.line()).toBe('* BYE Server shutting down');
    await closing;
    expect(h.listener.activeSessions()).toBe(0);
  });
});
