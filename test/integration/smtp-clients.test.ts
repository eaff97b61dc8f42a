import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpWireClient } from '../fakes/smtp-wire-client.js';
import { CLIENT_SECRET, LOCAL_PASSWORD, TOKEN_PATTERN, USER, type ProxyRun } from './harness.js';
import { startSmtpProxy, startSmtpUpstreams, testMessage, writeSmtpProxyConfig, type SmtpUpstreams } from './smtp-harness.js';

/**
 * Real SMTP clients through the built proxy (issue 3): each delivers a message that arrives
 * byte-identical at a fake upstream that takes only XOAUTH2 with a valid token.
 */

const run = promisify(execFile);
let up: SmtpUpstreams;
let proxy: ProxyRun;
let dir: string;
/** Listener ports: plaintext, STARTTLS, implicit TLS. */
let plain: number;
let starttls: number;
let implicit: number;

beforeAll(async () => {
  up = await startSmtpUpstreams();
  const config = writeSmtpProxyConfig(up, { listeners: [{ tls: 'none' }, { tls: 'starttls' }, { tls: 'implicit' }], admin: true });
  dir = config.dir;
  const started = await startSmtpProxy(config.configPath, config.dir, 3);
  proxy = started.run;
  [plain = 0, starttls = 0, implicit = 0] = started.ports;
});

afterAll(async () => {
  await proxy?.stop();
  await up?.close();
  // The upstream saw XOAUTH2 only, and never the local password, in any form.
  expect(up.smtp.auths.length).toBeGreaterThan(0);
  expect(up.smtp.auths.every((a) => a.method === 'XOAUTH2')).toBe(true);
  const seen = up.smtp.commands.join('\n');
  for (const form of [LOCAL_PASSWORD, Buffer.from(LOCAL_PASSWORD).toString('base64'), Buffer.from(`\0${USER}\0${LOCAL_PASSWORD}`).toString('base64')]) {
    expect(seen).not.toContain(form);
  }
  const logs = proxy.logs.join('\n');
  expect(logs).not.toMatch(TOKEN_PATTERN);
  expect(logs).not.toContain(LOCAL_PASSWORD);
  expect(logs).not.toContain(CLIENT_SECRET);
});

/** The message the upstream stored with this subject; it must be the only one. */
function received(subject: string): Buffer {
  const found = up.smtp.messages.filter((m) => m.data.includes(`Subject: ${subject}\r\n`));
  expect(found).toHaveLength(1);
  return found[0]!.data;
}

async function sendWithNodemailer(subject: string, port: number, mode: 'none' | 'starttls' | 'implicit', authMethod: 'PLAIN' | 'LOGIN'): Promise<Buffer> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1', port, secure: mode === 'implicit', requireTLS: mode === 'starttls', ignoreTLS: mode === 'none',
    auth: { user: USER, pass: LOCAL_PASSWORD }, authMethod,
    tls: { ca: up.certs.caPem, servername: 'localhost' },
  });
  const message = testMessage(subject);
  try {
    const info = await transport.sendMail({ envelope: { from: USER, to: ['bob@example.org'] }, raw: message });
    expect(info.accepted).toEqual(['bob@example.org']);
    // The upstream's own acceptance text reaches the client.
    expect(info.response).toMatch(/^250 2\.6\.0 /);
  } finally {
    transport.close();
  }
  return message;
}

describe('SMTP clients through the built proxy', () => {
  it.each([
    ['PLAIN', 'starttls'],
    ['LOGIN', 'starttls'],
    ['PLAIN', 'implicit'],
    ['LOGIN', 'implicit'],
    ['LOGIN', 'none'],
  ] as const)('nodemailer, AUTH %s over %s: the message arrives byte-identical', async (authMethod, mode) => {
    const port = { none: plain, starttls, implicit }[mode];
    const subject = `nodemailer ${authMethod} ${mode}`;
    const sent = await sendWithNodemailer(subject, port, mode, authMethod);
    expect(received(subject).equals(sent)).toBe(true);
  });

  it('python3 smtplib (STARTTLS, verified, AUTH PLAIN): the message arrives byte-identical', async () => {
    const subject = 'python smtplib';
    const message = testMessage(subject);
    const file = join(dir, 'python-message.eml');
    writeFileSync(file, message);
    const script = [
      'import os, smtplib, ssl, sys',
      'port, ca, user, path = sys.argv[1:5]',
      'ctx = ssl.create_default_context(cafile=ca)',
      's = smtplib.SMTP("127.0.0.1", int(port), timeout=20)',
      's.starttls(context=ctx)',
      's.login(user, os.environ["SMTP_PASSWORD"])',
      'refused = s.sendmail(user, ["bob@example.org"], open(path, "rb").read())',
      's.quit()',
      'print("refused", refused)',
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script, String(starttls), up.certs.caFile, USER, file], {
      env: { ...process.env, SMTP_PASSWORD: LOCAL_PASSWORD }, timeout: 30_000,
    });
    expect(stdout).toContain('refused {}');
    expect(received(subject).equals(message)).toBe(true);
  });

  it('swaks (STARTTLS, verified, AUTH LOGIN): the message arrives byte-identical', async () => {
    const subject = 'swaks';
    const message = testMessage(subject);
    const file = join(dir, 'swaks-message.eml');
    // swaks always ends the data with its own CRLF before the dot; give it the message without its last one.
    writeFileSync(file, message.subarray(0, -2));
    const { stdout } = await run('swaks', [
      '--server', '127.0.0.1', '--port', String(starttls), '--helo', 'swaks.test', '--tls', '--tls-verify', '--tls-ca-path', up.certs.caFile,
      '--tls-sni', 'localhost', '--auth', 'LOGIN', '--auth-user', USER, '--auth-password', LOCAL_PASSWORD,
      '--from', USER, '--to', 'bob@example.org', '--data', `@${file}`,
    ], { timeout: 30_000 });
    expect(stdout).toMatch(/<~ {2}250 2\.6\.0 /);
    expect(received(subject).equals(message)).toBe(true);
  });

  it('AUTH LOGIN after HELO (a device that never says EHLO) is accepted', async () => {
    const c = await SmtpWireClient.open({ port: plain });
    try {
      expect((await c.command('HELO old-scanner')).code).toBe(250);
      expect(await c.command('AUTH LOGIN')).toEqual({ code: 334, lines: ['334 VXNlcm5hbWU6'] });
      expect((await c.command(Buffer.from(USER).toString('base64'))).code).toBe(334);
      expect(await c.command(Buffer.from(LOCAL_PASSWORD).toString('base64'))).toEqual({ code: 235, lines: ['235 Authentication successful'] });
      expect((await c.command(`MAIL FROM:<${USER}>`)).code).toBe(250);
      expect((await c.command('RCPT TO:<bob@example.org>')).code).toBe(250);
      const message = testMessage('after HELO');
      expect((await c.data(message)).end.code).toBe(250);
      expect(received('after HELO').equals(message)).toBe(true);
    } finally {
      c.close();
    }
  });

  it('a wrong local password is 535 5.7.8, and the upstream is never contacted', async () => {
    const before = up.smtp.auths.length;
    const c = await SmtpWireClient.open({ port: plain });
    try {
      await c.command('EHLO client.test');
      expect(await c.authPlain(USER, 'wrong password')).toEqual({ code: 535, lines: ['535 5.7.8 Authentication credentials invalid'] });
      expect(await c.command(`MAIL FROM:<${USER}>`)).toEqual({ code: 530, lines: ['530 5.7.0 Authentication required'] });
    } finally {
      c.close();
    }
    expect(up.smtp.auths.length).toBe(before);
    const end = await proxy.waitForEvent('auth.fail');
    expect(end).toMatchObject({ username: USER, method: 'PLAIN' });
  });

  it('one session.end line names the account, recipients, size and outcome', async () => {
    const c = await SmtpWireClient.open({ port: plain });
    await c.command('EHLO client.test');
    await c.authPlain(USER, LOCAL_PASSWORD);
    await c.command(`MAIL FROM:<${USER}>`);
    await c.command('RCPT TO:<one@example.org>');
    await c.command('RCPT TO:<two@example.org>');
    const message = testMessage('summary');
    await c.data(message);
    await c.command('QUIT');
    c.close();
    const deadline = Date.now() + 5000;
    let end: Record<string, unknown> | undefined;
    while (!end && Date.now() < deadline) {
      end = proxy.events('session.end').find((e) => e.messages === 1 && e.recipients === 2 && e.bytes === message.length);
      if (!end) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(end).toMatchObject({ account: USER, method: 'PLAIN', outcome: 'sent', protocol: 'smtp', client: '127.0.0.1' });
    const admin = await proxy.waitForEvent('admin.start');
    const metrics = await (await fetch(`http://127.0.0.1:${String(admin.port)}/metrics`)).text();
    const sent = metrics.split('\n').find((l) => l.startsWith('oauth_mail_proxy_sessions_total{') && l.includes('protocol="smtp"') && l.includes('outcome="sent"'));
    expect(Number(sent?.split(' ').at(-1))).toBeGreaterThanOrEqual(1);
  });
});
