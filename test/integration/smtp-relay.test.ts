import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpWireClient } from '../fakes/smtp-wire-client.js';
import { LOCAL_PASSWORD, TOKEN_PATTERN, USER, type ProxyRun } from './harness.js';
import {
  PRINTER, PRINTER_PASSWORD, startSmtpProxy, startSmtpUpstreams, testMessage, writeSmtpProxyConfig, type SmtpUpstreams,
} from './smtp-harness.js';

/**
 * Devices that cannot log in (relay mode, SPEC section 4) and devices that only speak TLS 1.0
 * (SPEC section 5), through the built proxy.
 */

const run = promisify(execFile);
let up: SmtpUpstreams;
let proxy: ProxyRun;
let dir: string;
let relay: number;
let oldDevices: number;
let modern: number;

beforeAll(async () => {
  up = await startSmtpUpstreams({}, 'implicit');
  const config = writeSmtpProxyConfig(up, {
    listeners: [
      { tls: 'none', extra: `relay_account: ${PRINTER}\n    allow: [127.0.0.1/32]` },
      { tls: 'implicit', extra: 'min_tls_version: TLSv1' },
      { tls: 'implicit' },
    ],
  });
  dir = config.dir;
  const started = await startSmtpProxy(config.configPath, config.dir, 3);
  proxy = started.run;
  [relay = 0, oldDevices = 0, modern = 0] = started.ports;
});

afterAll(async () => {
  await proxy?.stop();
  await up?.close();
  const logs = proxy.logs.join('\n');
  expect(logs).not.toMatch(TOKEN_PATTERN);
  expect(logs).not.toContain(LOCAL_PASSWORD);
  expect(logs).not.toContain(PRINTER_PASSWORD);
});

/** A scan-to-email message as a printer writes it: its own sender, a display name. */
function scan(subject: string): Buffer {
  return Buffer.from(`From: "Scan to Email" <scanner@printer.lan>\r\nTo: bob@example.org\r\nSubject: ${subject}\r\n\r\nScanned page.\r\n.dot line\r\n`);
}

describe('relay mode: no AUTH from the allowed networks only', () => {
  it('a HELO-only client from 127.0.0.1 delivers, as the relay account, sender rewritten', async () => {
    const message = scan('relay helo');
    const file = join(dir, 'scan.eml');
    writeFileSync(file, message);
    const script = [
      'import smtplib, sys',
      's = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=20, source_address=("127.0.0.1", 0))',
      'print("helo", s.helo("printer")[0])',
      'print("refused", s.sendmail("scanner@printer.lan", ["bob@example.org"], open(sys.argv[2], "rb").read()))',
      's.quit()',
    ].join('\n');
    const { stdout } = await run('python3', ['-c', script, String(relay), file], { timeout: 30_000 });
    expect(stdout).toContain('helo 250');
    expect(stdout).toContain('refused {}');
    const got = up.smtp.messages.find((m) => m.data.includes('Subject: relay helo'));
    expect(got).toMatchObject({ user: PRINTER, from: PRINTER, to: ['bob@example.org'] });
    // sender_policy: rewrite and rewrite_from_header: the display name stays, the rest is untouched.
    const expected = message.toString('latin1').replace('From: "Scan to Email" <scanner@printer.lan>', `From: "Scan to Email" <${PRINTER}>`);
    expect(got?.data.toString('latin1')).toBe(expected);
    expect(up.smtp.auths.at(-1)).toEqual({ method: 'XOAUTH2', username: PRINTER, accepted: true });
  });

  it('the same listener refuses unauthenticated mail from 127.0.0.2 (never an open relay)', async () => {
    const before = { auths: up.smtp.auths.length, accepted: up.smtp.accepted };
    const c = await SmtpWireClient.open({ port: relay, localAddress: '127.0.0.2' });
    try {
      expect((await c.command('HELO intruder')).code).toBe(250);
      expect(await c.command('MAIL FROM:<spam@example.net>')).toEqual({ code: 530, lines: ['530 5.7.0 Authentication required'] });
      expect((await c.command('RCPT TO:<victim@example.org>')).code).toBe(503);
      expect((await c.command('DATA')).code).toBe(503);
    } finally {
      c.close();
    }
    expect(up.smtp.auths.length).toBe(before.auths);
    expect(up.smtp.accepted).toBe(before.accepted);
    expect(proxy.events('relay.refused').some((e) => e.client === '127.0.0.2')).toBe(true);
  });

  it('from 127.0.0.2 the same listener still takes mail after AUTH, as that account', async () => {
    const c = await SmtpWireClient.open({ port: relay, localAddress: '127.0.0.2' });
    try {
      await c.command('EHLO laptop.test');
      expect((await c.authPlain(USER, LOCAL_PASSWORD)).code).toBe(235);
      expect((await c.command(`MAIL FROM:<${USER}>`)).code).toBe(250);
      expect((await c.command('RCPT TO:<bob@example.org>')).code).toBe(250);
      const message = testMessage('relay listener with auth');
      expect((await c.data(message)).end.code).toBe(250);
      const got = up.smtp.messages.find((m) => m.data.includes('Subject: relay listener with auth'));
      expect(got).toMatchObject({ user: USER, from: USER });
      expect(got?.data.equals(message)).toBe(true);
    } finally {
      c.close();
    }
  });
});

describe('minimum TLS version toward the client', () => {
  const tls1Client = [
    'import smtplib, ssl, sys',
    'port, ca, user, password = sys.argv[1:5]',
    'ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)',
    'ctx.minimum_version = ssl.TLSVersion.TLSv1',
    'ctx.maximum_version = ssl.TLSVersion.TLSv1',
    'ctx.set_ciphers("DEFAULT:@SECLEVEL=0")',
    'ctx.load_verify_locations(ca)',
    'try:',
    '    s = smtplib.SMTP_SSL("127.0.0.1", int(port), context=ctx, timeout=20)',
    'except (ssl.SSLError, ConnectionError) as e:',
    '    print("refused", e)',
    '    sys.exit(0)',
    'print("version", s.sock.version())',
    's.login(user, password)',
    'print("refused", s.sendmail(user, ["bob@example.org"], b"Subject: tls1\\r\\n\\r\\nfrom an old printer\\r\\n"))',
    's.quit()',
  ].join('\n');

  it('a TLS 1.0 client connects to a listener configured for old devices and sends', async () => {
    const { stdout } = await run('python3', ['-c', tls1Client, String(oldDevices), up.certs.caFile, PRINTER, PRINTER_PASSWORD], { timeout: 30_000 });
    expect(stdout).toContain('version TLSv1\n');
    expect(stdout).toContain('refused {}');
    expect(up.smtp.messages.some((m) => m.data.includes('from an old printer'))).toBe(true);
  });

  it('the same client is refused by a default listener', async () => {
    const { stdout } = await run('python3', ['-c', tls1Client, String(modern), up.certs.caFile, PRINTER, PRINTER_PASSWORD], { timeout: 30_000 });
    expect(stdout).toMatch(/^refused .*PROTOCOL_VERSION/);
    expect(stdout).not.toContain('version TLSv1');
  });
});
