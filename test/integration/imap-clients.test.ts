import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMessage } from '../../src/demo/imap-server.js';
import { WireClient } from '../fakes/imap-wire-client.js';
import {
  CLIENT_SECRET, LOCAL_PASSWORD, TOKEN_PATTERN, USER, startProxy, startUpstreams, writeProxyConfig,
  type ProxyRun, type Upstreams,
} from './harness.js';

/** Real clients (imapflow, python3 imaplib, raw wire) through the built proxy to the demo server. */

/** A 10 MB message whose bytes vary, so a shifted or dropped chunk cannot go unnoticed. */
function bigMessage(): Buffer {
  const header = Buffer.from('From: a@example.com\r\nTo: alice@example.com\r\nSubject: big\r\n\r\n');
  const body = Buffer.alloc(10 * 1024 * 1024);
  for (let i = 0; i < body.length; i++) body[i] = i % 78 === 76 ? 0x0d : i % 78 === 77 ? 0x0a : 0x41 + ((i * 7) % 26);
  return Buffer.concat([header, body]);
}
const BIG = bigMessage();

let up: Upstreams;
const runs: ProxyRun[] = [];

async function proxy(options: Parameters<typeof writeProxyConfig>[1] = {}): Promise<ProxyRun> {
  const { dir, configPath } = writeProxyConfig(up, options);
  const run = await startProxy(configPath, dir);
  runs.push(run);
  return run;
}

function python(script: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn('python3', ['-c', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, out }));
}

beforeAll(async () => {
  up = await startUpstreams();
  up.imap.deliver(USER, buildMessage({ subject: 'hello from the demo server' }));
  up.imap.deliver(USER, BIG);
});

afterAll(async () => {
  for (const run of runs) await run.stop();
  await up.close();
  const logs = runs.flatMap((r) => r.logs).join('\n');
  expect(logs).not.toMatch(TOKEN_PATTERN);
  expect(logs).not.toContain(LOCAL_PASSWORD);
  expect(logs).not.toContain(CLIENT_SECRET);
});

describe('IMAP clients through the built proxy', () => {
  let plain: ProxyRun;
  beforeAll(async () => {
    plain = await proxy();
  });

  it('imapflow logs in with the local password and fetches a 10 MB message byte-identically', async () => {
    const client = new ImapFlow({ host: '127.0.0.1', port: plain.port, secure: false, auth: { user: USER, pass: LOCAL_PASSWORD }, logger: false });
    await client.connect();
    const lock = await client.getMailboxLock('INBOX');
    try {
      const small = await client.fetchOne('1', { source: true });
      expect(small && small.source?.toString()).toContain('hello from the demo server');
      const big = await client.fetchOne('2', { source: true });
      expect(big && big.source?.length).toBe(BIG.length);
      expect(big && big.source?.equals(BIG)).toBe(true);
    } finally {
      lock.release();
    }
    await client.logout();
    const end = await plain.waitForEvent('session.end');
    expect(end).toMatchObject({ account: USER, protocol: 'imap' });
    expect(end.outcome).toBe('relayed');
    expect(Number(end.bytesFromServer)).toBeGreaterThan(BIG.length);
  });

  it('IDLE works through the proxy', async () => {
    const client = new ImapFlow({ host: '127.0.0.1', port: plain.port, secure: false, auth: { user: USER, pass: LOCAL_PASSWORD }, logger: false });
    await client.connect();
    await client.mailboxOpen('INBOX');
    const exists = new Promise<number>((resolve) => client.on('exists', (e: { count: number }) => resolve(e.count)));
    const idle = client.idle();
    await new Promise((r) => setTimeout(r, 300));
    up.imap.deliver(USER, buildMessage({ subject: 'arrived while idling' }));
    expect(await exists).toBeGreaterThanOrEqual(3);
    await client.logout();
    await idle.catch(() => undefined);
  });

  it('python imaplib: LOGIN with a quoted password, and AUTHENTICATE PLAIN without initial response', async () => {
    const script = `
import imaplib, os
port = int(os.environ['PORT'])
m = imaplib.IMAP4('127.0.0.1', port)
typ, _ = m.login(os.environ['U'], os.environ['P'])
assert typ == 'OK', typ
typ, data = m.select('INBOX')
assert typ == 'OK', (typ, data)
typ, data = m.fetch('1', '(RFC822)')
assert b'hello from the demo server' in data[0][1]
m.logout()
m = imaplib.IMAP4('127.0.0.1', port)
typ, _ = m.authenticate('PLAIN', lambda _: ('\\0' + os.environ['U'] + '\\0' + os.environ['P']).encode())
assert typ == 'OK'
typ, caps = m.capability()
print('CAPS', caps[0].decode())
m.logout()
print('python ok')
`;
    const { code, out } = await python(script, { PORT: String(plain.port), U: USER, P: LOCAL_PASSWORD });
    expect(out).toContain('python ok');
    expect(code).toBe(0);
    // After login, CAPABILITY is answered by the server itself through the relay.
    expect(out).toContain('X-DEMO-POSTLOGIN');
  });

  it('LOGIN with a synchronising literal {n}', async () => {
    const c = await WireClient.connect({ port: plain.port });
    expect(await c.readLine()).toMatch(/^\* OK \[CAPABILITY IMAP4rev1 .*LITERAL\+.*AUTH=PLAIN/);
    const pw = Buffer.from(LOCAL_PASSWORD);
    c.send(`a1 LOGIN ${USER} {${pw.length}}\r\n`);
    expect(await c.readLine()).toMatch(/^\+ /);
    c.send(Buffer.concat([pw, Buffer.from('\r\n')]));
    const lines = await c.readUntilTagged('a1');
    expect(lines.at(-1)).toMatch(/^a1 OK \[CAPABILITY [^\]]*X-DEMO-POSTLOGIN/);
    expect((await c.command('a2', 'SELECT INBOX')).at(-1)).toMatch(/^a2 OK/);
    expect((await c.command('a3', 'LOGOUT')).at(-1)).toMatch(/^a3 OK/);
    c.close();
  });

  it('LOGIN with non-synchronising literals {n+} for both arguments', async () => {
    const c = await WireClient.connect({ port: plain.port });
    await c.readLine();
    const pw = Buffer.from(LOCAL_PASSWORD);
    c.send(Buffer.concat([Buffer.from(`b1 LOGIN {${USER.length}+}\r\n${USER} {${pw.length}+}\r\n`), pw, Buffer.from('\r\n')]));
    expect((await c.readUntilTagged('b1')).at(-1)).toMatch(/^b1 OK \[CAPABILITY /);
    expect((await c.command('b2', 'NOOP')).at(-1)).toMatch(/^b2 OK/);
    c.close();
  });

  it('AUTHENTICATE PLAIN with an initial response (SASL-IR), and LOGIN continuation', async () => {
    const c = await WireClient.connect({ port: plain.port });
    await c.readLine();
    const ir = Buffer.from(`\0${USER}\0${LOCAL_PASSWORD}`).toString('base64');
    expect((await c.command('c1', `AUTHENTICATE PLAIN ${ir}`)).at(-1)).toMatch(/^c1 OK \[CAPABILITY /);
    c.close();
    const d = await WireClient.connect({ port: plain.port });
    await d.readLine();
    d.send('d1 AUTHENTICATE LOGIN\r\n');
    expect(await d.readLine()).toBe('+ VXNlcm5hbWU6');
    d.send(`${Buffer.from(USER).toString('base64')}\r\n`);
    expect(await d.readLine()).toBe('+ UGFzc3dvcmQ6');
    d.send(`${Buffer.from(LOCAL_PASSWORD).toString('base64')}\r\n`);
    expect((await d.readUntilTagged('d1')).at(-1)).toMatch(/^d1 OK/);
    d.close();
  });

  it('answers CAPABILITY, NOOP, ID and LOGOUT locally without touching the server', async () => {
    const before = up.imap.stats.connections;
    const c = await WireClient.connect({ port: plain.port });
    await c.readLine();
    const caps = await c.command('e1', 'CAPABILITY');
    expect(caps[0]).toMatch(/^\* CAPABILITY IMAP4rev1 .*SASL-IR.*AUTH=LOGIN/);
    expect(caps[0]).not.toContain('STARTTLS');
    expect((await c.command('e2', 'NOOP')).at(-1)).toMatch(/^e2 OK/);
    expect((await c.command('e3', 'ID NIL'))[0]).toMatch(/^\* ID \(/);
    const bye = await c.command('e4', 'LOGOUT');
    expect(bye[0]).toMatch(/^\* BYE/);
    expect(up.imap.stats.connections).toBe(before);
  });

  it('a wrong password gets NO [AUTHENTICATIONFAILED] and no upstream connection', async () => {
    const before = up.imap.stats.connections;
    const c = await WireClient.connect({ port: plain.port });
    await c.readLine();
    expect((await c.command('f1', `LOGIN ${USER} "wrong"`)).at(-1)).toMatch(/^f1 NO \[AUTHENTICATIONFAILED\]/);
    expect((await c.command('f2', `LOGIN nobody@example.com "${'x'}"`)).at(-1)).toMatch(/^f2 NO \[AUTHENTICATIONFAILED\]/);
    c.close();
    expect(up.imap.stats.connections).toBe(before);
    expect((await plain.waitForEvents('auth.fail', 2)).length).toBeGreaterThanOrEqual(2);
  });
});

describe('TLS toward the client', () => {
  it('STARTTLS: LOGINDISABLED before, login after, with python imaplib', async () => {
    const run = await proxy({ clientTls: 'starttls' });
    const c = await WireClient.connect({ port: run.port });
    const greeting = await c.readLine();
    expect(greeting).toMatch(/STARTTLS/);
    expect(greeting).toMatch(/LOGINDISABLED/);
    expect((await c.command('g1', `LOGIN ${USER} "x"`)).at(-1)).toMatch(/^g1 NO \[PRIVACYREQUIRED\]/);
    c.close();
    const script = `
import imaplib, os, ssl
ctx = ssl.create_default_context(cafile=os.environ['CA'])
m = imaplib.IMAP4('localhost', int(os.environ['PORT']))
m.starttls(ssl_context=ctx)
typ, _ = m.login(os.environ['U'], os.environ['P'])
assert typ == 'OK'
typ, data = m.select('INBOX')
assert typ == 'OK'
m.logout()
print('starttls ok')
`;
    const { code, out } = await python(script, { PORT: String(run.port), U: USER, P: LOCAL_PASSWORD, CA: up.certs.caFile });
    expect(out).toContain('starttls ok');
    expect(code).toBe(0);
  });

  it('implicit TLS with python imaplib IMAP4_SSL and with imapflow', async () => {
    const run = await proxy({ clientTls: 'implicit' });
    const script = `
import imaplib, os, ssl
ctx = ssl.create_default_context(cafile=os.environ['CA'])
m = imaplib.IMAP4_SSL('localhost', int(os.environ['PORT']), ssl_context=ctx)
typ, _ = m.login(os.environ['U'], os.environ['P'])
assert typ == 'OK'
typ, data = m.select('INBOX')
assert typ == 'OK'
m.logout()
print('tls ok')
`;
    const { code, out } = await python(script, { PORT: String(run.port), U: USER, P: LOCAL_PASSWORD, CA: up.certs.caFile });
    expect(out).toContain('tls ok');
    expect(code).toBe(0);
    const client = new ImapFlow({
      host: 'localhost', port: run.port, secure: true, auth: { user: USER, pass: LOCAL_PASSWORD }, logger: false,
      tls: { ca: [up.certs.caPem] },
    });
    await client.connect();
    const status = await client.status('INBOX', { messages: true });
    expect(status && status.messages).toBeGreaterThanOrEqual(2);
    await client.logout();
  });
});

describe('upstream variants', () => {
  it('STARTTLS to the server and OAUTHBEARER', async () => {
    const starttlsUp = await startUpstreams({}, 'starttls');
    try {
      starttlsUp.imap.deliver(USER, buildMessage({ subject: 'via starttls' }));
      const { dir, configPath } = writeProxyConfig(starttlsUp, { imapTls: 'starttls', sasl: 'oauthbearer' });
      const run = await startProxy(configPath, dir);
      runs.push(run);
      const c = await WireClient.connect({ port: run.port });
      await c.readLine();
      expect((await c.command('h1', `LOGIN ${USER} {${Buffer.byteLength(LOCAL_PASSWORD)}+}\r\n${LOCAL_PASSWORD}`)).at(-1)).toMatch(/^h1 OK/);
      expect((await c.command('h2', 'SELECT INBOX')).at(-1)).toMatch(/^h2 OK/);
      expect((await c.command('h3', 'FETCH 1 BODY[]')).join('\n')).toContain('via starttls');
      expect(starttlsUp.imap.stats.lastMechanism).toBe('OAUTHBEARER');
      c.close();
    } finally {
      await starttlsUp.close();
    }
  });

  it('refuses an upstream certificate it cannot verify, with a temporary error', async () => {
    const { dir, configPath } = writeProxyConfig(up);
    // Same config, but without the private CA: the demo server's certificate is not trusted.
    const { readFileSync, writeFileSync } = await import('node:fs');
    writeFileSync(configPath, readFileSync(configPath, 'utf8').replace(/    ca_file: .*\n/, ''));
    const run = await startProxy(configPath, dir);
    runs.push(run);
    const c = await WireClient.connect({ port: run.port });
    await c.readLine();
    expect((await c.command('i1', `LOGIN ${USER} {${Buffer.byteLength(LOCAL_PASSWORD)}+}\r\n${LOCAL_PASSWORD}`)).at(-1)).toMatch(/^i1 NO \[UNAVAILABLE\]/);
    c.close();
  });
});
