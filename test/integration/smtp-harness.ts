import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDemoSmtpServer, type DemoSmtpServer } from '../../src/demo/smtp-server.js';
import { startMockIdp, type MockIdp, type MockIdpOptions } from '../../src/demo/mock-idp.js';
import { getTestCertificates, type TestCertificates } from '../fakes/certs.js';
import { CLIENT_SECRET, LOCAL_PASSWORD, USER, startProxy, type ProxyRun } from './harness.js';

/**
 * SMTP on top of harness.ts: a mock identity provider and a fake upstream SMTP server (an
 * smtp-server that takes only XOAUTH2 with a valid token), and a config with several SMTP
 * listeners for the built proxy. Extra accounts use `static` tokens the fake also accepts.
 */

/** A printer account: relay target, envelope and header From rewritten. Static token. */
export const PRINTER = 'printer@example.com';
export const PRINTER_PASSWORD = 'printer-local-pw';
export const PRINTER_TOKEN = `at_printer_${'p'.repeat(40)}`;
/** An account whose static access token is 4 kB (Microsoft's are often 2-3 kB). */
export const BIG = 'big@example.com';
export const BIG_PASSWORD = 'big-local-pw';
export const BIG_TOKEN = `at_big_${'b'.repeat(4096 - 7)}`;

export interface SmtpUpstreams {
  idp: MockIdp;
  smtp: DemoSmtpServer;
  certs: TestCertificates;
  close(): Promise<void>;
}

export async function startSmtpUpstreams(idpOptions: MockIdpOptions = {}, tls: 'implicit' | 'starttls' = 'starttls'): Promise<SmtpUpstreams> {
  const certs = getTestCertificates();
  const idp = await startMockIdp(idpOptions);
  const statics = new Map([[PRINTER, PRINTER_TOKEN], [BIG, BIG_TOKEN]]);
  const smtp = await startDemoSmtpServer({
    tls,
    cert: certs.certPem,
    key: certs.keyPem,
    validateToken: (username, token) => statics.get(username) === token || idp.validateAccessToken(token) === username,
  });
  return {
    idp, smtp, certs,
    async close() {
      await smtp.close();
      await idp.close();
    },
  };
}

/** One SMTP listener: its TLS mode toward the client and any further YAML keys. */
export interface SmtpListenerSpec {
  tls?: 'none' | 'starttls' | 'implicit';
  /** Extra keys, e.g. "relay_account: printer@example.com\n    allow: [127.0.0.1/32]". */
  extra?: string;
  /** Seconds; default 20 each. */
  idleTimeout?: number;
  loginTimeout?: number;
}

export interface SmtpProxyOptions {
  listeners: SmtpListenerSpec[];
  refreshToken?: string;
  sasl?: 'xoauth2' | 'oauthbearer';
  /** Adds an admin listener (status page, /metrics) on a free port. */
  admin?: boolean;
}

export function writeSmtpProxyConfig(up: SmtpUpstreams, options: SmtpProxyOptions): { dir: string; configPath: string } {
  const dir = mkdtempSync(join(tmpdir(), 'omp-smtp-'));
  const configPath = join(dir, 'config.yaml');
  writeFileSync(join(dir, 'alice.rt'), `${options.refreshToken ?? up.idp.issueRefreshToken(USER)}\n`);
  writeFileSync(join(dir, 'client-secret'), CLIENT_SECRET);
  writeFileSync(join(dir, 'local-password'), LOCAL_PASSWORD);
  const listeners = options.listeners.map((l) => `
  - protocol: smtp
    listen: 127.0.0.1:0
    tls: ${l.tls ?? 'none'}
    cert_file: ${up.certs.certFile}
    key_file: ${up.certs.keyFile}
    idle_timeout: ${l.idleTimeout ?? 20}
    login_timeout: ${l.loginTimeout ?? 20}
    ${l.extra ?? ''}`).join('');
  writeFileSync(configPath, `
listeners:${listeners}
providers:
  corp:
    token_url: ${up.idp.tokenUrl}
    client_id: proxy
    client_secret_file: ./client-secret
    scope: mail
    ca_file: ${up.certs.caFile}
    sasl_mechanism: ${options.sasl ?? 'xoauth2'}
    servers:
      smtp: { host: localhost, port: ${up.smtp.port}, tls: ${up.smtp.tls} }
accounts:
  - username: ${USER}
    password_file: ./local-password
    provider: corp
    flow: refresh_token
    refresh_token_file: ./alice.rt
  - username: ${PRINTER}
    password: ${PRINTER_PASSWORD}
    provider: corp
    flow: static
    access_token: ${PRINTER_TOKEN}
    sender_policy: rewrite
    rewrite_from_header: true
  - username: ${BIG}
    password: ${BIG_PASSWORD}
    provider: corp
    flow: static
    access_token: ${BIG_TOKEN}
token_store: { path: ./data/tokens.enc, key_file: ./data/tokens.key }
${options.admin ? 'admin: { listen: 127.0.0.1:0 }\n' : ''}log: { level: debug, format: json }
`);
  return { dir, configPath };
}

/** The proxy and the port of each SMTP listener, in config order. */
export async function startSmtpProxy(configPath: string, dir: string, listeners: number): Promise<{ run: ProxyRun; ports: number[] }> {
  const run = await startProxy(configPath, dir);
  const deadline = Date.now() + 10_000;
  while (run.events('listener.start').length < listeners) {
    if (Date.now() > deadline) throw new Error(`only ${run.events('listener.start').length} of ${listeners} listeners started`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { run, ports: run.events('listener.start').map((r) => Number(r.port)) };
}

/** A message with what breaks careless relays: dot-leading lines, 8-bit UTF-8, a long line, no final CRLF issues. */
export function testMessage(subject: string, from = USER, to = 'bob@example.org'): Buffer {
  return Buffer.from([
    `From: Alice Example <${from}>`,
    `To: <${to}>`,
    `Subject: ${subject}`,
    'Message-ID: <' + subject.replace(/\W/g, '') + '@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Hello through the proxy.',
    '.a line that starts with a dot',
    '..and one with two',
    '.',
    'Grüße, 日本語 ✓',
    'x'.repeat(900),
    '',
  ].join('\r\n'), 'utf8');
}
