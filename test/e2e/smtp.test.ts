import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, CAROL, proxyRow, type TestAccount } from './lib/accounts.js';
import { clientDir, curl, curlTarget, msmtp, swaks, type Tls } from './lib/clients.js';
import { e2eEnv, idpControl } from './lib/env.js';
import { bodyOf, sha256, uniqueMarker, waitForMessage } from './lib/maildir.js';
import { matrixIt, type MatrixRow } from './lib/matrix.js';
import { startProxy, TOKEN_PATTERN, type E2eProxy } from './lib/proxy.js';
import { runPython } from './lib/run.js';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';

/**
 * SMTP through the built proxy to Postfix: curl, python3 smtplib, swaks and msmtp log in with
 * AUTH PLAIN or AUTH LOGIN and the local password, on every client TLS mode; the proxy logs in
 * to Postfix's submissions port (implicit TLS, alice) or submission port (STARTTLS, bob) with
 * XOAUTH2, which Postfix checks through Dovecot's auth socket. Every message must arrive in
 * the recipient's Maildir, the 10 MiB one byte for byte.
 */

const FILE = import.meta.filename;
const RCPT = CAROL.username;

function row(client: string, login: string, clientTls: Tls, account: TestAccount, checks: string): MatrixRow {
  return proxyRow('SMTP', client, login, clientTls, account, checks);
}

interface PySmtp {
  ok: boolean;
  error?: string;
  auth_offered?: string[];
  refused?: Record<string, unknown>;
}

describe('SMTP through the proxy', () => {
  const env = e2eEnv();
  let proxy: E2eProxy;
  const refreshTokens: string[] = [];
  const port = (tls: Tls) => proxy.port('smtp', tls);
  const host = (tls: Tls) => (tls === 'none' ? '127.0.0.1' : 'localhost');
  const py = (account: TestAccount, tls: Tls, method: 'plain' | 'login', marker: string, extra: Record<string, unknown> = {}) =>
    runPython<PySmtp>('smtp_client.py', {
      host: host(tls), port: port(tls), tls, ca: env.caFile, user: account.username, password: account.password,
      method, sender: account.username, rcpt: RCPT, marker, ...extra,
    }, 180_000);

  beforeAll(async () => {
    for (const a of [ALICE, BOB]) refreshTokens.push(await idpControl.refreshToken(a.username));
    proxy = await startProxy({
      name: 'smtp',
      listeners: [{ protocol: 'smtp', tls: 'none' }, { protocol: 'smtp', tls: 'starttls' }, { protocol: 'smtp', tls: 'implicit' }],
      accounts: [{ ...ALICE, hashed: true, refreshToken: refreshTokens[0]! }, { ...BOB, refreshToken: refreshTokens[1]! }],
    });
  });

  afterAll(async () => {
    await proxy?.stop();
  });

  matrixIt(FILE, row('python3 smtplib', 'AUTH PLAIN', 'starttls', ALICE, '10 MiB message delivered intact'), async () => {
    const marker = uniqueMarker('smtplib-big');
    const r = await py(ALICE, 'starttls', 'plain', marker, { body_bytes: 10 * 1024 * 1024 });
    expect(r.error).toBeUndefined();
    expect(r.refused).toEqual({});
    const stored = await waitForMessage(RCPT, marker, 60_000);
    const line = `${('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'.repeat(2)).slice(0, 76)}\r\n`;
    const body = line.repeat(Math.floor((10 * 1024 * 1024) / line.length));
    expect(sha256(bodyOf(stored))).toBe(sha256(body));
  }, 180_000);

  matrixIt(FILE, row('python3 smtplib', 'AUTH LOGIN', 'none', BOB, 'delivered to Maildir'), async () => {
    const marker = uniqueMarker('smtplib-login');
    const r = await py(BOB, 'none', 'login', marker);
    expect(r.error).toBeUndefined();
    expect(r.auth_offered).toEqual(expect.arrayContaining(['PLAIN', 'LOGIN']));
    await waitForMessage(RCPT, marker);
  });

  matrixIt(FILE, row('python3 smtplib', 'AUTH PLAIN', 'implicit', BOB, 'delivered to Maildir'), async () => {
    const marker = uniqueMarker('smtplib-implicit');
    const r = await py(BOB, 'implicit', 'plain', marker);
    expect(r.error).toBeUndefined();
    await waitForMessage(RCPT, marker);
  });

  async function curlSend(account: TestAccount, tls: Tls, mech: 'PLAIN' | 'LOGIN'): Promise<void> {
    const marker = uniqueMarker(`curl-${mech}`);
    const file = join(clientDir('curl-smtp'), 'message.eml');
    writeFileSync(file, `From: ${account.username}\r\nTo: ${RCPT}\r\nSubject: ${marker}\r\nMessage-ID: <${marker}@e2e.example.com>\r\n\r\nSent by curl.\r\n`);
    await curl(['--login-options', `AUTH=${mech}`, '--user', `${account.username}:${account.password}`,
      '--mail-from', account.username, '--mail-rcpt', RCPT, '-T', file, ...curlTarget('smtp', port(tls), tls)]);
    await waitForMessage(RCPT, marker);
  }

  matrixIt(FILE, row('curl', 'AUTH PLAIN', 'none', ALICE, 'delivered to Maildir'), () => curlSend(ALICE, 'none', 'PLAIN'));
  matrixIt(FILE, row('curl', 'AUTH LOGIN', 'implicit', BOB, 'delivered to Maildir'), () => curlSend(BOB, 'implicit', 'LOGIN'));
  matrixIt(FILE, row('curl', 'AUTH PLAIN', 'starttls', BOB, 'delivered to Maildir'), () => curlSend(BOB, 'starttls', 'PLAIN'));

  async function swaksSend(account: TestAccount, tls: Tls, auth: 'PLAIN' | 'LOGIN'): Promise<void> {
    const marker = uniqueMarker(`swaks-${auth}`);
    const r = await swaks({ port: port(tls), tls, auth, user: account.username, password: account.password, from: account.username, to: RCPT, marker });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await waitForMessage(RCPT, marker);
  }

  matrixIt(FILE, row('swaks', 'AUTH PLAIN', 'starttls', BOB, 'delivered to Maildir'), () => swaksSend(BOB, 'starttls', 'PLAIN'));
  matrixIt(FILE, row('swaks', 'AUTH LOGIN', 'implicit', ALICE, 'delivered to Maildir'), () => swaksSend(ALICE, 'implicit', 'LOGIN'));
  matrixIt(FILE, row('swaks', 'AUTH PLAIN', 'none', ALICE, 'delivered to Maildir'), () => swaksSend(ALICE, 'none', 'PLAIN'));

  async function msmtpSend(account: TestAccount, tls: Tls, auth: 'plain' | 'login'): Promise<void> {
    const marker = uniqueMarker(`msmtp-${auth}`);
    const r = await msmtp({
      port: port(tls), tls, auth, user: account.username, secret: account.password, from: account.username, to: RCPT,
      message: `To: ${RCPT}\nSubject: ${marker}\nMessage-ID: <${marker}@e2e.example.com>\n\nSent by msmtp.\n`,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    await waitForMessage(RCPT, marker);
  }

  matrixIt(FILE, row('msmtp', 'AUTH PLAIN', 'starttls', ALICE, 'delivered to Maildir'), () => msmtpSend(ALICE, 'starttls', 'plain'));
  matrixIt(FILE, row('msmtp', 'AUTH LOGIN', 'implicit', BOB, 'delivered to Maildir'), () => msmtpSend(BOB, 'implicit', 'login'));
  matrixIt(FILE, row('msmtp', 'AUTH PLAIN', 'none', BOB, 'delivered to Maildir'), () => msmtpSend(BOB, 'none', 'plain'));

  it('refuses a wrong local password with 535, and never reaches the server', async () => {
    const before = proxy.events('upstream.connect').length;
    const r = await py(ALICE, 'starttls', 'plain', 'never-sent', { password: 'not the password' });
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/535/);
    expect(proxy.events('upstream.connect').length).toBe(before);
  });

  it('never writes a token or a password to its log', () => {
    expect(proxy.logs.filter((l) => TOKEN_PATTERN.test(l))).toEqual([]);
    expect(proxy.linesContaining([...refreshTokens, ALICE.password, BOB.password])).toEqual([]);
  });
});
