import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMessage } from '../../src/demo/imap-server.js';
import {
  CLIENT_SECRET, LOCAL_PASSWORD, TOKEN_PATTERN, USER, startProxy, startUpstreams, writeProxyConfig,
  type ProxyOptions, type ProxyRun, type Upstreams,
} from './harness.js';

/**
 * Real POP3 clients (python3 poplib, curl, fetchmail) through the built proxy to the demo POP3
 * server, which takes only two-step AUTH XOAUTH2 with a token from the mock identity provider.
 * Every client downloads every message and each must come out byte for byte as stored.
 */

/**
 * A 10 MB message whose bytes vary, so a shifted or dropped chunk cannot go unnoticed. It ends
 * with CRLF, as a POP3 message must: the multi-line framing would add one otherwise.
 */
function bigMessage(): Buffer {
  const header = Buffer.from('From: a@example.com\r\nTo: alice@example.com\r\nSubject: big\r\n\r\n');
  const body = Buffer.alloc(Math.ceil((10 * 1024 * 1024) / 78) * 78);
  for (let i = 0; i < body.length; i++) body[i] = i % 78 === 76 ? 0x0d : i % 78 === 77 ? 0x0a : 0x41 + ((i * 7) % 26);
  return Buffer.concat([header, body]);
}

const MESSAGES = [
  buildMessage({ subject: 'hello from the demo server', to: USER }),
  // Lines that start with a dot must survive dot-stuffing both ways.
  Buffer.from('From: b@example.com\r\nSubject: dots\r\n\r\n.a line with one dot\r\n..and two\r\n.\r\nend\r\n'),
  bigMessage(),
];
const DIGESTS = MESSAGES.map(sha256);

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

let up: Upstreams;
const runs: ProxyRun[] = [];

async function proxy(options: ProxyOptions = {}): Promise<ProxyRun> {
  const { dir, configPath } = writeProxyConfig(up, { protocol: 'pop3', ...options });
  const run = await startProxy(configPath, dir);
  runs.push(run);
  return run;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: Buffer; err: string }> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, out: Buffer.concat(out), err }));
}

async function python(script: string, env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const result = await run('python3', ['-c', script], env);
  return { code: result.code, out: result.out.toString() + result.err };
}

/** Python: download every message and print "DIGEST <sha256>" for each. */
const PY_RETRIEVE_ALL = `
import hashlib
count, _ = p.stat()
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    assert resp.startswith(b'+OK'), resp
    print('DIGEST', hashlib.sha256(b'\\r\\n'.join(lines) + b'\\r\\n').hexdigest())
print(p.quit())
`;

function digestsIn(out: string): string[] {
  return [...out.matchAll(/^DIGEST ([0-9a-f]{64})$/gm)].map((m) => m[1] as string);
}

/** The upstream saw only OAuth logins in the two-step form, never the local password. */
function expectNoPasswordUpstream(): void {
  const pop3 = up.pop3!;
  expect(pop3.stats.passwordSeen).toBe(false);
  expect(pop3.stats.authentications.length).toBeGreaterThan(0);
  for (const a of pop3.stats.authentications) expect(a).toMatchObject({ mechanism: 'XOAUTH2', form: 'two-step' });
  expect(up.seenTokens.some((t) => t.includes(LOCAL_PASSWORD))).toBe(false);
}

/**
 * Runs fetchmail once (keep, fetch all) against the proxy on `port` with `options` added to the
 * user entry, delivering each message to its own file through an MDA. Returns their digests.
 */
async function fetchmail(port: number, options: string): Promise<string[]> {
  const home = mkdtempSync(join(tmpdir(), 'omp-fetchmail-'));
  const rc = join(home, 'fetchmailrc');
  // fetchmail's double-quoted strings cannot hold a double quote; in single quotes only the backslash is escaped.
  const quoted = LOCAL_PASSWORD.replace(/\\/g, '\\\\');
  // invisible: no Received header of fetchmail's own; no stripcr: keep the CRLFs, as received.
  writeFileSync(rc, `set no syslog
set invisible
poll 127.0.0.1 protocol pop3 port ${port} auth password
  user "${USER}" there with password '${quoted}' is root here
  keep fetchall no rewrite no stripcr ${options}
  mda "/bin/sh -c 'cat > ${home}/msg.$$'"
`);
  // fetchmail refuses an rcfile others can read.
  chmodSync(rc, 0o600);
  const result = await run('fetchmail', ['-f', rc, '-N', '--nosyslog', '--pidfile', join(home, 'pid'), '-v'], { HOME: home, FETCHMAILHOME: home });
  try {
    expect(result.code, result.err).toBe(0);
    return readdirSync(home).filter((f) => f.startsWith('msg.')).map((f) => sha256(readFileSync(join(home, f))));
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  up = await startUpstreams({}, 'implicit', { tls: 'implicit' });
  for (const message of MESSAGES) up.imap.deliver(USER, message);
});

afterAll(async () => {
  for (const r of runs) await r.stop();
  await up.close();
  const logs = runs.flatMap((r) => r.logs).join('\n');
  expect(logs).not.toMatch(TOKEN_PATTERN);
  expect(logs).not.toContain(LOCAL_PASSWORD);
  expect(logs).not.toContain(CLIENT_SECRET);
});

describe('POP3 clients through the built proxy download every message byte-identically', () => {
  let plain: ProxyRun;
  beforeAll(async () => {
    plain = await proxy();
  });

  it('python3 poplib with USER and PASS (a password with spaces, quotes and a backslash)', async () => {
    const script = `
import os, poplib
p = poplib.POP3('127.0.0.1', int(os.environ['PORT']))
print('CAPA', sorted(p.capa().keys()))
p.user(os.environ['U'])
print(p.pass_(os.environ['P']))
${PY_RETRIEVE_ALL}`;
    const { code, out } = await python(script, { PORT: String(plain.port), U: USER, P: LOCAL_PASSWORD });
    expect(out).toContain("CAPA ['AUTH-RESP-CODE', 'IMPLEMENTATION', 'RESP-CODES', 'SASL', 'TOP', 'UIDL', 'USER']");
    expect(digestsIn(out)).toEqual(DIGESTS);
    expect(code).toBe(0);
    expectNoPasswordUpstream();
    const end = await plain.waitForEvent('session.end');
    expect(end).toMatchObject({ account: USER, protocol: 'pop3', outcome: 'relayed' });
    expect(Number(end.bytesFromServer)).toBeGreaterThan(MESSAGES[2]!.length);
  });

  it('python3 poplib with AUTH PLAIN through _shortcmd, and UIDL and TOP from the server after login', async () => {
    const script = `
import base64, os, poplib
p = poplib.POP3('127.0.0.1', int(os.environ['PORT']))
ir = base64.b64encode(('\\0' + os.environ['U'] + '\\0' + os.environ['P']).encode()).decode()
print(p._shortcmd('AUTH PLAIN ' + ir))
print('POSTLOGIN', 'X-DEMO-POSTLOGIN' in p.capa())
print('UIDL', len(p.uidl()[1]))
print('TOP', p.top(1, 0)[1][0])
${PY_RETRIEVE_ALL}`;
    const { code, out } = await python(script, { PORT: String(plain.port), U: USER, P: LOCAL_PASSWORD });
    expect(out).toMatch(/^b'\+OK alice@example\.com logged in/m);
    // After login CAPA is the server's own, relayed.
    expect(out).toContain('POSTLOGIN True');
    expect(out).toContain('UIDL 3');
    expect(out).toContain("TOP b'From: Demo Sender");
    expect(digestsIn(out)).toEqual(DIGESTS);
    expect(code).toBe(0);
    expectNoPasswordUpstream();
  });

  it('curl pop3:// with its default SASL, with PLAIN and an initial response, and listing', async () => {
    const url = `pop3://127.0.0.1:${plain.port}`;
    const user = ['--user', `${USER}:${LOCAL_PASSWORD}`];
    const listing = await run('curl', ['-sS', url, ...user]);
    expect(listing.err).toBe('');
    expect(listing.out.toString()).toBe(MESSAGES.map((m, i) => `${i + 1} ${m.length}\r\n`).join(''));
    const variants = [[], ['--login-options', 'AUTH=PLAIN', '--sasl-ir'], ['--login-options', 'AUTH=LOGIN']];
    for (const [i, variant] of variants.entries()) {
      const n = i + 1;
      const result = await run('curl', ['-sS', `${url}/${n}`, ...user, ...variant]);
      expect(result.err, variant.join(' ')).toBe('');
      expect(sha256(result.out), `message ${n} with ${variant.join(' ') || 'defaults'}`).toBe(DIGESTS[i]);
    }
    expectNoPasswordUpstream();
  });

  it('fetchmail with USER/PASS keeps and delivers every message to an MDA byte for byte', async () => {
    const delivered = await fetchmail(plain.port, "sslproto ''");
    expect(delivered.sort()).toEqual([...DIGESTS].sort());
    expectNoPasswordUpstream();
  });

  it('fetchmail over STLS with the certificate checked, as it does by default when STLS is offered', async () => {
    const tls = await proxy({ clientTls: 'starttls' });
    const delivered = await fetchmail(tls.port, `sslcertck sslcertfile '${up.certs.caFile}' sslcommonname localhost`);
    expect(delivered.sort()).toEqual([...DIGESTS].sort());
    expectNoPasswordUpstream();
  });
});
