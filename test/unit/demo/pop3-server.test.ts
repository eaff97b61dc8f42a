import { afterAll, describe, expect, it } from 'vitest';
import { dotStuff, topOf } from '../../../src/demo/pop3-maildrop.js';
import { startDemoPop3Server, type DemoPop3Server } from '../../../src/demo/pop3-server.js';
import { encodeXOAuth2 } from '../../../src/sasl/xoauth2.js';
import { Secret } from '../../../src/secret.js';
import { getTestCertificates } from '../../fakes/certs.js';
import { LineClient } from '../helpers/imap-kit.js';

/** The demo POP3 server: the fake upstream of the POP3 tests must itself behave like POP3. */

const USER = 'alice@example.com';
const GOOD = 'good-token';
const certs = getTestCertificates();
const DOTTY = Buffer.from('Subject: dots\r\n\r\n.starts with a dot\r\n..two dots\r\nmiddle . dot\r\n.\r\nend\r\n');
const PLAIN = Buffer.from('Subject: plain\r\nFrom: a@example.com\r\n\r\nline 1\r\nline 2\r\nline 3\r\n');
const servers: DemoPop3Server[] = [];

async function start(tls: 'implicit' | 'starttls' = 'implicit'): Promise<DemoPop3Server> {
  const server = await startDemoPop3Server({
    tls, cert: certs.certPem, key: certs.keyPem,
    validateToken: (user, token) => user === USER && token === GOOD,
    mailboxes: { [USER]: [DOTTY, PLAIN] },
  });
  servers.push(server);
  return server;
}

async function connect(server: DemoPop3Server): Promise<LineClient> {
  const client = await LineClient.connect(server.port, { ca: certs.caPem });
  expect(await client.line()).toMatch(/^\+OK /);
  return client;
}

/** A multi-line response: its status line and the un-dot-stuffed body. */
async function multiline(client: LineClient, command: string): Promise<{ status: string; body: string }> {
  client.send(`${command}\r\n`);
  const status = await client.line();
  if (!status.startsWith('+OK')) return { status, body: '' };
  const lines: string[] = [];
  for (let line = await client.line(); line !== '.'; line = await client.line()) lines.push(line.startsWith('.') ? line.slice(1) : line);
  return { status, body: lines.map((l) => `${l}\r\n`).join('') };
}

async function command(client: LineClient, line: string): Promise<string> {
  client.send(`${line}\r\n`);
  return client.line();
}

async function login(client: LineClient, token = GOOD): Promise<string> {
  expect(await command(client, 'AUTH XOAUTH2')).toBe('+ ');
  client.send(`${encodeXOAuth2(USER, new Secret(token))}\r\n`);
  return client.line();
}

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('dot-stuffing and TOP', () => {
  it('stuffs every line that starts with a dot, and un-stuffing gives the bytes back', () => {
    const stuffed = dotStuff(DOTTY).toString('latin1');
    expect(stuffed).toBe('Subject: dots\r\n\r\n..starts with a dot\r\n...two dots\r\nmiddle . dot\r\n..\r\nend\r\n');
    expect(dotStuff(Buffer.from('.x')).toString()).toBe('..x\r\n');
  });

  it('TOP keeps the header, the blank line and n body lines', () => {
    expect(topOf(PLAIN, 0).toString()).toBe('Subject: plain\r\nFrom: a@example.com\r\n\r\n');
    expect(topOf(PLAIN, 2).toString()).toBe('Subject: plain\r\nFrom: a@example.com\r\n\r\nline 1\r\nline 2\r\n');
    expect(topOf(PLAIN, 99).equals(PLAIN)).toBe(true);
  });
});

describe('demo POP3 server', () => {
  it('serves STAT, LIST, UIDL, TOP and RETR byte-exactly after two-step XOAUTH2', async () => {
    const server = await start();
    const c = await connect(server);
    expect(await login(c)).toMatch(/^\+OK /);
    expect(await command(c, 'STAT')).toBe(`+OK 2 ${DOTTY.length + PLAIN.length}`);
    expect((await multiline(c, 'LIST')).body).toBe(`1 ${DOTTY.length}\r\n2 ${PLAIN.length}\r\n`);
    expect(await command(c, 'LIST 2')).toBe(`+OK 2 ${PLAIN.length}`);
    expect((await multiline(c, 'UIDL')).body).toMatch(/^1 \d+\.1\r\n2 \d+\.2\r\n$/);
    expect((await multiline(c, 'RETR 1')).body).toBe(DOTTY.toString());
    expect((await multiline(c, 'TOP 2 1')).body).toBe(topOf(PLAIN, 1).toString());
    expect(await command(c, 'RETR 3')).toMatch(/^-ERR/);
    expect(server.stats.passwordSeen).toBe(false);
    c.socket.destroy();
  });

  it('DELE takes effect at QUIT only, and RSET undoes it', async () => {
    const server = await start();
    const c = await connect(server);
    await login(c);
    expect(await command(c, 'DELE 1')).toMatch(/^\+OK/);
    expect(await command(c, 'DELE 1')).toMatch(/^-ERR/);
    expect(await command(c, 'RSET')).toBe('+OK maildrop has 2 messages');
    expect(await command(c, 'DELE 2')).toMatch(/^\+OK/);
    expect(await command(c, 'STAT')).toBe(`+OK 1 ${DOTTY.length}`);
    expect(server.store.inbox(USER).messages).toHaveLength(2);
    expect(await command(c, 'QUIT')).toMatch(/^\+OK .*1 messages deleted/);
    await c.closedByServer();
    expect(server.store.inbox(USER).messages.map((m) => m.raw.toString())).toEqual([DOTTY.toString()]);
  });

  it('refuses the one-line AUTH form, passwords, and a bad token with Gmail\'s challenge', async () => {
    const server = await start();
    const c = await connect(server);
    expect(await command(c, `AUTH XOAUTH2 ${encodeXOAuth2(USER, new Secret(GOOD))}`)).toMatch(/^-ERR Initial response not accepted/);
    expect(server.stats.authentications.at(-1)).toMatchObject({ form: 'one-line', ok: false });
    expect(server.stats.passwordSeen).toBe(false);
    expect(await command(c, `USER ${USER}`)).toMatch(/^\+OK/);
    expect(await command(c, 'PASS secret')).toMatch(/^-ERR \[AUTH\]/);
    expect(server.stats.passwordSeen).toBe(true);
    expect(await login(c, 'wrong')).toMatch(/^\+ eyJ/);
    c.send('\r\n');
    expect(await c.line()).toMatch(/^-ERR \[AUTH\]/);
    expect(await login(c)).toMatch(/^\+OK/);
    c.socket.destroy();
  });

  it('STLS: no SASL before TLS, and bytes pipelined behind STLS are dropped', async () => {
    const server = await start('starttls');
    const c = await LineClient.connect(server.port);
    await c.line();
    const capa = await multiline(c, 'CAPA');
    expect(capa.body).toContain('STLS');
    expect(capa.body).not.toContain('SASL');
    expect(await command(c, 'AUTH XOAUTH2')).toMatch(/^-ERR \[AUTH\] Use STLS/);
    c.send('STLS\r\nNOOP\r\n');
    expect(await c.line()).toMatch(/^\+OK/);
    await c.startTls(certs.caPem);
    expect(await login(c)).toMatch(/^\+OK/);
    expect(server.stats.starttlsDiscardedBytes).toBe('NOOP\r\n'.length);
    expect((await multiline(c, 'CAPA')).body).toContain('X-DEMO-POSTLOGIN');
    c.socket.destroy();
  });
});

