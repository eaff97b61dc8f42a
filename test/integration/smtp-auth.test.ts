import { execFile } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpWireClient } from '../fakes/smtp-wire-client.js';
import { LOCAL_PASSWORD, TOKEN_PATTERN, USER, type ProxyRun } from './harness.js';
import { PRINTER, startSmtpProxy, startSmtpUpstreams, testMessage, writeSmtpProxyConfig, type SmtpUpstreams } from './smtp-harness.js';

/**
 * SMTP AUTH rules through the built proxy: PLAIN's authorization identity (RFC 4616 section 2)
 * and what a STARTTLS listener offers before TLS (RFC 4954 section 4, RFC 8314 section 3).
 */

const run = promisify(execFile);
let up: SmtpUpstreams;
let proxy: ProxyRun;
let dir: string;
let plain: number;
let starttls: number;
let starttlsRelay: number;

beforeAll(async () => {
  up = await startSmtpUpstreams();
  const config = writeSmtpProxyConfig(up, {
    listeners: [{ tls: 'none' }, { tls: 'starttls' }, { tls: 'starttls', extra: `relay_account: ${PRINTER}\n    allow: [127.0.0.1/32]` }],
  });
  dir = config.dir;
  // Three free failures, then a lockout: enough to see whether a refusal was counted.
  appendFileSync(config.configPath, 'login_throttle: { free_failures: 3, delay: 0.1, max_delay: 0.1, lockout_after: 3, lockout: 60, window: 60 }\n');
  const started = await startSmtpProxy(config.configPath, config.dir, 3);
  proxy = started.run;
  [plain = 0, starttls = 0, starttlsRelay = 0] = started.ports;
});

afterAll(async () => {
  await proxy?.stop();
  await up?.close();
  const logs = proxy.logs.join('\n');
  expect(logs).not.toMatch(TOKEN_PATTERN);
  expect(logs).not.toContain(LOCAL_PASSWORD);
});

/** AUTH PLAIN with an authorization identity: base64(authzid NUL user NUL password). */
function authPlainAs(c: SmtpWireClient, authzid: string, user: string, password: string): Promise<{ code: number; lines: string[] }> {
  return c.command(`AUTH PLAIN ${Buffer.from(`${authzid}\0${user}\0${password}`).toString('base64')}`);
}

describe('AUTH PLAIN authorization identity (RFC 4616 section 2)', () => {
  it('acting as another user is refused with 535 5.7.8 even with the right password, logged as auth.fail', async () => {
    const before = up.smtp.auths.length;
    const c = await SmtpWireClient.open({ port: plain });
    try {
      await c.command('EHLO client.test');
      expect(await authPlainAs(c, 'rw@example.com', USER, LOCAL_PASSWORD)).toEqual({ code: 535, lines: ['535 5.7.8 Authentication credentials invalid'] });
      expect(await c.command(`MAIL FROM:<${USER}>`)).toEqual({ code: 530, lines: ['530 5.7.0 Authentication required'] });
    } finally {
      c.close();
    }
    expect(up.smtp.auths.length).toBe(before);
    const fail = await proxy.waitForEvent('auth.fail');
    expect(fail).toMatchObject({ username: USER, method: 'PLAIN', reason: 'PLAIN authorization identity differs from the user name' });
  });

  it('the user\'s own name as authzid, in any case, is acting as itself', async () => {
    const c = await SmtpWireClient.open({ port: plain });
    try {
      await c.command('EHLO client.test');
      expect((await authPlainAs(c, USER.toUpperCase(), USER, LOCAL_PASSWORD)).code).toBe(235);
      expect((await c.command(`MAIL FROM:<${USER}>`)).code).toBe(250);
    } finally {
      c.close();
    }
  });

  it('each such refusal counts toward the address\'s lockout, like a wrong password', async () => {
    const from = { port: plain, localAddress: '127.0.0.3' };
    for (let i = 0; i < 3; i++) {
      const c = await SmtpWireClient.open(from);
      await c.command('EHLO client.test');
      expect((await authPlainAs(c, 'rw@example.com', USER, LOCAL_PASSWORD)).code).toBe(535);
      c.close();
    }
    const c = await SmtpWireClient.open(from);
    try {
      await c.command('EHLO client.test');
      // Locked out: the right login, without authzid, gets the same answer.
      expect((await c.authPlain(USER, LOCAL_PASSWORD)).code).toBe(535);
    } finally {
      c.close();
    }
    expect(proxy.events('auth.lockout').some((e) => e.client === '127.0.0.3')).toBe(true);
  });
});

describe('a STARTTLS listener offers AUTH only after TLS', () => {
  it('EHLO lists STARTTLS and not AUTH before TLS, AUTH PLAIN LOGIN after; AUTH before TLS is never taken', async () => {
    const c = await SmtpWireClient.open({ port: starttls });
    try {
      const before = await c.command('EHLO client.test');
      expect(before.lines).toContain('250-STARTTLS');
      expect(before.lines.filter((l) => /^250[ -]AUTH/.test(l))).toEqual([]);
      expect((await c.authPlain(USER, LOCAL_PASSWORD)).code).toBe(500);
      expect((await c.command(`MAIL FROM:<${USER}>`)).code).toBe(530);
      expect((await c.startTls(up.certs.caPem)).code).toBe(220);
      const after = await c.command('EHLO client.test');
      expect(after.lines).toContain('250-AUTH PLAIN LOGIN');
      expect(after.lines.some((l) => l.includes('STARTTLS'))).toBe(false);
      expect((await c.authPlain(USER, LOCAL_PASSWORD)).code).toBe(235);
    } finally {
      c.close();
    }
  });

  it('a client that logs in when AUTH is offered and otherwise does STARTTLS first delivers', async () => {
    const subject = 'auth only after starttls';
    const message = testMessage(subject);
    const file = join(dir, 'starttls-first.eml');
    writeFileSync(file, message);
    // The logic of many devices and libraries: AUTH if offered, else STARTTLS if offered, then AUTH.
    const script = [
      'import os, smtplib, ssl, sys',
      'port, ca, user, path = sys.argv[1:5]',
      's = smtplib.SMTP("127.0.0.1", int(port), timeout=20)',
      's.ehlo("device.test")',
      'if not s.has_extn("auth") and s.has_extn("starttls"):',
      '    s.starttls(context=ssl.create_default_context(cafile=ca))',
      '    s.ehlo("device.test")',
      '    print("did starttls")',
      's.login(user, os.environ["SMTP_PASSWORD"])',
      'print("refused", s.sendmail(user, ["bob@example.org"], open(path, "rb").read()))',
      's.quit()',
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script, String(starttls), up.certs.caFile, USER, file], {
      env: { ...process.env, SMTP_PASSWORD: LOCAL_PASSWORD }, timeout: 30_000,
    });
    expect(stdout).toContain('did starttls');
    expect(stdout).toContain('refused {}');
    expect(up.smtp.messages.find((m) => m.data.includes(`Subject: ${subject}\r\n`))?.data.equals(message)).toBe(true);
  });

  it('a STARTTLS relay listener still takes mail without TLS or AUTH from its networks, and AUTH after TLS from others', async () => {
    const relayed = await SmtpWireClient.open({ port: starttlsRelay });
    try {
      expect((await relayed.command('EHLO printer.test')).lines.some((l) => l.includes('AUTH'))).toBe(false);
      expect((await relayed.command('MAIL FROM:<scanner@printer.lan>')).code).toBe(250);
      expect((await relayed.command('RCPT TO:<bob@example.org>')).code).toBe(250);
      expect((await relayed.data('From: scanner@printer.lan\r\nSubject: starttls relay\r\n\r\nscan\r\n')).end.code).toBe(250);
    } finally {
      relayed.close();
    }
    expect(up.smtp.messages.find((m) => m.data.includes('Subject: starttls relay'))).toMatchObject({ user: PRINTER, from: PRINTER });
    const other = await SmtpWireClient.open({ port: starttlsRelay, localAddress: '127.0.0.2' });
    try {
      await other.command('EHLO laptop.test');
      expect((await other.command('MAIL FROM:<x@example.net>')).code).toBe(530);
      await other.startTls(up.certs.caPem);
      expect((await other.command('EHLO laptop.test')).lines).toContain('250-AUTH PLAIN LOGIN');
      expect((await other.authPlain(USER, LOCAL_PASSWORD)).code).toBe(235);
    } finally {
      other.close();
    }
  });
});
